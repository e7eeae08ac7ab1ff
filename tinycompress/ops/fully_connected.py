"""FULLY_CONNECTED: int8 input and weights (per tensor or per channel), int32 bias."""
from __future__ import annotations

import numpy as np

from ..fixedpoint import conv_multipliers, quantize_multiplier
from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, fused_activation, requant_arrays, scalar_quant, unsupported, weight_array


@lowering("FULLY_CONNECTED")
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, weights = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    bias = graph.tensor(layer.inputs[2]) if len(layer.inputs) > 2 else None
    out = graph.tensors[layer.outputs[0]]
    if weights.dtype != "int8":
        raise unsupported(layer, f"{weights.dtype} weights")
    units, depth = weights.shape
    in_scale, in_zp = scalar_quant(inp)
    out_scale, out_zp = scalar_quant(out)

    if weights.scale.size > 1:
        multipliers, shifts = conv_multipliers(in_scale, weights.scale, out_scale)
    elif bias is not None:
        multipliers, shifts = conv_multipliers(in_scale, weights.scale[:1], out_scale)
    else:
        # GetQuantizedConvolutionMultipler without bias multiplies the scales in float32 first.
        product = float(np.float32(in_scale) * np.float32(weights.scale[0]))
        m, s = quantize_multiplier(product / float(np.float32(out_scale)))
        multipliers, shifts = [m], [s]

    requant, arrays = requant_arrays(layer, multipliers, shifts)
    arrays.insert(0, weight_array(layer, weights))
    params = {
        "batches": inp.size // depth,
        "input_depth": depth,
        "output_depth": units,
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
    activation = layer.options.get("fused_activation_function", "NONE")
    return KernelCall(
        layer, "tc_fully_connected_s8", "tc_fully_connected_params", params,
        inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
        macs=(inp.size // depth) * depth * units,
        summary=f"{depth} -> {units}" + ("" if activation == "NONE" else f", {activation}"),
        arrays=arrays,
    )
