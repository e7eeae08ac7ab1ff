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
static inline int32_t tc_requantize_wide(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift >= 0) {
        return tc_requantize_reference(x, multiplier, shift);
    }
    const int32_t n = -shift;
    const int64_t rounding = (1LL << 30) + ((int64_t)(((uint32_t)1 << (n - 1)) - (uint32_t)(x < 0)) << 31);
    const int32_t high = (int32_t)(((int64_t)x * multiplier + rounding) >> 32);
    return high >> (n - 1);
}

/* floor((x m + a_hi 2^32 + a_mid 2^16) / 2^32) for any int32 x, m in [0, 2^32) and a_mid in [0, 2^16),
 * where the result fits an int32, in 32-bit arithmetic: four 16x16 products instead of the 32x32->64
 * multiply that ARMv6-M lacks (__aeabi_lmul, about 50 instructions with its call). Proof: with
 * x = xh 2^16 + xl (xh = x >> 16 in [-2^15, 2^15), xl in [0, 2^16)) and m = mh 2^16 + ml (both in [0, 2^16)),
 *   x m = xh mh 2^32 + (xh ml + xl mh) 2^16 + xl ml.
 * - p0 = xl ml <= (2^16 - 1)^2 < 2^32 (unsigned), and p0 = (p0 >> 16) 2^16 + (p0 & 0xFFFF).
 * - t = xh ml + (p0 >> 16) lies in [-2^31 + 2^15, 2^31 - 2^15): an int32; t = (t >> 16) 2^16 + (t & 0xFFFF)
 *   with the arithmetic (flooring) shift.
 * - u = xl mh + (t & 0xFFFF) + a_mid <= (2^16 - 1)^2 + 2 (2^16 - 1) < 2^32 (unsigned), u = (u >> 16) 2^16 +
 *   (u & 0xFFFF).
 * So x m + a_hi 2^32 + a_mid 2^16 = (xh mh + (t >> 16) + (u >> 16) + a_hi) 2^32 + (u & 0xFFFF) 2^16 + (p0 & 0xFFFF),
 * and the last two terms lie in [0, 2^32): the floor is the first factor. Its sum is taken modulo 2^32
 * (unsigned, no overflow in C); the true value fits an int32, so the cast gives it. */
static inline int32_t tc_mul_high_narrow(int32_t x, uint32_t m, int32_t a_hi, uint32_t a_mid)
{
    const uint32_t xl = (uint32_t)x & 0xFFFFu, ml = m & 0xFFFFu, mh = m >> 16;
    const int32_t xh = x >> 16;
    const uint32_t p0 = xl * ml;
    const int32_t t = xh * (int32_t)ml + (int32_t)(p0 >> 16);
    const uint32_t u = xl * mh + ((uint32_t)t & 0xFFFFu) + a_mid;
    return (int32_t)((uint32_t)(xh * (int32_t)mh) + (uint32_t)(t >> 16) + (u >> 16) + (uint32_t)a_hi);
}

/* tc_requantize_wide's value through tc_mul_high_narrow, for cores without a long multiply.
 * - shift < 0 (n = -shift in [1, 31]): its 64-bit rounding 2^30 + c 2^31, c = 2^(n-1) - s in [0, 2^30],
 *   is a_hi 2^32 + a_mid 2^16 with a_hi = c >> 1 and a_mid = 2^14 + (c & 1) 2^15 < 2^16; the high word
 *   floor((x M + rounding) / 2^32) lies in [-2^30 - 1, 2^30 + 2^29] (|x M| <= 2^62), an int32.
 * - shift >= 0 (left shift l): the reference's floor((x' M + 2^30) / 2^31) with x' = x << l (wrapping as
 *   the reference does) is floor((x' 2M + 2^31) / 2^32): m = 2M < 2^32, a_hi = 0, a_mid = 2^15; the value
 *   is the doubling high multiply's, an int32 (|x' M| / 2^31 < 2^31; M < 2^31 never saturates), and the
 *   rounding divide by 2^0 keeps it. */
static inline int32_t tc_requantize_narrow(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift >= 0) {
        return tc_mul_high_narrow((int32_t)((uint32_t)x << shift), (uint32_t)multiplier << 1, 0, 1u << 15);
    }
    const int32_t n = -shift;
    const uint32_t c = ((uint32_t)1 << (n - 1)) - (uint32_t)(x < 0);
    return tc_mul_high_narrow(x, (uint32_t)multiplier, (int32_t)(c >> 1), (1u << 14) | ((c & 1u) << 15)) >>
           (n - 1);
}

