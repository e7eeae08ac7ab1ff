"""INT4 weights (`int4`, tinycompress/compress/int4.py): the .tflite rewrite, the nibble form the firmware
stores (ops/nibbles.py), the int4 kernels in QEMU bit-exact with TFLite Micro on the rewritten model
(tests/zoo_int4.py), their flash, and quantization-aware fine-tuning."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import firmware_vs_tflm, needs_emulator, zoo_graph

from tinycompress.compress.int4 import Int4Method, round_away
from tinycompress.compress.plan import Context, parse_plan
from tinycompress.errors import TinyCompressError
from tinycompress.frontend.load import read_tflite
from tinycompress.frontend.reference import tflm_outputs
from tinycompress.ops import nibbles
from tinycompress.ops.common import weight_values
from tinycompress.ops.fixedpoint import (PACKED_FRACTION_BITS, PACKED_SHIFT_BITS, conv_multipliers,
                                         pack_channels, packable, packable_scale, unpack_channels)


def int4(graph, arg=None):
    return Int4Method("int4", arg).apply_graph(graph, Context())


# ---- the forms, on the host ----------------------------------------------------------------------------

@pytest.mark.parametrize("rows,depth,block",
                         [(3, 8, 1), (5, 13, 1), (1, 1, 1), (4, 27, 1), (6, 16, 4), (9, 5, 4)])
def test_nibble_rows_round_trip_and_size(rows, depth, block):
    values = np.random.default_rng(depth).integers(-8, 8, (rows, depth))
    packed = nibbles.nibble_rows(values, block)
    assert packed.size == rows * 4 * -(-depth // 8)
    assert (nibbles.from_nibble_rows(packed, rows, depth, block) == values).all()
    words = packed.view(np.uint8).reshape(-1, 4).astype(np.int64)
    first = np.pad(values, ((0, 0), (0, 8)))[:, :8]
    # the first word: values 0..3 in the high nibbles, 4..7 in the low ones, each plus 8
    assert ((words[0] >> 4) - 8 == first[0, :4]).all() and ((words[0] & 15) - 8 == first[0, 4:]).all()
    if depth > 8:    # word 1 is the block's next row's first word (interleaved), or the row's own second
        second = first[1] if block > 1 else np.pad(values[0], (0, 16))[8:16]
        assert ((words[1] >> 4) - 8 == second[:4]).all()


def test_tflite_packing_round_trip_with_an_odd_count():
    values = np.random.default_rng(0).integers(-8, 8, 15)
    packed = nibbles.pack_tflite(values)
    assert packed.size == 8 and packed[0] == (values[0] & 15) | ((values[1] & 15) << 4)
    assert (nibbles.unpack_tflite(packed, (3, 5)) == values.reshape(3, 5)).all()


def test_int4_scratch_on_dsp_cores():
    """What ops/scratch.py gives the int4 kernels on the M4: FULLY_CONNECTED's row in whole words; depthwise
    int8's planes where the layer has their shape (3x3, stride 1 or 2), a band of lines at a time, and any
    other layer of multiplier 1 (channels by four) each channel's requantization."""
    from types import SimpleNamespace

    from tinycompress.ops.scratch import assign_scratch
    from tinycompress.target.boards import load_board

    def depthwise(output, stride=1):
        return SimpleNamespace(function="tc_depthwise_conv2d_s4", scratch_bytes=0,
                               params={"filter": (1, 3, 3, output[3]), "output": output,
                                       "depth_multiplier": 1, "stride_h": stride, "stride_w": stride,
                                       "dilation_h": 1, "dilation_w": 1})

    calls = [SimpleNamespace(function="tc_fully_connected_s4", scratch_bytes=0,
                             params={"input_depth": 13, "output_depth": 5}),
             depthwise((1, 25, 5, 12)), depthwise((1, 48, 48, 8)), depthwise((1, 25, 5, 12), stride=2)]
    assign_scratch(calls, load_board("mps2-an386"))
    assert [c.scratch_bytes for c in calls] == [16 * 2, 4 * 7 * 30 * 2, 4 * 10 * 50 * 2, 4 * 7 * 58 * 2]


# ---- the rewrite -----------------------------------------------------------------------------------------

