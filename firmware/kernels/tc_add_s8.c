/* ADD of two int8 tensors with different scales, NHWC broadcasting: portable C. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

/* One input moved to the shared scale: (q + offset) * 2^left_shift * multiplier. */
static inline int32_t rescale(int32_t q, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    return tc_requantize((q + offset) * (1 << left_shift), multiplier, shift);
}

tc_status tc_add_s8(const tc_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
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
    return TC_OK;
}
