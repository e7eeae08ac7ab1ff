/* FULLY_CONNECTED, int8 activations and weights, int32 bias (with the input offset folded in).
 * Portable C; on cores with Helium the matrix kernel of tc_mve_gemm.h, each batch one column; on other
 * cores with the DSP extension the matrix kernel of tc_dsp_gemm.h, or where the generator stored the weights
 * in the pair form, its own four-row kernel below. tc_fully_connected_s4: the same with INT4 weights in the
 * nibble form (tc_int4.h), unpacked as they are read, portable or (DSP without Helium) a block of four rows
 * per pass, sharing the widened input's words. */
#include "tc_dsp_gemm.h"
#include "tc_fixedpoint.h"
#include "tc_int4.h"
#include "tc_kernels.h"
#include "tc_mve_gemm.h"
#include "tc_palette.h"

/* Each output: its row against the input (tc_dot_s8), from the bias with the input offset folded in. */
static tc_status fully_connected_portable(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->input_depth;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in = input + b * depth;
        for (int32_t o = 0; o < p->output_depth; o++) {
            const tc_channel_requant r = tc_channel_requant_of(&p->requant, o, p->output_offset, p->act.min,
                                                               p->act.max);
            const int32_t acc = tc_dot_s8(p->weights + o * depth, in, depth, p->bias[o]);
            *output++ = tc_channel_requant_apply(&r, acc);
        }
    }
    return TC_OK;
}

#if TC_MVE
static tc_status fully_connected_mve(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const tc_mve_gemm g = {p->weights, p->bias, &p->requant, p->output_depth, p->input_depth, 0, p->output_offset,
                           p->act};
    if (p->batches == 1 && p->output_depth >= 4) {
        tc_mve_gemv(&g, input, output);
    } else {
        tc_mve_gemm_run(&g, input, p->input_depth, p->batches, output);
    }
    return TC_OK;
}
#elif TC_DSP
/* One input row widened to int16 in SMLAD order (no offset: the bias holds it). */
static void widen_row(const int8_t *in, int32_t depth, int16_t *col)
{
    tc_alias_i32 *dst = (tc_alias_i32 *)col;
    int32_t k = 0;
    for (; k + 4 <= depth; k += 4) {
        const int32_t v = tc_read_s8x4(in + k);
        *dst++ = __sxtb16(v);
        *dst++ = tc_sxtb16_ror8(v);
    }
    for (; k < depth; k++) {
        col[tc_col_index(k, 0, 1)] = in[k];
    }
}

static tc_status fully_connected_dsp(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const tc_gemm g = {p->weights, p->bias, &p->requant, p->output_depth, p->input_depth, p->output_offset, p->act};
    for (int32_t b = 0; b < p->batches; b++) {
        widen_row(input + b * p->input_depth, p->input_depth, p->scratch);
        tc_gemm_1col(&g, 0, p->scratch, output + b * p->output_depth);
    }
    return TC_OK;
}

/* The pair form (FULLY_CONNECTED on DSP cores, ops/dsp_forms.py). Each weight word holds four weights
 * s0..s3 of one row with the odd bytes lowered by one where the even byte before them is negative, so
 * its int16 lanes are exactly s0 + 256 s1 and s2 + 256 s3: with the input's words
 * (q1 - 127, q3 - 127) and (256 q0 - q1 + 127, 256 q2 - q3 + 127), which fit int16 exactly,
 *   SMLAD(raw word, first) + SMLAD(SXTB16(word), second) = 256 (s0 q0 + s1 q1 + s2 q2 + s3 q3 - 127 (s1 + s3)),
 * four MACs for one SXTB16 instead of two. The bias holds 127 times the row's odd weights besides the
 * input offset, so an accumulator started at 256 bias ends at 256 times the plain kernel's, exact while
 * that lies in [-2^23, 2^23), which the generator checks per row. Rows come in blocks of four (the last
 * block the rows % 4 left), a block's words interleaved group by group, so one LDM fetches four rows. */

