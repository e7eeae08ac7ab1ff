/* SOFTMAX through CMSIS-NN's arm_softmax_s8, with TFLite Micro's scaling. */
#include "tc_cmsis_nn.h"

tc_status tc_cmsis_softmax_s8(const tc_softmax_params *p, const int8_t *input, int8_t *output)
{
    arm_softmax_s8(input, p->rows, p->depth, p->input_multiplier, p->input_left_shift, p->diff_min, output);
    return TC_OK;
}
