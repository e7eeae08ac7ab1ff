"""The element-wise int8 operators: LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RELU, RELU6, RELU_N1_TO_1, RSQRT.

An int8 unary operator has only 256 possible inputs, so its whole result fits in a 256-byte table in
flash. Each table here is computed by running TFLite Micro's reference arithmetic (the int8 kernels
and the parameters their Prepare derives from the scales, float32 where TFLite uses float) on every
input, so the kernel is bit-exact by construction, and one load per element is cheaper than any of
these kernels' arithmetic, even RELU's requantization (a 64-bit multiply, shifts and a clamp).
TFLite Micro has no RELU_N1_TO_1: its table follows TFLite's interpreter.
"""
from __future__ import annotations

import math

import numpy as np

from . import gemmlowp as g
from .fixedpoint import INT8_MAX, INT8_MIN, f32, quantize_multiplier, tflite_round
from ..ir import Graph, Layer
from . import lowering
from .common import ConstArray, KernelCall, same_shape, scalar_quant, unsupported

INPUTS = np.arange(INT8_MIN, INT8_MAX + 1)


def _clamp8(x: int) -> int:
    return min(max(x, INT8_MIN), INT8_MAX)


def _sigmoid_input_scaling(in_scale: float) -> tuple[int, int, int]:
    """LOGISTIC's and TANH's Prepare: the input rescaled to Q4 (4 integer bits); beyond the radius
    the result saturates. (multiplier, left shift, radius)."""
    q, left_shift = math.frexp(float(f32(in_scale)) * (1 << 27))
    multiplier = int(tflite_round(q * (1 << 31)))
    radius = math.floor(15.0 * (1 << 27) / 2.0 ** left_shift)
    return multiplier, left_shift, radius


def _sigmoid_table(in_scale: float, in_zp: int, fn, out_fraction_bits: int, out_zp: int) -> list[int]:
    multiplier, left_shift, radius = _sigmoid_input_scaling(in_scale)
    table = []
    for q in INPUTS:
        x = int(q) - in_zp
        if x <= -radius:
            table.append(INT8_MIN)
        elif x >= radius:
            table.append(INT8_MAX)
        else:
            y = fn(g.multiply_by_quantized_multiplier(x, multiplier, left_shift), 4)   # Q0
            table.append(_clamp8(g.rounding_divide_by_pot(y, 31 - out_fraction_bits) + out_zp))
    return table


def _logistic(layer, in_q, out_q):
    if out_q[1] != INT8_MIN:
        raise unsupported(layer, f"an output zero point of {out_q[1]} (TFLite requires -128)")
    return _sigmoid_table(*in_q, g.logistic, 8, INT8_MIN)     # output scale 1/256


def _tanh(layer, in_q, out_q):
    return _sigmoid_table(*in_q, g.tanh, 7, 0)                # output scale 1/128, zero point 0


