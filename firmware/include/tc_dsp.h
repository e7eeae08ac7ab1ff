/*
 * tinycompress runtime: the Arm DSP extension (Cortex-M4, M7, M33, M55) for the
 * int8 kernels, through ACLE intrinsics from <arm_acle.h>.
 *
 * TC_DSP is 1 when the compiler targets a core with the extension and the
 * build does not ask for the portable kernels (-DTC_PORTABLE, used by the tests
 * that compare both paths). A kernel takes its DSP path only when the code
 * generator also gave it scratch memory, so the two sides cannot disagree.
 *
 * Two int16 lanes per word: SMLAD adds both lane products to an accumulator,
 * 2 MACs per instruction. SXTB16 widens bytes 0 and 2 of a word; with ROR #8,
 * bytes 1 and 3. So four int8 values [a b c d] meet their partners when the
 * other operand holds (a, c) in one word and (b, d) in the next: the "SMLAD
 * order" in which im2col columns are stored.
 */
#ifndef TC_DSP_H
#define TC_DSP_H

#include <stdint.h>
#include <string.h>

#include "tc_fixedpoint.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP == 1 && !defined(TC_PORTABLE)
#define TC_DSP 1
#include <arm_acle.h>

/* Four bytes from any address (LDR allows unaligned access on these cores). */
static inline int32_t tc_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Two int16 values from a word-aligned address. */
static inline int32_t tc_read_s16x2(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Two int16 values in one word, `lo` in the bottom lane (an SMLAD or SXTAB16 operand). */
static inline int32_t tc_pack_s16x2(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}

/* Bytes 1 and 3 sign-extended to int16 lanes (GCC 12's ACLE has no __ror to fold). */
static inline int32_t tc_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* Bytes 1 and 3 sign-extended and added to the int16 lanes of `add`. */
static inline int32_t tc_sxtab16_ror8(int32_t add, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(add), "r"(x));
    return r;
}
/* TFLite Micro's requantization of an int32 accumulator, plus the output offset, saturated to int8, in five
 * instructions instead of about fifteen. It holds for a multiplier M in [2^30, 2^31) and a right shift n in
 * [1, 23] (tc_dsp_quant_fits), which is nearly every layer:
 * - SMMLAR(x, 2M - 2^32, x) = floor((x 2^32 + x (2M - 2^32) + 2^31) / 2^32) = floor((x M + 2^30) / 2^31),
 *   gemmlowp's rounding doubling high multiply, whose nudge rounds ties up for either sign (see
 *   tc_sat_rounding_doubling_high_mul), exact for every int32 x, and never saturating as M < 2^31;
 * - its rounding divide by 2^n rounds ties away from zero: floor((y + 2^(n-1) - [y < 0]) / 2^n), and adding
 *   offset * 2^n before the shift adds the offset after it;
 * - QADD saturates the sum only where the result lies beyond int8 anyway, which SSAT then clamps alike. */
typedef struct {
    int32_t multiplier2; /* 2M - 2^32 */
    int32_t shift;       /* n */
    int32_t rounding;    /* 2^(n-1) + output_offset * 2^n */
} tc_dsp_quant;

static inline int tc_dsp_quant_fits(int32_t multiplier, int32_t shift)
{
    return multiplier >= (1 << 30) && shift <= -1 && shift >= -23;
}

static inline tc_dsp_quant tc_dsp_quant_make(int32_t multiplier, int32_t shift, int32_t output_offset)
{
    const int32_t n = -shift;
    const tc_dsp_quant q = {(int32_t)((uint32_t)multiplier << 1), n,
                            (int32_t)((1u << (n - 1)) + ((uint32_t)output_offset << n))};
    return q;
}

static inline int32_t tc_dsp_requantize_s8(int32_t acc, const tc_dsp_quant *q)
{
    int32_t y;
    __asm__("smmlar %0, %1, %2, %1" : "=r"(y) : "r"(acc), "r"(q->multiplier2));
    y += y >> 31; /* ties of negative values round away from zero */
    return __ssat(__qadd(y, q->rounding) >> q->shift, 8);
}

/* tc_rescale_apply (tc_fixedpoint.h) in five instructions: the high multiply of x = (q + offset) 2^20 by a
 * multiplier in [2^30, 2^31) as one SMMLAR, as in tc_dsp_requantize_s8, then the rounding divide. */
static inline int tc_rescale_dsp_fits(const tc_rescale *r)
{
    return r->multiplier >= (1 << 30);
}

static inline int32_t tc_rescale_apply_dsp(const tc_rescale *r, int32_t q)
{
    const int32_t x = (q + r->offset) * (1 << TC_RESCALE_LEFT_SHIFT);
    int32_t y;
    __asm__("smmlar %0, %1, %2, %1" : "=r"(y) : "r"(x), "r"(r->multiplier2));
    return tc_rescale_divide(r, y);
}

/* One output channel's requantization, offset and clamp, read once for all the outputs it serves:
 * the fast form above where it applies, TFLite Micro's general one otherwise. */
typedef struct {
    tc_dsp_quant quick;
    int quick_applies, full_range; /* full_range: the fused clamp is int8's own */
    int32_t multiplier, shift, offset, lo, hi;
} tc_channel_quant;

static inline tc_channel_quant tc_channel_quant_make(const tc_requant *r, int32_t channel, int32_t offset,
                                                     tc_activation act)
{
    const int32_t i = r->per_channel ? channel : 0;
    const int32_t multiplier = tc_requant_multiplier(r, i), shift = tc_requant_shift(r, i);
    tc_channel_quant q = {{0, 0, 0}, tc_dsp_quant_fits(multiplier, shift),
                          act.min == TC_INT8_MIN && act.max == TC_INT8_MAX, multiplier, shift, offset,
                          act.min, act.max};
    if (q.quick_applies) {
        q.quick = tc_dsp_quant_make(q.multiplier, q.shift, offset);
    }
    return q;
}

static inline int8_t tc_channel_output(const tc_channel_quant *q, int32_t acc)
{
    int32_t v;
    if (q->quick_applies) {
        v = tc_dsp_requantize_s8(acc, &q->quick);
        if (q->full_range) {
            return (int8_t)v;
        }
    } else {
        v = tc_requantize(acc, q->multiplier, q->shift) + q->offset;
    }
    return (int8_t)tc_clamp_i32(v, q->lo, q->hi);
}
#else
#define TC_DSP 0
#endif

#endif /* TC_DSP_H */
