/* SOFTMAX over the last axis, int8 in, int8 out (scale 1/256, zero point -128): portable C. */
#include "tc_kernels.h"
#include "tc_softmax_fixedpoint.h"

#define ACCUMULATION_INTEGER_BITS 12 /* room for the sum of up to 4096 exp() values */

static inline int32_t scaled_exp(const tc_softmax_params *p, int32_t diff)
{
    /* beta * input_scale * diff in Q5.26, then exp() in Q0. */
    return tc_exp_on_negative_values_q5(tc_requantize(diff, p->input_multiplier, p->input_left_shift));
}

tc_status tc_softmax_s8(const tc_softmax_params *p, const int8_t *input, int8_t *output)
{
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *in = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max = TC_INT8_MIN;
        for (int32_t c = 0; c < p->depth; c++) {
            max = tc_max_i32(max, in[c]);
        }
        int32_t sum = 0; /* Q12.19 */
        for (int32_t c = 0; c < p->depth; c++) {
            const int32_t diff = in[c] - max;
            if (diff >= p->diff_min) {
                sum += tc_rounding_divide_by_pot(scaled_exp(p, diff), ACCUMULATION_INTEGER_BITS);
            }
        }
        int32_t bits_over_unit;
        const int32_t scale = tc_reciprocal(sum, ACCUMULATION_INTEGER_BITS, &bits_over_unit);
        const int32_t exponent = bits_over_unit + 31 - 8; /* down to 8 bits of probability */
        for (int32_t c = 0; c < p->depth; c++) {
            const int32_t diff = in[c] - max;
            int32_t q = TC_INT8_MIN;
            if (diff >= p->diff_min) {
                const int32_t prob = tc_sat_rounding_doubling_high_mul(scale, scaled_exp(p, diff));
                q = tc_rounding_divide_by_pot(prob, exponent) + TC_INT8_MIN;
            }
            out[c] = (int8_t)tc_clamp_i32(q, TC_INT8_MIN, TC_INT8_MAX);
        }
    }
    return TC_OK;
}
