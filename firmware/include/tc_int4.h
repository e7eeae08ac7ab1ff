/*
 * tinycompress runtime: INT4 weights in the nibble form, as the code generator stores them
 * (tinycompress/ops/nibbles.py). A row of values lies in words of TC_S4_WORD = 8 values, zero-padded to a
 * whole word; in word j, value 8j + i (i < 4) is the high nibble of byte i, value 8j + 4 + i its low nibble.
 * The kernels unpack as they go: no int8 copy of the weights is ever made.
 *
 * The DSP paths keep every product at 16 times its value. Let byte i of a word be b = 16 h + (l & 15)
 * with h, l in [-8, 7] (h's two's complement in the high nibble):
 * - b & 0xF0, read as int8, is 16 h exactly: its high nibble is h's, its low one zero;
 * - byte i of (word << 4) is ((b << 4) | (byte i-1 >> 4)) mod 256, and & 0xF0 keeps (l & 15) << 4,
 *   read as int8 16 l exactly.
 * So word & 0xF0F0F0F0 holds 16 v[8j..8j+3] in its bytes and ((word << 4) & 0xF0F0F0F0) 16 v[8j+4..8j+7],
 * and SXTB16 (bytes 0, 2) and SXTB16 ROR #8 (bytes 1, 3) widen them in tc_dsp.h's SMLAD order, the order
 * of the int16 columns: one AND (two for the low half) for four values, no shift per value. A product
 * 16 w (x + offset) lies within 16 x 8 x 255 = 32640, an SMLAD pair within 65280, and an accumulator of
 * 16 S stays exact while |S| < 2^27, which the generator ensures by refusing a depth past
 * nibbles.MAX_DEPTH; as a multiple of 16, its arithmetic shift right by 4 is S exactly.
 */
#ifndef TC_INT4_H
#define TC_INT4_H

#include <stdint.h>

#define TC_S4_WORD 8          /* values per word: nibbles.WORD */
#define TC_S4_HIGH 0xF0F0F0F0 /* the high nibble of every byte: an immediate of Thumb-2's ANDs */

/* The words of a row of `depth` values. */
static inline int32_t tc_s4_words(int32_t depth)
{
    return (depth + TC_S4_WORD - 1) / TC_S4_WORD;
}

/* Value k of a row (the portable kernels). */
static inline int32_t tc_s4_value(const int8_t *row, int32_t k)
{
    const int8_t b = row[(k >> 3) * 4 + (k & 3)];
    return (k & 4) ? (int8_t)((uint8_t)b << 4) >> 4 : b >> 4;
}

/* 16 times values 8j..8j+3 and 8j+4..8j+7 of a word, in its bytes. */
static inline int32_t tc_s4_high16(int32_t word)
{
    return (int32_t)((uint32_t)word & TC_S4_HIGH);
}

static inline int32_t tc_s4_low16(int32_t word)
{
    return (int32_t)(((uint32_t)word << 4) & TC_S4_HIGH);
}

#endif /* TC_INT4_H */
