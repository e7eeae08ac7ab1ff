/*
 * tinycompress runtime: the Helium matrix kernel shared by CONV_2D and
 * FULLY_CONNECTED. It multiplies int8 weights [rows][depth] by int8 columns,
 * adds a per-row bias, requantizes four rows at a time in vector lanes, and
 * clamps; out[column][row], the NHWC order of both operators' outputs.
 *
 * VMLADAVA multiplies 16 int8 pairs and adds them all to a scalar: 16 MACs in
 * one instruction, no widening. The inner loop does four rows by one column:
 * the column vector serves four rows, and 4 accumulators, 5 pointers and the
 * loop counter fit the registers, where four rows by two columns would spill
 * (VMLADAVA accumulates in even registers only). Rows are the outer loop, so
 * a block's bias and requantization vectors load once for all its columns.
 * Two variants trim the work around that loop where it dominates: a depth of
 * at most 16 (tc_mve_shallow_pairs) and a single column (tc_mve_gemv).
 *
 * An input offset o that the bias does not hold yet is o * (the row's weight
 * sum), added once per block of rows: the columns hold the raw int8 inputs,
 * and padding cells hold -o so that their x + o is 0.
 *
 * Requantization is tc_mve_requantize (tc_mve.h), bit-exact with the scalar
 * tc_requantize; the loops that GCC 12 compiles poorly are inline assembly.
 */
#ifndef TC_MVE_GEMM_H
#define TC_MVE_GEMM_H

#include <stddef.h>

#include "tc_fixedpoint.h"
#include "tc_kernels.h"
#include "tc_mve.h"

#if TC_MVE

/* What every output of one matrix call shares. */
typedef struct {
    const int8_t *weights; /* [rows][depth] */
    const int32_t *bias;   /* [rows], or NULL */
    const tc_requant *requant;
    int32_t rows, depth;
    int32_t input_offset;  /* added to every column value; 0 when the bias already holds it */
    int32_t output_offset;
    tc_activation act;
} tc_mve_gemm;

/* A row's weights, as a block holds it: the four are stored as one vector of addresses (VSTRW), so
 * their type may alias that store's. */
typedef const int8_t *tc_mve_row __attribute__((may_alias));

/* A block of four consecutive rows: where each row's weights start, each row's bias, and the depth.
 * The dot product loads them from here (at these offsets), so they need no registers between columns. */
typedef struct {
    tc_mve_row w[4];
    int32_t bias[4];
    int32_t depth;
} tc_mve_block;
_Static_assert(offsetof(tc_mve_block, bias) == 16 && offsetof(tc_mve_block, depth) == 32, "tc_mve_dot_4x1 offsets");

/* The block's bias plus its four rows times one column, {b0 + w0 . col, ..., b3 + w3 . col}, over
 * depth >= 1 values; *col ends 16 * ceil(depth / 16) bytes further. A tail-predicated loop
 * (DLSTP/LETP) runs ceil(depth / 16) passes and turns off the lanes past the end in the last one:
 * a depth that is no multiple of 16 costs nothing more, and no load leaves its row. Inline
 * assembly because GCC 12 makes no such loop from intrinsics, and spills around its own; the
 * accumulators must be even registers ("Te"). 64 MACs in 10 instructions. */
