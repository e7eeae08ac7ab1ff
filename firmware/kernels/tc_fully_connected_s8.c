/* FULLY_CONNECTED, int8 activations and weights, int32 bias: portable C. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

tc_status tc_fully_connected_s8(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->input_depth;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in = input + b * depth;
        for (int32_t o = 0; o < p->output_depth; o++) {
            const int8_t *w = p->weights + o * depth;
            int32_t acc = p->bias[o];
            for (int32_t i = 0; i < depth; i++) {
                acc += (int32_t)w[i] * (int32_t)in[i];
            }
            const int32_t q = p->requant.per_channel ? o : 0;
            acc = tc_requantize(acc, p->requant.multiplier[q], p->requant.shift[q]);
            acc += p->output_offset;
            *output++ = (int8_t)tc_clamp_i32(acc, p->act.min, p->act.max);
        }
    }
    return TC_OK;
}