/* ARMv6-M (Cortex-M0, M0+, M1) has MULS (32x32->32) only; elsewhere SMULL does the 64-bit form. */
#if defined(__ARM_ARCH_6M__) || defined(TC_NO_LONG_MULTIPLY)
#define TC_LONG_MULTIPLY 0
#else
#define TC_LONG_MULTIPLY 1
#endif

static inline int32_t tc_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
#if TC_LONG_MULTIPLY
    return tc_requantize_wide(x, multiplier, shift);
#else
    return tc_requantize_narrow(x, multiplier, shift);
#endif
}

/* One output channel's accumulator requantized (per channel or per tensor), offset and clamped. */
static inline int8_t tc_requantize_s8(int32_t acc, const tc_requant *q, int32_t channel, int32_t offset,
                                      int32_t lo, int32_t hi)
{
    const int32_t c = q->per_channel ? channel : 0;
    return (int8_t)tc_clamp_i32(tc_requantize(acc, tc_requant_multiplier(q, c), tc_requant_shift(q, c)) + offset,
                                lo, hi);
}

/* TFLite's rescaling of an int8 input of ADD or SUB to the operation's common scale,
 * tc_requantize((q + offset) << 20, multiplier, shift), in 32-bit arithmetic (no 64-bit product: on the
 * M0 that is a library call). With v = q + offset in [-255, 255] and the multiplier M < 2^31 split as
 * Mh 2^16 + Ml (Mh < 2^15, Ml < 2^16):
 * - the rounding doubling high multiply of v 2^20 by M is floor((v M 2^20 + 2^30) / 2^31)
 *   = floor((v M + 2^10) / 2^11) = v Mh 2^5 + floor((v Ml + 2^10) / 2^11), as 2^11 divides v Mh 2^16;
 *   |v Mh 2^5| < 2^28 and |v Ml| < 2^24, so nothing overflows;
 * - the rounding divide by 2^n (shift = -n, n in [1, 24]) is floor((y + 2^(n-1) - [y < 0]) / 2^n), ties
 *   away from zero, where -[y < 0] is y >> 31.
 * TFLite's Prepare gives the input of the larger scale the multiplier 1/2 exactly (M = 2^30, shift 0),
 * so that its rescaled value is v 2^19 (tc_rescale_is_half): kernels take it as that shift. In this
 * form M = 2^31 - 1 with n = 1 gives the same, as the high multiply of the even v 2^20 (|.| < 2^28) by
 * it is v 2^20 itself. tc_rescale_fits tells where the form applies: a left shift of 20 (TFLite's for
 * int8), M in [0, 2^31) with a shift in [-24, -1], or the half; |offset| <= 128. */
#define TC_RESCALE_LEFT_SHIFT 20

typedef struct {
    int32_t offset;
    int32_t multiplier_hi, multiplier_lo; /* Mh, Ml */
    int32_t n, rounding;                  /* rounding = 2^(n-1) */
    int32_t multiplier, multiplier2;      /* M and 2M - 2^32, for the DSP form (tc_dsp.h) */
} tc_rescale;

static inline int tc_rescale_is_half(int32_t multiplier, int32_t shift)
{
    return multiplier == (1 << 30) && shift == 0;
}

static inline int tc_rescale_fits(int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    return left_shift == TC_RESCALE_LEFT_SHIFT && offset >= -128 && offset <= 128 &&
           ((multiplier >= 0 && shift <= -1 && shift >= -24) || tc_rescale_is_half(multiplier, shift));
}

static inline tc_rescale tc_rescale_make(int32_t offset, int32_t multiplier, int32_t shift)
{
    if (tc_rescale_is_half(multiplier, shift)) {
        multiplier = INT32_MAX;
        shift = -1;
    }
    const int32_t n = -shift;
    const tc_rescale r = {offset, multiplier >> 16, multiplier & 0xFFFF, n, 1 << (n - 1),
                          multiplier, (int32_t)((uint32_t)multiplier << 1)};
    return r;
}

/* The rounding divide of a rescaled value by 2^n. */
static inline int32_t tc_rescale_divide(const tc_rescale *r, int32_t y)
{
    return (y + r->rounding + (y >> 31)) >> r->n;
}

static inline int32_t tc_rescale_apply(const tc_rescale *r, int32_t q)
{
    const int32_t v = q + r->offset;
    const int32_t high = v * r->multiplier_hi * 32 + ((v * r->multiplier_lo + (1 << 10)) >> 11);
    return tc_rescale_divide(r, high);
}

/* The input with the multiplier 1/2: (q + offset) 2^19. */
static inline int32_t tc_rescale_half(int32_t q, int32_t offset)
{
    return (q + offset) * (1 << (TC_RESCALE_LEFT_SHIFT - 1));
}

#endif /* TC_FIXEDPOINT_H */
