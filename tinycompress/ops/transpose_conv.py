"""TRANSPOSE_CONV: int8 NHWC input, per-channel int8 filter [C_out, KH, KW, C_in], optional int32 bias.

TFLite Micro scatters: each input pixel adds input x filter into an int32 image of the output, at the
output positions stride x input - padding + tap. We gather instead (firmware/kernels/tc_transpose_conv_s8.c):
output (oy, ox) sums the taps ky = (oy + pad) mod stride + j stride over input rows iy = (oy + pad) div
stride - j, the same products added in another order. int32 sums wrap alike in any order, so the
accumulator is bit for bit TFLite Micro's before its bias and requantization. The input offset times a
tap's weights is a constant per (output channel, tap): folded on the host into one int32 per tap, it
costs one add per tap instead of one per MAC.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinyCompressError
from .fixedpoint import conv_multipliers
from ..ir import Graph, Layer
from . import lowering
from .common import (ConstArray, KernelCall, check_weighted, dims, require_rank, scalar_quant, unsupported,
                     weighted_params, window_summary)

OUTPUT_SHAPE, WEIGHTS, INPUT, BIAS = range(4)   # TFLite's input order


def _trunc_div(a: int, b: int) -> int:
    """C's integer division (toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def padding(padding_type: str, out_size: int, kernel: int, stride: int) -> int:
    """TFLite Micro's ComputePaddingHeightWidth applied to the output as if it were a convolution's input
    (dilation 1): the windows a forward convolution of the output would take, their padding before."""
    if padding_type == "SAME":
        windows = _trunc_div(out_size + stride - 1, stride)
    else:
        windows = _trunc_div(out_size + stride - kernel, stride)
    total = (windows - 1) * stride + kernel - out_size
    return max(total, 0) // 2


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """The constant output_shape input, which must agree with the batch, the filter and the input."""
    shape, weights, inp = t[OUTPUT_SHAPE], t[WEIGHTS], t[INPUT]
    require_rank(inp, 4, where, "input")
    require_rank(weights, 4, where, "weights")
    if shape.data is None:
        raise TinyCompressError(f"{where}: the output shape is computed at run time; only a constant output "
                                "shape is supported")
    values = tuple(int(v) for v in shape.data.reshape(-1))
    if len(values) != 4 or min(values) < 1:
        raise TinyCompressError(f"{where}: the output shape {list(values)} is not four positive dimensions")
    if weights.shape[3] != inp.shape[3]:
        raise TinyCompressError(f"{where}: the weights read {weights.shape[3]} channels but the input has "
                                f"{inp.shape[3]}")
    if values[0] != inp.shape[0] or values[3] != weights.shape[0]:
        raise TinyCompressError(f"{where}: the output shape {dims(values)} does not match the input "
                                f"{dims(inp.shape)} and the {weights.shape[0]} filters")
    return values


def check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    bias = t[BIAS] if len(t) > BIAS else None
    check_weighted(layer, graph, [t[INPUT], t[WEIGHTS]] + ([bias] if bias is not None else []), where,
                   channel_axis=0)
    if bias is not None and bias.dtype != "int32":
        raise TinyCompressError(f"{where}: a {bias.dtype} bias; int8 TRANSPOSE_CONV takes an int32 one")


def _taps(out_size: int, in_size: int, kernel: int, stride: int, pad: int) -> np.ndarray:
    """How many taps reach each output position along one axis (for the MAC count)."""
    counts = np.zeros(out_size, np.int64)
    for o in range(out_size):
        counts[o] = sum(1 for k in range(kernel) if (o + pad - k) % stride == 0
                        and 0 <= (o + pad - k) // stride < in_size)
    return counts


@lowering("TRANSPOSE_CONV", inputs=3, shape=output_shape, check=check, options="TransposeConvOptionsT",
          options_required=True)
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, weights = graph.tensors[layer.inputs[INPUT]], graph.tensors[layer.inputs[WEIGHTS]]
    out = graph.tensors[layer.outputs[0]]
    if inp.dtype != "int8":
        raise unsupported(layer, f"a {inp.dtype} input")
    if weights.dtype != "int8" or weights.data is None:
        raise unsupported(layer, f"{weights.dtype} weights" if weights.dtype != "int8" else
                          "weights computed at run time")
    n, in_h, in_w, in_c = inp.nhwc()
    out_c, k_h, k_w, _ = weights.shape
    _, out_h, out_w, _ = out.nhwc()
    o = layer.options
    stride_h, stride_w = o.get("stride_h", 1), o.get("stride_w", 1)
    pad_top = padding(o.get("padding"), out_h, k_h, stride_h)
    pad_left = padding(o.get("padding"), out_w, k_w, stride_w)
    multipliers = conv_multipliers(scalar_quant(inp)[0], weights.scale, scalar_quant(out)[0])
    shared, arrays = weighted_params(layer, graph, *multipliers, positions=(INPUT, WEIGHTS, BIAS))
    # (input + offset) . w = input . w + offset x sum(w): the second term per (channel, tap), wrapped to int32
    # as TFLite Micro's int32 accumulator wraps. The kernel takes it in place of the input offset.
    tap_sums = shared.pop("input_offset") * weights.data.astype(np.int64).sum(axis=3).reshape(-1)
    tap_sums = ((tap_sums + 2 ** 31) % 2 ** 32) - 2 ** 31
    arrays.insert(1, ConstArray(f"{layer.name}_tap_offsets", "int32_t", tap_sums,
                                f"[{out_c}x{k_h}x{k_w}] input offset x the weights of each tap"))
    params = {
        "input": (n, in_h, in_w, in_c),
        "filter": (out_c, k_h, k_w, in_c),
        "output": (n, out_h, out_w, out_c),
        "stride_h": stride_h, "stride_w": stride_w,
        "pad_top": pad_top, "pad_left": pad_left,
        **shared,
        "tap_offsets": arrays[1].name,
    }
    taps = int(_taps(out_h, in_h, k_h, stride_h, pad_top).sum()
               * _taps(out_w, in_w, k_w, stride_w, pad_left).sum())
    return KernelCall(layer, "tc_transpose_conv_s8", "tc_transpose_conv_params", params,
                      inputs=[layer.inputs[INPUT]], outputs=[layer.outputs[0]], arrays=arrays,
                      macs=n * taps * out_c * in_c, summary=window_summary(k_h, k_w, layer, stride_mark="x"))
