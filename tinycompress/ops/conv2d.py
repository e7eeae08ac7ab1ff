"""CONV_2D: int8 NHWC input, per-channel int8 filter [C_out, KH, KW, C_in], int32 bias."""
from __future__ import annotations

from ..fixedpoint import conv_multipliers
from ..ir import Graph, Layer
from . import lowering
from .common import (KernelCall, fused_activation, requant_arrays, same_padding, scalar_quant, unsupported,
                     weight_array, window_summary)


@lowering("CONV_2D")
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, weights = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    bias = graph.tensor(layer.inputs[2]) if len(layer.inputs) > 2 else None
    out = graph.tensors[layer.outputs[0]]
    if weights.dtype != "int8":
        raise unsupported(layer, f"{weights.dtype} weights")
    n, in_h, in_w, in_c = inp.nhwc()
    out_c, k_h, k_w, k_c = weights.shape
    if k_c != in_c:
        raise unsupported(layer, "grouped convolution")
    _, out_h, out_w, _ = out.nhwc()
    o = layer.options
    stride_h, stride_w = o.get("stride_h", 1), o.get("stride_w", 1)
    dil_h, dil_w = o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)
    in_scale, in_zp = scalar_quant(inp)
    out_scale, out_zp = scalar_quant(out)
    requant, arrays = requant_arrays(layer, *conv_multipliers(in_scale, weights.scale, out_scale))
    arrays.insert(0, weight_array(layer, weights))
    params = {
        "input": (n, in_h, in_w, in_c),
        "filter": (out_c, k_h, k_w, k_c),
        "output": (n, out_h, out_w, out_c),
        "stride_h": stride_h, "stride_w": stride_w,
        "dilation_h": dil_h, "dilation_w": dil_w,
        "pad_top": same_padding(o.get("padding"), in_h, k_h, stride_h, dil_h, out_h),
        "pad_left": same_padding(o.get("padding"), in_w, k_w, stride_w, dil_w, out_w),
        "input_offset": -in_zp,
        "output_offset": out_zp,
        "weights": arrays[0].name,
        "bias": "NULL",
        "requant": requant,
        "act": fused_activation(layer, out),
    }
    if bias is not None:
        arrays.insert(1, weight_array(layer, bias, "bias"))
        params["bias"] = arrays[1].name
    return KernelCall(layer, "tc_conv2d_s8", "tc_conv2d_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
                      macs=n * out_h * out_w * out_c * k_h * k_w * in_c,
                      summary=window_summary(k_h, k_w, layer), arrays=arrays)
