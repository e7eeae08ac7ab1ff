"""PRELU: int8 input, constant int8 alpha broadcast over the output's trailing axes (or a single value)."""
from __future__ import annotations

import numpy as np

from ..errors import TinyCompressError
from .fixedpoint import f32, quantize_multiplier
from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, dims, scalar_quant, unsupported, weight_array


def _trailing_shape(shape) -> tuple[int, ...]:
    shape = tuple(shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """The input and alpha broadcast against each other."""
    try:
        return np.broadcast_shapes(t[0].shape, t[1].shape)
    except ValueError:
        raise TinyCompressError(f"{where}: the input {dims(t[0].shape)} and alpha {dims(t[1].shape)} do not "
                                "broadcast") from None


@lowering("PRELU", inputs=2, shape=output_shape)
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, alpha, out = (graph.tensors[i] for i in (layer.inputs[0], layer.inputs[1], layer.outputs[0]))
    if not alpha.is_constant or inp.is_constant:
        raise unsupported(layer, "an alpha computed at run time")
    # alpha repeats every alpha.size elements when its shape, leading ones dropped, ends the output's
    alpha_dims = _trailing_shape(alpha.shape)
    if alpha.size != 1 and (len(alpha_dims) > len(out.shape)
                            or tuple(out.shape[-len(alpha_dims):]) != alpha_dims
                            or tuple(inp.shape) != tuple(out.shape)):
        raise unsupported(layer, f"alpha of shape {list(alpha.shape)} for an input of shape "
                                 f"{list(inp.shape)} (alpha must cover the last axes, e.g. "
                                 "PReLU(shared_axes=[1, 2]))")
    (in_scale, in_zp), (out_scale, out_zp) = scalar_quant(inp), scalar_quant(out)
    alpha_scale, alpha_zp = float(alpha.scale[0]), int(alpha.zero_point[0])  # TFLite Micro reads the first
    identity = quantize_multiplier(float(f32(in_scale)) / float(f32(out_scale)))
    negative = quantize_multiplier(float(f32(in_scale)) * float(f32(alpha_scale)) / float(f32(out_scale)))
    array = weight_array(layer, alpha, "alpha")
    params = {"size": out.size, "alpha_size": alpha.size, "alpha": array.name,
              "input_offset": -in_zp, "alpha_offset": -alpha_zp, "output_offset": out_zp,
              "identity_multiplier": identity[0], "identity_shift": identity[1],
              "alpha_multiplier": negative[0], "alpha_shift": negative[1]}
    return KernelCall(layer, "tc_prelu_s8", "tc_prelu_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]], arrays=[array], overwrites=(0,),
                      summary="x".join(map(str, out.shape)) + f", alpha {'x'.join(map(str, alpha.shape))}")