/* The input row as the pair form's two words per group of four values. */
static void pair_row(const int8_t *in, int32_t depth, tc_alias_i32 *col)
{
    const int32_t ones127 = 0x007F007F;
    for (int32_t k = 0; k < depth; k += 4) {
        const int32_t v = tc_read_s8x4(in + k);
        const int32_t odd = __ssub16(tc_sxtb16_ror8(v), ones127);          /* (q1 - 127, q3 - 127) */
        *col++ = odd;
        *col++ = __ssub16((int32_t)(((uint32_t)v << 8) & 0xFF00FF00u), odd); /* (256 q0, 256 q2) - odd */
    }
}

/* What every block of a layer shares. The requantization is the five-instruction one of tc_dsp.h (the
 * generator gives the pair form only where every row has it), made as each row comes, in four: for
 * shift = -n, 2M - 2^32 is M << 1 modulo 2^32, ~shift is n - 1, and the rounding term
 * 2^(n-1) + offset 2^n is (1 + 2 offset) << (n - 1). */
typedef struct {
    /* the input's words; after the groups % 4 taken one by one; after all */
    const tc_alias_i32 *col, *single_end, *end;
    int32_t offset2;                        /* 1 + 2 output_offset */
    int32_t lo, hi;                         /* the fused clamp */
} pair_layer;

/* One group of one row: the word's lanes against the first input word, its even bytes against the second. */
#define TC_PAIR_ROW(x, a)                                                                                         \
    "smlad %[" a "], " x ", %[first], %[" a "]\n\t"                                                               \
    "sxtb16 " x ", " x "\n\t"                                                                                     \
    "smlad %[" a "], " x ", %[second], %[" a "]\n\t"
#define TC_PAIR_GROUP                                                                                             \
    "ldrd %[first], %[second], [%[c]], #8\n\t"                                                                    \
    "ldm %[w]!, {r8, r9, r10, r11}\n\t" TC_PAIR_ROW("r8", "a0") TC_PAIR_ROW("r9", "a1") TC_PAIR_ROW("r10", "a2")  \
        TC_PAIR_ROW("r11", "a3")

/* Row i's output from accumulator a (256 times the plain sum): 13 instructions, or 18 with a clamp inside int8
 * instead of SSAT (tc_dsp_gemm.h's TC_CLAMP_*). */
#define TC_PAIR_OUTPUT(a, i, clamp)                                                                               \
    "ldr r8, [%[m], #4 * " i "]\n\t"                                                                              \
    "ldr r9, [%[s], #4 * " i "]\n\t"                                                                              \
    "lsl r8, r8, #1\n\t"                                                                                          \
    "mvn r9, r9\n\t"                                                                                              \
    "lsl r10, %[offset2], r9\n\t"                                                                                 \
    "add r9, r9, #1\n\t"                                                                                          \
    "asr %[" a "], %[" a "], #8\n\t"                                                                              \
    "smmlar %[" a "], %[" a "], r8, %[" a "]\n\t"                                                                 \
    "add %[" a "], %[" a "], %[" a "], asr #31\n\t"                                                               \
    "qadd %[" a "], %[" a "], r10\n\t"                                                                            \
    "asr %[" a "], %[" a "], r9\n\t" clamp(a) "strb %[" a "], [%[out], #" i "]\n\t"
#define TC_PAIR_OUTPUTS(clamp)                                                                                    \
    TC_PAIR_OUTPUT("a0", "0", clamp) TC_PAIR_OUTPUT("a1", "1", clamp) TC_PAIR_OUTPUT("a2", "2", clamp)            \
        TC_PAIR_OUTPUT("a3", "3", clamp)

/* A block of four rows, from its words w on: bias, products (16 MACs in 14 instructions, four groups per
 * loop) and outputs, with row i's requantization at multiplier[i], shift[i]. Returns the next block's words. */
