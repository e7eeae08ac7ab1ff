/* ADD of two int8 tensors with different scales, NHWC broadcasting. Per element, as TFLite Micro:
 *   scaled_i = requantize((q_i + offset_i) << 20, multiplier_i, shift_i)
 *   out = clamp(requantize(scaled_1 + scaled_2, output multiplier, output shift) + output offset).
 * TFLite's Prepare gives the input of the larger scale the multiplier 1/2, whose scaled value is
 * (q + offset) << 19 exactly (tc_rescale_half); the other one is rescaled in 32-bit arithmetic
 * (tc_rescale_apply, tc_fixedpoint.h), on DSP cores as one SMMLAR, and the output's requantization takes
 * the five-instruction form of tc_dsp_requantize_s8 where it applies: about 17 instructions per element on
 * the M4. Other parameters take TFLite Micro's general form. Inputs of the output's shape run as one flat
 * loop; each element is read before it is written (the output may take over such an input). */
#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

/* One input moved to the shared scale: (q + offset) * 2^left_shift * multiplier. */
static inline int32_t rescale(int32_t q, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    return tc_requantize((q + offset) * (1 << left_shift), multiplier, shift);
}

/* The general form, any parameters TFLite Micro accepts. */
static void add_general(const tc_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    const tc_dims *s1 = &p->input1_strides, *s2 = &p->input2_strides;
    for (int32_t n = 0; n < p->output.n; n++) {
        for (int32_t h = 0; h < p->output.h; h++) {
            for (int32_t w = 0; w < p->output.w; w++) {
                const int8_t *a = input1 + n * s1->n + h * s1->h + w * s1->w;
                const int8_t *b = input2 + n * s2->n + h * s2->h + w * s2->w;
                for (int32_t c = 0; c < p->output.c; c++) {
                    const int32_t sum =
                        rescale(a[c * s1->c], p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift) +
                        rescale(b[c * s2->c], p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift);
                    const int32_t q = tc_requantize(sum, p->output_multiplier, p->output_shift) + p->output_offset;
                    *output++ = (int8_t)tc_clamp_i32(q, p->act.min, p->act.max);
                }
            }
        }
    }
}

/* The row loop's constants, the inputs ordered so that the first is the one with the multiplier 1/2 where
 * there is one (addition commutes exactly in int32). */
typedef struct {
    int half;                 /* the first input's multiplier is 1/2: its offset is half_offset */
    int32_t half_offset;
    tc_rescale first, second; /* first: used where !half */
    int32_t multiplier, shift, offset, lo, hi;
    int full_range;           /* the clamp is int8's own */
#if TC_DSP
    int dsp;                  /* second input's multiplier in [2^30, 2^31), the output's fast form applies */
    tc_dsp_quant out;
#endif
} add_quant;

static inline int32_t first_scaled(const add_quant *q, const tc_rescale *first, int32_t half_offset,
                                   int32_t x)
{
    return q->half ? tc_rescale_half(x, half_offset) : tc_rescale_apply(first, x);
}

/* One row of `count` outputs; an input step of 0 repeats its element (broadcasting), 1 walks it. */
static void add_row(const add_quant *q, const int8_t *a, int32_t a_step, const int8_t *b, int32_t b_step,
                    int8_t *out, int32_t count)
{
#if TC_DSP
    if (q->dsp && q->half) {   /* the usual case: six constants for the arithmetic, all in registers */
        const int32_t half_offset = q->half_offset;
        const tc_rescale second = q->second;
        const tc_dsp_quant o = q->out;
        if (q->full_range) {
            for (int32_t i = 0; i < count; i++) {
                const int32_t sum = tc_rescale_half(*a, half_offset) + tc_rescale_apply_dsp(&second, *b);
                out[i] = (int8_t)tc_dsp_requantize_s8(sum, &o);
                a += a_step;
                b += b_step;
            }
        } else {
            const int32_t lo = q->lo, hi = q->hi;
            for (int32_t i = 0; i < count; i++) {
                const int32_t sum = tc_rescale_half(*a, half_offset) + tc_rescale_apply_dsp(&second, *b);
                out[i] = (int8_t)tc_clamp_i32(tc_dsp_requantize_s8(sum, &o), lo, hi);
                a += a_step;
                b += b_step;
            }
        }
        return;
    }
#endif
    const tc_rescale first = q->first, second = q->second;
    const int32_t half_offset = q->half_offset;
    const int32_t multiplier = q->multiplier, shift = q->shift, offset = q->offset, lo = q->lo, hi = q->hi;
    for (int32_t i = 0; i < count; i++) {
        const int32_t sum = first_scaled(q, &first, half_offset, *a) + tc_rescale_apply(&second, *b);
        out[i] = (int8_t)tc_clamp_i32(tc_requantize(sum, multiplier, shift) + offset, lo, hi);
        a += a_step;
        b += b_step;
    }
}

tc_status tc_add_s8(const tc_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    if (!tc_rescale_fits(p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift) ||
        !tc_rescale_fits(p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift)) {
        add_general(p, input1, input2, output);
        return TC_OK;
    }
    /* Input 2 first where its multiplier is the half and input 1's is not. */
    const int swap = !tc_rescale_is_half(p->input1_multiplier, p->input1_shift) &&
                     tc_rescale_is_half(p->input2_multiplier, p->input2_shift);
    const int8_t *a = swap ? input2 : input1, *b = swap ? input1 : input2;
    const tc_dims sa = swap ? p->input2_strides : p->input1_strides;
    const tc_dims sb = swap ? p->input1_strides : p->input2_strides;
    add_quant q;
    q.first = swap ? tc_rescale_make(p->input2_offset, p->input2_multiplier, p->input2_shift)
                   : tc_rescale_make(p->input1_offset, p->input1_multiplier, p->input1_shift);
    q.second = swap ? tc_rescale_make(p->input1_offset, p->input1_multiplier, p->input1_shift)
                    : tc_rescale_make(p->input2_offset, p->input2_multiplier, p->input2_shift);
    q.half = swap || tc_rescale_is_half(p->input1_multiplier, p->input1_shift);
    q.half_offset = q.first.offset;
    q.multiplier = p->output_multiplier;
    q.shift = p->output_shift;
    q.offset = p->output_offset;
    q.lo = p->act.min;
    q.hi = p->act.max;
    q.full_range = q.lo == TC_INT8_MIN && q.hi == TC_INT8_MAX;
#if TC_DSP
    q.dsp = tc_rescale_dsp_fits(&q.second) && tc_dsp_quant_fits(p->output_multiplier, p->output_shift);
    q.out = tc_dsp_quant_make(q.dsp ? p->output_multiplier : (1 << 30), q.dsp ? p->output_shift : -1,
                              q.offset);
#endif
    const tc_dims d = p->output;
    const int flat_a = sa.n == d.h * d.w * d.c && sa.h == d.w * d.c && sa.w == d.c && sa.c == 1;
    const int flat_b = sb.n == d.h * d.w * d.c && sb.h == d.w * d.c && sb.w == d.c && sb.c == 1;
    if (flat_a && flat_b) {
        add_row(&q, a, 1, b, 1, output, d.n * d.h * d.w * d.c);
        return TC_OK;
    }
    for (int32_t n = 0; n < d.n; n++) {
        for (int32_t h = 0; h < d.h; h++) {
            for (int32_t w = 0; w < d.w; w++) {
                add_row(&q, a + n * sa.n + h * sa.h + w * sa.w, sa.c, b + n * sb.n + h * sb.h + w * sb.w,
                        sb.c, output, d.c);
                output += d.c;
            }
        }
    }
    return TC_OK;
}
