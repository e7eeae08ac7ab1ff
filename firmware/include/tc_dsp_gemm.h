/*
 * tinycompress runtime: the DSP-extension matrix kernel shared by CONV_2D and
 * FULLY_CONNECTED. It multiplies int8 weights [rows][depth] by int16 columns in
 * SMLAD order (tc_dsp.h), adds the bias, requantizes and clamps.
 *
 * Columns are stored by groups of four values: with one column a group is two
 * words; with six columns the groups interleave, (a a b b ... f f), so one
 * pointer walks them all and one LDM fetches two columns' words. A convolution
 * runs one weight row against six output positions at a time: the row's word,
 * widened once, serves six columns, 24 MACs in 18 instructions. FULLY_CONNECTED
 * (one column) runs four rows at a time. The inner loops are inline assembly
 * because the compiler spills under their register pressure. Each output then
 * takes the five-instruction requantization of tc_dsp.h where it applies, with
 * every row's parameters computed once per layer.
 */
#ifndef TC_DSP_GEMM_H
#define TC_DSP_GEMM_H

#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"
#include "tc_mve.h"

#if TC_DSP && !TC_MVE /* Helium cores have the wider kernel of tc_mve_gemm.h */

/* Where the k-th value of a group of four goes among its four int16 slots. */
static const uint8_t tc_smlad_slot[4] = {0, 2, 1, 3};

/* The int16 index of value k of column `column` when `columns` columns interleave. */
static inline int32_t tc_col_index(int32_t k, int32_t column, int32_t columns)
{
    return (k >> 2) * 4 * columns + column * 4 + tc_smlad_slot[k & 3];
}

/* What every output of one matrix call shares. */
typedef struct {
    const int8_t *weights;  /* [rows][depth] */
    const int32_t *bias;    /* [rows], or NULL */
    const tc_requant *requant;
    int32_t rows, depth;
    int32_t output_offset;
    tc_activation act;
} tc_gemm;

static inline int32_t tc_gemm_bias(const tc_gemm *g, int32_t row)
{
    return g->bias ? g->bias[row] : 0;
}

/* The products of the depth % 4 values after the last whole group. */
static inline int32_t tc_gemm_tail(const int8_t *w, const int16_t *cols, int32_t depth, int32_t column,
                                   int32_t columns, int32_t acc)
{
    for (int32_t k = depth & ~3; k < depth; k++) {
        acc += (int32_t)w[k] * cols[tc_col_index(k, column, columns)];
    }
    return acc;
}

/* Output positions per pass of the convolution's matrix kernel: its columns. */
#define TC_GEMM_COLUMNS 6

/* One group of one row against six interleaved columns: the row's word widened into (w0, w2) and
 * (w1, w3), each column's four values fetched with its neighbour's by one LDM into r8-r11. */
#define TC_DOT_1X6_PAIR(a, b)                                                                                     \
    "ldm %[c]!, {r8, r9, r10, r11}\n\t"                                                                           \
    "smlad %[" a "], %[x], r8, %[" a "]\n\t"                                                                       \
    "smlad %[" a "], %[e], r9, %[" a "]\n\t"                                                                       \
    "smlad %[" b "], %[x], r10, %[" b "]\n\t"                                                                      \
    "smlad %[" b "], %[e], r11, %[" b "]\n\t"
#define TC_DOT_1X6_GROUP                                                                                          \
    "ldr %[x], [%[w]], #4\n\t"                                                                                    \
    "sxtb16 %[e], %[x], ror #8\n\t"                                                                               \
    "sxtb16 %[x], %[x]\n\t" TC_DOT_1X6_PAIR("a0", "a1") TC_DOT_1X6_PAIR("a2", "a3") TC_DOT_1X6_PAIR("a4", "a5")

/* One matrix call of TC_GEMM_COLUMNS interleaved columns: column i's outputs at out + i * out_stride. */
typedef struct {
    tc_gemm g;
    const int16_t *cols;
    const int16_t *single_end, *end; /* after the groups beyond a multiple of four, after all of them */
    int32_t out_stride;
    int8_t *out;
} tc_gemm_pass;

/* The six accumulators of one row. */
typedef struct {
    int32_t a0, a1, a2, a3, a4, a5;
} tc_acc6;

/* Bias plus the row times the six columns over the groups of four, 24 MACs in 18 instructions, four
 * groups per loop. The accumulators, two pointers and two temporaries take every other register, so
 * each loop reads its end from the stack. */
