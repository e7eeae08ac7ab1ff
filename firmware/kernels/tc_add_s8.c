/* ADD and SUB of two int8 tensors with different scales, broadcast (tc_broadcast.h): one kernel, as
 * TFLite Micro's two differ only in the sign of the second rescaled input (SUB subtracts it after the
 * rescaling; negating its multiplier instead would round ties differently). Per element:
 *   scaled_i = requantize((q_i + offset_i) << 20, multiplier_i, shift_i)
 *   out = clamp(requantize(scaled_1 +/- scaled_2, output multiplier, output shift) + output offset).
 * TFLite's Prepare gives the input of the larger scale the multiplier 1/2, whose scaled value is
 * (q + offset) << 19 exactly (tc_rescale_half); the other one is rescaled in 32-bit arithmetic
 * (tc_rescale_apply, tc_fixedpoint.h), on DSP cores as one SMMLAR, and the output's requantization takes
 * the five-instruction form of tc_dsp_requantize_s8 where it applies: about 17 instructions per element on
 * the M4. Other parameters take TFLite Micro's general form. Each element is read before it is written
 * (the output may take over an input of the output's shape). */
#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

static inline int32_t rescale(int32_t q, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    return tc_requantize((q + offset) * (1 << left_shift), multiplier, shift);
}

/* The general form, any parameters TFLite Micro accepts: one row. */
static inline void general_row(const tc_add_params *p, const int8_t *a, int32_t a_step, const int8_t *b,
                               int32_t b_step, int8_t *out, int32_t count, int subtract)
{
    for (int32_t i = 0; i < count; i++) {
        const int32_t x = rescale(*a, p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift);
        const int32_t y = rescale(*b, p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift);
        const int32_t q = tc_requantize(subtract ? x - y : x + y, p->output_multiplier, p->output_shift);
        out[i] = (int8_t)tc_clamp_i32(q + p->output_offset, p->act.min, p->act.max);
        a += a_step;
        b += b_step;
    }
}

static void general_add(const void *p, const int8_t *a, int32_t as, const int8_t *b, int32_t bs, int8_t *out,
                        int32_t n)
{
    general_row((const tc_add_params *)p, a, as, b, bs, out, n, 0);
}

static void general_sub(const void *p, const int8_t *a, int32_t as, const int8_t *b, int32_t bs, int8_t *out,
                        int32_t n)
{
    general_row((const tc_add_params *)p, a, as, b, bs, out, n, 1);
}

/* The row loop's constants, the inputs ordered so that the first is the one with the multiplier 1/2 where
 * there is one (addition commutes exactly in int32; SUB keeps its order). */
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
static inline void add_row(const add_quant *q, const int8_t *a, int32_t a_step, const int8_t *b, int32_t b_step,
                           int8_t *out, int32_t count, int subtract)
{
#if TC_DSP
    if (q->dsp && q->half) {   /* the usual case: six constants for the arithmetic, all in registers */
        const int32_t half_offset = q->half_offset;
        const tc_rescale second = q->second;
        const tc_dsp_quant o = q->out;
        if (q->full_range) {
            for (int32_t i = 0; i < count; i++) {
                const int32_t x = tc_rescale_half(*a, half_offset), y = tc_rescale_apply_dsp(&second, *b);
                out[i] = (int8_t)tc_dsp_requantize_s8(subtract ? x - y : x + y, &o);
                a += a_step;
                b += b_step;
            }
        } else {
            const int32_t lo = q->lo, hi = q->hi;
            for (int32_t i = 0; i < count; i++) {
                const int32_t x = tc_rescale_half(*a, half_offset), y = tc_rescale_apply_dsp(&second, *b);
                out[i] = (int8_t)tc_clamp_i32(tc_dsp_requantize_s8(subtract ? x - y : x + y, &o), lo, hi);
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
        const int32_t x = first_scaled(q, &first, half_offset, *a), y = tc_rescale_apply(&second, *b);
        out[i] = (int8_t)tc_clamp_i32(tc_requantize(subtract ? x - y : x + y, multiplier, shift) + offset, lo, hi);
        a += a_step;
        b += b_step;
    }
}

static void row_add(const void *q, const int8_t *a, int32_t as, const int8_t *b, int32_t bs, int8_t *out, int32_t n)
{
    add_row((const add_quant *)q, a, as, b, bs, out, n, 0);
}

static void row_sub(const void *q, const int8_t *a, int32_t as, const int8_t *b, int32_t bs, int8_t *out, int32_t n)
{
    add_row((const add_quant *)q, a, as, b, bs, out, n, 1);
}

tc_status tc_add_s8(const tc_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    input1 = p->constant1 ? p->constant1 : input1;
    input2 = p->constant2 ? p->constant2 : input2;
    if (!tc_rescale_fits(p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift) ||
        !tc_rescale_fits(p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift)) {
        tc_broadcast_walk(&p->broadcast, input1, input2, output, p->subtract ? general_sub : general_add, p);
        return TC_OK;
    }
    /* ADD: input 2 first where its multiplier is the half and input 1's is not. */
    const int swap = !p->subtract && !tc_rescale_is_half(p->input1_multiplier, p->input1_shift) &&
                     tc_rescale_is_half(p->input2_multiplier, p->input2_shift);
    tc_broadcast walk = p->broadcast;
    if (swap) {
        for (int32_t i = 0; i < TC_BROADCAST_RANK; i++) {
            walk.strides1[i] = p->broadcast.strides2[i];
            walk.strides2[i] = p->broadcast.strides1[i];
        }
    }
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
    tc_broadcast_walk(&walk, swap ? input2 : input1, swap ? input1 : input2, output,
                      p->subtract ? row_sub : row_add, &q);
    return TC_OK;
}