__attribute__((noinline)) static const int8_t *pair_block4(const pair_layer *l, const int8_t *w, const int32_t *bias,
                                                           const int32_t *multiplier, const int32_t *shift, int8_t *out)
{
    int32_t a0 = (int32_t)((uint32_t)bias[0] << 8), a1 = (int32_t)((uint32_t)bias[1] << 8);
    int32_t a2 = (int32_t)((uint32_t)bias[2] << 8), a3 = (int32_t)((uint32_t)bias[3] << 8), first, second;
    const tc_alias_i32 *c = l->col;
#define TC_PAIR_OPERANDS(stop)                                                                                    \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [c] "+r"(c), [first] "=&r"(first), \
      [second] "=&r"(second)                                                                                      \
    : [end] "r"(stop)                                                                                             \
    : "r8", "r9", "r10", "r11", "cc", "memory"
    if (c != l->single_end) {
        __asm__ volatile("1:\n\t" TC_PAIR_GROUP "cmp %[c], %[end]\n\t"
                         "bne 1b\n\t" TC_PAIR_OPERANDS(l->single_end));
    }
    if (c != l->end) {
        __asm__ volatile("1:\n\t" TC_PAIR_GROUP TC_PAIR_GROUP TC_PAIR_GROUP TC_PAIR_GROUP "cmp %[c], %[end]\n\t"
                         "bne 1b\n\t" TC_PAIR_OPERANDS(l->end));
    }
#undef TC_PAIR_OPERANDS
#define TC_PAIR_OUTPUT_OPERANDS                                                                                   \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3)                                                  \
    : [m] "r"(multiplier), [s] "r"(shift), [out] "r"(out), [offset2] "r"(l->offset2), [lo] "r"(l->lo),           \
      [hi] "r"(l->hi), "m"(*multiplier), "m"(*shift)                                                              \
    : "r8", "r9", "r10", "cc", "memory"
    if (l->lo == TC_INT8_MIN && l->hi == TC_INT8_MAX) {
        __asm__ volatile(TC_PAIR_OUTPUTS(TC_CLAMP_INT8) TC_PAIR_OUTPUT_OPERANDS);
    } else {
        __asm__ volatile(TC_PAIR_OUTPUTS(TC_CLAMP_ACT) TC_PAIR_OUTPUT_OPERANDS);
    }
#undef TC_PAIR_OUTPUT_OPERANDS
    return w;
}

static tc_status fully_connected_pairs(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->input_depth, groups = depth >> 2, rows = p->output_depth;
    tc_alias_i32 *const col = (tc_alias_i32 *)p->scratch;
    const pair_layer l = {col, col + 2 * (groups & 3), col + 2 * groups, 1 + 2 * p->output_offset, p->act.min,
                          p->act.max};
    /* a per-tensor layer's one requantization, for every row of a block */
    const int32_t m = p->requant.multiplier[0], s = p->requant.shift[0], same_m[4] = {m, m, m, m};
    const int32_t same_s[4] = {s, s, s, s};
    const int32_t step = p->requant.per_channel ? 4 : 0;
    for (int32_t b = 0; b < p->batches; b++, input += depth, output += rows) {
        pair_row(input, depth, col);
        const int8_t *w = p->weights;
        const int32_t *multiplier = step ? p->requant.multiplier : same_m, *shift = step ? p->requant.shift : same_s;
        int32_t row = 0;
        for (; row + 4 <= rows; row += 4, multiplier += step, shift += step) {
            w = pair_block4(&l, w, p->bias + row, multiplier, shift, output + row);
        }
        /* the last block's rows % 4 rows, one at a time: a row's words lie every `left` words */
        for (int32_t left = rows - row, r = 0; r < left; r++) {
            int32_t acc = (int32_t)((uint32_t)p->bias[row + r] << 8);
            for (int32_t g = 0; g < groups; g++) {
                const int32_t v = tc_read_s8x4(w + 4 * (g * left + r));
                acc = __smlad(v, col[2 * g], acc);
                acc = __smlad(__sxtb16(v), col[2 * g + 1], acc);
            }
            const tc_channel_quant q = tc_channel_quant_make(&p->requant, row + r, p->output_offset, p->act);
            output[row + r] = tc_channel_output(&q, acc >> 8);
        }
    }
    return TC_OK;
}
#endif

