/* GATHER / EMBEDDING_LOOKUP: copy one row of an int8 table per token id. */
#include <string.h>

#include "tc_kernels.h"

tc_status tc_gather_s8(const tc_gather_params *p, const int32_t *ids, int8_t *output)
{
    for (int32_t t = 0; t < p->count; t++, output += p->width) {
        const int32_t id = ids[t];
        if (id < 0 || id >= p->vocab_size) {
            return TC_ERROR_ARGUMENT;
        }
        memcpy(output, p->table + id * p->width, (size_t)p->width);
    }
    return TC_OK;
}