static inline __attribute__((always_inline)) tc_acc6 tc_dot_1x6(const tc_gemm_pass *pass, const int8_t *w,
                                                                 int32_t bias)
{
    const int32_t groups = pass->g.depth >> 2;
    const int16_t *c = pass->cols;
    const int16_t *volatile ends[2] = {pass->single_end, pass->end};
    int32_t a0 = bias, a1 = bias, a2 = bias, a3 = bias, a4 = bias, a5 = bias, x, e;
#define TC_DOT_1X6_OPERANDS                                                                                      \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [a4] "+r"(a4), [a5] "+r"(a5), [w] "+r"(w),     \
      [c] "+r"(c), [x] "=&r"(x), [e] "=&r"(e)                                                                     \
    : [end] "m"(ends[0]), [end4] "m"(ends[1])                                                                      \
    : "r8", "r9", "r10", "r11", "cc", "memory"
    if (groups & 3) { /* the groups beyond a multiple of four, one at a time */
        __asm__ volatile("1:\n\t" TC_DOT_1X6_GROUP "ldr r8, %[end]\n\t"
                         "cmp %[c], r8\n\t"
                         "bne 1b\n\t" TC_DOT_1X6_OPERANDS);
    }
    if (groups >= 4) {
        __asm__ volatile("1:\n\t" TC_DOT_1X6_GROUP TC_DOT_1X6_GROUP TC_DOT_1X6_GROUP TC_DOT_1X6_GROUP
                         "ldr r8, %[end4]\n\t"
                         "cmp %[c], r8\n\t"
                         "bne 1b\n\t" TC_DOT_1X6_OPERANDS);
    }
#undef TC_DOT_1X6_OPERANDS
    const tc_acc6 acc = {a0, a1, a2, a3, a4, a5};
    return acc;
}

/* One output of the fast requantization (tc_dsp_requantize_s8) with r8-r10 = multiplier2, shift,
 * rounding, clamped by `clamp`, stored at out, which then moves on by stride. */
#define TC_QUICK_OUTPUT(a, clamp) TC_QUICK_OUTPUT_TO(a, clamp, "%[out]", "%[stride]")
/* The same with the pointer and the stride in the registers `out` and `stride` (assembly text). */
#define TC_QUICK_OUTPUT_TO(a, clamp, out, stride)                                                           \
    "smmlar %[" a "], %[" a "], r8, %[" a "]\n\t"                                                                  \
    "add %[" a "], %[" a "], %[" a "], asr #31\n\t"                                                                \
    "qadd %[" a "], %[" a "], r10\n\t"                                                                             \
    "asr %[" a "], %[" a "], r9\n\t" clamp "strb %[" a "], [" out "]\n\t"                                   \
    "add " out ", " out ", " stride "\n\t"
#define TC_CLAMP_INT8(a) "ssat %[" a "], #8, %[" a "]\n\t"
#define TC_CLAMP_ACT(a) TC_CLAMP_ACT_TO(a, "%[lo]", "%[hi]")
/* The clamp [lo, hi] with lo and hi in the registers `lo` and `hi` (assembly text). */
#define TC_CLAMP_ACT_TO(a, lo, hi)                                                                          \
    "cmp %[" a "], " lo "\n\t"                                                                              \
    "it lt\n\t"                                                                                                   \
    "movlt %[" a "], " lo "\n\t"                                                                            \
    "cmp %[" a "], " hi "\n\t"                                                                              \
    "it gt\n\t"                                                                                                   \
    "movgt %[" a "], " hi "\n\t"

/* A clamp [lo, 127] (a ReLU whose zero point is above -128) in three instructions instead of six: SSAT
 * to int8, then the byte-wise compare of SSUB8 sets GE[0] where byte 0, the int8 value, is at least
 * lo's byte 0, and SEL keeps it there, else takes lo's: byte 0, the one STRB stores, is max(a, lo). The
 * other bytes are whatever they are. `t` takes SSUB8's difference, unused. */
#define TC_CLAMP_LO(a)                                                                                        \
    "ssat %[" a "], #8, %[" a "]\n\t"                                                                         \
    "ssub8 %[t], %[" a "], %[lo]\n\t"                                                                         \
    "sel %[" a "], %[" a "], %[lo]\n\t"