tc_status tc_fully_connected_s8(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
#if TC_MVE
    if (p->scratch) { /* the MVE path uses none of it: the pointer only selects the path */
        return fully_connected_mve(p, input, output);
    }
#elif TC_DSP
    if (p->dsp_pairs) { /* the generator gave the pair form only with scratch for the input's words */
        return p->scratch ? fully_connected_pairs(p, input, output) : TC_ERROR_ARGUMENT;
    }
    if (p->scratch) {
        return fully_connected_dsp(p, input, output);
    }
#endif
    return fully_connected_portable(p, input, output);
}

/* ---- INT4 weights: tc_fully_connected_s4 ---- */

/* acc + a row of `depth` nibble-form weights, its words every `stride` bytes, times the input. */
static int32_t dot_s4(const int8_t *w, int32_t stride, const int8_t *in, int32_t depth, int32_t acc)
{
    for (int32_t k = 0; k < depth; k += TC_S4_WORD, w += stride, in += TC_S4_WORD) {
        const int32_t n = depth - k < TC_S4_WORD ? depth - k : TC_S4_WORD;
        for (int32_t i = 0; i < n; i++) {
            acc += tc_s4_nibble(w, i) * (int32_t)in[i];
        }
    }
    return acc;
}

/* acc + row o's weights times the input: the INT4 rows in blocks of TC_S4_FC_BLOCK, or below the palette
 * indices' rows (blocks of one) through the palette. */
typedef int32_t (*row_dot_fn)(const tc_fully_connected_params *p, int32_t o, int32_t rows, const int8_t *in,
                              int32_t depth, int32_t acc);

static inline int32_t row_dot_s4(const tc_fully_connected_params *p, int32_t o, int32_t rows,
                                 const int8_t *in, int32_t depth, int32_t acc)
{
    int32_t stride;
    const int8_t *w = tc_s4_row(p->weights, rows, tc_s4_words(depth), TC_S4_FC_BLOCK, o, &stride);
    return dot_s4(w, stride, in, depth, acc);
}

/* The portable path of tc_fully_connected_s4 and tc_fully_connected_p4, which differ only in how a row's
 * weights are read: `dot`, a constant in each caller. Their inner loops stay apart: the INT4 rows' word
 * by word, the palette's weight by weight, each the faster for its form (one loop for both costs either
 * form instructions per MAC). */
static inline __attribute__((always_inline)) tc_status fully_connected_w4_portable(
    const tc_fully_connected_params *p, const int8_t *input, int8_t *output, row_dot_fn dot)
{
    const int32_t depth = p->input_depth, rows = p->output_depth;
    for (int32_t b = 0; b < p->batches; b++, input += depth) {
        for (int32_t o = 0; o < rows; o++) {
            /* the palette form's input offset is folded into its bias */
            int32_t acc = dot(p, o, rows, input, depth, p->bias[o]);
            const int32_t q = p->requant.per_channel ? o : 0;
            acc = tc_requantize(acc, p->requant.multiplier[q], p->requant.shift[q]) + p->output_offset;
            *output++ = (int8_t)tc_clamp_i32(acc, p->act.min, p->act.max);
        }
    }
    return TC_OK;
}

static tc_status fully_connected_s4_portable(const tc_fully_connected_params *p, const int8_t *input,
                                             int8_t *output)
{
    return fully_connected_w4_portable(p, input, output, row_dot_s4);
}

#if TC_DSP && !TC_MVE
/* The input row widened to int16 in SMLAD order and zero up to whole words; returns 8 times its sum, what
 * the unsigned lanes add to each row (tc_int4.h). */
