/*
 * tinycompress runtime: Helium, the M-profile Vector Extension (Cortex-M55,
 * M85), for the int8 kernels, through the intrinsics of <arm_mve.h>.
 *
 * TC_MVE is 1 when the compiler targets a core with integer MVE and the build
 * does not ask for the portable kernels (-DTC_PORTABLE). Like the DSP path, a
 * kernel takes its MVE path only when the code generator gave it scratch
 * memory. Vectors are 128 bits: 16 int8 lanes, or 4 int32 lanes. Loops over
 * memory are inline assembly with tail predication (DLSTP/WLSTP ... LETP: the
 * last pass turns off the lanes past the end), which GCC 12 does not generate.
 */
#ifndef TC_MVE_H
#define TC_MVE_H

#include <stdint.h>

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && !defined(TC_PORTABLE)
#define TC_MVE 1
#include <arm_mve.h>

/* Requantization of four accumulators as tc_requantize does it, bit for bit (TFLite Micro's
 * gemmlowp double rounding). `left` is max(shift, 0) and `right` is min(shift, 0), per lane.
 * - VSHL by a register wraps, as the scalar x * (1 << left_shift) does.
 * - VQRDMULH is (2ab + 2^31) >> 32 = (ab + 2^30) >> 31, saturating only INT32_MIN * INT32_MIN:
 *   exactly gemmlowp's SaturatingRoundingDoublingHighMul.
 * - VRSHL by -e rounds halves up; rounding them away from zero instead takes one less from
 *   negative values first (only when e > 0: the sign bit of x & -e is set when both are). */
static inline int32x4_t tc_mve_requantize(int32x4_t x, int32x4_t multiplier, int32x4_t left, int32x4_t right)
{
    x = vqrdmulhq_s32(vshlq_s32(x, left), multiplier);
    x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, right), 31));
    return vrshlq_s32(x, right);
}

/* tc_mve_requantize when every lane shifts right (shift <= -1, as in nearly every layer): no left
 * shift, and the nudge of negative values needs no mask. */
static inline int32x4_t tc_mve_requantize_right(int32x4_t x, int32x4_t multiplier, int32x4_t right)
{
    x = vqrdmulhq_s32(x, multiplier);
    x = vqaddq_s32(x, vshrq_n_s32(x, 31));
    return vrshlq_s32(x, right);
}

/* dst[0..n) = src[0..n), 16 bytes per pass of a tail-predicated loop (WLSTP skips it when n is 0;
 * the lanes past n neither load nor store). No alignment needed. GCC 12 makes no such loop itself.
 * The memory operands name the bytes touched ("+m": partly written), so the compiler keeps what else
 * it holds in registers. */
static inline void tc_mve_copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    int8x16_t x;
    __asm__("wlstp.8 lr, %[n], 2f\n"
            "1:\n\t"
            "vldrb.8 %q[x], [%[src]], #16\n\t"
            "vstrb.8 %q[x], [%[dst]], #16\n\t"
            "letp lr, 1b\n"
            "2:\n"
            : [x] "=&w"(x), [dst] "+r"(dst), [src] "+r"(src), "+m"(*(int8_t(*)[])dst)
            : [n] "r"(n), "m"(*(const int8_t(*)[])src)
            : "lr");
}

/* dst[0..n) = value. */
static inline void tc_mve_fill_s8(int8_t *dst, int8_t value, int32_t n)
{
    const int8x16_t x = vdupq_n_s8(value);
    __asm__("wlstp.8 lr, %[n], 2f\n"
            "1:\n\t"
            "vstrb.8 %q[x], [%[dst]], #16\n\t"
            "letp lr, 1b\n"
            "2:\n"
            : [dst] "+r"(dst), "+m"(*(int8_t(*)[])dst)
            : [x] "w"(x), [n] "r"(n)
            : "lr");
}
#else
#define TC_MVE 0
#endif

#endif /* TC_MVE_H */
