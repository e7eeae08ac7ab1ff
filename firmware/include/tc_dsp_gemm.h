/*
 * tinycompress runtime: the DSP-extension matrix kernel shared by CONV_2D and
 * FULLY_CONNECTED. It multiplies int8 weights [rows][depth] by int16 columns in
 * SMLAD order (tc_dsp.h), adds the bias, requantizes and clamps.
 *
 * Columns are stored by groups of four values: with one column a group is two
 * words; with two columns the groups interleave, (a a b b), so one pointer walks
 * both. The inner loops are inline assembly because the compiler spills under
 * their register pressure: two rows by two columns keep 4 accumulators, 3
 * pointers and 6 temporaries in registers and do 16 MACs in 18 instructions.
 * They are not inlined: a call boundary frees every register they need.
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

/* The requantization of one row, loaded once for all the columns it serves. */
typedef struct {
    int32_t multiplier, shift;
} tc_row_quant;

static inline tc_row_quant tc_gemm_row_quant(const tc_gemm *g, int32_t row)
{
    const int32_t q = g->requant->per_channel ? row : 0;
    const tc_row_quant r = {g->requant->multiplier[q], g->requant->shift[q]};
    return r;
}

static inline int8_t tc_gemm_output(const tc_gemm *g, int32_t acc, tc_row_quant r)
{
    acc = tc_requantize(acc, r.multiplier, r.shift) + g->output_offset;
    return (int8_t)tc_clamp_i32(acc, g->act.min, g->act.max);
}

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

/* One group for rows w0, w1 and interleaved columns a, b: acc {0a, 1a, 0b, 1b}. */
#define TC_DOT_2X2_GROUP                                                                                          \
    "ldr %[x], [%[w0]], #4\n\t"                                                                                   \
    "ldr %[y], [%[w1]], #4\n\t"                                                                                   \
    "ldrd %[cl], %[ch], [%[c]], #8\n\t"                                                                           \
    "sxtb16 %[t], %[x]\n\t"                                                                                       \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                                               \
    "smlad %[a0], %[t], %[cl], %[a0]\n\t"                                                                         \
    "smlad %[a0], %[x], %[ch], %[a0]\n\t"                                                                         \
    "sxtb16 %[u], %[y]\n\t"                                                                                       \
    "sxtb16 %[y], %[y], ror #8\n\t"                                                                               \
    "smlad %[a1], %[u], %[cl], %[a1]\n\t"                                                                         \
    "smlad %[a1], %[y], %[ch], %[a1]\n\t"                                                                         \
    "ldrd %[cl], %[ch], [%[c]], #8\n\t"                                                                           \
    "smlad %[b0], %[t], %[cl], %[b0]\n\t"                                                                         \
    "smlad %[b0], %[x], %[ch], %[b0]\n\t"                                                                         \
    "smlad %[b1], %[u], %[cl], %[b1]\n\t"                                                                         \
    "smlad %[b1], %[y], %[ch], %[b1]\n\t"

