/* PRELU, int8, with a constant alpha that repeats over the output's trailing axes: portable C.
 * As TFLite Micro's reference kernel: (q - zero point) >= 0 goes through the identity requantization,
 * a negative one is multiplied by (alpha - alpha zero point), at most 255 * 255 in magnitude, and goes
 * through input * alpha / output scale. Each element is read before it is written: may run in place. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

tc_status tc_prelu_s8(const tc_prelu_params *p, const int8_t *input, int8_t *output)
{
    int32_t a = 0;
    for (int32_t i = 0; i < p->size; i++) {
        const int32_t x = input[i] + p->input_offset;
        int32_t y;
        if (x >= 0) {
            y = tc_requantize(x, p->identity_multiplier, p->identity_shift);
        } else {
            y = tc_requantize(x * (p->alpha[a] + p->alpha_offset), p->alpha_multiplier, p->alpha_shift);
        }
        output[i] = (int8_t)tc_clamp_i32(y + p->output_offset, -128, 127);
        if (++a == p->alpha_size) {
            a = 0;
        }
    }
    return TC_OK;
}
