/* SOFTMAX over the last axis, int8 in, int8 out (scale 1/256, zero point -128): portable C.
 * exp() of each input's difference from its row's largest comes from the layer's table, computed by the
 * generator with TFLite Micro's fixed-point formulas (tinycompress/ops/softmax.py exp_table); the sum's
 * reciprocal and the scaling follow gemmlowp's, as TFLite Micro's SoftmaxInt8 does. */
#include "tc_kernels.h"
#include "tc_softmax_fixedpoint.h"

#define ACCUMULATION_INTEGER_BITS 12 /* room for the sum of up to 4096 exp() values */

tc_status tc_softmax_s8(const tc_softmax_params *p, const int8_t *input, int8_t *output)
{
    const int32_t *const exps = p->exp_table, size = p->table_size;
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *in = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max = TC_INT8_MIN;
        for (int32_t c = 0; c < p->depth; c++) {
            max = tc_max_i32(max, in[c]);
        }
        int32_t sum = 0; /* Q12.19 */
        for (int32_t c = 0; c < p->depth; c++) {
            const int32_t d = max - in[c]; /* in [0, 255]; beyond the table exp() is 0 */
            if (d < size) {
                sum += tc_rounding_divide_by_pot(exps[d], ACCUMULATION_INTEGER_BITS);
            }
        }
        int32_t bits_over_unit;
        const int32_t scale = tc_reciprocal(sum, ACCUMULATION_INTEGER_BITS, &bits_over_unit);
        const int32_t exponent = bits_over_unit + 31 - 8; /* down to 8 bits of probability */
        for (int32_t c = 0; c < p->depth; c++) {
            const int32_t d = max - in[c];
            int32_t q = TC_INT8_MIN;
            if (d < size) {
                const int32_t prob = tc_sat_rounding_doubling_high_mul(scale, exps[d]);
                q = tc_rounding_divide_by_pot(prob, exponent) + TC_INT8_MIN;
            }
            out[c] = (int8_t)tc_clamp_i32(q, TC_INT8_MIN, TC_INT8_MAX);
        }
    }
    return TC_OK;
}
