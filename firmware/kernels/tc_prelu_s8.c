/* PRELU, int8, with a constant alpha that repeats over the output's trailing axes: portable C.
 * As TFLite Micro's reference kernel: (q - zero point) >= 0 goes through the identity requantization,
 * a negative one is multiplied by (alpha - alpha zero point), at most 255 * 255 in magnitude, and goes
 * through input * alpha / output scale. Each element is read before it is written: may run in place.
 * The parameters are copied to locals: the compiler cannot know that the int8 stores leave them alone. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

tc_status tc_prelu_s8(const tc_prelu_params *p, const int8_t *input, int8_t *output)
{
    const int32_t size = p->size, alpha_size = p->alpha_size;
    const int32_t input_offset = p->input_offset, alpha_offset = p->alpha_offset, output_offset = p->output_offset;
    const int32_t identity_multiplier = p->identity_multiplier, identity_shift = p->identity_shift;
    const int32_t alpha_multiplier = p->alpha_multiplier, alpha_shift = p->alpha_shift;
    const int8_t *alpha = p->alpha;
    int32_t a = 0;
    for (int32_t i = 0; i < size; i++) {
        const int32_t x = input[i] + input_offset;
        const int32_t y = x >= 0 ? tc_requantize(x, identity_multiplier, identity_shift)
                                 : tc_requantize(x * (alpha[a] + alpha_offset), alpha_multiplier, alpha_shift);
        output[i] = (int8_t)tc_clamp_i32(y + output_offset, -128, 127);
        if (++a == alpha_size) {
            a = 0;
        }
    }
    return TC_OK;
}
