"""CONV_2D: int8 NHWC input, per-channel int8 filter [C_out, KH, KW, C_in], int32 bias."""
from __future__ import annotations

from ..errors import TinyCompressError
from .fixedpoint import conv_multipliers
from ..ir import Graph, Layer
from . import lowering
from .common import (KernelCall, check_weighted, int4_kernel, require_rank, scalar_quant, unsupported,
                     weighted_params, window_params, window_shape, window_summary)


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """NHWC input, OHWI weights: (n, out_h, out_w, output channels)."""
    inp, weights = t[0], t[1]
    require_rank(inp, 4, where, "input")
    require_rank(weights, 4, where, "weights")
    channels, kh, kw, depth = weights.shape
    if depth != inp.shape[3]:
        raise TinyCompressError(f"{where}: the weights read {depth} channels but the input has {inp.shape[3]}")
    return window_shape(layer, inp, (kh, kw), channels, where)


def check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    check_weighted(layer, graph, t, where, channel_axis=0)


@lowering("CONV_2D", inputs=2, shape=output_shape, check=check, options="Conv2DOptionsT",
          options_required=True)
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, weights = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    out = graph.tensors[layer.outputs[0]]
    n, in_h, in_w, in_c = inp.nhwc()
    out_c, k_h, k_w, k_c = weights.shape
    function, source = int4_kernel(layer, weights, "tc_conv2d_s8", k_h * k_w * k_c)
    if k_c != in_c:
        raise unsupported(layer, "grouped convolution")
    _, out_h, out_w, _ = out.nhwc()
    multipliers = conv_multipliers(scalar_quant(inp)[0], weights.scale, scalar_quant(out)[0])
    shared, arrays = weighted_params(layer, graph, *multipliers)
    params = {
        "input": (n, in_h, in_w, in_c),
        "filter": (out_c, k_h, k_w, k_c),
        "output": (n, out_h, out_w, out_c),
        **window_params(layer, (in_h, in_w), (out_h, out_w), (k_h, k_w)),
        **shared,
    }
    params["scratch"] = "NULL"   # DSP path: set by ops/scratch.py once the arena is planned
    return KernelCall(layer, function, "tc_conv2d_params", params, source=source,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
                      macs=n * out_h * out_w * out_c * k_h * k_w * in_c,
                      summary=window_summary(k_h, k_w, layer), arrays=arrays)
