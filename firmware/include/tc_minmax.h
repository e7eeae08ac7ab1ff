/*
 * tinycompress runtime: the row of MAXIMUM and MINIMUM (tc_maximum_s8.c, tc_minimum_s8.c), which
 * compare raw int8 values as TFLite Micro does.
 * DSP: four lanes per word. SSUB8 sets a GE flag per byte lane where x - y >= 0 (signed), and SEL
 * takes each byte from its first operand where the flag is set, else from its second: SEL(x, y) is
 * the maximum, SEL(y, x) the minimum. A repeating input is one byte copied to all four lanes.
 * Helium: sixteen lanes per VMAX/VMIN. The tails go byte by byte.
 * TC_MINMAX_KERNEL(op, maximum) is each kernel file's whole body: its row and its entry point.
 */
#ifndef TC_MINMAX_H
#define TC_MINMAX_H

#include <string.h>

#include "tc_dsp.h"
#include "tc_kernels.h"
#include "tc_mve.h"

/* On int32: the byte stored is the winner's own (no second, unsigned load of it for the store) */
static inline int8_t tc_minmax_pick(int32_t a, int32_t b, int maximum)
{
    return (int8_t)(maximum ? (a > b ? a : b) : (a < b ? a : b));
}

/* The kernels' row function: a function of its own on the M0, where the walk inlined around it would
 * leave its loop no registers, and on the M55; inlined on the M4 and M7, fewer instructions there. */
#if TC_MVE || !TC_DSP
#define TC_MINMAX_ROW __attribute__((noinline))
#else
#define TC_MINMAX_ROW
#endif

#if defined(__ARM_ARCH_6M__) && !TC_DSP && !TC_MVE
/* The M0's loop over two stepping rows (n > 0), 7.5 instructions per element where C makes 11 (GCC loads
 * each byte twice, signed for the compare and unsigned for the store): the index runs from -n up to 0
 * against the rows' ends, so LDRSB's register offset serves all three rows and ADDS's zero flag ends
 * the loop without a CMP. `keep` is the branch that keeps a: BGE (a >= b) for the maximum, BLE
 * (a <= b) for the minimum. */
#define TC_MINMAX_V6M_LOOP(keep)                                                                         \
    __asm__ volatile(".syntax unified\n" /* GCC hands Thumb-1 asm over in divided syntax */              \
                     "1: ldrsb %[a], [%[x], %[i]]\n"                                                     \
                     "   ldrsb %[b], [%[y], %[i]]\n"                                                     \
                     "   cmp %[a], %[b]\n"                                                               \
                     "   " keep " 2f\n"                                                                  \
                     "   movs %[a], %[b]\n"                                                              \
                     "2: strb %[a], [%[out], %[i]]\n"                                                    \
                     "   adds %[i], #1\n"                                                                \
                     "   bne 1b\n"                                                                       \
                     ".syntax divided\n"                                                                 \
                     : [i] "+l"(i), [a] "=&l"(a), [b] "=&l"(b)                                           \
                     : [x] "l"(x), [y] "l"(y), [out] "l"(out)                                            \
                     : "cc", "memory")

static inline void tc_minmax_v6m(const int8_t *x, const int8_t *y, int8_t *out, int32_t n, int maximum)
{
    int32_t i = -n, a, b;
    x += n;
    y += n;
    out += n;
    if (maximum) {
        TC_MINMAX_V6M_LOOP("bge");
    } else {
        TC_MINMAX_V6M_LOOP("ble");
    }
}
#undef TC_MINMAX_V6M_LOOP
#endif

static inline void tc_minmax_row(const int8_t *x, int32_t x_step, const int8_t *y, int32_t y_step,
                                 int8_t *out, int32_t n, int maximum)
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
    /* The rest (all of it on the M0) by the steps' four cases, a repeating input's byte hoisted: no
     * multiply of the index by a step per element. */
    if (x_step && y_step) {
#if defined(__ARM_ARCH_6M__) && !TC_DSP && !TC_MVE
        if (n > 0) {
            tc_minmax_v6m(x, y, out, n, maximum);
        }
        return;
#endif
        for (; i < n; i++) {
            out[i] = tc_minmax_pick(x[i], y[i], maximum);
        }
    } else if (x_step) {
        const int32_t b = *y;
        for (; i < n; i++) {
            out[i] = tc_minmax_pick(x[i], b, maximum);
        }
    } else {
        const int32_t a = *x, b = y_step ? 0 : *y;
        for (; i < n; i++) {
            out[i] = tc_minmax_pick(a, y_step ? y[i] : b, maximum);
        }
    }
}

/* A kernel file's body: tc_<op>_s8 walks the broadcast (tc_broadcast.h) with a row of its own, `maximum`
 * a constant in it so that each kernel keeps only its own comparisons. */
#define TC_MINMAX_KERNEL(op, maximum)                                                                    \
    static TC_MINMAX_ROW void row(const void *p, const int8_t *x, int32_t xs, const int8_t *y, int32_t ys, \
                                 int8_t *out, int32_t n)                                                 \
    {                                                                                                    \
        (void)p;                                                                                         \
        tc_minmax_row(x, xs, y, ys, out, n, maximum);                                                    \
    }                                                                                                    \
                                                                                                         \
    tc_status tc_##op##_s8(const tc_minmax_params *p, const int8_t *input1, const int8_t *input2,        \
                           int8_t *output)                                                               \
    {                                                                                                    \
        tc_broadcast_walk(&p->broadcast, p->constant1 ? p->constant1 : input1,                           \
                          p->constant2 ? p->constant2 : input2, output, row, NULL);                      \
        return TC_OK;                                                                                    \
    }

#endif /* TC_MINMAX_H */
