/*
 * tinycompress runtime: fixed-point arithmetic shared by the int8 kernels.
 *
 * These reproduce TFLite Micro's requantization bit for bit: the gemmlowp
 * "double rounding" scheme (a saturating rounding doubling high multiply
 * followed by a rounding right shift), not LiteRT's single-rounding variant.
 */
#ifndef TC_FIXEDPOINT_H
#define TC_FIXEDPOINT_H

#include <stdint.h>

#include "tc_types.h"

#define TC_INT8_MIN (-128)
#define TC_INT8_MAX 127

static inline int32_t tc_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static inline int32_t tc_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t tc_clamp_i32(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* round(a * b / 2^31) with ties away from zero; saturates INT32_MIN * INT32_MIN.
 * gemmlowp writes it as (ab + nudge) / 2^31 with a sign-dependent nudge and a division that
 * truncates toward zero; for every ab both cases equal one arithmetic shift of ab + 2^30,
 * which is SMULL, a 64-bit add and two shifts instead of a 64-bit division. */
static inline int32_t tc_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + (1LL << 30)) >> 31);
}

/* x / 2^exponent rounded to nearest, ties away from zero (exponent in [0, 31]). */
static inline int32_t tc_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier: x * multiplier * 2^shift, as the two roundings above. */
static inline int32_t tc_requantize_reference(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    return tc_rounding_divide_by_pot(
        tc_sat_rounding_doubling_high_mul((int32_t)((uint32_t)x << left_shift), multiplier), right_shift);
}

/* The same value. With a right shift n >= 1 (nearly every layer) both roundings fold into one
 * 64-bit add before a single shift, because floor((floor(a / 2^31) + c) / 2^n) equals
 * floor((a + c * 2^31) / 2^(31 + n)):
 *   result = floor((x * multiplier + 2^30 - s * 2^31 + 2^(n-1) * 2^31) / 2^(31 + n)),
 * where s = 1 for a negative product (ties away from zero). s may be taken from the sign of x:
 * where x < 0 but the product rounds to 0, both choices give 0. The multiplier is never
 * INT32_MIN (it lies in [2^30, 2^31) or is 0), so nothing saturates. About 10 instructions
 * instead of 25. */
static inline int32_t tc_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift >= 0) {
        return tc_requantize_reference(x, multiplier, shift);
    }
    const int32_t n = -shift;
    const int64_t rounding = (1LL << 30) + ((int64_t)(((uint32_t)1 << (n - 1)) - (uint32_t)(x < 0)) << 31);
    const int32_t high = (int32_t)(((int64_t)x * multiplier + rounding) >> 32);
    return high >> (n - 1);
}

/* One output channel's accumulator requantized (per channel or per tensor), offset and clamped. */
static inline int8_t tc_requantize_s8(int32_t acc, const tc_requant *q, int32_t channel, int32_t offset,
                                      int32_t lo, int32_t hi)
{
    const int32_t c = q->per_channel ? channel : 0;
    return (int8_t)tc_clamp_i32(tc_requantize(acc, q->multiplier[c], q->shift[c]) + offset, lo, hi);
}

#endif /* TC_FIXEDPOINT_H */
