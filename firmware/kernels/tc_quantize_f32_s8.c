/* QUANTIZE float32 -> int8 at the model's input, as TFLite Micro's AffineQuantize computes it:
 *     q = clamp(int32(roundf(x / scale)) + zero_point, -128, 127)
 * with one float32 division per element and std::round's halves away from zero. The rounding works on
 * the quotient's bits, exactly and without libm: for |r| = m * 2^(e - 150) (m the 24-bit significand
 * with its leading one, e the biased exponent), adding half of the last kept bit and shifting right by
 * 150 - e rounds the magnitude half up, i.e. r half away from zero. |r| >= 256 saturates whatever the
 * zero point, so the shift is at least 16 (no overflow) and at most 31 (|r| < 2^-19 gives 0; zeros and
 * subnormals too, their added leading one included). The int32 cast of a quotient past int32 is
 * undefined in C++: we saturate, as TFLite Micro's Arm builds do, and NaN gives the zero point (the
 * Arm FPU's conversion of NaN is 0). */
#include <string.h>

#include "tc_kernels.h"

static inline int32_t round_half_away(float r)
{
    uint32_t bits;
    memcpy(&bits, &r, sizeof bits);
    const int32_t exponent = (int32_t)((bits >> 23) & 0xffu);
    int32_t magnitude;
    if (exponent >= 127 + 8) {                        /* |r| >= 256, infinity or NaN */
        magnitude = (exponent == 255 && (bits << 9) != 0) ? 0 : 256;
    } else {
        int32_t shift = 150 - exponent;               /* >= 16 */
        if (shift > 31) {
            shift = 31;
        }
        const uint32_t significand = (bits & 0x7fffffu) | 0x800000u;
        magnitude = (int32_t)((significand + (1u << (shift - 1))) >> shift);
    }
    return (bits >> 31) ? -magnitude : magnitude;
}

tc_status tc_quantize_f32_s8(const tc_quantize_f32_params *p, const float *input, int8_t *output)
{
    const float scale = p->scale;
    const int32_t zero_point = p->zero_point;
    const int32_t size = p->size;
    for (int32_t i = 0; i < size; i++) {
        int32_t q = round_half_away(input[i] / scale) + zero_point;
        q = q < -128 ? -128 : q;
        output[i] = (int8_t)(q > 127 ? 127 : q);
    }
    return TC_OK;
}
