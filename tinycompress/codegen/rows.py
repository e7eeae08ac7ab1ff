"""In-place execution by bands of output rows: a sliding-window layer whose output overlaps its input.

A CONV_2D, DEPTHWISE_CONV_2D or pooling layer of batch 1 runs as several calls of the same kernel, one per
band of output rows [y0, y1), each with a parameter struct of its own: the input rows the band reads
(`input.h`, with `pad_top` counted from the first of them) and the band's output height. Each band writes
into a small temporary buffer (`temp`, in the layer's scratch); after the band, the rows of the temporary
that are safe are copied to their place in the output, and the rest moved to the temporary's start.

The output starts `delta` bytes after the input (delta <= 0: at or before it), so the two share bytes and the
planner gives them one buffer (codegen/plan.py). Output row r covers [delta + r*ob, delta + (r+1)*ob) from the
input's start, with ob bytes per output row and ib per input row. Once band [y0, y1) is done, the rows the
next bands read start at input row max(0, y1*stride_h - pad_top) (every input row once the last band is
done), and the bytes below it are dead. So row r is safe to copy when delta + (r+1)*ob is at most that row
times ib: the copy overwrites only input bytes no later band reads, and whatever lies before the input
(delta < 0) belongs to the shared buffer. Rows are copied in order, so the temporary holds at most
`temp_rows` rows, which `schedule` computes by running the same rule.

delta = min(0, input bytes - output bytes): with no more output than input the two start together, else the
output ends where the input ends. Both are safe for any band size, with a temporary of at most a band and
the rows the kernel's window still reads below the band (one for a 3x3 stride-1 layer).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..ops.common import KernelCall

FUNCTIONS = ("tc_conv2d_s8", "tc_conv2d_s4", "tc_conv2d_p4", "tc_depthwise_conv2d_s8",
             "tc_depthwise_conv2d_s4", "tc_depthwise_conv2d_p4", "tc_max_pool2d_s8", "tc_avg_pool2d_s8")


@dataclass(frozen=True)
class Band:
    rows: tuple[int, int]       # output rows [y0, y1)
    input_row: int              # the first input row it reads (the kernel's input pointer)
    params: dict                # the layer's parameters with the band's shapes
    temp_row: int               # where in the temporary its first row goes (rows already pending)
    flush: tuple[int, int]      # output rows copied from the temporary's start to their place after it
    scratch: int                # bytes of scratch the kernel takes for the band's shape (0: none)


@dataclass(frozen=True)
class RowsInPlace:
    delta: int                  # the output's offset from the input's start, bytes (<= 0)
    band_rows: int
    bands: tuple[Band, ...]
    input_row_bytes: int
    output_row_bytes: int
    temp_rows: int              # output rows the temporary holds at most
    kernel_scratch: int         # bytes of the kernel's own scratch, before the temporary

    @property
    def temp_offset(self) -> int:
        return (self.kernel_scratch + 3) & ~3

    @property
    def scratch_bytes(self) -> int:
        return self.temp_offset + self.temp_rows * self.output_row_bytes


@dataclass(frozen=True)
class OverOwnInput:
    """One call whose kernel writes its output over its own input, at the input's bytes (ops/scratch.py
    writes_over_input): nothing to copy, no temporary."""
    scratch_bytes: int
    delta: int = 0
    band_rows: int = 0


def eligible(call: KernelCall) -> bool:
    """A sliding-window kernel of batch 1 over one activation input, with more than one output row."""
    if call.function not in FUNCTIONS or len(call.inputs) != 1 or len(call.outputs) != 1:
        return False
    n, _, _, _ = call.params["input"]
    return n == 1 and call.params["output"][1] > 1


def _window_rows(p: dict) -> int:
    """Input rows one output row reads: the filter's height, dilated."""
    if "filter_h" in p:
        return p["filter_h"]
    return (p["filter"][1] - 1) * p.get("dilation_h", 1) + 1


def input_rows(p: dict, y0: int, y1: int) -> tuple[int, int]:
    """The input rows [first, last) that output rows [y0, y1) of a layer with parameters `p` read (rows
    beyond the input are its padding)."""
    stride, pad = p["stride_h"], p["pad_top"]
    return max(0, y0 * stride - pad), min(p["input"][1], (y1 - 1) * stride - pad + _window_rows(p))


def band_params(p: dict, y0: int, y1: int) -> tuple[int, dict]:
    """The first input row output rows [y0, y1) read, and the kernel's parameters for those rows alone: the
    input rows they read, `pad_top` counted from the first of them, their output height. The kernel reads
    rows past the band's input as padding, which only the real padding rows are (input_rows)."""
    first, last = input_rows(p, y0, y1)
    _, _, in_w, in_c = p["input"]
    _, _, out_w, out_c = p["output"]
    params = {**p, "input": (1, last - first, in_w, in_c), "output": (1, y1 - y0, out_w, out_c),
              "pad_top": first - (y0 * p["stride_h"] - p["pad_top"])}
    if "scratch" in p:
        params["scratch"] = "NULL"        # the layer's scratch, where the band's shape takes it (bind)
    return first, params


