/* CONCATENATION and PACK: block copies. For each index of the axes before the joined one, each input in
 * turn gives one contiguous block (its extent along the axis times everything after it: PACK's inputs
 * have extent 1). Inputs and output share their quantization, as TFLite Micro requires of int8. */
#include <string.h>

#include "tc_kernels.h"

tc_status tc_concatenation_s8(const tc_concatenation_params *p, const int8_t *const *inputs, int8_t *output)
{
    for (int32_t o = 0; o < p->outer; o++) {
        for (int32_t i = 0; i < p->count; i++) {
            const int32_t size = p->sizes[i];
            memcpy(output, inputs[i] + o * size, (size_t)size);
            output += size;
        }
    }
    return TC_OK;
}
