/*
 * tinycompress runtime: the row of MAXIMUM and MINIMUM (tc_maximum_s8.c, tc_minimum_s8.c), which
 * compare raw int8 values as TFLite Micro does.
 * DSP: four lanes per word. SSUB8 sets a GE flag per byte lane where x - y >= 0 (signed), and SEL
 * takes each byte from its first operand where the flag is set, else from its second: SEL(x, y) is
 * the maximum, SEL(y, x) the minimum. A repeating input is one byte copied to all four lanes.
 * Helium: sixteen lanes per VMAX/VMIN. The tails go byte by byte.
 */
#ifndef TC_MINMAX_H
#define TC_MINMAX_H

#include <string.h>

#include "tc_dsp.h"
#include "tc_kernels.h"
#include "tc_mve.h"

static inline void tc_minmax_row(const int8_t *x, int32_t x_step, const int8_t *y, int32_t y_step, int8_t *out,
                                 int32_t n, int maximum)
{
    int32_t i = 0;
#if TC_MVE
    for (; i + 16 <= n; i += 16) {
        const int8x16_t a = x_step ? vld1q_s8(x + i) : vdupq_n_s8(*x);
        const int8x16_t b = y_step ? vld1q_s8(y + i) : vdupq_n_s8(*y);
        vst1q_s8(out + i, maximum ? vmaxq_s8(a, b) : vminq_s8(a, b));
    }
#elif TC_DSP
    const int32_t a_splat = (int32_t)((uint32_t)(uint8_t)*x * 0x01010101u);
    const int32_t b_splat = (int32_t)((uint32_t)(uint8_t)*y * 0x01010101u);
    for (; i + 4 <= n; i += 4) {
        const int32_t a = x_step ? tc_read_s8x4(x + i) : a_splat;
        const int32_t b = y_step ? tc_read_s8x4(y + i) : b_splat;
        (void)__ssub8(a, b);   /* only its GE flags are wanted */
        const uint32_t r = maximum ? __sel((uint32_t)a, (uint32_t)b) : __sel((uint32_t)b, (uint32_t)a);
        memcpy(out + i, &r, sizeof r);
    }
#endif
    for (; i < n; i++) {
        const int8_t a = x[i * x_step], b = y[i * y_step];
        out[i] = maximum ? (a > b ? a : b) : (a < b ? a : b);
    }
}

#endif /* TC_MINMAX_H */
