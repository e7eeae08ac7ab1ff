/* The reductions MEAN, SUM, REDUCE_MAX and ARG_MAX over any axes: one kernel. The code generator
 * (tinycompress/ops/reduce.py) sees the input as [outer, reduced, inner] whatever its rank and axes; each
 * output element, at [o, i], reduces the `reduced` inputs input[(o * reduced + r) * inner + i]. keep_dims
 * does not change the bytes. Portable C: a reduction reads each input once and does one add or compare per
 * element, against TFLite Micro's generic walk that recomputes two multi-dimensional offsets per element.
 *
 * SUM (MEAN and SUM): the int32 sum less input_zero_point * reduced, requantized (MEAN's multiplier has
 * 1/reduced folded in on the host, as TFLite Micro folds it), plus the output zero point, clamped.
 * The sum of at most 2^23 int8 values fits int32 (verify.py caps tensors far below that).
 * MAX: the largest raw value (input and output share their quantization).
 * ARG_MAX: the index of the first largest value, written as int32. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

static int32_t sum_strided(const int8_t *x, int32_t count, int32_t stride)
{
    int32_t sum = 0;
    if (stride == 1) {
        int32_t r = 0;
        for (; r + 4 <= count; r += 4) {   /* four loads per loop test */
            sum += (int32_t)x[r] + x[r + 1] + x[r + 2] + x[r + 3];
        }
        for (; r < count; r++) {
            sum += x[r];
        }
        return sum;
    }
    for (int32_t r = 0; r < count; r++, x += stride) {
        sum += *x;
    }
    return sum;
}

tc_status tc_reduce_s8(const tc_reduce_params *p, const int8_t *input, void *output)
{
    const int32_t reduced = p->reduced, inner = p->inner;
    int8_t *out8 = (int8_t *)output;
    int32_t *out32 = (int32_t *)output;
    if (reduced < 1) {
        return TC_ERROR_ARGUMENT;
    }
    const int32_t zero_sum = p->input_zero_point * reduced;
    for (int32_t o = 0; o < p->outer; o++) {
        const int8_t *block = input + o * reduced * inner;
        for (int32_t i = 0; i < inner; i++) {
            const int8_t *x = block + i;
            if (p->op == TC_REDUCE_SUM) {
                const int32_t sum = sum_strided(x, reduced, inner) - zero_sum;
                const int32_t q = tc_requantize(sum, p->multiplier, p->shift) + p->output_offset;
                *out8++ = (int8_t)tc_clamp_i32(q, TC_INT8_MIN, TC_INT8_MAX);
            } else {
                int32_t best = x[0], at = 0;
                for (int32_t r = 1; r < reduced; r++) {
                    const int32_t v = x[r * inner];
                    if (v > best) {   /* strictly: the first of equal values wins, as TFLite Micro's */
                        best = v;
                        at = r;
                    }
                }
                if (p->op == TC_REDUCE_MAX) {
                    *out8++ = (int8_t)best;
                } else {
                    *out32++ = at;
                }
            }
        }
    }
    return TC_OK;
}
