/* FILL: every output byte is the value's byte, as TFLite Micro's reference Fill copies it. */
#include <string.h>

#include "tc_kernels.h"

tc_status tc_fill_s8(const tc_fill_params *p, int8_t *output)
{
    if (p->size < 0) {
        return TC_ERROR_ARGUMENT;
    }
    memset(output, p->value, (size_t)p->size);
    return TC_OK;
}
