/* MUL of two int8 tensors, broadcast (tc_broadcast.h), as TFLite Micro's reference_integer_ops::Mul:
 *   out = clamp(requantize((q1 + offset1) (q2 + offset2), multiplier, shift) + output offset),
 * one multiplier for input1 x input2 / output scale; the product is at most 256^2 in magnitude.
 * A row in which one input repeats adds its offset once. DSP: the five-instruction requantization of
 * tc_dsp.h where the multiplier allows (a right shift of 1 to 23: nearly always). Helium: four lanes per
 * step, requantized as tc_requantize does, bit for bit. Each element is read before it is written. */
#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"
#include "tc_mve.h"

static void row(const void *params, const int8_t *x, int32_t x_step, const int8_t *y, int32_t y_step, int8_t *out,
                int32_t n)
{
    const tc_mul_params *p = (const tc_mul_params *)params;
    const int32_t o1 = p->input1_offset, o2 = p->input2_offset, oo = p->output_offset;
    const int32_t m = p->output_multiplier, sh = p->output_shift, lo = p->act.min, hi = p->act.max;
    int32_t i = 0;
#if TC_MVE
    {
        const int32x4_t vm = vdupq_n_s32(m), vl = vdupq_n_s32(sh > 0 ? sh : 0), vr = vdupq_n_s32(sh > 0 ? 0 : sh);
        for (; i + 4 <= n; i += 4) {
            const int32x4_t a = x_step ? vldrbq_s32(x + i) : vdupq_n_s32(*x);
            const int32x4_t b = y_step ? vldrbq_s32(y + i) : vdupq_n_s32(*y);
            int32x4_t r = tc_mve_requantize(vmulq_s32(vaddq_n_s32(a, o1), vaddq_n_s32(b, o2)), vm, vl, vr);
            r = vminq_s32(vmaxq_s32(vaddq_n_s32(r, oo), vdupq_n_s32(lo)), vdupq_n_s32(hi));
            vstrbq_s32(out + i, r);
        }
    }
#endif
#if TC_DSP && !TC_MVE
    if (tc_dsp_quant_fits(m, sh)) {
        const tc_dsp_quant q = tc_dsp_quant_make(m, sh, oo);
        const int32_t b = *y + o2;
        for (; i < n; i++) {
            const int32_t product = (x[i * x_step] + o1) * (y_step ? y[i] + o2 : b);
            out[i] = (int8_t)tc_clamp_i32(tc_dsp_requantize_s8(product, &q), lo, hi);
        }
        return;
    }
#endif
    if (y_step == 0) {
        const int32_t b = *y + o2;
        for (; i < n; i++) {
            out[i] = (int8_t)tc_clamp_i32(tc_requantize((x[i * x_step] + o1) * b, m, sh) + oo, lo, hi);
        }
    } else if (x_step == 0) {
        const int32_t a = *x + o1;
        for (; i < n; i++) {
            out[i] = (int8_t)tc_clamp_i32(tc_requantize(a * (y[i] + o2), m, sh) + oo, lo, hi);
        }
    } else {
        for (; i < n; i++) {
            out[i] = (int8_t)tc_clamp_i32(tc_requantize((x[i] + o1) * (y[i] + o2), m, sh) + oo, lo, hi);
        }
    }
}

tc_status tc_mul_s8(const tc_mul_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    tc_broadcast_walk(&p->broadcast, p->constant1 ? p->constant1 : input1, p->constant2 ? p->constant2 : input2,
                      output, row, p);
    return TC_OK;
}