/* The six outputs of a row: r8-r10 loaded from q, then each accumulator requantized, clamped, stored. */
#define TC_QUICK_OUTPUTS(clamp)                                                                                   \
    "ldm %[q], {r8, r9, r10}\n\t" TC_QUICK_OUTPUT("a0", clamp("a0")) TC_QUICK_OUTPUT("a1", clamp("a1"))           \
        TC_QUICK_OUTPUT("a2", clamp("a2")) TC_QUICK_OUTPUT("a3", clamp("a3")) TC_QUICK_OUTPUT("a4", clamp("a4"))    \
            TC_QUICK_OUTPUT("a5", clamp("a5"))

/* The common row: whole groups and the fast requantization; the six outputs from the accumulators
 * in registers, 43 instructions with int8's own clamp. Not inlined: a call boundary frees every
 * register the loops need. */
__attribute__((noinline)) static void tc_gemm_row_quick(const tc_gemm_pass *pass, int32_t row, const tc_dsp_quant *q)
{
    tc_acc6 acc = tc_dot_1x6(pass, pass->g.weights + row * pass->g.depth, tc_gemm_bias(&pass->g, row));
    int8_t *out = pass->out + row;
    __asm__ volatile(TC_QUICK_OUTPUTS(TC_CLAMP_INT8)
                     : [a0] "+r"(acc.a0), [a1] "+r"(acc.a1), [a2] "+r"(acc.a2), [a3] "+r"(acc.a3), [a4] "+r"(acc.a4),
                       [a5] "+r"(acc.a5), [out] "+r"(out)
                     : [q] "r"(q), [stride] "r"(pass->out_stride), "m"(*q)
                     : "r8", "r9", "r10", "memory");
}

/* The same with a fused activation's clamp [lo, hi], which lies inside int8 and so also saturates as
 * SSAT would: 73 instructions for the six outputs. */
__attribute__((noinline)) static void tc_gemm_row_quick_clamped(const tc_gemm_pass *pass, int32_t row,
                                                                const tc_dsp_quant *q)
{
    tc_acc6 acc = tc_dot_1x6(pass, pass->g.weights + row * pass->g.depth, tc_gemm_bias(&pass->g, row));
    int8_t *out = pass->out + row;
    __asm__ volatile(TC_QUICK_OUTPUTS(TC_CLAMP_ACT)
                     : [a0] "+r"(acc.a0), [a1] "+r"(acc.a1), [a2] "+r"(acc.a2), [a3] "+r"(acc.a3), [a4] "+r"(acc.a4),
                       [a5] "+r"(acc.a5), [out] "+r"(out)
                     : [q] "r"(q), [stride] "r"(pass->out_stride), [lo] "r"(pass->g.act.min),
                       [hi] "r"(pass->g.act.max), "m"(*q)
                     : "r8", "r9", "r10", "cc", "memory");
}

/* The same with the clamp [lo, 127] (TC_CLAMP_LO): 55 instructions for the six outputs. */
__attribute__((noinline)) static void tc_gemm_row_quick_lo(const tc_gemm_pass *pass, int32_t row, const tc_dsp_quant *q)
{
    tc_acc6 acc = tc_dot_1x6(pass, pass->g.weights + row * pass->g.depth, tc_gemm_bias(&pass->g, row));
    int8_t *out = pass->out + row;
    int32_t t;
    __asm__ volatile(TC_QUICK_OUTPUTS(TC_CLAMP_LO)
                     : [a0] "+r"(acc.a0), [a1] "+r"(acc.a1), [a2] "+r"(acc.a2), [a3] "+r"(acc.a3), [a4] "+r"(acc.a4),
                       [a5] "+r"(acc.a5), [out] "+r"(out), [t] "=&r"(t)
                     : [q] "r"(q), [stride] "r"(pass->out_stride), [lo] "r"(pass->g.act.min), "m"(*q)
                     : "r8", "r9", "r10", "cc", "memory");
}

/* Any other row: the depth % 4 tail, any requantization and clamp. */
__attribute__((noinline)) static void tc_gemm_row(const tc_gemm_pass *pass, int32_t row, const tc_channel_quant *r)
{
    const int8_t *const w = pass->g.weights + row * pass->g.depth;
    const tc_acc6 a = tc_dot_1x6(pass, w, tc_gemm_bias(&pass->g, row));
    const int32_t acc[TC_GEMM_COLUMNS] = {a.a0, a.a1, a.a2, a.a3, a.a4, a.a5};
    int8_t *out = pass->out + row;
    for (int32_t i = 0; i < TC_GEMM_COLUMNS; i++, out += pass->out_stride) {
        *out = tc_channel_output(r, tc_gemm_tail(w, pass->cols, pass->g.depth, i, TC_GEMM_COLUMNS, acc[i]));
    }
}