static int32_t widen_row_s4(const int8_t *in, int32_t depth, int16_t *col)
{
    const int32_t padded = tc_s4_words(depth) * TC_S4_WORD;
    widen_row(in, depth, col);
    for (int32_t k = depth; k < padded; k++) {
        col[tc_col_index(k, 0, 1)] = 0;
    }
    int32_t sum = 0;
    const tc_alias_i32 *c = (const tc_alias_i32 *)col;
    for (int32_t i = 0; i < padded / 2; i++) {
        sum = __smlad(c[i], 0x00010001, sum);
    }
    return TC_S4_OFFSET * sum;
}

/* One word of one row against the column's words c0..c3 (values 8j..8j+7 in SMLAD order): its four
 * unsigned lane pairs (tc_int4.h), (v4, v6) (v0, v2) (v5, v7) (v1, v3), each plus 8; 8 MACs in 9
 * instructions. */
#define TC_S4_ROW_WORD(a)                                                                                         \
    "ldr %[x], [%[w]], #4\n\t"                                                                                    \
    "and %[t], %[m], %[x]\n\t"                                                                                    \
    "smlad %[" a "], %[t], %[c2], %[" a "]\n\t"                                                                   \
    "and %[t], %[m], %[x], lsr #4\n\t"                                                                            \
    "smlad %[" a "], %[t], %[c0], %[" a "]\n\t"                                                                   \
    "and %[t], %[m], %[x], lsr #8\n\t"                                                                            \
    "smlad %[" a "], %[t], %[c3], %[" a "]\n\t"                                                                   \
    "and %[t], %[m], %[x], lsr #12\n\t"                                                                           \
    "smlad %[" a "], %[t], %[c1], %[" a "]\n\t"
/* One word of a block of four rows (interleaved: one pointer): 32 MACs in 38 instructions, 1.19 per MAC,
 * the column's four words loaded once for the four rows (int8's pair form: 16 MACs in 14, 0.88 per MAC). */
#define TC_S4_BLOCK_WORD                                                                                          \
    "ldrd %[c0], %[c1], [%[c]], #8\n\t"                                                                           \
    "ldrd %[c2], %[c3], [%[c]], #8\n\t" TC_S4_ROW_WORD("a0") TC_S4_ROW_WORD("a1") TC_S4_ROW_WORD("a2")           \
        TC_S4_ROW_WORD("a3")

/* What every block of a layer shares: the column's words, the layer's one fast requantization (TFLite
 * Micro gives INT4 FULLY_CONNECTED one scale), its clamp. */
typedef struct {
    const tc_alias_i32 *col;
    int32_t words, sum8; /* 8 times the column's sum, what the unsigned lanes add */
    tc_dsp_quant q;
    int32_t lo, hi;
} s4_layer;

/* A block of four rows from w on: bias, products (four words per loop: 128 MACs in 155 instructions, 1.21
 * per MAC) and the four outputs at out. Returns the next block's words. */
