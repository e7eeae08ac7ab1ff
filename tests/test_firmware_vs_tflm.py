"""The firmware, built and run in QEMU, against the TFLite Micro interpreter: identical int8 bytes."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from conftest import needs_emulator

import modelzoo
from tinycompress.target.boards import load_board
from tinycompress.target.build import build
from tinycompress.target.elfsize import elf_sizes
from tinycompress.target.emulate import run_firmware
from tinycompress.errors import EXIT_BUDGET, TinyCompressError
from tinycompress.pipeline import compile_model, load_inputs, load_model
from tinycompress.frontend.reference import tflm_outputs

pytestmark = needs_emulator

OP_CASES = [n for n in modelzoo.NAMES if n.startswith("op_")]
# The fast tier runs these op cases only: together they call every kernel function (and DSP form) that the
# whole op list calls on the M4 (test_fast_ops_call_every_kernel checks it); the slow tier runs them all.
FAST_OPS = ["op_conv1d_kws", "op_layer_norm", "op_unstack_stack", "op_maximum_h1c", "op_dw_3x3_same",
            "op_matmul_adj_y", "op_tconv_3x3_s2_same_relu", "op_prelu", "op_minimum_same", "op_zero_pad2d",
            "op_permute", "op_resize_nearest_x2", "op_upsample_bilinear", "op_fc_pairs",
            "op_conv_3x3_same_s2", "op_dw_s2_same", "op_dw_mult2_valid", "op_hard_swish", "op_prelu_shared"]
NETWORKS = ["digits_mlp", "digits_cnn", "kws_dscnn", "ad_autoencoder"]
# Every network on the M4 and on M7/M55; the small ones on M3, M33 and the 16 KiB M0.
CASES = ([(op, "mps2-an386") for op in OP_CASES]
         + [(net, board) for board in ("mps2-an386", "mps2-an500", "mps3-an547") for net in NETWORKS]
         + [(net, board) for board in ("mps2-an385", "mps2-an505", "microbit")
            for net in ("digits_mlp", "digits_cnn")]
         # the DS-CNN fits the 16 KiB M0 with its layers run over their own inputs (codegen/rows.py)
         + [("kws_dscnn", "microbit")]
         # the activation table and PRELU kernels on the M0 and the M55 too
         + [(op, board) for board in ("microbit", "mps3-an547")
            for op in ("op_hard_swish", "op_prelu_shared")])
TOO_BIG_FOR_MICROBIT = ["ad_autoencoder"]
# Slow: the zoo trains these networks (from a clean clone) for the slow tests only.
SLOW_NETWORKS = ["kws_dscnn", "ad_autoencoder"]
PARAMS = [pytest.param(n, b, id=f"{n}-{b}",
                       marks=pytest.mark.slow if n in SLOW_NETWORKS or (n in OP_CASES and n not in FAST_OPS)
                       else ())
          for n, b in CASES]


def build_and_run(model, board_name, data, tmp_path):
    board = load_board(board_name)
    project = compile_model(model, board, tmp_path / "project")
    elf = build(project)
    inputs, _ = load_inputs(data, project.graph, count=0)
    result = run_firmware(elf, board, inputs, project.graph.output_tensor().nbytes)
    return project, elf, inputs, result


@pytest.mark.parametrize("name,board", PARAMS)
def test_bit_exact_with_tflite_micro(zoo, tmp_path, name, board):
    model, data = zoo(name)
    project, _, inputs, result = build_and_run(model, board, data, tmp_path)
    assert len(inputs) >= 100
    expected = tflm_outputs(project.graph.source, inputs)
    mismatched = np.flatnonzero(~(expected == result.outputs).all(axis=1))
    assert mismatched.size == 0, (
        f"{mismatched.size} of {len(inputs)} outputs differ; first input {mismatched[0]}: "
        f"expected {expected[mismatched[0]].tolist()} got {result.outputs[mismatched[0]].tolist()}")
    assert (result.ticks[:, 0] > 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", TOO_BIG_FOR_MICROBIT)
def test_model_too_big_for_microbit_is_refused(zoo, tmp_path, name):
    model, _ = zoo(name)
    with pytest.raises(TinyCompressError) as err:
        project = compile_model(model, load_board("microbit"), tmp_path / "project")
        build(project)
    assert err.value.exit_code == EXIT_BUDGET
    message = str(err.value)
    assert "microbit" in message and message.count("bytes") >= 1 and "but the board has" in message


def test_instruction_counts_repeat_exactly(zoo, tmp_path):
    model, data = zoo("digits_cnn")
    board = load_board("mps2-an386")
    project, elf, inputs, first = build_and_run(model, "mps2-an386", data, tmp_path)
    second = run_firmware(elf, board, inputs, project.graph.output_tensor().nbytes)
    assert np.array_equal(first.ticks, second.ticks)
    # The per-layer ticks add up to the inference total, less the measurement overhead.
    assert (first.ticks[:, 1:].sum(axis=1) <= first.ticks[:, 0]).all()


def test_sizes_agree_with_arm_none_eabi_size(zoo, tmp_path):
    model, data = zoo("digits_mlp")
    project = compile_model(model, load_board("mps2-an386"), tmp_path / "project")
    elf = build(project)
    text, data_, bss = map(int, subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True,
                                               text=True, check=True).stdout.splitlines()[1].split()[:3])
    sizes = elf_sizes(elf)
    assert (sizes.text, sizes.data, sizes.bss) == (text, data_, bss)
    assert sizes.flash == text + data_ and sizes.ram == data_ + bss
    weights = sum(sizes.symbols[name] for name in project.weight_symbols)
    assert weights == sum(c.weight_bytes for c in project.calls)


def _kernels(graph, board) -> set[str]:
    """The kernel functions a graph calls on `board`, each with the DSP forms it is given."""
    from tinycompress.ops import lower_layer
    from tinycompress.ops.dsp_forms import assign_dsp_forms
    from tinycompress.ops.scratch import assign_scratch
    calls = [lower_layer(layer, graph) for layer in graph.layers]
    assign_scratch(calls, board)
    assign_dsp_forms(calls, board)
    return {c.function + "".join(sorted(f"+{k}" for k, v in c.params.items() if k.startswith("dsp") and v))
            for c in calls}


@pytest.mark.slow
def test_fast_ops_call_every_kernel(zoo):
    """The fast tier's op cases keep calling every kernel the whole op list calls, as ops are added."""
    board = load_board("mps2-an386")
    assert set(FAST_OPS) <= set(OP_CASES)
    every = {name: _kernels(load_model(zoo(name)[0]), board) for name in OP_CASES}
    fast = set().union(*(every[name] for name in FAST_OPS))
    missed = {k: [n for n in OP_CASES if k in every[n]][:3] for k in set().union(*every.values()) - fast}
    assert not missed, f"add an op case calling each of these to FAST_OPS: {missed}"