static inline int32x4_t tc_mve_dot_4x1(const tc_mve_block *b, const int8_t **col)
{
    const int8_t *w0, *w1, *w2, *w3, *c = *col;
    int32_t a0, a1, a2, a3;
    int8x16_t x;
    int32x4_t acc;
    /* volatile: the block behind b changes between calls with the same operands */
    __asm__ volatile("ldrd %[w0], %[w1], [%[b]]\n\t"
                     "ldrd %[w2], %[w3], [%[b], #8]\n\t"
                     "ldrd %[a0], %[a1], [%[b], #16]\n\t"
                     "ldrd %[a2], %[a3], [%[b], #24]\n\t"
                     "ldr lr, [%[b], #32]\n\t"
                     "dlstp.8 lr, lr\n"
                     "1:\n\t"
                     "vldrb.8 %q[x], [%[c]], #16\n\t"
                     "vldrb.8 %q[acc], [%[w0]], #16\n\t"
                     "vmladava.s8 %[a0], %q[acc], %q[x]\n\t"
                     "vldrb.8 %q[acc], [%[w1]], #16\n\t"
                     "vmladava.s8 %[a1], %q[acc], %q[x]\n\t"
                     "vldrb.8 %q[acc], [%[w2]], #16\n\t"
                     "vmladava.s8 %[a2], %q[acc], %q[x]\n\t"
                     "vldrb.8 %q[acc], [%[w3]], #16\n\t"
                     "vmladava.s8 %[a3], %q[acc], %q[x]\n\t"
                     "letp lr, 1b\n\t"
                     "vmov %q[acc][2], %q[acc][0], %[a0], %[a2]\n\t"
                     "vmov %q[acc][3], %q[acc][1], %[a1], %[a3]\n"
                     : [acc] "=&w"(acc), [x] "=&w"(x), [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2),
                       [a3] "=&Te"(a3), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), [c] "+r"(c)
                     : [b] "r"(b)
                     : "lr", "memory");
    *col = c;
    return acc;
}

/* The weight sums of rows w, w + depth, w + 2 depth, w + 3 depth: the same loop with VADDVA. */
static inline int32x4_t tc_mve_row_sums_4(const int8_t *w, int32_t depth)
{
    const int8_t *w1 = w + depth, *w2 = w1 + depth, *w3 = w2 + depth;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int8x16_t x;
    int32x4_t sums;
    __asm__("dlstp.8 lr, %[n]\n"
            "1:\n\t"
            "vldrb.8 %q[x], [%[w0]], #16\n\t"
            "vaddva.s8 %[s0], %q[x]\n\t"
            "vldrb.8 %q[x], [%[w1]], #16\n\t"
            "vaddva.s8 %[s1], %q[x]\n\t"
            "vldrb.8 %q[x], [%[w2]], #16\n\t"
            "vaddva.s8 %[s2], %q[x]\n\t"
            "vldrb.8 %q[x], [%[w3]], #16\n\t"
            "vaddva.s8 %[s3], %q[x]\n\t"
            "letp lr, 1b\n\t"
            "vmov %q[sums][2], %q[sums][0], %[s0], %[s2]\n\t"
            "vmov %q[sums][3], %q[sums][1], %[s1], %[s3]\n"
            : [sums] "=w"(sums), [x] "=&w"(x), [s0] "+Te"(s0), [s1] "+Te"(s1), [s2] "+Te"(s2), [s3] "+Te"(s3),
              [w0] "+r"(w), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3)
            : [n] "r"(depth)
            : "lr", "memory");
    return sums;
}

/* The block at `row`: its rows, and its bias plus the input offset times each row's weight sum.
 * row_starts is {0, depth, 2 depth, 3 depth}. */
static inline void tc_mve_block_at(const tc_mve_gemm *g, int32_t row, uint32x4_t row_starts, tc_mve_block *b)
{
    const int8_t *w = g->weights + row * g->depth;
    vstrwq_u32((uint32_t *)b->w, vaddq_n_u32(row_starts, (uint32_t)(uintptr_t)w));
    int32x4_t bias = g->bias ? vldrwq_s32(g->bias + row) : vdupq_n_s32(0);
    if (g->input_offset) {
        bias = vmlaq_n_s32(bias, tc_mve_row_sums_4(w, g->depth), g->input_offset);
    }
    vstrwq_s32(b->bias, bias);
    b->depth = g->depth;
}

/* The block of four rows after the one at `row`: the last ends at the last row, and overlaps the one
 * before when rows % 4 != 0 (it computes a few outputs again, to the same values). */
static inline int32_t tc_mve_next_block(int32_t row, int32_t rows)
{
    return row + 4 < rows ? tc_min_i32(row + 4, rows - 4) : rows;
}

/* The weight sum of one row. */
static inline int32_t tc_mve_row_sum(const int8_t *w, int32_t depth)
{
    int32_t sum = 0;
    for (; depth > 0; depth -= 16, w += 16) {
        sum = vaddvaq_s8(sum, vldrbq_z_s8(w, vctp8q((uint32_t)depth)));
    }
    return sum;
}

