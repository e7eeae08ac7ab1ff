/*
 * FULLY_CONNECTED through CMSIS-NN (arm_fully_connected_s8 and its per-channel
 * variant). Our bias already holds the input offset (tc_kernels.h), which is
 * exactly the kernel sums CMSIS-NN's Helium path expects in its context, so
 * the input offset passed is 0 and the bias doubles as the kernel sums.
 */
#include "tc_cmsis_nn.h"

tc_status tc_cmsis_fully_connected_s8(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const cmsis_nn_context ctx = {(void *)p->bias, p->output_depth * (int32_t)sizeof(int32_t)};
    const cmsis_nn_fc_params fc = {
        .input_offset = 0,
        .filter_offset = 0,
        .output_offset = p->output_offset,
        .activation = {p->act.min, p->act.max},
    };
    const cmsis_nn_dims input_dims = {p->batches, 1, 1, p->input_depth};
    const cmsis_nn_dims filter_dims = {p->input_depth, 1, 1, p->output_depth};
    const cmsis_nn_dims bias_dims = {1, 1, 1, p->output_depth};
    const cmsis_nn_dims output_dims = {p->batches, 1, 1, p->output_depth};
    if (p->requant.per_channel) {
        const cmsis_nn_per_channel_quant_params q = tc_cmsis_per_channel(&p->requant);
        return tc_cmsis_status(arm_fully_connected_per_channel_s8(&ctx, &fc, &q, &input_dims, input, &filter_dims,
                                                                  p->weights, &bias_dims, p->bias, &output_dims,
                                                                  output));
    }
    const cmsis_nn_per_tensor_quant_params q = {p->requant.multiplier[0], p->requant.shift[0]};
    return tc_cmsis_status(arm_fully_connected_s8(&ctx, &fc, &q, &input_dims, input, &filter_dims, p->weights,
                                                  &bias_dims, p->bias, &output_dims, output));
}