def _int16_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier (rounded to 16 bits, saturating)."""
    m32, exponent = quantize_multiplier(real)
    return (g.INT16_MAX if m32 >= g.INT32_MAX - (1 << 15) else (m32 + (1 << 15)) >> 16), exponent


def _hard_swish(layer, in_q, out_q):
    """x * relu6(x + 3) / 6 in 16-bit fixed point, as reference_ops::HardSwish: the input on a
    'hires' scale (x 128), a 'reluish' factor in [0, 1] from x on the scale where 3.0 is 2^15, and
    their product shifted down to the output scale."""
    (in_scale, in_zp), (out_scale, out_zp) = in_q, out_q
    hires_scale = f32(1 / 128) * f32(in_scale)
    out_m, out_exp = _int16_multiplier(float(hires_scale / f32(out_scale)))
    relu_m, relu_exp = _int16_multiplier(float(hires_scale / (f32(3) / f32(32768))))
    if out_exp > 0:
        raise unsupported(layer, f"an output scale {out_scale:g} this small against the input's {in_scale:g}")
    lo, hi = g.INT16_MIN, g.INT16_MAX
    table = []
    for q in INPUTS:
        hires = (int(q) - in_zp) * 128
        preshift_out = g.srdhm(hires, out_m, 16)
        reluish = hires
        if relu_exp > 0:
            reluish = g.saturating_left_shift(reluish, relu_exp - 1, lo, hi)
        reluish = g.srdhm(reluish, relu_m, 16)
        if relu_exp > 0:
            reluish = g.saturating_left_shift(reluish, 1, lo, hi)
        elif relu_exp < 0:
            reluish = g.rounding_divide_by_pot(reluish, -relu_exp)
        reluish = (reluish + (1 << 15)) >> 1                           # [-1, 1] -> [0, 1]
        product = hi if reluish == preshift_out == lo else g.trunc_div(reluish * preshift_out, 1 << 15)
        out = g.rounding_divide_by_pot(product, -out_exp) + out_zp
        table.append(_clamp8(out))
    return table


def _leaky_relu(layer, in_q, out_q):
    """Two requantizations, identity for x >= 0 and alpha for x < 0, from float32 scale ratios."""
    (in_scale, in_zp), (out_scale, out_zp) = in_q, out_q
    alpha = f32(layer.options.get("alpha", 0.2))
    identity = quantize_multiplier(float(f32(in_scale) / f32(out_scale)))
    negative = quantize_multiplier(float(f32(in_scale) * alpha / f32(out_scale)))
    return [_clamp8(out_zp + g.multiply_by_quantized_multiplier(x, *(identity if x >= 0 else negative)))
            for x in (int(q) - in_zp for q in INPUTS)]


def _relu_range(low: float, high: float):
    """ReluQuantized (TFLite's QuantizedReluX for RELU_N1_TO_1): requantize to the output scale, then
    clamp at the output's quantized low and high (roundf of a float32 quotient)."""
    def relu(layer, in_q, out_q):
        (in_scale, in_zp), (out_scale, out_zp) = in_q, out_q
        m, shift = quantize_multiplier(float(f32(in_scale)) / float(f32(out_scale)))
        def quantized(value: float) -> int:
            return _clamp8(out_zp + int(tflite_round(float(f32(value) / f32(out_scale)))))
        lo, hi = quantized(low), INT8_MAX if high == math.inf else quantized(high)
        return [min(max(lo, out_zp + g.multiply_by_quantized_multiplier(int(q) - in_zp, m, shift)), hi)
                for q in INPUTS]
    return relu


def _relu6(layer, in_q, out_q):
    """Relu6Quantized clamps the input between its own zero and six; it does not rescale."""
    in_scale, in_zp = in_q
    six = _clamp8(int(tflite_round(float(f32(6) / f32(in_scale)))) + in_zp)
    return [min(max(int(q), in_zp), six) for q in INPUTS]


def _rsqrt(layer, in_q, out_q):
    """RSQRT as TFLite Micro's elementwise.cc: 1/sqrt of the input's integer value as a Q0 multiplier and
    shift (gemmlowp.inv_sqrt_multiplier_exp), applied to 1 at 2^20, then requantized by 1 / (sqrt(input scale)
    x output scale) (float32 sqrt and product, double quotient) back from 2^20. An input at the zero point
    gives 127. TFLite Micro stops with an error on an input below its zero point (a negative number); the
    table gives 127 there too."""
    (in_scale, in_zp), (out_scale, out_zp) = in_q, out_q
    multiplier, shift = quantize_multiplier(1.0 / float(np.sqrt(f32(in_scale)) * f32(out_scale)))
    kshift = 20                                          # keeps 1/sqrt(value) an integer

    # MultiplyByQuantizedMultiplier, x << s wrapping as C's
    def requantize(x: int, m: int, s: int) -> int:
        left, right = max(s, 0), max(-s, 0)
        return g.rounding_divide_by_pot(g.srdhm(g._wrap32(x << left), m), right)

    table = []
    for q in INPUTS:
        value = int(q) - in_zp
        if value <= 0:
            table.append(INT8_MAX)
            continue
        inv_m, inv_s = g.inv_sqrt_multiplier_exp(value)
        data = requantize(1, inv_m, inv_s + kshift)
        table.append(_clamp8(requantize(data, multiplier, shift - kshift) + out_zp))
    return table


TABLES = {"LOGISTIC": _logistic, "TANH": _tanh, "HARD_SWISH": _hard_swish, "LEAKY_RELU": _leaky_relu,
          "RELU": _relu_range(0.0, math.inf), "RELU6": _relu6,
          "RELU_N1_TO_1": _relu_range(-1.0, 1.0),   # TFLite's arithmetic: TFLite Micro has no RELU_N1_TO_1
          "RSQRT": _rsqrt}


def table(layer: Layer, graph: Graph) -> np.ndarray:
    """The layer's 256 int8 results, indexed by input + 128."""
    in_q = scalar_quant(graph.tensors[layer.inputs[0]])
    out_q = scalar_quant(graph.tensors[layer.outputs[0]])
    return np.array(TABLES[layer.op](layer, in_q, out_q), np.int64)


@lowering(*TABLES, inputs=1, shape=same_shape, options={"LEAKY_RELU": "LeakyReluOptionsT"})
def lower(layer: Layer, graph: Graph) -> KernelCall:
    out = graph.tensors[layer.outputs[0]]
    lut = ConstArray(f"{layer.name}_table", "int8_t", table(layer, graph), "results for inputs -128..127")
    return KernelCall(layer, "tc_lut_s8", "tc_lut_params", {"size": out.size, "table": lut.name},
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]], arrays=[lut],
                      summary="x".join(map(str, out.shape)) + ", 256-byte table", overwrites=(0,))
