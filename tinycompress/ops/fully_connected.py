"""FULLY_CONNECTED: int8 input and weights (per tensor or per channel), int32 bias."""
from __future__ import annotations

import numpy as np

from ..errors import TinyCompressError
from .fixedpoint import conv_multipliers, quantize_multiplier
from ..ir import Graph, Layer
from . import lowering
from .common import (ConstArray, KernelCall, check_weighted, dims, int4_kernel, require_rank, scalar_quant,
                     weight_values, weighted_params)


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """Rows of `depth` values against weights (units x depth): (rows, units), or the input's leading
    dimensions with keep_num_dims."""
    inp, weights = t[0], t[1]
    require_rank(weights, 2, where, "weights")
    units, depth = weights.shape
    if inp.size % depth:
        raise TinyCompressError(f"{where}: the input {dims(inp.shape)} does not split into rows of {depth}")
    if layer.options.get("keep_num_dims"):
        if inp.shape[-1] != depth:
            raise TinyCompressError(f"{where}: the input's last dimension is {inp.shape[-1]}, the weights read "
                                    f"{depth}")
        return inp.shape[:-1] + (units,)
    return (inp.size // depth, units)


def check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    check_weighted(layer, graph, t, where, channel_axis=0)


@lowering("FULLY_CONNECTED", inputs=2, shape=output_shape, check=check,
          options="FullyConnectedOptionsT")
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, weights = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    has_bias = len(layer.inputs) > 2 and layer.inputs[2] >= 0
    units, depth = weights.shape
    function, source = int4_kernel(layer, weights, "tc_fully_connected_s8", depth)
    in_scale, _ = scalar_quant(inp)
    out_scale, _ = scalar_quant(graph.tensors[layer.outputs[0]])

    if weights.scale.size > 1 or has_bias:
        multipliers, shifts = conv_multipliers(in_scale, weights.scale, out_scale)
    else:
        # GetQuantizedConvolutionMultipler without bias multiplies the scales in float32 first.
        product = float(np.float32(in_scale) * np.float32(weights.scale[0]))
        m, s = quantize_multiplier(product / float(np.float32(out_scale)))
        multipliers, shifts = [m], [s]

    shared, arrays = weighted_params(layer, graph, multipliers, shifts)
    arrays = [a for a in arrays if not a.name.endswith("_bias")]
    arrays.insert(1, folded_bias(layer, graph, shared.pop("input_offset"), units))
    shared["bias"] = arrays[1].name
    params = {"batches": inp.size // depth, "input_depth": depth, "output_depth": units, **shared,
              "scratch": "NULL",   # DSP path: set by ops/scratch.py once the arena is planned
              "dsp_pairs": 0}      # set by ops/dsp_forms.py
    activation = layer.options.get("fused_activation_function", "NONE")
    return KernelCall(
        layer, function, "tc_fully_connected_params", params, source=source,
        inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
        macs=(inp.size // depth) * depth * units,
        summary=f"{depth} -> {units}" + ("" if activation == "NONE" else f", {activation}"),
        arrays=arrays,
    )


def folded_bias(layer: Layer, graph: Graph, input_offset: int, units: int) -> ConstArray:
    """bias + input_offset * (each row's weight sum), wrapped to int32 as the kernel's sums wrap."""
    weights = weight_values(graph.tensors[layer.inputs[1]]).reshape(units, -1).astype(np.int64)
    has_bias = len(layer.inputs) > 2 and layer.inputs[2] >= 0
    bias = graph.tensors[layer.inputs[2]].data.astype(np.int64) if has_bias else np.zeros(units, np.int64)
    folded = bias + input_offset * weights.sum(axis=1)
    wrapped = (folded + 2 ** 31) % 2 ** 32 - 2 ** 31
    return ConstArray(f"{layer.name}_bias", "int32_t", wrapped,
                      f"[{units}] bias + input offset ({input_offset}) x the row's weight sum")
