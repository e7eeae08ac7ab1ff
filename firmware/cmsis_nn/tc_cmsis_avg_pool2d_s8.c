/* AVERAGE_POOL_2D through CMSIS-NN's arm_avgpool_s8. */
#include "tc_cmsis_nn.h"

tc_status tc_cmsis_avg_pool2d_s8(const tc_pool2d_params *p, const int8_t *input, int8_t *output)
{
    const tc_cmsis_pool_layer l = tc_cmsis_pool(p);
    cmsis_nn_context ctx;
    if (!tc_cmsis_context(&ctx, arm_avgpool_s8_get_buffer_size(p->output.w, p->input.c))) {
        return TC_ERROR_ARGUMENT;
    }
    return tc_cmsis_status(arm_avgpool_s8(&ctx, &l.pool, &l.input, input, &l.filter, &l.output, output));
}
