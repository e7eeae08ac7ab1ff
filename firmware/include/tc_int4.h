/*
 * tinycompress runtime: INT4 weights in the nibble form, as the code generator stores them
 * (tinycompress/ops/nibbles.py, which states the same definition):
 * - a value v in [-8, 7] is the nibble v + 8 (offset binary);
 * - a row lies in words of TC_S4_WORD = 8 values, zero values (nibbles 8) padding it to a whole word; in
 *   word j, value 8j + i (i < 4) is the high nibble of byte i, value 8j + 4 + i its low nibble;
 * - rows come in blocks (FULLY_CONNECTED: TC_S4_FC_BLOCK rows, the others one), a block's rows interleaved
 *   word by word: word j of row b + r, in the block of L rows from row b, is word b * words + j * L + r.
 * The kernels unpack as they go: no int8 copy of the weights is ever made. (tc_palette.h keeps palette
 * indices 0..15 in the same words, blocks of one row, with no offset.)
 *
 * Unsigned lanes (FULLY_CONNECTED's DSP path). Nibble p of a word holds value (4, 0, 5, 1, 6, 2, 7, 3)[p]
 * of its eight, so (word >> 4e) & 0x000F000F, e = 0..3, has int16 lanes (v4, v6), (v0, v2), (v5, v7),
 * (v1, v3), each plus 8: the int16 column words in tc_dsp.h's SMLAD order, one AND each (Thumb-2 shifts
 * the AND's register operand for free). Against a column x, SMLAD sums (v + 8) x, and the kernel takes
 * 8 sum(x) off once per column (padding values meet zeros in the column).
 *
 * Signed bytes (the convolutions' DSP paths). word ^ 0x88888888 holds the values' two's complement
 * nibbles. Let a byte of it be b = 16 h + (l & 15), h, l in [-8, 7]:
 * - b & 0xF0, read as int8, is 16 h exactly: its high nibble is h's, its low one zero;
 * - byte i of (word << 4) is ((b << 4) | (byte i-1 >> 4)) mod 256, and & 0xF0 keeps (l & 15) << 4,
 *   read as int8 16 l exactly.
 * So tc_s4_high16 holds 16 v[8j..8j+3] in its bytes and tc_s4_low16 16 v[8j+4..8j+7], and SXTB16 (bytes
 * 0, 2) and SXTB16 ROR #8 (bytes 1, 3) widen them in SMLAD order, the order of the int16 columns. A product
 * 16 w (x + offset) lies within 16 x 8 x 255 = 32640, an SMLAD pair within 65280, and an accumulator of
 * 16 S stays exact while |S| < 2^27, which the generator ensures by refusing a depth past
 * nibbles.MAX_DEPTH; as a multiple of 16, its arithmetic shift right by 4 is S exactly.
 */
#ifndef TC_INT4_H
#define TC_INT4_H

#include <stdint.h>

#define TC_S4_WORD 8            /* values per word: nibbles.WORD */
#define TC_S4_FC_BLOCK 4        /* FULLY_CONNECTED's rows per block: nibbles.ROWS_PER_BLOCK */
#define TC_S4_OFFSET 8          /* a value's nibble is value + 8: nibbles.OFFSET */
#define TC_S4_SIGN 0x88888888   /* XOR: every nibble to its two's complement (Thumb-2 immediates, both) */
#define TC_S4_HIGH 0xF0F0F0F0   /* the high nibble of every byte */
#define TC_S4_LANES 0x000F000F  /* the low nibble of every int16 lane */

/* The words of a row of `depth` values. */
static inline int32_t tc_s4_words(int32_t depth)
{
    return (depth + TC_S4_WORD - 1) / TC_S4_WORD;
}

/* Value i (< 8) of the word at w. */
static inline int32_t tc_s4_nibble(const int8_t *w, int32_t i)
{
    const uint8_t b = (uint8_t)w[i & 3];
    return (int32_t)((i & 4) ? b & 15 : b >> 4) - TC_S4_OFFSET;
}

/* Value k of a row stored alone (a block of one row). */
static inline int32_t tc_s4_value(const int8_t *row, int32_t k)
{
    return tc_s4_nibble(row + (k >> 3) * 4, k & 7);
}

/* Row `row`'s first word in a form of `rows` rows of `words` words in blocks of `block`; its next words lie
 * every *stride bytes. */
static inline const int8_t *tc_s4_row(const int8_t *w, int32_t rows, int32_t words, int32_t block,
                                      int32_t row, int32_t *stride)
{
    const int32_t first = row - row % block, left = rows - first;
    const int32_t in_block = left < block ? left : block;
    *stride = 4 * in_block;
    return w + 4 * (first * words + row % block);
}

/* 16 times values 8j..8j+3 and 8j+4..8j+7 of a word, in its bytes. */
static inline int32_t tc_s4_high16(int32_t word)
{
    return (int32_t)(((uint32_t)word ^ TC_S4_SIGN) & TC_S4_HIGH);
}

static inline int32_t tc_s4_low16(int32_t word)
{
    return (int32_t)((((uint32_t)word ^ TC_S4_SIGN) << 4) & TC_S4_HIGH);
}

#endif /* TC_INT4_H */
