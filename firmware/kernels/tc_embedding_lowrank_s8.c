/* Embedding lowrank:R: each row is the token's R factors times the R x width projection, requantized. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

tc_status tc_embedding_lowrank_s8(const tc_embedding_lowrank_params *p, const int32_t *ids, int8_t *output)
{
    const int32_t rank = p->rank;
    for (int32_t t = 0; t < p->count; t++, output += p->width) {
        const int32_t id = ids[t];
        if (id < 0 || id >= p->vocab_size) {
            return TC_ERROR_ARGUMENT;
        }
        const int8_t *factors = p->factors + id * rank;
        const int8_t *column = p->projection;
        for (int32_t j = 0; j < p->width; j++, column += rank) {
            int32_t acc = 0;
            for (int32_t k = 0; k < rank; k++) {
                acc += factors[k] * column[k];
            }
            output[j] = tc_requantize_s8(acc, &p->requant, j, p->zero_point, TC_INT8_MIN, TC_INT8_MAX);
        }
    }
    return TC_OK;
}