/* folded[row] = bias + input offset * weight sum, for the calls that follow with bias = folded and
 * input_offset = 0 (once per layer: a row at a time will do). */
static inline void tc_mve_fold_bias(const tc_mve_gemm *g, tc_alias_i32 *folded)
{
    for (int32_t row = 0; row < g->rows; row++) {
        const int32_t sum = tc_mve_row_sum(g->weights + row * g->depth, g->depth);
        folded[row] = (g->bias ? g->bias[row] : 0) + g->input_offset * sum;
    }
}

/* Fewer than four rows (a classifier's last FULLY_CONNECTED): a row at a time, scalar requantization. */
static void tc_mve_gemm_narrow(const tc_mve_gemm *g, const int8_t *cols, int32_t col_stride, int32_t columns,
                               int8_t *out)
{
    for (int32_t c = 0; c < columns; c++, cols += col_stride) {
        for (int32_t row = 0; row < g->rows; row++) {
            const int8_t *w = g->weights + row * g->depth;
            int32_t acc = 0;
            for (int32_t k = 0; k < g->depth; k += 16) {
                const mve_pred16_t p = vctp8q((uint32_t)(g->depth - k));
                acc = vmladavaq_s8(acc, vldrbq_z_s8(w + k, p), vldrbq_z_s8(cols + k, p));
            }
            acc += (g->bias ? g->bias[row] : 0) + g->input_offset * tc_mve_row_sum(w, g->depth);
            const int32_t q = g->requant->per_channel ? row : 0;
            acc = tc_requantize(acc, g->requant->multiplier[q], g->requant->shift[q]) + g->output_offset;
            *out++ = (int8_t)tc_clamp_i32(acc, g->act.min, g->act.max);
        }
    }
}

/* What the outputs of a block share besides its rows (tc_mve_shallow_pairs reads it at these offsets). */
typedef struct {
    int32x4_t multiplier, left, right; /* left = max(shift, 0), right = min(shift, 0) */
    int32x4_t offset, min, max;        /* output offset and clamp */
} tc_mve_requant;
_Static_assert(offsetof(tc_mve_requant, right) == 32 && offsetof(tc_mve_requant, max) == 80,
               "tc_mve_shallow_pairs offsets");

/* The outputs of one block for the columns until `end`; right_only: every shift of the block is
 * negative. Inlined twice, so that each loop carries only the requantization it needs. */
static inline void tc_mve_block_columns(const tc_mve_block *b, const tc_mve_requant *rq, const int right_only,
                                        const int8_t *col, int32_t col_step, int8_t *o, int32_t out_step,
                                        int8_t *end)
{
    const int32x4_t multiplier = rq->multiplier, left = rq->left, right = rq->right;
    const int32x4_t offset = rq->offset, min = rq->min, max = rq->max;
    for (; o != end; o += out_step, col += col_step) {
        int32x4_t acc = tc_mve_dot_4x1(b, &col);
        acc = right_only ? tc_mve_requantize_right(acc, multiplier, right)
                         : tc_mve_requantize(acc, multiplier, left, right);
        vstrbq_s32(o, vminq_s32(vmaxq_s32(vaddq_s32(acc, offset), min), max));
    }
}

/* One column of tc_mve_shallow_pairs: its vector (predicated to the depth) times the four weight
 * vectors in registers, the four sums gathered into vector `v`. */
#define TC_MVE_SHALLOW_COLUMN(v)                                                                                  \
    "vpst\n\t"                                                                                                  \
    "vldrbt.8 %q[c], [%[col]]\n\t"                                                                              \
    "add %[col], %[col], %[stride]\n\t"                                                                         \
    "vmladav.s8 %[a0], %q[w0], %q[c]\n\t"                                                                       \
    "vmladav.s8 %[a1], %q[w1], %q[c]\n\t"                                                                       \
    "vmladav.s8 %[a2], %q[w2], %q[c]\n\t"                                                                       \
    "vmladav.s8 %[a3], %q[w3], %q[c]\n\t"                                                                       \
    "vmov %q[" v "][2], %q[" v "][0], %[a0], %[a2]\n\t"                                                         \
    "vmov %q[" v "][3], %q[" v "][1], %[a1], %[a3]\n\t"