def test_rewrite_puts_the_weights_on_the_4bit_grid_and_tflm_runs_it(zoo):
    graph, _ = zoo_graph(zoo, "op_conv_3x3_same")
    layer = graph.layers[0]
    w8, b8 = graph.tensors[layer.inputs[1]], graph.tensors[layer.inputs[2]]
    new, steps = int4(graph)
    w4, b4 = new.tensors[layer.inputs[1]], new.tensors[layer.inputs[2]]
    assert w4.dtype == "int4" and w4.data.size == (w8.size + 1) // 2
    real = w8.data * w8.scale.reshape(-1, 1, 1, 1).astype(np.float64)
    grid = np.abs(real).reshape(len(real), -1).max(axis=1) / 7
    # max|w| / 7, moved to a scale whose multiplier has the packed form (within 2^20 float32 steps)
    assert np.allclose(w4.scale, grid, rtol=2 ** -3) and not np.allclose(w4.scale, grid, rtol=1e-7)
    multipliers, shifts = conv_multipliers(graph.tensors[layer.inputs[0]].scale[0], w4.scale,
                                           graph.tensors[layer.outputs[0]].scale[0])
    assert all(packable(m) for m in multipliers)
    values = weight_values(w4)
    assert np.abs(values).max() <= 7
    on_scale = round_away(real / w4.scale.reshape(-1, 1, 1, 1).astype(np.float64))
    assert (values == np.clip(on_scale, -7, 7)).all()
    assert (b4.data == round_away(b8.data * w8.scale.astype(np.float64) / w4.scale.astype(np.float64))).all()
    assert steps[0].bytes_before == w8.size and steps[0].bytes_after == (w8.size + 1) // 2
    x = np.random.default_rng(0).integers(-128, 128, (8,) + graph.input_tensor().shape[1:]).astype(np.int8)
    assert tflm_outputs(new.source, x).shape == tflm_outputs(graph.source, x).shape


def test_packable_scale_finds_a_packed_multiplier_near_the_wanted_scale():
    rng = np.random.default_rng(3)
    for _ in range(200):
        s_in, s_out, wanted = (np.float32(10.0 ** rng.uniform(-4, 0)) for _ in range(3))
        scale = packable_scale(s_in, s_out, wanted)
        (m,), _ = conv_multipliers(s_in, [scale], s_out)
        assert packable(m) and abs(scale / wanted - 1) < 2 ** -3


def test_packed_channels_round_trip_and_refuse_what_does_not_fit():
    rng = np.random.default_rng(4)
    multipliers = (1 << 30) | (rng.integers(0, 1 << 17, 9) << 13)
    shifts, bias = rng.integers(-7, -3, 9), rng.integers(-4096, 4096, 9)
    words, base = pack_channels(multipliers, shifts, bias)
    assert words.min() >= -2 ** 31 and words.max() < 2 ** 31 and base == shifts.min()
    for got, want in zip(unpack_channels(words, base), (multipliers, shifts, bias)):
        assert (got == want).all()
    assert pack_channels(multipliers + 1, shifts, bias) is None                  # low bits not clear
    assert pack_channels(multipliers, shifts * 2, bias) is None                  # shifts span over four
    assert pack_channels(multipliers, shifts, bias * 2) is None                  # bias past 13 bits


def test_packed_form_constants_match_the_firmware():
    import re
    from pathlib import Path
    header = (Path(__file__).resolve().parent.parent / "firmware" / "include" / "tc_types.h").read_text()
    defined = dict(re.findall(r"#define (TC_PACKED_\w+) (\d+)", header))
    assert defined == {"TC_PACKED_FRACTION_BITS": str(PACKED_FRACTION_BITS),
                       "TC_PACKED_SHIFT_BITS": str(PACKED_SHIFT_BITS)}


