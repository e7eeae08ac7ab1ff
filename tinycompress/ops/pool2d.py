"""MAX_POOL_2D and AVERAGE_POOL_2D: int8 NHWC, input and output share their quantization."""
from __future__ import annotations

from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, fused_activation, same_padding, scalar_quant, unsupported, window_summary

KERNELS = {"MAX_POOL_2D": "tc_max_pool2d_s8", "AVERAGE_POOL_2D": "tc_avg_pool2d_s8"}


@lowering(*KERNELS)
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    if scalar_quant(inp) != scalar_quant(out):
        raise unsupported(layer, "pooling that changes quantization")
    n, in_h, in_w, c = inp.nhwc()
    _, out_h, out_w, _ = out.nhwc()
    o = layer.options
    k_h, k_w = o["filter_height"], o["filter_width"]
    stride_h, stride_w = o.get("stride_h", 1), o.get("stride_w", 1)
    params = {
        "input": (n, in_h, in_w, c),
        "output": (n, out_h, out_w, c),
        "filter_h": k_h, "filter_w": k_w,
        "stride_h": stride_h, "stride_w": stride_w,
        "pad_top": same_padding(o.get("padding"), in_h, k_h, stride_h, 1, out_h),
        "pad_left": same_padding(o.get("padding"), in_w, k_w, stride_w, 1, out_w),
        "act": fused_activation(layer, out),
    }
    return KernelCall(layer, KERNELS[layer.op], "tc_pool2d_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
                      summary=window_summary(k_h, k_w, layer))
