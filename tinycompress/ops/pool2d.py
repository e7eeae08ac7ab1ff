"""MAX_POOL_2D and AVERAGE_POOL_2D: int8 NHWC, input and output share their quantization."""
from __future__ import annotations

from ..ir import Graph, Layer
from . import lowering
from .common import (KernelCall, fused_activation, require_rank, scalar_quant, unsupported, window_params,
                     window_shape, window_summary)

KERNELS = {"MAX_POOL_2D": "tc_max_pool2d_s8", "AVERAGE_POOL_2D": "tc_avg_pool2d_s8"}


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """A filter_height x filter_width window per channel: (n, out_h, out_w, channels)."""
    require_rank(t[0], 4, where, "input")
    o = layer.options
    return window_shape(layer, t[0], (o.get("filter_height", 1), o.get("filter_width", 1)), t[0].shape[3],
                        where, dilation=False)


@lowering(*KERNELS, inputs=1, shape=output_shape, options="Pool2DOptionsT", options_required=True)
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    if scalar_quant(inp) != scalar_quant(out):
        raise unsupported(layer, "pooling that changes quantization")
    n, in_h, in_w, c = inp.nhwc()
    _, out_h, out_w, _ = out.nhwc()
    k_h, k_w = layer.options["filter_height"], layer.options["filter_width"]
    params = {
        "input": (n, in_h, in_w, c),
        "output": (n, out_h, out_w, c),
        "filter_h": k_h, "filter_w": k_w,
        **window_params(layer, (in_h, in_w), (out_h, out_w), (k_h, k_w), dilation=False),
        "act": fused_activation(layer, out),
    }
    return KernelCall(layer, KERNELS[layer.op], "tc_pool2d_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
                      summary=window_summary(k_h, k_w, layer))