def test_an_int4_convolution_stores_bias_and_requantization_in_one_word_a_channel(zoo):
    from tinycompress.ops import lower_layer
    graph, layer = zoo_graph(zoo, "op_conv_3x3_same")
    new, _ = int4(graph)
    call = lower_layer(new.layers[0], new)
    channels = new.tensors[layer.inputs[1]].shape[0]
    names = {a.name.removeprefix(layer.name + "_"): a.nbytes for a in call.arrays}
    assert names == {"weights": names["weights"], "channels": 4 * channels}
    assert call.params["bias"] == "NULL" and call.params["requant"]["packed"].endswith("_channels")
    # the words give back what TFLite Micro derives from the rewritten scales, and the bias
    b4 = new.tensors[layer.inputs[2]]
    want = conv_multipliers(new.tensors[layer.inputs[0]].scale[0], new.tensors[layer.inputs[1]].scale,
                            new.tensors[layer.outputs[0]].scale[0])
    words = next(a for a in call.arrays if a.name.endswith("_channels")).values
    got = unpack_channels(words, call.params["requant"]["packed_shift"])
    assert (got[0] == want[0]).all() and (got[1] == want[1]).all() and (got[2] == b4.data).all()


def test_fully_connected_gets_one_scale_as_tflite_micro_requires(zoo):
    graph, layer = zoo_graph(zoo, "op_fc_relu")
    new, steps = int4(graph)
    assert new.tensors[layer.inputs[1]].scale.size == 1 and "per tensor" in steps[0].detail


@pytest.mark.parametrize("spec,fragment", [("int4:nosuch", "has no layer nosuch"),
                                           ("int4:,", "name at least one")])
def test_a_bad_int4_spec_is_refused_in_one_line(zoo, spec, fragment):
    graph, _ = zoo_graph(zoo, "op_fc_relu")
    step = parse_plan(spec).steps[0]
    with pytest.raises(TinyCompressError, match=fragment) as error:
        step.apply_graph(graph, Context())
    assert "\n" not in str(error.value) and "write int4 or int4:LAYER" in str(error.value)


def test_a_model_without_weighted_layers_is_refused(zoo):
    graph, _ = zoo_graph(zoo, "op_fc_relu")
    already, _ = int4(graph)
    with pytest.raises(TinyCompressError, match="no FULLY_CONNECTED, CONV_2D or DEPTHWISE_CONV_2D layer"):
        int4(already)


def test_naming_layers_rewrites_only_those(zoo):
    graph, _ = zoo_graph(zoo, "op_add_residual")
    weighted = [layer for layer in graph.layers if layer.op == "CONV_2D"]
    new, steps = int4(graph, weighted[1].name)
    assert [s.layer for s in steps] == [weighted[1].name]
    assert [new.tensors[layer.inputs[1]].dtype for layer in weighted] == ["int8", "int4"]


# ---- firmware ----------------------------------------------------------------------------------------------

BOARDS = ["mps2-an386", "mps2-an385"]     # Cortex-M4 (DSP paths), Cortex-M3 (portable)


@needs_emulator
def test_int4_fully_connected_matches_tflm_on_m4(zoo, tmp_path):
    tflite, data = zoo("int4_fc")
    project = firmware_vs_tflm(tflite, "mps2-an386", data, tmp_path, min_inputs=100)
    assert {c.function for c in project.calls} == {"tc_fully_connected_s4"}
    assert all(c.scratch_bytes for c in project.calls)     # the DSP path


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("board", BOARDS + ["microbit"])
@pytest.mark.parametrize("name", ["int4_fc", "int4_conv", "int4_dw", "int4_dw12"])
def test_int4_models_match_tflm(zoo, tmp_path, name, board):
    if (name, board) == ("int4_fc", "mps2-an386"):
        pytest.skip("the fast tier's case")
    tflite, data = zoo(name)
    project = firmware_vs_tflm(tflite, board, data, tmp_path, min_inputs=100)
    assert all(c.function.endswith("_s4") for c in project.calls if c.arrays)
    # the convolutions' bias and requantization in the packed form (the rewrite chose their scales for it)
    assert all(c.params["requant"].get("packed") for c in project.calls
               if c.function in ("tc_conv2d_s4", "tc_depthwise_conv2d_s4"))
    if (name, board) == ("int4_dw12", "mps2-an386"):    # the first layer on int8's planes (ops/scratch.py)
        from tinycompress.ops.scratch import dsp_depthwise_planes_bytes
        dw = [c for c in project.calls if c.function == "tc_depthwise_conv2d_s4"]
        rows = dw[0].rows          # the planner may run it by bands of rows (codegen/rows.py): each on planes
        shapes = [b.params for b in rows.bands] if rows is not None and rows.band_rows else [dw[0].params]
        kernel = rows.kernel_scratch if rows is not None and rows.band_rows else dw[0].scratch_bytes
        assert kernel == max(dsp_depthwise_planes_bytes(p) for p in shapes) > 0 and dw[1].scratch_bytes


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("name", ["op_fc_pairs", "op_conv_3x3_same"])
def test_int4_weights_take_half_the_flash(zoo, tmp_path, name):
    """The weight arrays in the ELF: half the int8 ones, plus at most a word's padding per row."""
    from tinycompress.pipeline import compile_graph
    from tinycompress.target.boards import load_board
    from tinycompress.target.build import build
    from tinycompress.target.elfsize import elf_sizes

    graph, _ = zoo_graph(zoo, name)
    board = load_board("mps2-an386")
    sizes = {}
    for label, g in (("int8", graph), ("int4", int4(graph)[0])):
        project = compile_graph(g, board, tmp_path / label, name)
        symbols = elf_sizes(build(project)).symbols
        sizes[label] = sum(symbols[f"{layer.name}_weights"] for layer in g.layers)
    rows = sum(graph.tensors[layer.inputs[1]].shape[0] for layer in graph.layers)
    assert sizes["int8"] <= 2 * sizes["int4"] <= sizes["int8"] + 8 * rows


