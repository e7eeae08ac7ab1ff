/* MEAN (or SUM) of an int8 NHWC tensor over H and W, one value per batch and channel: portable C. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

tc_status tc_mean_s8(const tc_mean_params *p, const int8_t *input, int8_t *output)
{
    const int32_t count = p->input.h * p->input.w, channels = p->input.c;
    for (int32_t n = 0; n < p->input.n; n++) {
        const int8_t *image = input + n * count * channels;
        for (int32_t c = 0; c < channels; c++) {
            int32_t sum = 0;
            for (int32_t i = 0; i < count; i++) {
                sum += image[i * channels + c];
            }
            sum -= p->input_zero_point * count;
            const int32_t q = tc_requantize(sum, p->multiplier, p->shift) + p->output_offset;
            *output++ = (int8_t)tc_clamp_i32(q, TC_INT8_MIN, TC_INT8_MAX);
        }
    }
    return TC_OK;
}
