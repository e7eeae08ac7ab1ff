"""Layers run by bands of rows over their own input (codegen/rows.py) and the planner that chooses them.

The band schedule is simulated byte for byte here: one memory holding the input and the output where the
planner may put them (the output `delta` bytes from the input), a temporary of the schedule's size, and a
kernel that reads, for each output row of a band, the input rows the band's own parameters name. The
output must equal the same layer computed from an untouched input, whatever the shape, stride, padding,
dilation and band height. The firmware runs the same schedules bit-exact with TFLite Micro in
test_firmware_vs_tflm.py (kws_dscnn on the M0, M4, M7 and M55, whose layers the planner runs so)."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from tinycompress.codegen.plan import choose_in_place, plan_arena
from tinycompress.codegen.rows import band_calls, band_sizes, schedule
from tinycompress.ops.common import KernelCall


def conv_call(in_h, out_h, width, in_c, out_c, kh, stride, pad, dilation):
    params = {"input": (1, in_h, width, in_c), "filter": (out_c, kh, 1, in_c),
              "output": (1, out_h, width, out_c),
              "stride_h": stride, "stride_w": 1, "dilation_h": dilation, "dilation_w": 1, "pad_top": pad,
              "pad_left": 0, "scratch": "NULL"}
    return KernelCall(None, "tc_conv2d_s8", "tc_conv2d_params", params, inputs=[0], outputs=[1])


def rows_read(y, stride, pad, kh, dilation, in_h):
    return [y * stride - pad + k * dilation for k in range(kh) if 0 <= y * stride - pad + k * dilation < in_h]


def output_row(rows: list[np.ndarray], ob: int) -> np.ndarray:
    """A kernel's output row from the input rows it reads (any function of all of them will do)."""
    acc = np.zeros(ob, np.int64)
    for k, row in enumerate(rows):
        acc += (k + 1) * np.resize(row.astype(np.int64), ob)
    return (acc % 251).astype(np.uint8)


def simulate(call: KernelCall, rows) -> tuple[np.ndarray, np.ndarray]:
    p = call.params
    _, in_h, width, in_c = p["input"]
    _, out_h, _, out_c = p["output"]
    ib, ob = width * in_c, width * out_c
    kh, stride, dilation = p["filter"][1], p["stride_h"], p["dilation_h"]
    rng = np.random.default_rng(in_h * 1000 + out_h)
    image = rng.integers(0, 256, (in_h, ib), dtype=np.uint8)
    pad = p["pad_top"]
    expected = np.stack([output_row([image[r] for r in rows_read(y, stride, pad, kh, dilation, in_h)], ob)
                         for y in range(out_h)])
    base = -rows.delta
    memory = np.full(base + max(in_h * ib, rows.delta + out_h * ob), 77, np.uint8)
    memory[base:base + in_h * ib] = image.reshape(-1)
    out_at = base + rows.delta
    temp = np.full(rows.temp_rows * ob, 99, np.uint8)
    structs, calls = band_calls("layer", rows, base, out_at, 0)
    for band, c in zip(rows.bands, calls):
        bp = structs[c.params_name]
        b_in_h, b_out_h, pad = bp["input"][1], bp["output"][1], bp["pad_top"]
        assert bp["output"][1] == band.rows[1] - band.rows[0]
        for y in range(b_out_h):
            read = [memory[c.input + r * ib:c.input + (r + 1) * ib]
                    for r in rows_read(y, stride, pad, kh, dilation, b_in_h)]
            t = c.temp - rows.temp_offset + y * ob
            assert t + ob <= temp.size, "the temporary holds the band"
            temp[t:t + ob] = output_row(read, ob)
        to, frm, n = c.copy
        memory[to:to + n] = temp[frm - rows.temp_offset:frm - rows.temp_offset + n]
        to, frm, n = c.move
        temp[to - rows.temp_offset:to - rows.temp_offset + n] = temp[frm - rows.temp_offset:
                                                                      frm - rows.temp_offset + n].copy()
    return expected, memory[out_at:out_at + out_h * ob].reshape(out_h, ob)


