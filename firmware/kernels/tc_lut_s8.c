/* Element-wise int8 activations by table. The 256 results come from the host (tinycompress/ops/unary.py),
 * which evaluates TFLite Micro's fixed-point kernel on every int8 input. Four elements per step: one word
 * in, four byte loads from the table, one word out (memcpy: the arena's int8 bytes are never accessed
 * through a cast pointer; cores with unaligned LDR/STR make each a single instruction). About four
 * instructions per element on the M4. Input and output may be the same buffer: each element is read
 * before it is written (four at a time on the M0 too). On Helium cores, sixteen elements per gather. */
#include <string.h>

#include "tc_kernels.h"
#include "tc_mve.h"

tc_status tc_lut_s8(const tc_lut_params *p, const int8_t *input, int8_t *output)
{
    const uint8_t *table = (const uint8_t *)p->table; /* the result for q at index q + 128, i.e. q's bits ^ 0x80 */
    const int32_t size = p->size;
    int32_t i = 0;
#if TC_MVE
    /* Helium: sixteen elements per VLDRB gather, the input bytes with their top bit flipped being the
     * table offsets (0..255). */
    for (; i + 16 <= size; i += 16) {
        const uint8x16_t offsets = veorq_u8(vld1q_u8((const uint8_t *)input + i), vdupq_n_u8(0x80));
        vst1q_u8((uint8_t *)output + i, vldrbq_gather_offset_u8(table, offsets));
    }
#endif
#if !defined(__arm__) || defined(__ARM_FEATURE_UNALIGNED)   /* the M0 has no unaligned LDR: byte by byte */
    for (; i + 4 <= size; i += 4) {
        uint32_t x;
        memcpy(&x, input + i, sizeof x);
        x ^= 0x80808080u;
        const uint32_t y = (uint32_t)table[x & 0xff] | (uint32_t)table[(x >> 8) & 0xff] << 8 |
                           (uint32_t)table[(x >> 16) & 0xff] << 16 | (uint32_t)table[x >> 24] << 24;
        memcpy(output + i, &y, sizeof y);
    }
#endif
    /* Elsewhere (the M0) byte by byte, four per step, the signed input indexing the table's middle:
     * LDRSB, LDRB and STRB per element, no index arithmetic. */
    const uint8_t *middle = table + 128;
    for (; i + 4 <= size; i += 4) {
        const int8_t x0 = input[i], x1 = input[i + 1], x2 = input[i + 2], x3 = input[i + 3];
        output[i] = (int8_t)middle[x0];
        output[i + 1] = (int8_t)middle[x1];
        output[i + 2] = (int8_t)middle[x2];
        output[i + 3] = (int8_t)middle[x3];
    }
    for (; i < size; i++) {
        output[i] = (int8_t)middle[input[i]];
    }
    return TC_OK;
}
