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


# ---- the packed per-channel form of INT4 convolutions (tc_requant in firmware/include/tc_types.h) ----

PACKED_FRACTION_BITS = 17      # TC_PACKED_FRACTION_BITS: the multiplier's bits 13..29 (30 is 1, 0..12 are 0)
PACKED_SHIFT_BITS = 2          # TC_PACKED_SHIFT_BITS: the shift, less the layer's smallest
PACKED_LOW_BITS = 30 - PACKED_FRACTION_BITS
PACKED_BIAS_SHIFT = PACKED_FRACTION_BITS + PACKED_SHIFT_BITS    # the bias: the word's bits 19..31, signed
PACKED_SCALE_SEARCH = (1 << 12, 1 << 20)   # float32 steps either side of the wanted scale, widened


def packable(multiplier: int) -> bool:
    """Whether a significand has the packed form: bit 30 set, bits 0..12 clear."""
    return (1 << 30) <= multiplier < (1 << 31) and multiplier % (1 << PACKED_LOW_BITS) == 0


def packable_scale(input_scale, output_scale, wanted) -> np.float32:
    """The float32 weight scale nearest `wanted` whose requantization (conv_multipliers, as TFLite Micro
    derives it) has the packed form; `wanted` itself where none lies within PACKED_SCALE_SEARCH[1] steps.

    The multiplier's low 13 bits come from float32 scales in double arithmetic, so no formula gives such a
    scale: one float32 step moves the significand by 64 to 256, and about one multiple of 2^13 in 128 has
    a scale landing on it. The search tries every float32 within 2^12 steps of `wanted` (0.02 to 0.05 %),
    then widens fourfold until it finds one, up to 2^20 steps (6 to 12 %); over random scales the nearest
    hit was within 0.02 % for half of them, 0.6 % for 99 in 100. Every hit is checked by conv_multipliers
    itself."""
    wanted = np.float32(wanted)
    if not (np.isfinite(wanted) and wanted > 0):
        return wanted
    reach, widest = PACKED_SCALE_SEARCH
    while reach <= widest:
        steps = np.arange(-reach, reach + 1, dtype=np.int64)
        bits = np.int64(wanted.view(np.int32)) + steps
        bits = bits[(bits > 0) & (bits < 0x7F800000)]
        scales = bits.astype(np.int32).view(np.float32)
        real = float(f32(input_scale)) * scales.astype(np.float64) / float(f32(output_scale))
        fraction, _ = np.frexp(real)
        rounded = np.floor(fraction * float(1 << 31) + 0.5)     # exact product; real > 0: std::round
        hits = np.nonzero(np.mod(rounded, 1 << PACKED_LOW_BITS) == 0)[0]
        for i in hits[np.argsort(np.abs(scales[hits].astype(np.float64) - float(wanted)), kind="stable")]:
            multipliers, _ = conv_multipliers(input_scale, [scales[i]], output_scale)
            if packable(multipliers[0]):
                return scales[i]
        reach *= 4
    return wanted


def pack_channels(multipliers, shifts, bias) -> tuple[np.ndarray, int] | None:
    """The packed form's words and the shift of code 0, or None where a channel does not fit it: a
    significand not packable, shifts spanning more than 2^PACKED_SHIFT_BITS values, a bias past 13 bits."""
    multipliers, shifts = np.asarray(multipliers, np.int64), np.asarray(shifts, np.int64)
    bias = np.zeros(multipliers.size, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
    if multipliers.size < 2 or bias.size != multipliers.size or not all(map(packable, multipliers.tolist())):
        return None
    base = int(shifts.min())
    limit = 1 << (31 - PACKED_BIAS_SHIFT)
    if shifts.max() - base >= (1 << PACKED_SHIFT_BITS) or bias.min() < -limit or bias.max() >= limit:
        return None
    fraction = (multipliers >> PACKED_LOW_BITS) & ((1 << PACKED_FRACTION_BITS) - 1)
    words = (bias << PACKED_BIAS_SHIFT) | ((shifts - base) << PACKED_FRACTION_BITS) | fraction
    return words, base


def unpack_channels(words, base: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inverse of pack_channels, as tc_requant_multiplier, tc_requant_shift and tc_channel_bias read it:
    (multipliers, shifts, bias)."""
    words = np.asarray(words, np.int64)
    fraction = words & ((1 << PACKED_FRACTION_BITS) - 1)
    shifts = base + ((words >> PACKED_FRACTION_BITS) & ((1 << PACKED_SHIFT_BITS) - 1))
    return (1 << 30) | (fraction << PACKED_LOW_BITS), shifts, words >> PACKED_BIAS_SHIFT