def schedule(call: KernelCall, band_rows: int, kernel_scratch, rest_apart: bool = False) -> RowsInPlace:
    """The bands of `call` with `band_rows` output rows each, the last with the rest too (a short band
    would run the DSP matrix kernel's slow single columns), or with `rest_apart` the rest a band of its own
    (a smaller temporary); `kernel_scratch(params)` gives the bytes of scratch the kernel needs for one
    band's parameters (ops/scratch.py)."""
    p = call.params
    _, in_h, in_w, in_c = p["input"]
    _, out_h, out_w, out_c = p["output"]
    ib, ob = in_w * in_c, out_w * out_c
    stride, pad = p["stride_h"], p["pad_top"]
    delta = min(0, in_h * ib - out_h * ob)
    bands, pending, flushed, scratch, most = [], 0, 0, 0, 0
    starts = list(range(0, out_h, band_rows))
    if not rest_apart and len(starts) > 1 and out_h % band_rows:
        starts.pop()                                # the last band takes the rest
    for y0, y1 in zip(starts, starts[1:] + [out_h]):
        first, params = band_params(p, y0, y1)
        need = kernel_scratch(params)
        scratch = max(scratch, need)
        temp_row = pending
        pending += y1 - y0
        most = max(most, pending)
        dead = in_h if y1 == out_h else max(0, y1 * stride - pad)
        safe = flushed
        while safe < y1 and delta + (safe + 1) * ob <= dead * ib:
            safe += 1
        bands.append(Band((y0, y1), first, params, temp_row, (flushed, safe), need))
        pending -= safe - flushed
        flushed = safe
    assert flushed == out_h, "the last band copies every row"
    return RowsInPlace(delta, band_rows, tuple(bands), ib, ob, most, scratch)


def band_sizes(out_h: int, out_w: int) -> list[int]:
    """The band heights the planner tries, below the output's height: powers of two and three times them,
    and so for the least height whose outputs come in whole groups of six, the DSP matrix kernel's
    columns (ops/scratch.py DSP_COLUMNS), and of those only heights of whole groups or of at least four
    groups: the kernel takes a group's worth of time for a part group, and each band costs its setup once
    more (DS-CNN's 25x5 pointwise layers by single rows take 2.2 times the instructions of one call, by
    six rows 1.02 times)."""
    from math import gcd

    from ..ops.scratch import DSP_COLUMNS
    whole = DSP_COLUMNS // gcd(DSP_COLUMNS, out_w)
    sizes = {m << k for m in (1, 3, whole, 3 * whole) for k in range(out_h.bit_length())}
    return sorted(b for b in sizes if b < out_h and (b % whole == 0 or b * out_w >= 4 * DSP_COLUMNS))


def bind(rows: RowsInPlace, scratch_pointer: str) -> RowsInPlace:
    """Point each band's kernel at the layer's scratch where its own shape takes a path that uses it."""
    return replace(rows, bands=tuple(replace(b, params={**b.params, "scratch": scratch_pointer}) if b.scratch
                                     else b for b in rows.bands))


@dataclass(frozen=True)
class BandCall:
    """One band as model.c runs it: the kernel on the band's parameters, then the rows it copies."""
    params_name: str            # the band's parameter struct (bands with equal parameters share one)
    input: int                  # arena offsets: the band's first input row,
    temp: int                   # where its output rows go in the temporary,
    copy: tuple[int, int, int]  # (to, from, bytes) of the safe rows, bytes 0: none
    move: tuple[int, int, int]  # (to, from, bytes) of the rows still pending, to the temporary's start


def band_calls(name: str, rows: RowsInPlace, input_offset: int, output_offset: int, scratch_offset: int):
    """The structs ({name: params}) and the calls of a layer `name` run by rows."""
    temp = scratch_offset + rows.temp_offset
    ob = rows.output_row_bytes
    structs: dict[str, dict] = {}
    calls = []
    for band in rows.bands:
        key = next((k for k, v in structs.items() if v == band.params), None)
        if key is None:
            key = f"{name}_rows{len(structs)}_params"
            structs[key] = band.params
        f0, f1 = band.flush
        pending = band.temp_row + band.rows[1] - band.rows[0]
        copied = (f1 - f0) * ob
        calls.append(BandCall(key, input_offset + band.input_row * rows.input_row_bytes,
                              temp + band.temp_row * ob,
                              (output_offset + f0 * ob, temp, copied),
                              (temp, temp + copied, (pending - (f1 - f0)) * ob if copied else 0)))
    return structs, calls
