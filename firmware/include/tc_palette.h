/*
 * tinycompress runtime: clustered weights (tinycompress/compress/cluster.py). A layer's weights take at
 * most 16 int8 values, its palette; each weight is stored as its 4-bit index into it, in the nibble form of
 * tc_int4.h (a row in words of TC_S4_WORD values, zero-padded; in word j, index 8j + i (i < 4) is the high
 * nibble of byte i and index 8j + 4 + i its low nibble), read unsigned: 0..15. The `_p4` kernels decode the
 * indices through the palette as they read: one at a time (portable), a byte's two as an int16 pair from a
 * table (FULLY_CONNECTED), a few rows at a time (TC_P4_ROWS) into an int8 block that the int8 matrix kernel
 * then runs on (CONV_2D), or four channels' taps once per layer (DEPTHWISE_CONV_2D): never the whole
 * layer's int8 weights in RAM.
 */
#ifndef TC_PALETTE_H
#define TC_PALETTE_H

#include <stdint.h>

#include "tc_int4.h"

#define TC_P4_ROWS 4 /* rows decoded per block on the DSP paths: ops/scratch.py's PALETTE_ROWS */

/* Index k of a row. */
static inline int32_t tc_p4_index(const int8_t *row, int32_t k)
{
    const uint8_t b = (uint8_t)row[(k >> 3) * 4 + (k & 3)];
    return (k & 4) ? b & 15 : b >> 4;
}

/* Weight k of a row: its palette value. */
static inline int32_t tc_p4_value(const int8_t *row, const int8_t *palette, int32_t k)
{
    return palette[tc_p4_index(row, k)];
}

/* Weight k of a row, of either form: the kernels' portable paths keep one body for the INT4 and clustered
 * weights, taking the decoder as an argument (tc_s4_weight or tc_p4_value). Given as a constant to an
 * always_inline body, the call folds away: the same code as the decoder written out. */
typedef int32_t (*tc_w4_decoder)(const int8_t *row, const int8_t *palette, int32_t k);

/* tc_s4_value as a tc_w4_decoder: INT4 weights have no palette. */
static inline int32_t tc_s4_weight(const int8_t *row, const int8_t *palette, int32_t k)
{
    (void)palette;
    return tc_s4_value(row, k);
}

/* `count` rows of `depth` weights, from the nibble form at `rows` (a row every 4 tc_s4_words(depth)
 * bytes), as int8 at dst, a row every `depth` bytes: the int8 kernels' weight layout. */
static inline void tc_p4_decode(const int8_t *rows, int32_t depth, int32_t count, const int8_t *palette,
                                int8_t *dst)
{
    const int32_t row_bytes = 4 * tc_s4_words(depth), whole = depth & ~(TC_S4_WORD - 1);
    for (int32_t r = 0; r < count; r++, rows += row_bytes) {
        const uint8_t *src = (const uint8_t *)rows;
        int32_t k = 0;
        for (; k < whole; k += TC_S4_WORD, src += 4, dst += TC_S4_WORD) {
            for (int32_t i = 0; i < 4; i++) {
                dst[i] = palette[src[i] >> 4];
                dst[i + 4] = palette[src[i] & 15];
            }
        }
        for (; k < depth; k++) {
            *dst++ = (int8_t)tc_p4_value(rows, palette, k);
        }
    }
}

#endif /* TC_PALETTE_H */
