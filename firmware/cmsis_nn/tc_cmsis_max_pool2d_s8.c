/* MAX_POOL_2D through CMSIS-NN's arm_max_pool_s8. */
#include "tc_cmsis_nn.h"

tc_status tc_cmsis_max_pool2d_s8(const tc_pool2d_params *p, const int8_t *input, int8_t *output)
{
    const cmsis_nn_context ctx = {0, 0};
    const tc_cmsis_pool_layer l = tc_cmsis_pool(p);
    return tc_cmsis_status(arm_max_pool_s8(&ctx, &l.pool, &l.input, input, &l.filter, &l.output, output));
}