/* Every row's fast requantization in `table`, once per layer, where all of them have one; otherwise
 * NULL, and each row takes its own. */
static inline const tc_dsp_quant *tc_gemm_quick_table(const tc_gemm *g, tc_dsp_quant *table)
{
    const int32_t step = g->requant->per_channel;
    for (int32_t row = 0, i = 0; row < g->rows; row++, i += step) {
        const int32_t multiplier = tc_requant_multiplier(g->requant, i), shift = tc_requant_shift(g->requant, i);
        if (!tc_dsp_quant_fits(multiplier, shift)) {
            return 0;
        }
        table[row] = tc_dsp_quant_make(multiplier, shift, g->output_offset);
    }
    return table;
}

/* Outputs for TC_GEMM_COLUMNS interleaved columns: column i's outputs at out + i * out_stride. `quick`:
 * the rows' fast requantization, or NULL. */
static inline void tc_gemm_cols(const tc_gemm *g, const tc_dsp_quant *quick, const int16_t *cols, int8_t *out,
                                int32_t out_stride)
{
    const int32_t group_values = 4 * TC_GEMM_COLUMNS, groups = g->depth >> 2;
    const tc_gemm_pass pass = {*g, cols, cols + group_values * (groups & 3), cols + group_values * groups,
                               out_stride, out};
    if (quick && !(g->depth & 3)) { /* nearly every layer */
        if (g->act.min == TC_INT8_MIN && g->act.max == TC_INT8_MAX) {
            for (int32_t row = 0; row < g->rows; row++) {
                tc_gemm_row_quick(&pass, row, quick + row);
            }
        } else if (g->act.max == TC_INT8_MAX) {
            for (int32_t row = 0; row < g->rows; row++) {
                tc_gemm_row_quick_lo(&pass, row, quick + row);
            }
        } else {
            for (int32_t row = 0; row < g->rows; row++) {
                tc_gemm_row_quick_clamped(&pass, row, quick + row);
            }
        }
        return;
    }
    for (int32_t row = 0; row < g->rows; row++) {
        const tc_channel_quant r = tc_channel_quant_make(g->requant, row, g->output_offset, g->act);
        tc_gemm_row(&pass, row, &r);
    }
}

/* acc += one row times one column, over `groups` groups of four. */
static inline int32_t tc_dot_1x1(const int8_t *w, const int16_t *col, int32_t groups, int32_t acc)
{
    for (int32_t i = 0; i < groups; i++) {
        const int32_t v = tc_read_s8x4(w + 4 * i);
        acc = __smlad(__sxtb16(v), tc_read_s16x2(col + 4 * i), acc);
        acc = __smlad(tc_sxtb16_ror8(v), tc_read_s16x2(col + 4 * i + 2), acc);
    }
    return acc;
}

/* One group of four rows against one column: each column word serves the four rows. */
#define TC_DOT_ROW_GROUP(wp, a)                                                                                   \
    "ldr %[x], [%[" wp "]], #4\n\t"                                                                               \
    "sxtb16 %[t], %[x]\n\t"                                                                                       \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                                               \
    "smlad %[" a "], %[t], %[cl], %[" a "]\n\t"                                                                     \
    "smlad %[" a "], %[x], %[ch], %[" a "]\n\t"
#define TC_DOT_4X1_GROUP                                                                                          \
    "ldrd %[cl], %[ch], [%[c]], #8\n\t" TC_DOT_ROW_GROUP("w0", "a0") TC_DOT_ROW_GROUP("w1", "a1")                  \
        TC_DOT_ROW_GROUP("w2", "a2") TC_DOT_ROW_GROUP("w3", "a3")

/* acc[0..3] += rows w, w + depth, w + 2 depth, w + 3 depth times one column: 16 MACs in 21
 * instructions, two groups per loop. */
