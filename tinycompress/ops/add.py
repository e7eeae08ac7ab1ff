"""ADD: two int8 tensors rescaled to a common scale, with NHWC broadcasting."""
from __future__ import annotations

import numpy as np

from ..errors import TinyCompressError
from ..fixedpoint import ADD_LEFT_SHIFT, add_multipliers
from ..ir import Graph, Layer, Tensor
from . import lowering
from .common import KernelCall, dims, fused_activation, scalar_quant, unsupported


def _broadcast_strides(tensor: Tensor, out_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of `tensor` along each output axis; 0 where it is broadcast."""
    dims = tensor.nhwc()
    strides, step = [0] * 4, 1
    for axis in (3, 2, 1, 0):
        if dims[axis] == out_shape[axis]:
            strides[axis] = step
        elif dims[axis] != 1:
            raise ValueError
        step *= dims[axis]
    return tuple(strides)


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """The two inputs broadcast against each other, up to 4-D."""
    rank = max(len(t[0].shape), len(t[1].shape))
    if rank > 4:
        raise TinyCompressError(f"{where}: inputs of rank {rank}; at most 4 is supported")
    try:
        return np.broadcast_shapes(t[0].shape, t[1].shape)
    except ValueError:
        raise TinyCompressError(f"{where}: the inputs {dims(t[0].shape)} and {dims(t[1].shape)} do not "
                                "broadcast") from None


def check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    """TFLite's rescaling of both inputs to a common scale exists: 2 max(input scales) < 2^20 output scale."""
    out = graph.tensors[layer.outputs[0]]
    if t[0].quantized and t[1].quantized and out.quantized:
        real = 2 * max(float(t[0].scale[0]), float(t[1].scale[0])) / (2 ** ADD_LEFT_SHIFT * float(out.scale[0]))
        if not real < 1:
            raise TinyCompressError(f"{where}: the output scale {out.scale[0]:g} is too small for the input "
                                    f"scales {t[0].scale[0]:g} and {t[1].scale[0]:g} (TFLite requires "
                                    f"2 x max(input scales) < 2^{ADD_LEFT_SHIFT} x output scale)")


@lowering("ADD", inputs=2, shape=output_shape, check=check, options="AddOptionsT")
def lower(layer: Layer, graph: Graph) -> KernelCall:
    a, b = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    out = graph.tensors[layer.outputs[0]]
    if a.is_constant or b.is_constant:
        raise unsupported(layer, "adding a constant tensor")
    (s1, z1), (s2, z2), (so, zo) = scalar_quant(a), scalar_quant(b), scalar_quant(out)
    out_dims = out.nhwc()
    try:
        strides1, strides2 = _broadcast_strides(a, out_dims), _broadcast_strides(b, out_dims)
    except ValueError:
        raise unsupported(layer, f"broadcasting {a.shape} with {b.shape}") from None
    (m1, sh1), (m2, sh2), (mo, sho) = add_multipliers(s1, s2, so)
    params = {
        "output": out_dims,
        "input1_strides": strides1,
        "input2_strides": strides2,
        "left_shift": ADD_LEFT_SHIFT,
        "input1_offset": -z1, "input1_multiplier": m1, "input1_shift": sh1,
        "input2_offset": -z2, "input2_multiplier": m2, "input2_shift": sh2,
        "output_offset": zo, "output_multiplier": mo, "output_shift": sho,
        "act": fused_activation(layer, out),
    }
    activation = layer.options.get("fused_activation_function", "NONE")
    unbroadcast = tuple(i for i, t in enumerate((a, b)) if t.nhwc() == out_dims)  # read at the output's index
    return KernelCall(layer, "tc_add_s8", "tc_add_params", params,
                      inputs=[layer.inputs[0], layer.inputs[1]], outputs=[layer.outputs[0]], overwrites=unbroadcast,
                      summary="x".join(map(str, out.shape)) + ("" if activation == "NONE" else f", {activation}"))
