/* SPLIT, SPLIT_V and UNPACK: CONCATENATION backwards. For each index of the axes before the split one, the
 * input's next contiguous block goes to each output in turn (UNPACK's outputs take extent 1 each). */
#include <string.h>

#include "tc_kernels.h"

tc_status tc_split_s8(const tc_split_params *p, const int8_t *input, int8_t *const *outputs)
{
    for (int32_t o = 0; o < p->outer; o++) {
        for (int32_t i = 0; i < p->count; i++) {
            const int32_t size = p->sizes[i];
            memcpy(outputs[i] + o * size, input, (size_t)size);
            input += size;
        }
    }
    return TC_OK;
}