# ---- quantization-aware fine-tuning ---------------------------------------------------------------------

@pytest.mark.slow
def test_fine_tuned_kernels_survive_conversion_and_rewrite_exactly():
    import keras

    from tinycompress.frontend.quantize import keras_to_int8_tflite

    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((8, 8, 3), batch_size=1)
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    x = L.DepthwiseConv2D(3, name="dw")(x)
    out = L.Dense(4, name="fc")(L.Flatten()(x))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    x_train, y_train = rng.uniform(-1, 1, (64, 8, 8, 3)).astype(np.float32), rng.normal(size=(64, 4))
    step = Int4Method("int4", None)
    training = step.fine_tune_model(model)
    assert type(training.get_layer("dw")).__name__ == "Int4DepthwiseConv2D"
    training.compile("adam", "mse")
    before = training.get_layer("conv").get_weights()[0].copy()
    training.fit(x_train, y_train, epochs=1, batch_size=16, verbose=0)
    # it trained through the STE
    assert not np.array_equal(before, training.get_layer("conv").get_weights()[0])
    plain = step.fine_tuned(training)
    assert type(plain.get_layer("dw")) is L.DepthwiseConv2D
    graph, _ = int4(read_tflite(keras_to_int8_tflite(plain, x_train)))
    kernels = {"conv": (plain.get_layer("conv").get_weights()[0], (0, 1, 2),
                        lambda k: k.transpose(3, 0, 1, 2)),
               "dw": (plain.get_layer("dw").get_weights()[0], (0, 1), lambda k: k.reshape(1, 3, 3, -1)),
               "fc": (plain.get_layer("fc").get_weights()[0], None, lambda k: k.T)}
    for layer in graph.layers:
        if layer.name not in kernels:
            continue
        kernel, reduce, to_tflite = kernels[layer.name]
        scale = np.abs(kernel).max(axis=reduce, keepdims=True) / 7
        expected = to_tflite(round_away(kernel / scale))
        assert (weight_values(graph.tensors[layer.inputs[1]]) == expected).all(), layer.name


@needs_emulator
@pytest.mark.slow
def test_int4_benchmark_reports_both_kernels_exact(zoo, tmp_path):
    import json
    import subprocess
    import sys

    from conftest import TESTS
    zoo("digits_cnn")
    out = tmp_path / "int4.json"
    proc = subprocess.run([sys.executable, str(TESTS.parent / "benchmarks" / "int4.py"),
                           "--models", "digits_cnn", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    rows = {r["weights"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"int8", "int4"} and all(r["bit_exact"] for r in rows.values())
    assert rows["int4"]["weight_bytes"] < 0.6 * rows["int8"]["weight_bytes"]
    assert rows["int4"]["conv_instructions_per_mac"] and "ratio" in proc.stdout
