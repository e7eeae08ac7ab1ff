/* QUANTIZE float32 -> int8 at the model's input, as TFLite Micro's AffineQuantize computes it:
 *     q = clamp(int32(roundf(x / scale)) + zero_point, -128, 127)
 * with one float32 division per element and std::round's halves away from zero. The rounding works on
 * the quotient's bits, exactly and without libm: for |r| = m * 2^(e - 150) (m the 24-bit significand
 * with its leading one, e the biased exponent), m >> (149 - e) is floor(2|r|), and one more halved is
 * floor(|r| + 1/2): the magnitude rounded half up, r rounded half away from zero. That covers exponents
 * 119..134 (2^-8 <= |r| < 256) in one unsigned range test; below, |r| < 1/2 gives 0, and |r| >= 256
 * saturates whatever the zero point. The int32 cast of a quotient past int32 is undefined in C++: we
 * saturate, as TFLite Micro's Arm builds do, and NaN gives the zero point (the Arm FPU's conversion of
 * NaN is 0). About 20 instructions per element besides the division on the M4, where the reference
 * loop calls newlib's roundf. */
#include <string.h>

#include "tc_kernels.h"

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT == 1 && !defined(TC_PORTABLE)
#include <arm_acle.h>
#define TC_SAT8(x) __ssat((x), 8)                     /* one SSAT on M3/M4/M7/M33/M55 */
#else
#define TC_SAT8(x) ((x) < -128 ? -128 : (x) > 127 ? 127 : (x))
#endif

/* FPv5 (the M7's, M33's and M55's FPUs; __ARM_FP reports half precision there, not on the M4's FPv4)
 * has VCVTA: float to int32 rounding halves away from zero, saturating, NaN to 0: exactly the int32 cast
 * of roundf(r) that TFLite Micro computes on these cores (VRINTA, VCVT), in one instruction. */
#if defined(__ARM_FP) && (__ARM_FP & 4) && ((__ARM_FP & 2) || __ARM_ARCH >= 8) && \
    defined(__ARM_FEATURE_SAT) && !defined(TC_PORTABLE)
#define TC_VCVTA 1
#else
#define TC_VCVTA 0
#endif

#if !TC_VCVTA
static int32_t outside(uint32_t bits)
{
    const uint32_t exponent = (bits >> 23) & 0xffu;
    if (exponent < 127 + 8) {
        return 0;                                     /* |r| < 2^-8 */
    }
    return (exponent == 255 && (bits << 9) != 0) ? 0 : 256;   /* NaN; |r| >= 256 or infinite */
}
#endif

static inline int32_t round_half_away(float r)
{
#if TC_VCVTA
    float converted;                                  /* the int32 in an S register */
    __asm__("vcvta.s32.f32 %0, %1" : "=t"(converted) : "t"(r));
    int32_t q;
    memcpy(&q, &converted, sizeof q);
    return __ssat(q, 10);         /* +-512 saturates int8 whatever the zero point, as 256 does below */
#else
    uint32_t bits;
    memcpy(&bits, &r, sizeof bits);
    const uint32_t shift = 149u - ((bits >> 23) & 0xffu);    /* wraps for exponents past 149 */
    int32_t magnitude;
    if (shift - 15u <= 15u) {                         /* exponents 119..134 */
        const uint32_t significand = (bits & 0x7fffffu) | 0x800000u;
        magnitude = (int32_t)(((significand >> shift) + 1u) >> 1);
    } else {
        magnitude = outside(bits);
    }
    return (int32_t)bits < 0 ? -magnitude : magnitude;
#endif
}

tc_status tc_quantize_f32_s8(const tc_quantize_f32_params *p, const float *input, int8_t *output)
{
    const float scale = p->scale;
    const int32_t zero_point = p->zero_point;
    const int32_t size = p->size;
    for (int32_t i = 0; i < size; i++) {
        const int32_t q = round_half_away(input[i] / scale) + zero_point;
        output[i] = (int8_t)TC_SAT8(q);
    }
    return TC_OK;
}