/* acc[0..3] += rows w0, w1 times interleaved columns (a, b), over `groups` groups of four. */
__attribute__((noinline)) static void tc_dot_2x2(const int8_t *w0, const int8_t *w1, const int16_t *cols, int32_t groups,
                              int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3], x, y, t, u, cl, ch;
    const int16_t *c = cols;
    if (groups & 1) {
        __asm__ volatile(TC_DOT_2X2_GROUP
                         : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [w0] "+r"(w0),
                           [w1] "+r"(w1), [c] "+r"(c), [x] "=&r"(x), [y] "=&r"(y), [t] "=&r"(t), [u] "=&r"(u),
                           [cl] "=&r"(cl), [ch] "=&r"(ch)
                         :
                         : "memory");
    }
    if (groups > 1) { /* two groups per pass: 32 MACs in 34 instructions */
        const int16_t *end = cols + 8 * groups;
        __asm__ volatile("1:\n\t" TC_DOT_2X2_GROUP TC_DOT_2X2_GROUP "cmp %[c], %[end]\n\t"
                         "bne 1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [w0] "+r"(w0),
                           [w1] "+r"(w1), [c] "+r"(c), [x] "=&r"(x), [y] "=&r"(y), [t] "=&r"(t), [u] "=&r"(u),
                           [cl] "=&r"(cl), [ch] "=&r"(ch)
                         : [end] "r"(end)
                         : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
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

/* acc[0..3] += rows w, w + depth, w + 2 depth, w + 3 depth times one column. */
__attribute__((noinline)) static void tc_dot_4x1(const int8_t *w, int32_t depth, const int16_t *col, int32_t groups, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], x, t, cl, ch;
    const int8_t *w1 = w + depth, *w2 = w + 2 * depth, *w3 = w + 3 * depth;
    const int16_t *c = col, *end = col + 4 * groups;
    if (groups > 0) { /* 16 MACs in 23 instructions: each column word serves four rows */
        __asm__ volatile("1:\n\t"
                         "ldrd %[cl], %[ch], [%[c]], #8\n\t"
                         "ldr %[x], [%[w0]], #4\n\t"
                         "sxtb16 %[t], %[x]\n\t"
                         "sxtb16 %[x], %[x], ror #8\n\t"
                         "smlad %[a0], %[t], %[cl], %[a0]\n\t"
                         "smlad %[a0], %[x], %[ch], %[a0]\n\t"
                         "ldr %[x], [%[w1]], #4\n\t"
                         "sxtb16 %[t], %[x]\n\t"
                         "sxtb16 %[x], %[x], ror #8\n\t"
                         "smlad %[a1], %[t], %[cl], %[a1]\n\t"
                         "smlad %[a1], %[x], %[ch], %[a1]\n\t"
                         "ldr %[x], [%[w2]], #4\n\t"
                         "sxtb16 %[t], %[x]\n\t"
                         "sxtb16 %[x], %[x], ror #8\n\t"
                         "smlad %[a2], %[t], %[cl], %[a2]\n\t"
                         "smlad %[a2], %[x], %[ch], %[a2]\n\t"
                         "ldr %[x], [%[w3]], #4\n\t"
                         "sxtb16 %[t], %[x]\n\t"
                         "sxtb16 %[x], %[x], ror #8\n\t"
                         "smlad %[a3], %[t], %[cl], %[a3]\n\t"
                         "smlad %[a3], %[x], %[ch], %[a3]\n\t"
                         "cmp %[c], %[end]\n\t"
                         "bne 1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w), [w1] "+r"(w1),
                           [w2] "+r"(w2), [w3] "+r"(w3), [c] "+r"(c), [x] "=&r"(x), [t] "=&r"(t), [cl] "=&r"(cl),
                           [ch] "=&r"(ch)
                         : [end] "r"(end)
                         : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Outputs for two interleaved columns: out_a[row] from column a, out_b[row] from column b. The
 * description is copied to a local first: the int8 stores may alias any memory, so the compiler
 * would otherwise reload every field through the pointer after each output. */
static inline void tc_gemm_2cols(const tc_gemm *gp, const int16_t *cols, int8_t *out_a, int8_t *out_b)
{
    const tc_gemm g = *gp;
    const int32_t depth = g.depth, groups = depth >> 2, tail = depth & 3;
    int32_t row = 0;
    for (; row + 2 <= g.rows; row += 2) {
        const int8_t *w0 = g.weights + row * depth, *w1 = w0 + depth;
        int32_t acc[4] = {tc_gemm_bias(&g, row), tc_gemm_bias(&g, row + 1), 0, 0};
        acc[2] = acc[0];
        acc[3] = acc[1];
        tc_dot_2x2(w0, w1, cols, groups, acc);
        if (tail) {
            acc[0] = tc_gemm_tail(w0, cols, depth, 0, 2, acc[0]);
            acc[1] = tc_gemm_tail(w1, cols, depth, 0, 2, acc[1]);
            acc[2] = tc_gemm_tail(w0, cols, depth, 1, 2, acc[2]);
            acc[3] = tc_gemm_tail(w1, cols, depth, 1, 2, acc[3]);
        }
        const tc_row_quant r0 = tc_gemm_row_quant(&g, row), r1 = tc_gemm_row_quant(&g, row + 1);
        out_a[row] = tc_gemm_output(&g, acc[0], r0);
        out_a[row + 1] = tc_gemm_output(&g, acc[1], r1);
        out_b[row] = tc_gemm_output(&g, acc[2], r0);
        out_b[row + 1] = tc_gemm_output(&g, acc[3], r1);
    }
    if (row < g.rows) { /* an odd last row */
        const int8_t *w = g.weights + row * depth;
        int32_t acc_a = tc_gemm_bias(&g, row), acc_b = acc_a;
        for (int32_t i = 0; i < groups; i++) {
            const int32_t v = tc_read_s8x4(w + 4 * i);
            const int32_t lo = __sxtb16(v), hi = tc_sxtb16_ror8(v);
            acc_a = __smlad(hi, tc_read_s16x2(cols + 8 * i + 2), __smlad(lo, tc_read_s16x2(cols + 8 * i), acc_a));
            acc_b = __smlad(hi, tc_read_s16x2(cols + 8 * i + 6), __smlad(lo, tc_read_s16x2(cols + 8 * i + 4), acc_b));
        }
        const tc_row_quant r = tc_gemm_row_quant(&g, row);
        out_a[row] = tc_gemm_output(&g, tc_gemm_tail(w, cols, depth, 0, 2, acc_a), r);
        out_b[row] = tc_gemm_output(&g, tc_gemm_tail(w, cols, depth, 1, 2, acc_b), r);
    }
}

/* Outputs for one column (FULLY_CONNECTED with one batch, a last odd output position). */
static inline void tc_gemm_1col(const tc_gemm *gp, const int16_t *col, int8_t *out)
{
    const tc_gemm g = *gp;
    const int32_t depth = g.depth, groups = depth >> 2;
    int32_t row = 0;
    for (; row + 4 <= g.rows; row += 4) {
        const int8_t *w = g.weights + row * depth;
        int32_t acc[4];
        for (int32_t r = 0; r < 4; r++) {
            acc[r] = tc_gemm_bias(&g, row + r);
        }
        tc_dot_4x1(w, depth, col, groups, acc);
        for (int32_t r = 0; r < 4; r++) {
            const int32_t total = tc_gemm_tail(w + r * depth, col, depth, 0, 1, acc[r]);
            out[row + r] = tc_gemm_output(&g, total, tc_gemm_row_quant(&g, row + r));
        }
    }
    for (; row < g.rows; row++) {
        const int8_t *w = g.weights + row * depth;
        const int32_t acc = tc_dot_1x1(w, col, groups, tc_gemm_bias(&g, row));
        out[row] = tc_gemm_output(&g, tc_gemm_tail(w, col, depth, 0, 1, acc), tc_gemm_row_quant(&g, row));
    }
}

#endif /* TC_DSP && !TC_MVE */

#endif /* TC_DSP_GEMM_H */
