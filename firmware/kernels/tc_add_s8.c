/* ADD and SUB of two int8 tensors with different scales, broadcast (tc_broadcast.h): one kernel, as
 * TFLite Micro's two differ only in the sign of the second rescaled input (SUB subtracts it after the
 * rescaling; negating its multiplier instead would round ties differently). Per element:
 *   scaled_i = requantize((q_i + offset_i) << 20, multiplier_i, shift_i)   (|.| < 2^28, multiplier <= 1/2)
 *   out = clamp(requantize(scaled_1 +/- scaled_2, output multiplier, output shift) + output offset).
 * A row in which one input repeats (a scalar, or a value per pixel) rescales it once.
 * DSP: each rescaling in four instructions (tc_dsp_rescale) and the output in five (tc_dsp_requantize_s8)
 * where the multipliers allow, which is nearly always. Helium: four lanes per step for rows in which
 * both inputs advance, requantized as tc_requantize does, bit for bit.
 * Each element is read before it is written: the output may take over an input of the output's shape. */
#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"
#include "tc_mve.h"

static inline int32_t rescale(int32_t q, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    return tc_requantize((q + offset) * (1 << left_shift), multiplier, shift);
}

#if TC_DSP && !TC_MVE   /* Helium cores take the vector rows instead */
/* requantize(x, M, -n) for M in [2^30, 2^31) and n in [0, 31], exact for |x| < 2^30 (the rescaled inputs):
 * SMMLAR(x, 2M - 2^32, x) is gemmlowp's rounding doubling high multiply (see tc_dsp_quant), and its rounding
 * divide by 2^n is floor((y - [y < 0] + 2^(n-1)) / 2^n) for n >= 1 (ties away from zero), y itself for n = 0. */
typedef struct {
    int32_t multiplier2, shift, rounding, negative_fix;  /* 2M - 2^32, n, 2^(n-1) or 0, -1 or 0 */
} tc_dsp_rescaler;

static inline int tc_dsp_rescaler_fits(int32_t multiplier, int32_t shift)
{
    return multiplier >= (1 << 30) && shift <= 0 && shift >= -31;
}

static inline tc_dsp_rescaler tc_dsp_rescaler_make(int32_t multiplier, int32_t shift)
{
    const tc_dsp_rescaler r = {(int32_t)((uint32_t)multiplier << 1), -shift,
                               shift < 0 ? (int32_t)(1u << (-shift - 1)) : 0, shift < 0 ? -1 : 0};
    return r;
}

static inline int32_t tc_dsp_rescale(int32_t x, const tc_dsp_rescaler *r)
{
    int32_t y;
    __asm__("smmlar %0, %1, %2, %1" : "=r"(y) : "r"(x), "r"(r->multiplier2));
    return (y + ((y >> 31) & r->negative_fix) + r->rounding) >> r->shift;
}

/* Rows of ADD or SUB through the forms above (the caller checked that they apply). */
static void add_row_dsp(const tc_add_params *p, const int8_t *x, int32_t x_step, const int8_t *y, int32_t y_step,
                        int8_t *out, int32_t n, int subtract)
{
    const tc_dsp_rescaler r1 = tc_dsp_rescaler_make(p->input1_multiplier, p->input1_shift);
    const tc_dsp_rescaler r2 = tc_dsp_rescaler_make(p->input2_multiplier, p->input2_shift);
    const tc_dsp_quant q = tc_dsp_quant_make(p->output_multiplier, p->output_shift, p->output_offset);
    const int32_t o1 = p->input1_offset, o2 = p->input2_offset, lo = p->act.min, hi = p->act.max;
    if (y_step == 0) {
        const int32_t b = tc_dsp_rescale((*y + o2) * (1 << 20), &r2), b_signed = subtract ? -b : b;
        for (int32_t i = 0; i < n; i++) {
            const int32_t sum = tc_dsp_rescale((x[i * x_step] + o1) * (1 << 20), &r1) + b_signed;
            out[i] = (int8_t)tc_clamp_i32(tc_dsp_requantize_s8(sum, &q), lo, hi);
        }
    } else if (x_step == 0) {
        const int32_t a = tc_dsp_rescale((*x + o1) * (1 << 20), &r1);
        for (int32_t i = 0; i < n; i++) {
            const int32_t b = tc_dsp_rescale((y[i] + o2) * (1 << 20), &r2);
            out[i] = (int8_t)tc_clamp_i32(tc_dsp_requantize_s8(subtract ? a - b : a + b, &q), lo, hi);
        }
    } else {
        for (int32_t i = 0; i < n; i++) {
            const int32_t a = tc_dsp_rescale((x[i] + o1) * (1 << 20), &r1);
            const int32_t b = tc_dsp_rescale((y[i] + o2) * (1 << 20), &r2);
            out[i] = (int8_t)tc_clamp_i32(tc_dsp_requantize_s8(subtract ? a - b : a + b, &q), lo, hi);
        }
    }
}

static int add_dsp_fits(const tc_add_params *p)
{
    return tc_dsp_rescaler_fits(p->input1_multiplier, p->input1_shift) &&
           tc_dsp_rescaler_fits(p->input2_multiplier, p->input2_shift) &&
           tc_dsp_quant_fits(p->output_multiplier, p->output_shift);
}

