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

/* floor((x m + a_hi 2^32 + a_mid 2^16) / 2^32) for any int32 x, m = m_hi 2^16 + m_lo in [0, 2^32) and a_mid
 * in [0, 2^16), where the result fits an int32, in 32-bit arithmetic: four 16x16 products instead of the
 * 32x32->64 multiply that ARMv6-M lacks (__aeabi_lmul, about 50 instructions with its call). Proof: with
 * x = xh 2^16 + xl (xh = x >> 16 in [-2^15, 2^15), xl in [0, 2^16)) and m_lo, m_hi in [0, 2^16),
 *   x m = xh m_hi 2^32 + (xh m_lo + xl m_hi) 2^16 + xl m_lo.
 * - p0 = xl m_lo <= (2^16 - 1)^2 < 2^32 (unsigned), and p0 = (p0 >> 16) 2^16 + (p0 & 0xFFFF).
 * - t = xh m_lo + (p0 >> 16) lies in [-2^31 + 2^15, 2^31 - 2^15): an int32;
 *   t = (t >> 16) 2^16 + (t & 0xFFFF) with the arithmetic (flooring) shift.
 * - u = xl m_hi + (t & 0xFFFF) + a_mid <= (2^16 - 1)^2 + 2 (2^16 - 1) = 2^32 - 1 (unsigned),
 *   u = (u >> 16) 2^16 + (u & 0xFFFF).
 * So x m + a_hi 2^32 + a_mid 2^16 = (xh m_hi + (t >> 16) + (u >> 16) + a_hi) 2^32 + (u & 0xFFFF) 2^16 +
 * (p0 & 0xFFFF), and the last two terms lie in [0, 2^32): the floor is the first factor. Its sum is taken
 * modulo 2^32 (unsigned, no overflow in C); the true value fits an int32, so the cast gives it. */
static inline int32_t tc_mul_high_narrow(int32_t x, uint32_t m_lo, uint32_t m_hi, int32_t a_hi,
                                         uint32_t a_mid)
{
    const uint32_t xl = (uint32_t)x & 0xFFFFu;
    const int32_t xh = x >> 16;
    const uint32_t p0 = xl * m_lo;
    const int32_t t = xh * (int32_t)m_lo + (int32_t)(p0 >> 16);
    const uint32_t u = xl * m_hi + ((uint32_t)t & 0xFFFFu) + a_mid;
    return (int32_t)((uint32_t)(xh * (int32_t)m_hi) + (uint32_t)(t >> 16) + (u >> 16) + (uint32_t)a_hi);
}

/* A right-shifting multiplier (shift = -n, n in [1, 31], M in [0, 2^31)) prepared for
 * tc_requantize_prepared: tc_requantize_wide's 64-bit rounding 2^30 + (2^(n-1) - s) 2^31 (s = 1 for
 * x < 0) as a_hi 2^32 + a_mid 2^16 with a_mid in [0, 2^16):
 * - n >= 2 (2^(n-1) even): (2^(n-2) - s) 2^32 + (2^14 + s 2^15) 2^16;
 * - n = 1: 0 2^32 + (3 2^14 - s 2^15) 2^16.
 * Stored as the values for s = 0 and what s = 1 adds: d_hi = -1 or 0, d_mid = 2^15 or -2^15 (mod 2^32). */
typedef struct {
    uint32_t m_lo, m_hi;
    int32_t a_hi, d_hi;
    uint32_t a_mid, d_mid;
    int32_t n1;
} tc_narrow_multiplier;

static inline tc_narrow_multiplier tc_narrow_multiplier_of(int32_t multiplier, int32_t shift)
{
    const int32_t n = -shift;
    const tc_narrow_multiplier q = {(uint32_t)multiplier & 0xFFFFu,
                                    (uint32_t)multiplier >> 16,
                                    (int32_t)(((uint32_t)1 << (n - 1)) >> 1),
                                    n == 1 ? 0 : -1,
                                    n == 1 ? 3u << 14 : 1u << 14,
                                    n == 1 ? 0u - (1u << 15) : 1u << 15,
                                    n - 1};
    return q;
}

/* tc_requantize_wide's value (shift < 0): its high word floor((x M + rounding) / 2^32), in
 * [-2^30, 2^30 + 2^29] as |x M| <= 2^62, shifted right by n - 1. */
