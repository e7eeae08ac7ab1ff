"""gemmlowp's fixed-point arithmetic on Python ints, as TFLite Micro's reference kernels use it.

Only the host runs this: the unary int8 operators (ops/unary.py) evaluate it for all 256 inputs
at compile time and put the results in a lookup table. A raw value r of a "Q<b>" number with
b integer bits stands for r / 2^(31 - b). C++ integer division truncates toward zero, which
`trunc_div` reproduces; every other step is exact in Python's unbounded ints.
"""
from __future__ import annotations

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def srdhm(a: int, b: int, bits: int = 32) -> int:
    """SaturatingRoundingDoublingHighMul for int32 (or int16 with bits=16): round(a * b / 2^(bits-1))."""
    lo = -(1 << (bits - 1))
    if a == lo and b == lo:
        return -lo - 1
    ab = a * b
    nudge = (1 << (bits - 2)) if ab >= 0 else 1 - (1 << (bits - 2))
    return trunc_div(ab + nudge, 1 << (bits - 1))


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """x / 2^exponent, ties away from zero."""
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def saturating_left_shift(x: int, exponent: int, lo: int = INT32_MIN, hi: int = INT32_MAX) -> int:
    return min(max(x * (1 << exponent), lo), hi)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier: shift left, high multiply, rounding shift right."""
    left, right = max(shift, 0), max(-shift, 0)
    return rounding_divide_by_pot(srdhm(x * (1 << left), multiplier), right)


def _wrap32(x: int) -> int:
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def _mul(a: int, b: int) -> int:
    """The product of two fixed-point raws; the result has the sum of their integer bits."""
    return srdhm(a, b)


ONE_Q0 = INT32_MAX


def _exp_on_quarter_interval(a: int) -> int:
    """exp(a) for a in [-1/4, 0), Q0 in and out: a Taylor series around -1/8."""
    constant_term, one_third = 1895147668, 715827883     # exp(-1/8), 1/3 in Q0
    x = a + (1 << 28)                                    # a + 1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(_mul(x4_over_4 + x3, one_third) + x2, 1)  # x^4/24 + x^3/6 + x^2/2
    return constant_term + _mul(constant_term, x + poly)


# exp(-2^k) in Q0, for the bits of the argument that the quarter interval leaves over.
_EXP_BARREL = {-2: 1672461947, -1: 1302514674, 0: 790015084, 1: 290630308, 2: 39332535, 3: 720401, 4: 242}


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """exp(a) for a <= 0 given with `integer_bits` integer bits; Q0 result."""
    fractional_bits = 31 - integer_bits
    quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    result = _exp_on_quarter_interval(
        saturating_left_shift(a_mod_quarter_minus_quarter, integer_bits))
    remainder = a_mod_quarter_minus_quarter - a
    for exponent, multiplier in _EXP_BARREL.items():
        if integer_bits > exponent and remainder & (1 << (fractional_bits + exponent)):
            result = _mul(result, multiplier)
    if integer_bits > 5 and a < -(1 << (fractional_bits + 5)):
        result = 0
    return ONE_Q0 if a == 0 else result


def _rounding_half_sum(a: int, b: int) -> int:
    s = a + b
    return trunc_div(s + (1 if s >= 0 else -1), 2)


def _two_over_one_plus_x(a: int) -> int:
    """2 / (1 + a) in Q2 for a in [0, 1] (Q0): Newton-Raphson on the half denominator, three steps."""
    half_denominator = _rounding_half_sum(a, ONE_Q0)
    x = 1515870810 + _mul(half_denominator, -1010580540)   # 48/17 - 32/17 * d, in Q2
    one_q2 = 1 << 29
    for _ in range(3):
        one_minus_dx = one_q2 - _mul(half_denominator, x)
        x = x + saturating_left_shift(_mul(x, one_minus_dx), 2)
    return x


def logistic(a: int, integer_bits: int) -> int:
    """gemmlowp::logistic: Q0 result of 1 / (1 + exp(-a))."""
    if a == 0:
        return 1 << 30
    positive = a > 0
    e = exp_on_negative_values(_wrap32(-abs(a)), integer_bits)
    result = saturating_left_shift(_two_over_one_plus_x(e), 1)   # Q2 raw read as Q1, then to Q0
    return result if positive else ONE_Q0 - result


def tanh(a: int, integer_bits: int) -> int:
    """gemmlowp::tanh: Q0 result; exp(2n) is exp_on_negative_values of n read with one more integer bit."""
    if a == 0:
        return 0
    n = a if a < 0 else _wrap32(-a)
    e = exp_on_negative_values(n, integer_bits + 1)
    t = saturating_left_shift(_two_over_one_plus_x(e) - (1 << 29), 2)   # (1 - e) / (1 + e)
    return -t if a < 0 else t


def _rescale_from(raw: int, from_bits: int, to_bits: int) -> int:
    """gemmlowp's Rescale: SaturatingRoundingMultiplyByPOT<from - to> of the raw value."""
    exponent = from_bits - to_bits
    return saturating_left_shift(raw, exponent) if exponent >= 0 else rounding_divide_by_pot(raw, -exponent)


def inv_sqrt_multiplier_exp(value: int, reverse_shift: int = -1) -> tuple[int, int]:
    """TFLite's GetInvSqrtQuantizedMultiplierExp: 1/sqrt(value) as (Q0 multiplier, shift) by five Newton steps
    in Q3 (3 integer bits). int32 raws wrap as C's: the F6 difference below is a plain int32 subtraction."""
    if value <= 1:
        return INT32_MAX, 0
    shift = 11
    while value >= 1 << 29:
        value //= 4
        shift += 1
    left_shift_bit_pairs = (31 - value.bit_length()) // 2 - 1   # (CountLeadingZeros - 1) in pairs, less one
    shift -= left_shift_bit_pairs
    value <<= 2 * left_shift_bit_pairs
    x_in = value >> 1                                    # Q3
    half_in = rounding_divide_by_pot(x_in, 1)
    half_three = (1 << 28) + (1 << 27)                   # 1.5 in Q3
    x = 1 << 28                                          # 1.0 in Q3
    for _ in range(5):
        x3 = _rescale_from(srdhm(srdhm(x, x), x), 9, 3)  # Q3 * Q3 * Q3 = Q9, back to Q3
        x = _rescale_from(_wrap32(srdhm(half_three, x) - srdhm(half_in, x3)), 6, 3)
    x = srdhm(x, 1518500250)                             # times sqrt(2)/2 in Q0: stays Q3
    if shift < 0:
        x = _wrap32(x << -shift)
        shift = 0
    return x, shift * reverse_shift
