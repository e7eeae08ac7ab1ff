/* Embedding kronecker: no per-token table. Each token's bytes and their positions are encoded by a
 * fixed Kronecker code (tc_kernels.h), and one learned projection maps the 128 features to the row. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

#define BYTE_CODE_MULTIPLIER 40503u    /* 2^16 / golden ratio: neighbouring bytes get unrelated codes */
#define POSITION_CODE_MULTIPLIER 157u  /* odd: the 16 positions get distinct 8-bit codes */

/* f[j * 8 + k] = sum over the bytes of (sign j of the byte's code) x (sign k of its position's code). */
static void encode_token(const uint8_t *bytes, int32_t length, int8_t features[TC_KRONECKER_FEATURES])
{
    for (int32_t f = 0; f < TC_KRONECKER_FEATURES; f++) {
        features[f] = 0;
    }
    for (int32_t i = 0; i < length; i++) {
        const uint32_t byte_code = ((bytes[i] + 1u) * BYTE_CODE_MULTIPLIER) & 0xFFFFu;
        const uint32_t position_code = (((uint32_t)i + 1u) * POSITION_CODE_MULTIPLIER) & 0xFFu;
        int8_t *row = features;
        for (int32_t j = 0; j < TC_KRONECKER_BYTE_BITS; j++, row += TC_KRONECKER_POSITION_BITS) {
            /* equal bits: the two signs agree and the product is +1 */
            const uint32_t agree = ((byte_code >> j) & 1u) ? ~position_code : position_code;
            for (int32_t k = 0; k < TC_KRONECKER_POSITION_BITS; k++) {
                row[k] += ((agree >> k) & 1u) ? -1 : 1;
            }
        }
    }
}

tc_status tc_embedding_kronecker_s8(const tc_embedding_kronecker_params *p, const int32_t *ids, int8_t *output)
{
    int8_t features[TC_KRONECKER_FEATURES]; /* |f| <= 16 */
    for (int32_t t = 0; t < p->count; t++, output += p->width) {
        const int32_t id = ids[t];
        if (id < 0 || id >= p->vocab_size) {
            return TC_ERROR_ARGUMENT;
        }
        const int32_t start = p->offsets[id];
        encode_token(p->strings + start, p->offsets[id + 1] - start, features);
        const int8_t *weights = p->projection;
        for (int32_t j = 0; j < p->width; j++, weights += TC_KRONECKER_FEATURES) {
            int32_t acc = p->bias[j];
            for (int32_t f = 0; f < TC_KRONECKER_FEATURES; f++) {
                acc += features[f] * weights[f];
            }
            output[j] = tc_requantize_s8(acc, &p->requant, j, p->zero_point, TC_INT8_MIN, TC_INT8_MAX);
        }
    }
    return TC_OK;
}