static void row_add_dsp(const void *p, const int8_t *x, int32_t xs, const int8_t *y, int32_t ys, int8_t *out, int32_t n)
{
    add_row_dsp((const tc_add_params *)p, x, xs, y, ys, out, n, 0);
}

static void row_sub_dsp(const void *p, const int8_t *x, int32_t xs, const int8_t *y, int32_t ys, int8_t *out, int32_t n)
{
    add_row_dsp((const tc_add_params *)p, x, xs, y, ys, out, n, 1);
}
#endif

static inline void add_row(const tc_add_params *p, const int8_t *x, int32_t x_step, const int8_t *y,
                           int32_t y_step, int8_t *out, int32_t n, int subtract)
{
    const int32_t ls = p->left_shift;
    const int32_t o1 = p->input1_offset, m1 = p->input1_multiplier, sh1 = p->input1_shift;
    const int32_t o2 = p->input2_offset, m2 = p->input2_multiplier, sh2 = p->input2_shift;
    const int32_t oo = p->output_offset, mo = p->output_multiplier, sho = p->output_shift;
    const int32_t lo = p->act.min, hi = p->act.max;
    int32_t i = 0;
    if (y_step == 0) {
        const int32_t b = rescale(*y, o2, ls, m2, sh2);
        const int32_t b_signed = subtract ? -b : b;
        for (; i < n; i++) {
            const int32_t sum = rescale(x[i * x_step], o1, ls, m1, sh1) + b_signed;
            out[i] = (int8_t)tc_clamp_i32(tc_requantize(sum, mo, sho) + oo, lo, hi);
        }
        return;
    }
    if (x_step == 0) {
        const int32_t a = rescale(*x, o1, ls, m1, sh1);
        for (; i < n; i++) {
            const int32_t b = rescale(y[i], o2, ls, m2, sh2);
            out[i] = (int8_t)tc_clamp_i32(tc_requantize(subtract ? a - b : a + b, mo, sho) + oo, lo, hi);
        }
        return;
    }
#if TC_MVE
    {
        const int32x4_t vm1 = vdupq_n_s32(m1), vl1 = vdupq_n_s32(sh1 > 0 ? sh1 : 0), vr1 = vdupq_n_s32(sh1 > 0 ? 0 : sh1);
        const int32x4_t vm2 = vdupq_n_s32(m2), vl2 = vdupq_n_s32(sh2 > 0 ? sh2 : 0), vr2 = vdupq_n_s32(sh2 > 0 ? 0 : sh2);
        const int32x4_t vmo = vdupq_n_s32(mo), vlo = vdupq_n_s32(sho > 0 ? sho : 0), vro = vdupq_n_s32(sho > 0 ? 0 : sho);
        for (; i + 4 <= n; i += 4) {
            const int32x4_t a = vshlq_n_s32(vaddq_n_s32(vldrbq_s32(x + i), o1), 20);
            const int32x4_t b = vshlq_n_s32(vaddq_n_s32(vldrbq_s32(y + i), o2), 20);
            const int32x4_t sa = tc_mve_requantize(a, vm1, vl1, vr1), sb = tc_mve_requantize(b, vm2, vl2, vr2);
            int32x4_t r = tc_mve_requantize(subtract ? vsubq_s32(sa, sb) : vaddq_s32(sa, sb), vmo, vlo, vro);
            r = vminq_s32(vmaxq_s32(vaddq_n_s32(r, oo), vdupq_n_s32(lo)), vdupq_n_s32(hi));
            vstrbq_s32(out + i, r);
        }
    }
#endif
    for (; i < n; i++) {
        const int32_t a = rescale(x[i], o1, ls, m1, sh1), b = rescale(y[i], o2, ls, m2, sh2);
        out[i] = (int8_t)tc_clamp_i32(tc_requantize(subtract ? a - b : a + b, mo, sho) + oo, lo, hi);
    }
}

static void row_add(const void *p, const int8_t *x, int32_t xs, const int8_t *y, int32_t ys, int8_t *out, int32_t n)
{
    add_row((const tc_add_params *)p, x, xs, y, ys, out, n, 0);
}

static void row_sub(const void *p, const int8_t *x, int32_t xs, const int8_t *y, int32_t ys, int8_t *out, int32_t n)
{
    add_row((const tc_add_params *)p, x, xs, y, ys, out, n, 1);
}

tc_status tc_add_s8(const tc_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    if (p->left_shift != 20) {   /* the Helium path shifts by the constant */
        return TC_ERROR_ARGUMENT;
    }
    const int8_t *x = p->constant1 ? p->constant1 : input1, *y = p->constant2 ? p->constant2 : input2;
#if TC_DSP && !TC_MVE
    if (add_dsp_fits(p)) {
        tc_broadcast_walk(&p->broadcast, x, y, output, p->subtract ? row_sub_dsp : row_add_dsp, p);
        return TC_OK;
    }
#endif
    tc_broadcast_walk(&p->broadcast, x, y, output, p->subtract ? row_sub : row_add, p);
    return TC_OK;
}