/* A block's outputs for `pairs` pairs of columns when depth <= 16 and every shift is negative: the
 * first layers after a stem, with 8 or 16 channels. A column is then one vector, so per column the
 * loop's setup would outweigh its 4 multiply-adds; instead the four weight vectors stay in
 * registers, two columns share one pass, and the requantization vectors come from memory into the
 * one vector register left (GCC could not keep all of it in registers). 8 outputs in 45 instructions.
 * The narrowing stores (VSTRB.32) take their address in a low register: "l". */
static inline void tc_mve_shallow_pairs(const tc_mve_block *b, const tc_mve_requant *rq, const int8_t *col,
                                        int32_t col_stride, int8_t *o, int32_t out_step, int32_t pairs)
{
    const int32_t depth = b->depth;
    const mve_pred16_t lanes = vctp8q((uint32_t)depth);
    const int8x16_t w0 = vldrbq_z_s8(b->w[0], lanes), w1 = vldrbq_z_s8(b->w[1], lanes);
    const int8x16_t w2 = vldrbq_z_s8(b->w[2], lanes), w3 = vldrbq_z_s8(b->w[3], lanes);
    int32_t a0, a1, a2, a3;
    int8x16_t c;
    int32x4_t x, y;
    __asm__ volatile(
        "vctp.8 %[n]\n\t"
        "dls lr, %[pairs]\n"
        "1:\n\t"
        TC_MVE_SHALLOW_COLUMN("x") TC_MVE_SHALLOW_COLUMN("y")
        "vldrw.32 %q[c], [%[b], #16]\n\t" /* bias */
        "vadd.i32 %q[x], %q[x], %q[c]\n\t"
        "vadd.i32 %q[y], %q[y], %q[c]\n\t"
        "vldrw.32 %q[c], [%[rq]]\n\t" /* multiplier */
        "vqrdmulh.s32 %q[x], %q[x], %q[c]\n\t"
        "vqrdmulh.s32 %q[y], %q[y], %q[c]\n\t"
        "vshr.s32 %q[c], %q[x], #31\n\t" /* tc_mve_requantize_right's nudge */
        "vqadd.s32 %q[x], %q[x], %q[c]\n\t"
        "vshr.s32 %q[c], %q[y], #31\n\t"
        "vqadd.s32 %q[y], %q[y], %q[c]\n\t"
        "vldrw.32 %q[c], [%[rq], #32]\n\t" /* right */
        "vrshl.s32 %q[x], %q[x], %q[c]\n\t"
        "vrshl.s32 %q[y], %q[y], %q[c]\n\t"
        "vldrw.32 %q[c], [%[rq], #48]\n\t" /* offset */
        "vadd.i32 %q[x], %q[x], %q[c]\n\t"
        "vadd.i32 %q[y], %q[y], %q[c]\n\t"
        "vldrw.32 %q[c], [%[rq], #64]\n\t" /* min */
        "vmax.s32 %q[x], %q[x], %q[c]\n\t"
        "vmax.s32 %q[y], %q[y], %q[c]\n\t"
        "vldrw.32 %q[c], [%[rq], #80]\n\t" /* max */
        "vmin.s32 %q[x], %q[x], %q[c]\n\t"
        "vmin.s32 %q[y], %q[y], %q[c]\n\t"
        "vstrb.32 %q[x], [%[o]]\n\t"
        "add %[o], %[o], %[step]\n\t"
        "vstrb.32 %q[y], [%[o]]\n\t"
        "add %[o], %[o], %[step]\n\t"
        "le lr, 1b\n"
        : [col] "+r"(col), [o] "+l"(o), [a0] "=&Te"(a0), [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3),
          [c] "=&w"(c), [x] "=&w"(x), [y] "=&w"(y)
        : [w0] "w"(w0), [w1] "w"(w1), [w2] "w"(w2), [w3] "w"(w3), [b] "r"(b), [rq] "r"(rq),
          [stride] "r"(col_stride), [step] "r"(out_step), [n] "r"(depth), [pairs] "r"(pairs)
        : "lr", "p0", "memory");
}