__attribute__((noinline)) static const int8_t *block4_s4(const s4_layer *l, const int8_t *w, const int32_t *bias,
                                                         int8_t *out)
{
    int32_t a0 = bias[0] - l->sum8, a1 = bias[1] - l->sum8, a2 = bias[2] - l->sum8, a3 = bias[3] - l->sum8;
    int32_t x, t, c0, c1, c2, c3;
    const int32_t words = l->words;
    const tc_alias_i32 *c = l->col;
    const tc_alias_i32 *volatile end = c + 4 * words; /* in memory: every register is taken */
#define TC_S4_BLOCK_OPERANDS                                                                                      \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [c] "+r"(c), [x] "=&r"(x),         \
      [t] "=&r"(t), [c0] "=&r"(c0), [c1] "=&r"(c1), [c2] "=&r"(c2), [c3] "=&r"(c3)                                \
    : [m] "r"(TC_S4_LANES), [end] "m"(end)                                                                        \
    : "cc", "memory"
    if (words & 1) {
        __asm__ volatile(TC_S4_BLOCK_WORD TC_S4_BLOCK_OPERANDS);
    }
    if (words & 2) {
        __asm__ volatile(TC_S4_BLOCK_WORD TC_S4_BLOCK_WORD TC_S4_BLOCK_OPERANDS);
    }
    if (words > 3) {
        __asm__ volatile("1:\n\t" TC_S4_BLOCK_WORD TC_S4_BLOCK_WORD TC_S4_BLOCK_WORD TC_S4_BLOCK_WORD
                         "ldr %[t], %[end]\n\t"
                         "cmp %[c], %[t]\n\t"
                         "bne 1b\n\t" TC_S4_BLOCK_OPERANDS);
    }
#undef TC_S4_BLOCK_OPERANDS
    const tc_dsp_quant q = l->q; /* in registers: the int8 stores could alias *l */
    const int32_t lo = l->lo, hi = l->hi;
    out[0] = (int8_t)tc_clamp_i32(tc_dsp_requantize_s8(a0, &q), lo, hi);
    out[1] = (int8_t)tc_clamp_i32(tc_dsp_requantize_s8(a1, &q), lo, hi);
    out[2] = (int8_t)tc_clamp_i32(tc_dsp_requantize_s8(a2, &q), lo, hi);
    out[3] = (int8_t)tc_clamp_i32(tc_dsp_requantize_s8(a3, &q), lo, hi);
    return w;
}

/* acc + one row, its words every `stride` bytes, times the column (the last block's rows % 4 rows). */
static int32_t dot_s4_1x1(const int8_t *w, int32_t stride, const tc_alias_i32 *col, int32_t words,
                          int32_t acc)
{
    for (int32_t j = 0; j < words; j++, w += stride, col += 4) {
        const uint32_t x = (uint32_t)tc_read_s8x4(w);
        acc = __smlad((int32_t)(x & TC_S4_LANES), col[2], acc);
        acc = __smlad((int32_t)((x >> 4) & TC_S4_LANES), col[0], acc);
        acc = __smlad((int32_t)((x >> 8) & TC_S4_LANES), col[3], acc);
        acc = __smlad((int32_t)((x >> 12) & TC_S4_LANES), col[1], acc);
    }
    return acc;
}

/* Blocks of four rows sharing each column word; every sum is exact (|sum| < 2^31 by nibbles.MAX_DEPTH).
 * A layer without the one fast requantization takes each row's own, one row at a time. */
static tc_status fully_connected_s4_dsp(const tc_fully_connected_params *p, const int8_t *input,
                                        int8_t *output)
{
    const int32_t depth = p->input_depth, words = tc_s4_words(depth), rows = p->output_depth;
    const tc_alias_i32 *col = (const tc_alias_i32 *)p->scratch;
    const int quick = !p->requant.per_channel && tc_dsp_quant_fits(p->requant.multiplier[0], p->requant.shift[0]);
    s4_layer l = {col, words, 0, {0, 0, 0}, p->act.min, p->act.max};
    if (quick) {
        l.q = tc_dsp_quant_make(p->requant.multiplier[0], p->requant.shift[0], p->output_offset);
    }
    for (int32_t b = 0; b < p->batches; b++, input += depth, output += rows) {
        l.sum8 = widen_row_s4(input, depth, p->scratch);
        const int8_t *w = p->weights;
        int32_t row = 0;
        for (; quick && row + TC_S4_FC_BLOCK <= rows; row += TC_S4_FC_BLOCK) {
            w = block4_s4(&l, w, p->bias + row, output + row);
        }
        /* the rest one at a time (the last block's rows % 4, or all without the fast requantization) */
        for (; row < rows; row++) {
            int32_t stride;
            const int8_t *r = tc_s4_row(p->weights, rows, words, TC_S4_FC_BLOCK, row, &stride);
            const int32_t acc = dot_s4_1x1(r, stride, col, words, p->bias[row] - l.sum8);
            const tc_channel_quant q = tc_channel_quant_make(&p->requant, row, p->output_offset, p->act);
            output[row] = tc_channel_output(&q, acc);
        }
    }
    return TC_OK;
}
#endif

