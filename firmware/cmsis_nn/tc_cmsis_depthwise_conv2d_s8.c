/* DEPTHWISE_CONV_2D through CMSIS-NN's arm_depthwise_conv_wrapper_s8 (per-channel quantization only). */
#include "tc_cmsis_nn.h"

tc_status tc_cmsis_depthwise_conv2d_s8(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const cmsis_nn_dw_conv_params dw = {TC_CMSIS_CONV_FIELDS(p), .ch_mult = p->depth_multiplier};
    const tc_cmsis_conv_tensors t = tc_cmsis_conv(&p->requant, &p->input, &p->filter, &p->output);
    cmsis_nn_context ctx;
    if (!tc_cmsis_context(&ctx, arm_depthwise_conv_wrapper_s8_get_buffer_size(&dw, &t.input, &t.filter,
                                                                              &t.output))) {
        return TC_ERROR_ARGUMENT;
    }
    return tc_cmsis_status(arm_depthwise_conv_wrapper_s8(&ctx, &dw, &t.quant, &t.input, input, &t.filter,
                                                         p->weights, &t.bias, p->bias, &t.output, output));
}
