/* Element-wise int8 activations by table: one load per element. The 256 results come from the host
 * (tinycompress/ops/unary.py), which evaluates TFLite Micro's fixed-point kernel on every int8 input. */
#include "tc_kernels.h"

tc_status tc_lut_s8(const tc_lut_params *p, const int8_t *input, int8_t *output)
{
    const int8_t *table = p->table + 128; /* table[q] for q in -128..127 */
    for (int32_t i = 0; i < p->size; i++) {
        output[i] = table[input[i]];
    }
    return TC_OK;
}
