"""Host-side fixed-point parameters, computed exactly as TFLite Micro computes them.

Bit-exactness depends on the float arithmetic too: TFLite stores scales as
float32 and mixes float32 and double in fixed orders, so each helper states
which precision every step uses. Python floats are doubles; np.float32 is float.
"""
from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def tflite_round(x: float) -> float:
    """std::round: halves away from zero (Python's round() goes to even). x - floor(x) is exact."""
    magnitude = abs(x)
    whole = math.floor(magnitude)
    if magnitude - whole >= 0.5:
        whole += 1
    return math.copysign(whole, x)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = significand * 2^(shift - 31), significand in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(tflite_round(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: same result, the shift is <= 0."""
    assert 0.0 < real < 1.0, real
    return quantize_multiplier(real)


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplierGreaterThanOne: same result, the shift is >= 0."""
    assert real > 1.0, real
    return quantize_multiplier(real)


def f32(x) -> np.float32:
    return np.float32(x)


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8: Quantize() divides in float32 and rounds."""
    def quantize(value: float) -> int:
        return zero_point + int(tflite_round(float(f32(value) / f32(scale))))

    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation == "RELU":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    raise ValueError(f"fused activation {activation} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1)")


def conv_multipliers(input_scale, filter_scales, output_scale) -> tuple[list[int], list[int]]:
    """Per-channel requantization as PopulateConvolutionQuantizationParams and the
    per-channel FULLY_CONNECTED path: double(in) * double(filter[c]) / double(out)."""
    multipliers, shifts = [], []
    for filter_scale in np.asarray(filter_scales, np.float32).reshape(-1):
        real = float(f32(input_scale)) * float(filter_scale) / float(f32(output_scale))
        m, s = quantize_multiplier(real)
        multipliers.append(m)
        shifts.append(s)
    return multipliers, shifts


def softmax_scaling(beta: float, input_scale: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling with 5 integer bits, plus CalculateInputRadius:
    (input_multiplier, input_left_shift, diff_min)."""
    integer_bits = 5
    max_real = float((1 << 31) - 1)
    real = min(float(f32(beta)) * float(f32(input_scale)) * (1 << (31 - integer_bits)), max_real)
    multiplier, left_shift = quantize_multiplier_greater_than_one(real)
    radius = math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift))
    return multiplier, left_shift, -radius


ADD_LEFT_SHIFT = 20  # headroom TFLite gives int8 ADD operands before rescaling


def add_multipliers(scale1: float, scale2: float, out_scale: float) -> list[tuple[int, int]]:
    """ADD's three (multiplier, shift) pairs, from doubles as TFLite's add_common computes them."""
    twice_max = 2 * float(max(f32(scale1), f32(scale2)))
    reals = [float(f32(scale1)) / twice_max, float(f32(scale2)) / twice_max,
             twice_max / ((1 << ADD_LEFT_SHIFT) * float(f32(out_scale)))]
    return [quantize_multiplier_smaller_than_one_exp(r) for r in reals]


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """The requantization of a MEAN's sum, with 1/count folded in as TFLite Micro folds it."""
    multiplier, shift = quantize_multiplier(float(f32(input_scale)) / float(f32(output_scale)))
    fold = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << fold) // count, shift - fold


def requantize(acc, multiplier, shift) -> np.ndarray:
    """TFLite Micro's MultiplyByQuantizedMultiplier over arrays: a saturating rounding doubling high
    multiply, then a rounding right shift (gemmlowp's double rounding), in int64 so nothing overflows."""
    acc, multiplier, shift = (np.asarray(v, np.int64) for v in (acc, multiplier, shift))
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    high = ((acc << left) * multiplier + (1 << 30)) >> 31   # one arithmetic shift equals gemmlowp's nudge
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)
