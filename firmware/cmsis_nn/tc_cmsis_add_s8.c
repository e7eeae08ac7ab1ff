/* ADD through CMSIS-NN's arm_elementwise_add_s8: same shapes, both inputs in the arena, only (the
 * generator keeps our kernel for a broadcasting or constant ADD, and for SUB). */
#include "tc_cmsis_nn.h"

tc_status tc_cmsis_add_s8(const tc_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    const int32_t size = p->size;
    return tc_cmsis_status(arm_elementwise_add_s8(input1, input2, p->input1_offset, p->input1_multiplier,
                                                  p->input1_shift, p->input2_offset, p->input2_multiplier,
                                                  p->input2_shift, p->left_shift, output, p->output_offset,
                                                  p->output_multiplier, p->output_shift, p->act.min, p->act.max,
                                                  size));
}
