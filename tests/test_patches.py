"""Chains of layers run by patches of rows through line buffers (codegen/patches.py) and their planner.

The schedule is simulated byte for byte: one memory holding the chain's input, its output and its scratch
(the line buffers) where patch_steps puts them, and for each call a kernel that reads, for each output row,
the input rows its own parameters name. The chain's output must equal its layers computed one after the
other on whole tensors, whatever the shapes, strides, padding, dilation and patch height, and no call may
read or write outside what holds its rows. The firmware then runs the zoo's chains bit-exact with TFLite
Micro on the M4, M55 and M0.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import needs_emulator
from test_rows import output_row, rows_read
from tinycompress.codegen.patches import chainable, patch_steps, schedule
from tinycompress.ops.common import KernelCall

ROOT = Path(__file__).resolve().parent.parent
CHAINS = ["patch_conv_pool", "patch_inverted", "patch_valid_s2"]


def layer(step: int, in_h: int, width: int, in_c: int, out_c: int, kh: int, stride: int, pad: int,
          dilation: int, pad_bottom: int) -> KernelCall:
    out_h = (in_h + pad + pad_bottom - ((kh - 1) * dilation + 1)) // stride + 1
    params = {"input": (1, in_h, width, in_c), "filter": (out_c, kh, 1, in_c),
              "output": (1, out_h, width, out_c), "stride_h": stride, "stride_w": 1, "dilation_h": dilation,
              "dilation_w": 1, "pad_top": pad, "pad_left": 0}
    return KernelCall(SimpleNamespace(name=f"layer{step}"), "tc_conv2d_s8", "tc_conv2d_params", params,
                      inputs=[step], outputs=[step + 1])


def random_chain(rng: random.Random) -> list[KernelCall]:
    chain, in_h, width, in_c = [], rng.randint(6, 40), rng.randint(1, 5), rng.randint(1, 3)
    for step in range(rng.randint(2, 4)):
        kh, stride, dilation = rng.choice([1, 2, 3, 5]), rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2])
        reach = (kh - 1) * dilation + 1
        pad, bottom = rng.randint(0, reach - 1), rng.randint(0, reach - 1)
        if in_h + pad + bottom < reach:
            break
        call = layer(step, in_h, width, in_c, rng.randint(1, 4), kh, stride, pad, dilation, bottom)
        chain.append(call)
        in_h, in_c = call.params["output"][1], call.params["output"][3]
    return chain


def whole(call: KernelCall, image: np.ndarray) -> np.ndarray:
    """The layer on its whole input: each output row from the rows it reads."""
    p = call.params
    ob = p["output"][2] * p["output"][3]
    return np.stack([output_row([image[r] for r in rows_read(y, p["stride_h"], p["pad_top"], p["filter"][1],
                                                             p["dilation_h"], p["input"][1])], ob)
                     for y in range(p["output"][1])])


def simulate(chain: list[KernelCall], band_rows: int):
    """The chain's output as its patches make it, and as its layers make it one after the other."""
    p0 = chain[0].params
    rng = np.random.default_rng(band_rows * 7 + p0["input"][1])
    image = rng.integers(0, 256, (p0["input"][1], p0["input"][2] * p0["input"][3]), dtype=np.uint8)
    expected = image
    for call in chain:
        expected = whole(call, expected)
    patches = schedule(chain, 0, band_rows, lambda call: 0)
    out_bytes = expected.size
    at_out, at_scratch = image.size, image.size + out_bytes
    memory = np.full(at_scratch + patches.scratch_bytes, 77, np.uint8)
    memory[:image.size] = image.reshape(-1)
    structs, steps = patch_steps(chain, patches, 0, at_out, at_scratch)
    buffers = [at_scratch + o for o in patches.buffer_offsets]
    regions = [(buffers[i], buffers[i] + patches.buffer_rows[i] * patches.row_bytes[i])
               for i in range(len(chain) - 1)] + [(at_out, at_out + out_bytes)]
    for c, step in zip(patches.calls, steps):
        to, frm, n = step.move
        memory[to:to + n] = memory[frm:frm + n].copy()
        _, p = structs[step.params_name]
        ib, ob = p["input"][2] * p["input"][3], p["output"][2] * p["output"][3]
        source = (0, image.size) if c.stage == 0 else regions[c.stage - 1]
        assert source[0] <= step.input and step.input + p["input"][1] * ib <= source[1], "reads what holds it"
        lo, hi = regions[c.stage]
        assert lo <= step.output and step.output + p["output"][1] * ob <= hi, "writes where its rows go"
        if c.stage < len(chain) - 1:
            assert lo <= to and frm + n <= hi
        for y in range(p["output"][1]):
            read = [memory[step.input + r * ib:step.input + (r + 1) * ib]
                    for r in rows_read(y, p["stride_h"], p["pad_top"], p["filter"][1], p["dilation_h"],
                                       p["input"][1])]
            memory[step.output + y * ob:step.output + (y + 1) * ob] = output_row(read, ob)
    return expected, memory[at_out:at_out + out_bytes].reshape(expected.shape), patches


