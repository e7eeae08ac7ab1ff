/* Embedding hash:B: token ids hashed into B buckets of one shared int8 table. */
#include <string.h>

#include "tc_kernels.h"

tc_status tc_embedding_hash_s8(const tc_embedding_hash_params *p, const int32_t *ids, int8_t *output)
{
    for (int32_t t = 0; t < p->count; t++, output += p->width) {
        const int32_t id = ids[t];
        if (id < 0 || id >= p->vocab_size) {
            return TC_ERROR_ARGUMENT;
        }
        const uint32_t bucket = (((uint32_t)id * TC_HASH_MULTIPLIER) >> TC_HASH_SHIFT) % (uint32_t)p->buckets;
        memcpy(output, p->table + bucket * (uint32_t)p->width, (size_t)p->width);
    }
    return TC_OK;
}
