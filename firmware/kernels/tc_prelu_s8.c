/* PRELU, int8, with a constant alpha that repeats over the output's trailing axes; SMMLAR forms on DSP cores.
 * As TFLite Micro's reference kernel: (q - zero point) >= 0 goes through the identity requantization,
 * a negative one is multiplied by (alpha - alpha zero point), at most 255 * 255 in magnitude, and goes
 * through input * alpha / output scale. Each element is read before it is written: may run in place.
 * The parameters are copied to locals: the compiler cannot know that the int8 stores leave them alone. */
#include "tc_dsp.h"
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
#if TC_DSP
    /* Both requantizations in SMMLAR forms, the output offset and int8's clamp included, where they fit,
     * nearly always: the negative side's in tc_dsp_requantize_s8's (a right shift of 1 to 23), the
     * identity's too or, where the output scale is the smaller one (a shift s of 0 to 7), as
     * SMMLAR(x 2^s, 2M - 2^32, x 2^s) = floor((x 2^s M + 2^30) / 2^31): the high multiply, exact for
     * M in [2^30, 2^31), with no rounding divide after it. */
    const int identity_up = identity_multiplier >= (1 << 30) && identity_shift >= 0 && identity_shift <= 7;
    if ((identity_up || tc_dsp_quant_fits(identity_multiplier, identity_shift)) &&
        tc_dsp_quant_fits(alpha_multiplier, alpha_shift)) {
        const tc_dsp_quant negative = tc_dsp_quant_make(alpha_multiplier, alpha_shift, output_offset);
        if (identity_up) {
            const int32_t m2 = (int32_t)((uint32_t)identity_multiplier << 1);
            for (int32_t i = 0; i < size; i++) {
                const int32_t x = input[i] + input_offset;
                int32_t y;
                if (x >= 0) {
                    const int32_t scaled = x << identity_shift;
                    __asm__("smmlar %0, %1, %2, %1" : "=r"(y) : "r"(scaled), "r"(m2));
                    y = __ssat(y + output_offset, 8);
                } else {
                    y = tc_dsp_requantize_s8(x * (alpha[a] + alpha_offset), &negative);
                }
                output[i] = (int8_t)y;
                if (++a == alpha_size) {
                    a = 0;
                }
            }
            return TC_OK;
        }
        const tc_dsp_quant identity = tc_dsp_quant_make(identity_multiplier, identity_shift, output_offset);
        for (int32_t i = 0; i < size; i++) {
            const int32_t x = input[i] + input_offset;
            output[i] = (int8_t)(x >= 0 ? tc_dsp_requantize_s8(x, &identity)
                                        : tc_dsp_requantize_s8(x * (alpha[a] + alpha_offset), &negative));
            if (++a == alpha_size) {
                a = 0;
            }
        }
        return TC_OK;
    }
#endif
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