def random_calls(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        kh, stride, dilation = rng.choice([1, 2, 3, 5]), rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2])
        in_h = rng.randint(1, 30)
        same = rng.random() < 0.6
        out_h = -(-in_h // stride) if same else (in_h - (kh - 1) * dilation - 1) // stride + 1
        if out_h < 2:
            continue
        total = max(0, (out_h - 1) * stride + (kh - 1) * dilation + 1 - in_h)
        call = conv_call(in_h, out_h, rng.randint(1, 7), rng.randint(1, 9), rng.randint(1, 9), kh, stride,
                         total // 2 if same else 0, dilation)
        yield call, rng.randint(1, out_h)


def test_bands_over_their_own_input_equal_the_layer():
    seen = 0
    for call, band in random_calls(400, seed=3):
        for apart in (False, True):          # the rest in the last band, or a band of its own
            rows = schedule(call, band, lambda p: 0, apart)
            assert rows.delta <= 0 and rows.temp_rows <= band + out_rows_below(call)
            expected, got = simulate(call, rows)
            np.testing.assert_array_equal(got, expected)
        seen += 1
    assert seen > 250


def out_rows_below(call: KernelCall) -> int:
    """The bound the schedule keeps: a band and the last band's rest, plus the rows the window reaches
    back (a generous bound: the filter's dilated height)."""
    p = call.params
    return p["output"][1] // 2 + (p["filter"][1] - 1) * p["dilation_h"] + 1


def test_a_3x3_stride_1_layer_keeps_one_row_pending():
    call = conv_call(25, 25, 5, 64, 64, 3, 1, 1, 1)
    rows = schedule(call, 6, lambda p: 0)
    assert [b.rows for b in rows.bands] == [(0, 6), (6, 12), (12, 18), (18, 25)]   # the last takes the rest
    assert rows.temp_rows == 8 and rows.delta == 0    # the last band of 7 and the row pending before it
    assert [b.params["input"][1] for b in rows.bands] == [7, 8, 8, 8]
    assert [b.params["pad_top"] for b in rows.bands] == [1, 0, 0, 0]
    apart = schedule(call, 6, lambda p: 0, rest_apart=True)
    assert [b.rows for b in apart.bands][-2:] == [(18, 24), (24, 25)] and apart.temp_rows == 7


def test_a_widening_layer_ends_where_its_input_ends():
    call = conv_call(48, 48, 48, 8, 16, 1, 1, 0, 1)
    rows = schedule(call, 8, lambda p: 0)
    assert rows.delta == 48 * 48 * 8 - 48 * 48 * 16
    assert rows.temp_rows == 8           # every band's rows are safe at once


def test_band_heights_give_whole_groups_of_columns():
    assert band_sizes(25, 5) == [6, 8, 12, 16, 18, 24]
    assert band_sizes(48, 48) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]


def test_the_planner_overlaps_outputs_with_dead_inputs():
    """Three 1x1 layers in a chain, widening, then narrowing: the two at the peak run over their inputs,
    the arena holds the largest tensor and a temporary, and meets its lower bound."""
    class T:
        def __init__(self, nbytes):
            self.nbytes = nbytes
    tensors = [T(96 * 100), T(96 * 200), T(96 * 100), T(96 * 50)]
    calls = []
    for i, (a, b) in enumerate([(100, 200), (200, 100), (100, 50)]):
        c = conv_call(96, 96, 1, a, b, 1, 1, 0, 1)
        c.inputs, c.outputs = [i], [i + 1]
        calls.append(c)
    plain = plan_arena(calls, tensors, [0], [3])
    assert plain.size == 96 * 300 and not plain.overlapped
    plan = choose_in_place(calls, tensors, [0], [3], lambda call: 0)
    assert plan.overlapped == {0, 1} and calls[2].rows is None   # the last is below the peak: one call
    assert plan.size == plan.lower_bound == 96 * 200 + 6 * 200   # the widest tensor, six rows of it
    for call in calls[:2]:
        d = plan.offsets[call.outputs[0]] - plan.offsets[call.inputs[0]]
        assert d <= call.rows.delta or d >= tensors[call.inputs[0]].nbytes, "an allowed overlap or none"


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547", "microbit"])
def test_dscnn_arena_halves_and_meets_its_bound(zoo, board):
    from tinycompress.ops import lower_layer
    from tinycompress.ops.scratch import assign_scratch, kernel_scratch, writes_over_input
    from tinycompress.pipeline import load_model
    from tinycompress.target.boards import load_board

    b = load_board(board)
    graph = load_model(Path(zoo("kws_dscnn")[0]))
    calls = [lower_layer(layer, graph) for layer in graph.layers]
    assign_scratch(calls, b)
    plain = plan_arena(calls, graph.tensors, graph.inputs, graph.outputs)
    plan = choose_in_place(calls, graph.tensors, graph.inputs, graph.outputs, lambda c: kernel_scratch(c, b),
                           lambda c: writes_over_input(c, b))
    assert plan.size == plan.lower_bound
    assert plan.size < 0.7 * plain.size       # 16,000 B live at once become 8,000 and temporaries
    depthwise = [s for s, c in enumerate(calls) if c.function == "tc_depthwise_conv2d_s8"]
    if b.dsp and not b.mve:                   # the plane path writes over its own input: one call each
        assert all(calls[s].rows is not None and calls[s].rows.band_rows == 0 for s in depthwise)
