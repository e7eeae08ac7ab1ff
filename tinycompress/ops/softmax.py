"""SOFTMAX over the last axis: int8 in, int8 out with scale 1/256 and zero point -128."""
from __future__ import annotations

import math

import numpy as np

from ..errors import TinyCompressError
from .fixedpoint import softmax_scaling
from ..ir import Graph, Layer
from . import lowering
from .common import ConstArray, KernelCall, scalar_quant, unsupported
from .gemmlowp import exp_on_negative_values, multiply_by_quantized_multiplier


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """The input's shape, normalized along its last axis."""
    beta = layer.options.get("beta", 1.0)
    if not (math.isfinite(beta) and beta > 0):
        raise TinyCompressError(f"{where}: beta is {beta}; it must be finite and > 0")
    if not t[0].shape:
        raise TinyCompressError(f"{where}: the input is a scalar; softmax needs at least one axis")
    return t[0].shape


def check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    """TFLite scales the input by beta x scale x 2^26 and requires that factor above 1."""
    if t[0].quantized:
        real = float(np.float32(layer.options.get("beta", 1.0))) * float(t[0].scale[0]) * 2 ** (31 - 5)
        if not real > 1:
            raise TinyCompressError(f"{where}: the input scale {t[0].scale[0]:g} is too small: beta x scale "
                                    f"x 2^26 is {real:g}, and TFLite requires more than 1")


@lowering("SOFTMAX", inputs=1, shape=output_shape, check=check, options="SoftmaxOptionsT",
          options_required=True)
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    in_scale, _ = scalar_quant(inp)
    out_scale, out_zp = scalar_quant(out)
    if out_zp != -128 or out_scale != 1 / 256:
        raise unsupported(layer, f"an output quantization of scale {out_scale:g} and zero point {out_zp} "
                                 "(TFLite requires 1/256 and -128)")
    multiplier, left_shift, diff_min = softmax_scaling(layer.options.get("beta", 1.0), in_scale)
    depth = inp.shape[-1]
    exps = ConstArray(f"{layer.name}_exp", "int32_t", exp_table(multiplier, left_shift, diff_min),
                      "exp(beta x scale x -d) in Q0 for d = max - x = 0, 1, ... (softmax.py exp_table)")
    params = {"rows": inp.size // depth, "depth": depth, "input_multiplier": multiplier,
              "input_left_shift": left_shift, "diff_min": diff_min, "exp_table": exps.name,
              "table_size": exps.values.size}
    return KernelCall(layer, "tc_softmax_s8", "tc_softmax_params", params, arrays=[exps],
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]], summary=f"over {depth}")


def exp_table(multiplier: int, left_shift: int, diff_min: int) -> np.ndarray:
    """What TFLite Micro's int8 softmax computes for an input d below the row's largest: exp() of the
    difference scaled by beta x scale into 5 integer bits (MultiplyByQuantizedMultiplierGreaterThanOne),
    gemmlowp's exp_on_negative_values, in Q0: for every d from 0 while -d >= diff_min, at most 256 (int8
    inputs differ by at most 255). The kernel reads it instead of evaluating the series and the barrel
    shifter's products for every element twice (about 150 instructions each)."""
    count = min(256, 1 - diff_min)
    return np.array([exp_on_negative_values(multiply_by_quantized_multiplier(-d, multiplier, left_shift), 5)
                     for d in range(count)], np.int64)
