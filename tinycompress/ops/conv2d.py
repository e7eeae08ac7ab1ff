"""CONV_2D: int8 NHWC input, per-channel int8 filter [C_out, KH, KW, C_in], int32 bias."""
from __future__ import annotations

from ..fixedpoint import conv_multipliers
from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, scalar_quant, unsupported, weighted_params, window_params, window_summary


@lowering("CONV_2D")
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, weights = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    out = graph.tensors[layer.outputs[0]]
    if weights.dtype != "int8":
        raise unsupported(layer, f"{weights.dtype} weights")
    n, in_h, in_w, in_c = inp.nhwc()
    out_c, k_h, k_w, k_c = weights.shape
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
    return KernelCall(layer, "tc_conv2d_s8", "tc_conv2d_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
                      macs=n * out_h * out_w * out_c * k_h * k_w * in_c,
                      summary=window_summary(k_h, k_w, layer), arrays=arrays)