static inline int32_t tc_requantize_prepared(const tc_narrow_multiplier *q, int32_t x)
{
    const int32_t s = x >> 31; /* 0 or -1: the masks pick d_hi and d_mid for x < 0 */
    const int32_t a_hi = q->a_hi + (s & q->d_hi);
    const uint32_t a_mid = q->a_mid + ((uint32_t)s & q->d_mid);
    return tc_mul_high_narrow(x, q->m_lo, q->m_hi, a_hi, a_mid) >> q->n1;
}

/* tc_requantize_wide's value in 32-bit arithmetic, for cores without a long multiply. A left shift l >= 0:
 * the reference's floor((x' M + 2^30) / 2^31) with x' = x << l (wrapping as the reference does) is
 * floor((x' 2M + 2^31) / 2^32), with 2M < 2^32: the doubling high multiply's value, an int32 (M < 2^31
 * never saturates), which the rounding divide by 2^0 keeps. */
static inline int32_t tc_requantize_narrow(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift >= 0) {
        const uint32_t m2 = (uint32_t)multiplier << 1;
        return tc_mul_high_narrow((int32_t)((uint32_t)x << shift), m2 & 0xFFFFu, m2 >> 16, 0, 1u << 15);
    }
    const tc_narrow_multiplier q = tc_narrow_multiplier_of(multiplier, shift);
    return tc_requantize_prepared(&q, x);
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

/* Keeps the compiler from folding x into the addresses that use it: on ARMv6-M, where LDRSB takes only a
 * register offset, one index register stepped by ADDS then serves both arrays of a dot product (5
 * instructions a product, against 7 with constant offsets, each its own MOVS). Emits nothing. */
#define TC_OPAQUE(x) __asm__("" : "+r"(x))

/* acc + sum a[i] b[i] over i < n, unrolled by four. Not inlined: in the callers' loops the M0's eight low
 * registers would not hold it. */
static __attribute__((noinline, unused)) int32_t tc_dot_s8(const int8_t *a, const int8_t *b, int32_t n,
                                                           int32_t acc)
{
    int32_t i = 0;
#define TC_DOT_STEP()                                                                                     \
    do {                                                                                                  \
        acc += a[i] * b[i];                                                                               \
        i++;                                                                                              \
        TC_OPAQUE(i);                                                                                     \
    } while (0)
    while (i <= n - 4) {
        TC_DOT_STEP();
        TC_DOT_STEP();
        TC_DOT_STEP();
        TC_DOT_STEP();
    }
#undef TC_DOT_STEP
    for (; i < n; i++) {
        acc += a[i] * b[i];
    }
    return acc;
}

/* One channel's requantization, output offset and clamp, its parameters read once for its outputs (on
 * cores without a long multiply a right shift's multiplier also prepared once). */
typedef struct {
    int32_t multiplier, shift, offset, min, max;
#if !TC_LONG_MULTIPLY
    tc_narrow_multiplier narrow;
#endif
} tc_channel_requant;

static inline tc_channel_requant tc_channel_requant_of(const tc_requant *q, int32_t channel, int32_t offset,
                                                       int32_t lo, int32_t hi)
{
    const int32_t c = q->per_channel ? channel : 0;
    tc_channel_requant r = {tc_requant_multiplier(q, c), tc_requant_shift(q, c), offset, lo, hi};
#if !TC_LONG_MULTIPLY
    if (r.shift < 0) {
        r.narrow = tc_narrow_multiplier_of(r.multiplier, r.shift);
    }
#endif
    return r;
}

/* Output channel c of a convolution whose input offset is folded into its accumulator's start: that start
 * (bias + input_offset x the channel's weight sum, exact in int32) and its requantization. */
static inline int32_t tc_channel_prepare(const int32_t *bias, const tc_requant *q, int32_t c,
                                         int32_t weight_sum, int32_t input_offset, int32_t output_offset,
                                         tc_activation act, tc_channel_requant *r)
{
    *r = tc_channel_requant_of(q, c, output_offset, act.min, act.max);
    return tc_channel_bias(bias, q, c) + input_offset * weight_sum;
}

/* Not inlined: in the kernels' output loops the M0's eight low registers would not hold it. */
static __attribute__((noinline, unused)) int8_t tc_channel_requant_apply(const tc_channel_requant *r,
                                                                         int32_t acc)
{
#if TC_LONG_MULTIPLY
    const int32_t y = tc_requantize_wide(acc, r->multiplier, r->shift);
#else
    const int32_t y = r->shift < 0 ? tc_requantize_prepared(&r->narrow, acc)
                                   : tc_requantize_narrow(acc, r->multiplier, r->shift);
#endif
    return (int8_t)tc_clamp_i32(y + r->offset, r->min, r->max);
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
