/*
 * tinycompress runtime: the fixed-point exp() and reciprocal behind int8 SOFTMAX.
 *
 * TFLite Micro evaluates softmax with gemmlowp's fixed-point formulas; these
 * reproduce them bit for bit on raw int32 values. A value with I integer bits
 * is raw / 2^(31 - I).
 */
#ifndef TC_SOFTMAX_FIXEDPOINT_H
#define TC_SOFTMAX_FIXEDPOINT_H

#include <stdint.h>

#include "tc_fixedpoint.h"

#define TC_Q0_ONE INT32_MAX /* 1.0 is not representable with 0 integer bits */

/* x * 2^exponent, saturating when exponent > 0, rounding when exponent < 0. */
static inline int32_t tc_sat_rounding_mul_by_pot(int32_t x, int32_t exponent)
{
    if (exponent < 0) {
        return tc_rounding_divide_by_pot(x, -exponent);
    }
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0 in and out: a Taylor series around -1/8. */
static inline int32_t tc_exp_on_interval_q0(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) in Q0 */
    const int32_t one_third = 715827883;             /* 1/3 in Q0 */
    const int32_t x = a + (1 << 28);                 /* a + 1/8 */
    const int32_t x2 = tc_sat_rounding_doubling_high_mul(x, x);
    const int32_t x3 = tc_sat_rounding_doubling_high_mul(x2, x);
    const int32_t x4 = tc_sat_rounding_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = tc_rounding_divide_by_pot(x4, 2);
    const int32_t poly = tc_rounding_divide_by_pot(
        tc_sat_rounding_doubling_high_mul(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + tc_sat_rounding_doubling_high_mul(exp_minus_one_eighth, x + poly);
}

/* exp(a) for a <= 0 with 5 integer bits (Q5.26 in), Q0 out. */
static inline int32_t tc_exp_on_negative_values_q5(int32_t a)
{
    enum { FRACTIONAL_BITS = 26 };
    const int32_t one_quarter = 1 << (FRACTIONAL_BITS - 2);
    const int32_t a_mod_quarter_minus_quarter = (a & (one_quarter - 1)) - one_quarter;
    int32_t result = tc_exp_on_interval_q0(tc_sat_rounding_mul_by_pot(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;

    /* exp(-2^k) for k = -2 .. 4 in Q0, applied for every bit of the remainder. */
    static const int32_t exp_of_minus_pot[7] = {1672461947, 1302514674, 790015084, 290630308,
                                                39332535, 720401, 242};
    for (int32_t k = 0; k < 7; k++) {
        if (remainder & (1 << (FRACTIONAL_BITS - 2 + k))) {
            result = tc_sat_rounding_doubling_high_mul(result, exp_of_minus_pot[k]);
        }
    }
    return a == 0 ? TC_Q0_ONE : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0 in and out: three Newton-Raphson steps in Q2. */
static inline int32_t tc_one_over_one_plus_x_q0(int32_t x)
{
    const int64_t sum = (int64_t)x + TC_Q0_ONE;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t q2_one = 1 << 29;
    const int32_t forty_eight_over_17 = 1515870810;      /* Q2 */
    const int32_t minus_thirty_two_over_17 = -1010580540; /* Q2 */
    int32_t r = forty_eight_over_17 + tc_sat_rounding_doubling_high_mul(half_denominator, minus_thirty_two_over_17);
    for (int32_t i = 0; i < 3; i++) {
        const int32_t error = q2_one - tc_sat_rounding_doubling_high_mul(half_denominator, r);
        r = r + tc_sat_rounding_mul_by_pot(tc_sat_rounding_doubling_high_mul(r, error), 2);
    }
    return tc_sat_rounding_mul_by_pot(r, 1); /* r / 2, read back in Q0 */
}

/* 1 / x for x with `integer_bits`, as a Q0 scale and a power of two. */
static inline int32_t tc_reciprocal(int32_t x, int32_t integer_bits, int32_t *bits_over_unit)
{
    const int32_t headroom_plus_one = __builtin_clz((uint32_t)x);
    *bits_over_unit = integer_bits - headroom_plus_one;
    const int32_t shifted_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - (1u << 31));
    return tc_one_over_one_plus_x_q0(shifted_minus_one);
}

#endif /* TC_SOFTMAX_FIXEDPOINT_H */
