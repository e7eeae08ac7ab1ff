/* Embedding pq:MxK: each row is M sub-vectors copied from M codebooks of K entries, one uint8 code each
 * (every code below K: checked when the codes are made, tinycompress/compress/embeddings.py). */
#include <string.h>

#include "tc_kernels.h"

tc_status tc_embedding_pq_s8(const tc_embedding_pq_params *p, const int32_t *ids, int8_t *output)
{
    const int32_t m = p->subvectors, sub = p->width / p->subvectors;
    for (int32_t t = 0; t < p->count; t++) {
        const int32_t id = ids[t];
        if (id < 0 || id >= p->vocab_size) {
            return TC_ERROR_ARGUMENT;
        }
        const uint8_t *codes = p->codes + id * m;
        const int8_t *codebook = p->codebooks;
        for (int32_t i = 0; i < m; i++, codebook += p->entries * sub, output += sub) {
            memcpy(output, codebook + codes[i] * sub, (size_t)sub);
        }
    }
    return TC_OK;
}