def test_patches_equal_the_layers_one_after_the_other():
    rng, tried = random.Random(19), 0
    while tried < 300:
        chain = random_chain(rng)
        if len(chain) < 2:
            continue
        out_h = chain[-1].params["output"][1]
        for band_rows in {1, 2, rng.randint(1, max(1, out_h)), out_h}:
            expected, made, patches = simulate(chain, band_rows)
            assert np.array_equal(made, expected), ([c.params for c in chain], band_rows)
            made_rows = {}
            for c in patches.calls:    # each row of each layer made once, in order: nothing recomputed
                assert c.rows[0] == made_rows.get(c.stage, 0)
                made_rows[c.stage] = c.rows[1]
            tried += 1


def test_a_3x3_window_keeps_two_rows_of_halo():
    """A 1x1 layer, then a 3x3 stride-1 one, by patches of one row: the first layer's line buffer holds
    the three rows the window reads, and after the first patch each patch moves two of them down and
    makes one more row."""
    chain = [layer(0, 10, 4, 2, 6, 1, 1, 0, 1, 0), layer(1, 10, 4, 6, 3, 3, 1, 1, 1, 1)]
    patches = schedule(chain, 0, 1, lambda call: 0)
    assert patches.buffer_rows == (3, 0)
    first = [c for c in patches.calls if c.stage == 0]
    assert first[0].rows == (0, 2) and all(c.rows[1] - c.rows[0] == 1 for c in first[1:])
    assert all(c.move[1] == 2 for c in first[2:])
    assert patches.patches == 10


def test_a_chain_is_consecutive_layers_each_read_only_by_the_next():
    a, b, c = layer(0, 8, 2, 1, 2, 3, 1, 1, 1, 1), layer(1, 8, 2, 2, 2, 3, 1, 1, 1, 1), \
        layer(2, 8, 2, 2, 2, 1, 1, 0, 1, 0)
    reads = {0: 1, 1: 1, 2: 1, 3: 1}
    assert chainable([a, b, c], 0, 2, reads)
    assert not chainable([a, b, c], 0, 2, {**reads, 2: 2})       # b's output read elsewhere too
    c.inputs = [1]
    assert not chainable([a, b, c], 0, 2, reads)                 # c does not read b's output


def plan_of(zoo, name: str, board_name: str):
    from tinycompress.ops import lower_layer
    from tinycompress.ops.dsp_forms import assign_dsp_forms
    from tinycompress.pipeline import load_model, plan_layers
    from tinycompress.target.boards import load_board

    board = load_board(board_name)
    graph = load_model(Path(zoo(name)[0]))
    calls = [lower_layer(each, graph) for each in graph.layers]
    assign_dsp_forms(calls, board)
    return plan_layers(calls, graph, board), calls


@pytest.mark.parametrize("name", CHAINS)
def test_the_planner_patches_a_chain_where_it_lowers_the_arena(zoo, name):
    plan, calls = plan_of(zoo, name, "mps2-an386")
    heads = [c for c in calls if c.patches is not None]
    assert len(heads) == 1 and heads[0] is calls[0]
    assert plan.size == plan.lower_bound and plan.size < 0.75 * plan.unpatched


def test_no_chain_where_the_arena_would_not_shrink(zoo):
    plan, calls = plan_of(zoo, "kws_dscnn", "mps2-an386")
    assert not any(c.patches for c in calls) and plan.unpatched is None


def tc(*args):
    return subprocess.run([sys.executable, "-m", "tinycompress", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


@pytest.mark.parametrize("board", ["mps2-an386", pytest.param("mps3-an547", marks=pytest.mark.slow),
                                   pytest.param("microbit", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", CHAINS)
def test_patched_chains_run_bit_exact(zoo, tmp_path, name, board):
    model, data = zoo(name)
    out = tmp_path / "report.json"
    result = tc("run", model, "--board", board, "--data", data, "--verify", "--json", out,
                "-o", tmp_path / "project")
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    v = report["verification"]
    assert v["matching"] == v["inferences"] >= 100
    assert report["arena"]["planned"] < report["arena"]["without_patches"]
    schemes = [layer["scheme"] for layer in report["layers"]]
    assert schemes[0].startswith("patched with the next 2 layers")
    assert schemes[1:3] == [f"in the patches of {report['layers'][0]['name']}"] * 2
    assert "patches of" in result.stdout and "without patches" in result.stdout


@needs_emulator
def test_a_patched_chain_runs_in_the_callers_arena(zoo, tmp_path):
    """--arena external: the chain's calls point their kernels' scratch and line buffers into the caller's
    arena at each call."""
    from test_capi import make, model_and_inputs
    from tinycompress.target.boards import load_board
    from tinycompress.target.emulate import run_firmware

    model, x, expected = model_and_inputs(zoo, "patch_inverted")
    out = tmp_path / "ext"
    result = tc("compile", model, "--name", "inv", "--arena", "external", "--board", "mps2-an386", "-o", out)
    assert result.returncode == 0, result.stderr
    source = (out / "model.c").read_text()
    assert "_patch0_params" in source and "params.scratch = (int16_t *)(tc_arena + " in source
    make(out)
    run = run_firmware(out / "firmware.elf", load_board("mps2-an386"), x, expected.shape[1])
    np.testing.assert_array_equal(run.outputs, expected)
