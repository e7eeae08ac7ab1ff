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
#else
#define TC_DSP 0
#endif

#endif /* TC_DSP_H */