__attribute__((noinline)) static void tc_dot_4x1(const int8_t *w, int32_t depth, const int16_t *col, int32_t groups,
                                                 int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], x, t, cl, ch;
    const int8_t *w1 = w + depth, *w2 = w + 2 * depth, *w3 = w + 3 * depth;
    const int16_t *c = col, *end = col + 4 * groups;
#define TC_DOT_4X1_OPERANDS                                                                                      \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w), [w1] "+r"(w1), [w2] "+r"(w2),     \
      [w3] "+r"(w3), [c] "+r"(c), [x] "=&r"(x), [t] "=&r"(t), [cl] "=&r"(cl), [ch] "=&r"(ch)                      \
    : [end] "r"(end)                                                                                              \
    : "cc", "memory"
    if (groups & 1) {
        __asm__ volatile(TC_DOT_4X1_GROUP TC_DOT_4X1_OPERANDS);
    }
    if (groups > 1) {
        __asm__ volatile("1:\n\t" TC_DOT_4X1_GROUP TC_DOT_4X1_GROUP "cmp %[c], %[end]\n\t"
                         "bne 1b\n\t" TC_DOT_4X1_OPERANDS);
    }
#undef TC_DOT_4X1_OPERANDS
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Four neighbouring rows' outputs in the fast form, each row's parameters made as it comes; 0, and
 * nothing stored, where a row has no fast form. Not inlined: alone, the compiler keeps it in registers. */
__attribute__((noinline)) static int tc_outputs4_quick(const int32_t acc[4], const int32_t *multiplier,
                                                       const int32_t *shift, int32_t offset, int8_t *out)
{
    for (int32_t r = 0; r < 4; r++) {
        if (!tc_dsp_quant_fits(multiplier[r], shift[r])) {
            return 0;
        }
    }
    for (int32_t r = 0; r < 4; r++) {
        const tc_dsp_quant q = tc_dsp_quant_make(multiplier[r], shift[r], offset);
        out[r] = (int8_t)tc_dsp_requantize_s8(acc[r], &q);
    }
    return 1;
}

/* Outputs for one column (FULLY_CONNECTED with one batch, a convolution with few output positions).
 * `quick`: the rows' fast requantization, or NULL to make each row's as it comes (a layer that uses
 * every row once gains nothing from a table). The description is copied to a local first: the int8
 * stores may alias any memory, so the compiler would otherwise reload every field. */
static inline void tc_gemm_1col(const tc_gemm *gp, const tc_dsp_quant *quick, const int16_t *col, int8_t *out)
{
    const tc_gemm g = *gp;
    const int32_t depth = g.depth, groups = depth >> 2, step = g.requant->per_channel;
    const int32_t *const multiplier = g.requant->multiplier, *const shift = g.requant->shift;
    const int whole = !(depth & 3), full = g.act.min == TC_INT8_MIN && g.act.max == TC_INT8_MAX;
    int32_t row = 0;
    for (; row + 4 <= g.rows; row += 4) {
        const int8_t *w = g.weights + row * depth;
        int32_t acc[4];
        for (int32_t r = 0; r < 4; r++) {
            acc[r] = tc_gemm_bias(&g, row + r);
        }
        tc_dot_4x1(w, depth, col, groups, acc);
        if (!quick && whole && full && step &&
            tc_outputs4_quick(acc, multiplier + row, shift + row, g.output_offset, out + row)) {
            continue;
        }
        for (int32_t r = 0; r < 4; r++) {
            if (quick && whole) {
                const int32_t v = tc_dsp_requantize_s8(acc[r], &quick[row + r]);
                out[row + r] = (int8_t)tc_clamp_i32(v, g.act.min, g.act.max);
                continue;
            }

            const tc_channel_quant q = tc_channel_quant_make(g.requant, row + r, g.output_offset, g.act);
            out[row + r] = tc_channel_output(&q, tc_gemm_tail(w + r * depth, col, depth, 0, 1, acc[r]));
        }
    }
    for (; row < g.rows; row++) {
        const int8_t *w = g.weights + row * depth;
        const int32_t acc = tc_dot_1x1(w, col, groups, tc_gemm_bias(&g, row));
        const tc_channel_quant q = tc_channel_quant_make(g.requant, row, g.output_offset, g.act);
        out[row] = tc_channel_output(&q, tc_gemm_tail(w, col, depth, 0, 1, acc));
    }
}

#endif /* TC_DSP && !TC_MVE */

#endif /* TC_DSP_GEMM_H */