tc_status tc_fully_connected_s4(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
#if TC_DSP && !TC_MVE
    if (p->scratch) {
        return fully_connected_s4_dsp(p, input, output);
    }
#endif
    return fully_connected_s4_portable(p, input, output);
}

/* ---- Clustered weights: tc_fully_connected_p4 ---- */

static inline int32_t row_dot_p4(const tc_fully_connected_params *p, int32_t o, int32_t rows,
                                 const int8_t *in, int32_t depth, int32_t acc)
{
    (void)rows;
    const int8_t *row = p->weights + o * 4 * tc_s4_words(depth);
    for (int32_t k = 0; k < depth; k++) {
        acc += tc_p4_value(row, p->palette, k) * (int32_t)in[k];
    }
    return acc;
}

static tc_status fully_connected_p4_portable(const tc_fully_connected_params *p, const int8_t *input,
                                             int8_t *output)
{
    return fully_connected_w4_portable(p, input, output, row_dot_p4);
}

#if TC_DSP && !TC_MVE
/* Each byte of the nibble form holds two indices, of values i and i + 4 of its word (tc_palette.h). A table
 * of the 256 bytes gives their weights as one int16 pair (palette[high], palette[low]), and the input row is
 * laid out in the same pairs (x[8j + i], x[8j + 4 + i]), zero past the depth: then one SMLAD makes a byte's
 * two products, exactly, as |w x| <= 2^14. The scratch (ops/scratch.py): the pairs, then the table. */
static void pair_input_p4(const int8_t *in, int32_t depth, int32_t words, tc_alias_i32 *col)
{
    for (int32_t j = 0; j < words; j++) {
        for (int32_t i = 0; i < 4; i++) {
            const int32_t k = 8 * j + i;
            *col++ = tc_pack_s16x2(k < depth ? in[k] : 0, k + 4 < depth ? in[k + 4] : 0);
        }
    }
}

/* acc + a row of `words` words of indices times the paired input. */
__attribute__((noinline)) static int32_t dot_p4(const int8_t *w, const tc_alias_i32 *col,
                                                const int32_t *table, int32_t words, int32_t acc)
{
    for (const tc_alias_i32 *end = col + 4 * words; col != end; col += 4, w += 4) {
        const uint32_t v = (uint32_t)tc_read_s8x4(w);
        acc = __smlad(table[v & 0xFF], col[0], acc);
        acc = __smlad(table[(v >> 8) & 0xFF], col[1], acc);
        acc = __smlad(table[(v >> 16) & 0xFF], col[2], acc);
        acc = __smlad(table[v >> 24], col[3], acc);
    }
    return acc;
}

static tc_status fully_connected_p4_dsp(const tc_fully_connected_params *p, const int8_t *input,
                                        int8_t *output)
{
    const int32_t depth = p->input_depth, rows = p->output_depth, words = tc_s4_words(depth);
    tc_alias_i32 *col = (tc_alias_i32 *)p->scratch;
    int32_t *table = (int32_t *)(col + 4 * words);
    for (int32_t b = 0; b < 256; b++) {
        table[b] = tc_pack_s16x2(p->palette[b >> 4], p->palette[b & 15]);
    }
    for (int32_t b = 0; b < p->batches; b++, input += depth, output += rows) {
        pair_input_p4(input, depth, words, col);
        for (int32_t row = 0; row < rows; row++) {
            const int32_t acc = dot_p4(p->weights + row * 4 * words, col, table, words, p->bias[row]);
            const tc_channel_quant q = tc_channel_quant_make(&p->requant, row, p->output_offset, p->act);
            output[row] = tc_channel_output(&q, acc);
        }
    }
    return TC_OK;
}
#endif

tc_status tc_fully_connected_p4(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
#if TC_DSP && !TC_MVE
    if (p->scratch) {
        return fully_connected_p4_dsp(p, input, output);
    }
#endif
    return fully_connected_p4_portable(p, input, output);
}
