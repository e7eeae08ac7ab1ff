/* CONV_2D through CMSIS-NN's arm_convolve_wrapper_s8 (per-channel quantization only). */
#include "tc_cmsis_nn.h"

tc_status tc_cmsis_conv2d_s8(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const cmsis_nn_conv_params conv = {TC_CMSIS_CONV_FIELDS(p)};
    const tc_cmsis_conv_tensors t = tc_cmsis_conv(&p->requant, &p->input, &p->filter, &p->output);
    cmsis_nn_context ctx;
    if (!tc_cmsis_context(&ctx, arm_convolve_wrapper_s8_get_buffer_size(&conv, &t.input, &t.filter, &t.output))) {
        return TC_ERROR_ARGUMENT;
    }
    return tc_cmsis_status(arm_convolve_wrapper_s8(&ctx, &conv, &t.quant, &t.input, input, &t.filter, p->weights,
                                                   &t.bias, p->bias, &t.output, output));
}