/* out[row] for a single column with the bias already holding any input offset (FULLY_CONNECTED on
 * one batch): every block has just one column, so its setup is kept to a few vector moves. */
static inline void tc_mve_gemv(const tc_mve_gemm *g, const int8_t *col, int8_t *out)
{
    const tc_requant *q = g->requant;
    const int32_t rows = g->rows, depth = g->depth;
    const uint32x4_t row_starts = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)depth);
    const int32x4_t zero = vdupq_n_s32(0), offset = vdupq_n_s32(g->output_offset);
    const int32x4_t min = vdupq_n_s32(g->act.min), max = vdupq_n_s32(g->act.max);
    int32x4_t multiplier = vdupq_n_s32(q->multiplier[0]), shift = vdupq_n_s32(q->shift[0]);
    tc_mve_block b;
    b.depth = depth;
    for (int32_t row = 0; row < rows; row = tc_mve_next_block(row, rows)) {
        vstrwq_u32((uint32_t *)b.w, vaddq_n_u32(row_starts, (uint32_t)(uintptr_t)(g->weights + row * depth)));
        vstrwq_s32(b.bias, vldrwq_s32(g->bias + row));
        if (q->per_channel) {
            multiplier = vldrwq_s32(q->multiplier + row), shift = vldrwq_s32(q->shift + row);
        }
        const int8_t *c = col;
        const int32x4_t acc = tc_mve_requantize(tc_mve_dot_4x1(&b, &c), multiplier, vmaxq_s32(shift, zero),
                                                vminq_s32(shift, zero));
        vstrbq_s32(out + row, vminq_s32(vmaxq_s32(vaddq_s32(acc, offset), min), max));
    }
}

/* out[c * rows + row] for `columns` columns, column c at cols + c * col_stride. What the loops
 * read is in locals: stores through int8_t * could alias any memory and force reloads. */
static void tc_mve_gemm_run(const tc_mve_gemm *g, const int8_t *cols, int32_t col_stride, int32_t columns, int8_t *out)
{
    if (g->rows < 4) {
        tc_mve_gemm_narrow(g, cols, col_stride, columns, out);
        return;
    }
    const tc_requant *q = g->requant;
    const int32_t rows = g->rows, depth = g->depth;
    const int32_t col_step = col_stride - 16 * ((depth + 15) >> 4); /* from where a dot product leaves its column */
    const uint32x4_t row_starts = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)depth);
    const int32x4_t zero = vdupq_n_s32(0);
    tc_mve_requant rq;
    rq.offset = vdupq_n_s32(g->output_offset), rq.min = vdupq_n_s32(g->act.min), rq.max = vdupq_n_s32(g->act.max);
    for (int32_t row = 0; row < rows; row = tc_mve_next_block(row, rows)) {
        tc_mve_block b;
        tc_mve_block_at(g, row, row_starts, &b);
        rq.multiplier = q->per_channel ? vldrwq_s32(q->multiplier + row) : vdupq_n_s32(q->multiplier[0]);
        const int32x4_t shift = q->per_channel ? vldrwq_s32(q->shift + row) : vdupq_n_s32(q->shift[0]);
        rq.left = vmaxq_s32(shift, zero), rq.right = vminq_s32(shift, zero);
        int8_t *o = out + row, *const end = o + columns * rows;
        if (vmaxvq_s32(-1, shift) >= 0) {
            tc_mve_block_columns(&b, &rq, 0, cols, col_step, o, rows, end);
        } else if (depth <= 16 && columns >= 2) {
            tc_mve_shallow_pairs(&b, &rq, cols, col_stride, o, rows, columns >> 1);
            if (columns & 1) { /* the last column on its own */
                tc_mve_block_columns(&b, &rq, 1, cols + (columns - 1) * col_stride, col_step, end - rows, rows, end);
            }
        } else {
            tc_mve_block_columns(&b, &rq, 1, cols, col_step, o, rows, end);
        }
    }
}

#endif /* TC_MVE */

#endif /* TC_MVE_GEMM_H */
