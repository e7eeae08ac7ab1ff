"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR of an int8 NHWC image to a constant size.

Where each output row and column reads depends only on the sizes and the two options, so the host works
it out once with TFLite Micro's own arithmetic and the kernels read tables, without a division or a float
per element:
- nearest: GetNearestNeighbor's float32 scale (in / out, or (in - 1) / (out - 1) with align_corners),
  the position (o + 0.5 with half_pixel_centers) times it, floored (rounded half away from zero with
  align_corners), at most in - 1 and at least 0;
- bilinear: ResizeBilinearInteger's 10-bit fixed point: scale_10 = round(1024 in / out) (with
  align_corners from in - 1 and out - 1), the source position p = o scale_10 (+ scale_10 / 2 - 512 with
  half_pixel_centers), the rows/columns max(p div 1024, 0) and min(ceil(p / 1024), in - 1) and the
  weight p - 1024 lower (C's division, toward zero; negative at the first half-pixel rows).
Neither requantizes: TFLite Micro copies and interpolates the int8 values as they are.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinyCompressError
from ..ir import Graph, Layer
from . import lowering
from .common import ConstArray, KernelCall, require_rank, unsupported

FRACTION_BITS = 10   # ResizeBilinearInteger's fixed point


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """(n, size[0], size[1], c) from the constant size input."""
    inp, size = t[0], t[1]
    require_rank(inp, 4, where, "input")
    if size.data is None:
        raise TinyCompressError(f"{where}: the output size is computed at run time; only a constant size is "
                                "supported")
    values = [int(v) for v in size.data.reshape(-1)]
    if len(values) != 2 or min(values) < 1:
        raise TinyCompressError(f"{where}: the size {values} is not two positive dimensions")
    if layer.options.get("align_corners") and layer.options.get("half_pixel_centers"):
        raise TinyCompressError(f"{where}: align_corners and half_pixel_centers are both set; TFLite allows "
                                "at most one")
    return (inp.shape[0], values[0], values[1], inp.shape[3])


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> list[int]:
    """GetNearestNeighbor for each output position, in float32 as TFLite computes it."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel_centers else f32(0.0)
    result = []
    for o in range(out_size):
        position = (f32(o) + offset) * scale
        # TfLiteRound is std::round, halves away from zero (the position is never negative); in double,
        # where position + 0.5 is exact
        value = int(np.floor(float(position) + 0.5)) if align_corners else int(np.floor(position))
        value = min(value, in_size - 1)
        result.append(max(value, 0) if half_pixel_centers else value)
    return result


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def bilinear_table(in_size: int, out_size: int, align_corners: bool,
                   half_pixel_centers: bool) -> list[tuple[int, int, int]]:
    """(lower, upper, weight of upper in 1/1024) per output position: ComputeInterpolationValuesInteger."""
    one = 1 << FRACTION_BITS
    if align_corners and out_size > 1:
        scale = _c_div(one * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    else:
        scale = _c_div(one * in_size + out_size // 2, out_size)
    table = []
    for o in range(out_size):
        position = o * scale
        if half_pixel_centers:
            position += _c_div(scale, 2) - (1 << (FRACTION_BITS - 1))
        lower = max(_c_div(position, one), 0)
        upper = min(_c_div(position + one - 1, one), in_size - 1)
        table.append((lower, upper, position - one * lower))
    return table


def _geometry(layer: Layer, graph: Graph):
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    if inp.dtype != "int8":
        raise unsupported(layer, f"a {inp.dtype} input")
    o = layer.options
    return inp.nhwc(), out.nhwc(), bool(o.get("align_corners")), bool(o.get("half_pixel_centers"))


def _summary(layer: Layer, in_dims, out_dims, align: bool, half: bool) -> str:
    mode = ", align_corners" if align else ", half_pixel_centers" if half else ""
    return f"{in_dims[1]}x{in_dims[2]} -> {out_dims[1]}x{out_dims[2]}{mode}"


@lowering("RESIZE_NEAREST_NEIGHBOR", inputs=2, shape=output_shape, options="ResizeNearestNeighborOptionsT")
def lower_nearest(layer: Layer, graph: Graph) -> KernelCall:
    (n, in_h, in_w, c), (_, out_h, out_w, _), align, half = _geometry(layer, graph)
    # byte offsets into one input image: no multiply in the kernel
    rows = [i * in_w * c for i in nearest_indices(in_h, out_h, align, half)]
    cols = [i * c for i in nearest_indices(in_w, out_w, align, half)]
    arrays = [ConstArray(f"{layer.name}_rows", "int32_t", np.array(rows, np.int64), "input row x row bytes"),
              ConstArray(f"{layer.name}_cols", "int32_t", np.array(cols, np.int64), "input column x depth")]
    params = {"input": (n, in_h, in_w, c), "output": (n, out_h, out_w, c),
              "rows": arrays[0].name, "cols": arrays[1].name}
    return KernelCall(layer, "tc_resize_nearest_s8", "tc_resize_nearest_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]], arrays=arrays,
                      summary=_summary(layer, (n, in_h, in_w, c), (n, out_h, out_w, c), align, half))


@lowering("RESIZE_BILINEAR", inputs=2, shape=output_shape, options="ResizeBilinearOptionsT")
def lower_bilinear(layer: Layer, graph: Graph) -> KernelCall:
    (n, in_h, in_w, c), (_, out_h, out_w, _), align, half = _geometry(layer, graph)
    rows, cols = bilinear_table(in_h, out_h, align, half), bilinear_table(in_w, out_w, align, half)
    for axis, table, size in (("row", rows, in_h), ("column", cols, in_w)):
        lower = max(t[0] for t in table)
        if lower >= size:
            # TFLite Micro would read past the image: its lower bound is not clamped
            raise unsupported(layer, f"resizing {in_h}x{in_w} to {out_h}x{out_w}, whose fixed-point source "
                              f"{axis} {lower} lies outside the input")
    row_words = [v for lo, hi, wt in rows for v in (lo * in_w * c, hi * in_w * c, wt)]
    col_words = [v for lo, hi, wt in cols for v in (lo * c, hi * c, wt)]
    arrays = [ConstArray(f"{layer.name}_rows", "int32_t", np.array(row_words, np.int64),
                         "per output row: upper and lower row byte offsets, weight of the lower in 1/1024"),
              ConstArray(f"{layer.name}_cols", "int32_t", np.array(col_words, np.int64),
                         "per output column: left and right byte offsets, weight of the right in 1/1024")]
    params = {"input": (n, in_h, in_w, c), "output": (n, out_h, out_w, c),
              "rows": arrays[0].name, "cols": arrays[1].name}
    return KernelCall(layer, "tc_resize_bilinear_s8", "tc_resize_bilinear_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]], arrays=arrays,
                      summary=_summary(layer, (n, in_h, in_w, c), (n, out_h, out_w, c), align, half))
