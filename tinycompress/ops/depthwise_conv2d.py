"""DEPTHWISE_CONV_2D: int8 NHWC input, filter [1, KH, KW, C_in * depth_multiplier], int32 bias."""
from __future__ import annotations

from ..errors import TinyCompressError
from .fixedpoint import conv_multipliers
from ..ir import Graph, Layer
from . import lowering
from .common import (KernelCall, check_weighted, dims, int4_kernel, require_rank, scalar_quant, unsupported,
                     weighted_params, window_params, window_shape, window_summary)


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """NHWC input, 1HWC weights of input channels x depth multiplier: (n, out_h, out_w, those channels)."""
    inp, weights = t[0], t[1]
    require_rank(inp, 4, where, "input")
    require_rank(weights, 4, where, "weights")
    one, kh, kw, channels = weights.shape
    multiplier = layer.options.get("depth_multiplier", 1) or 1
    if one != 1 or channels != inp.shape[3] * multiplier:
        raise TinyCompressError(f"{where}: the weights {dims(weights.shape)} do not match {inp.shape[3]} input "
                                f"channels times depth multiplier {multiplier}")
    return window_shape(layer, inp, (kh, kw), channels, where)


def check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    check_weighted(layer, graph, t, where, channel_axis=3, bias_required=True)


@lowering("DEPTHWISE_CONV_2D", inputs=2, shape=output_shape, check=check, options="DepthwiseConv2DOptionsT",
          options_required=True)
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, weights = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    out = graph.tensors[layer.outputs[0]]
    n, in_h, in_w, in_c = inp.nhwc()
    _, k_h, k_w, out_c = weights.shape
    function, source = int4_kernel(layer, weights, "tc_depthwise_conv2d_s8", k_h * k_w)
    _, out_h, out_w, _ = out.nhwc()
    if out_c % in_c:
        raise unsupported(layer, f"{out_c} output channels for {in_c} input channels")
    multipliers = conv_multipliers(scalar_quant(inp)[0], weights.scale, scalar_quant(out)[0])
    shared, arrays = weighted_params(layer, graph, *multipliers)
    params = {
        "input": (n, in_h, in_w, in_c),
        "filter": (1, k_h, k_w, out_c),
        "output": (n, out_h, out_w, out_c),
        "depth_multiplier": out_c // in_c,
        **window_params(layer, (in_h, in_w), (out_h, out_w), (k_h, k_w)),
        **shared,
    }
    params["scratch"] = "NULL"   # DSP path: set by ops/scratch.py once the arena is planned
    summary = window_summary(k_h, k_w, layer)
    if out_c != in_c:
        summary += f", multiplier {out_c // in_c}"
    return KernelCall(layer, function, "tc_depthwise_conv2d_params", params, source=source,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
                      macs=n * out_h * out_w * out_c * k_h * k_w,
                      summary=summary, arrays=arrays)
