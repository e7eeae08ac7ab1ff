/* BATCH_MATMUL: out[b, i, j] = requant(sum_k (lhs[b, i, k] + lhs_offset) * (rhs[b, k, j] + rhs_offset)).
 * Both operands are read through strides (tinycompress/ops/batch_matmul.py sets them from adj_x, adj_y and
 * the broadcast batch axes), so nothing is transposed on the target, except on DSP and Helium cores a
 * right-hand side whose depth is not contiguous (scores @ v): each batch of it goes once into scratch as
 * [N, K], and every dot product then runs on contiguous bytes. int32 sums wrap alike in any order, so the
 * three paths give TFLite Micro's bytes:
 * - portable: one multiply-add per MAC;
 * - DSP (M4, M7, M33): four MACs per two word loads, four SXTAB16 (each adds the offset to two bytes as it
 *   widens them to int16 lanes; (q + offset) lies in [-255, 255]) and two SMLAD;
 * - Helium (M55): sixteen MACs per VMLADAVA on the raw int8 bytes, the offsets added afterwards:
 *   sum (a + oa)(b + ob) = sum ab + ob sum a + oa sum b + K oa ob, with sum a once per row and sum b
 *   alongside (VADDVA), tails by predicated loads that read zeros. */
#include <stddef.h>

#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"
#include "tc_mve.h"

static int32_t dot_strided(const int8_t *a, int32_t stride_a, int32_t offset_a,
                           const int8_t *b, int32_t stride_b, int32_t offset_b, int32_t depth)
{
    int32_t acc = 0;
    for (int32_t k = 0; k < depth; k++, a += stride_a, b += stride_b) {
        acc += (*a + offset_a) * (*b + offset_b);
    }
    return acc;
}

#if TC_MVE
static int32_t sum_s8(const int8_t *a, int32_t depth)
{
    int32_t sum = 0;
    for (int32_t k = 0; k < depth; k += 16) {
        sum = vaddvaq_s8(sum, vldrbq_z_s8(a + k, vctp8q((uint32_t)(depth - k))));
    }
    return sum;
}

/* sum a*b + ob * sum_a + oa * sum b + depth * oa * ob, with sum_a given */
static int32_t dot_contiguous(const int8_t *a, int32_t oa, int32_t sum_a, const int8_t *b, int32_t ob,
                              int32_t depth)
{
    int32_t acc = 0, sum_b = 0;
    for (int32_t k = 0; k < depth; k += 16) {
        const mve_pred16_t tail = vctp8q((uint32_t)(depth - k));
        const int8x16_t x = vldrbq_z_s8(a + k, tail), y = vldrbq_z_s8(b + k, tail);
        acc = vmladavaq_s8(acc, x, y);
        sum_b = vaddvaq_s8(sum_b, y);
    }
    return acc + ob * sum_a + oa * sum_b + depth * oa * ob;
}
#elif TC_DSP
static int32_t dot_contiguous(const int8_t *a, int32_t oa, int32_t sum_a, const int8_t *b, int32_t ob,
                              int32_t depth)
{
    (void)sum_a;
    const int32_t oa2 = tc_pack_s16x2(oa, oa), ob2 = tc_pack_s16x2(ob, ob);
    int32_t acc = 0, k = 0;
    for (; k + 4 <= depth; k += 4) {
        const int32_t x = tc_read_s8x4(a + k), y = tc_read_s8x4(b + k);
        acc = __smlad(__sxtab16(oa2, x), __sxtab16(ob2, y), acc);                 /* bytes 0 and 2 */
        acc = __smlad(tc_sxtab16_ror8(oa2, x), tc_sxtab16_ror8(ob2, y), acc);     /* bytes 1 and 3 */
    }
    return acc + dot_strided(a + k, 1, oa, b + k, 1, ob, depth - k);
}
#endif

tc_status tc_batch_matmul_s8(const tc_batch_matmul_params *p, const int8_t *lhs, const int8_t *rhs,
                             int8_t *output)
{
    const int32_t rows = p->rows, cols = p->cols, depth = p->depth;
    const int32_t oa = p->lhs_offset, ob = p->rhs_offset;
    if (p->constant_rhs != NULL) {
        rhs = p->constant_rhs;   /* the second argument repeats the first: the operand lives in flash */
    }
    for (int32_t b0 = 0; b0 < p->batches[0]; b0++) {
        for (int32_t b1 = 0; b1 < p->batches[1]; b1++) {
            for (int32_t b2 = 0; b2 < p->batches[2]; b2++) {
                const int8_t *a = lhs + b0 * p->lhs_batch_strides[0] + b1 * p->lhs_batch_strides[1] +
                                  b2 * p->lhs_batch_strides[2];
                const int8_t *b = rhs + b0 * p->rhs_batch_strides[0] + b1 * p->rhs_batch_strides[1] +
                                  b2 * p->rhs_batch_strides[2];
                int32_t col_stride = p->rhs_col_stride, depth_stride = p->rhs_depth_stride;
#if TC_DSP || TC_MVE
                if (depth_stride != 1 && p->scratch != NULL) {   /* this batch's columns, each contiguous */
                    int8_t *columns = (int8_t *)p->scratch;
                    for (int32_t j = 0; j < cols; j++) {
                        for (int32_t k = 0; k < depth; k++) {
                            columns[j * depth + k] = b[j * col_stride + k * depth_stride];
                        }
                    }
                    b = columns;
                    col_stride = depth;
                    depth_stride = 1;
                }
                const int contiguous = p->lhs_depth_stride == 1 && depth_stride == 1;
#endif
                for (int32_t i = 0; i < rows; i++) {
                    const int8_t *row = a + i * p->lhs_row_stride;
#if TC_MVE
                    const int32_t sum_a = contiguous ? sum_s8(row, depth) : 0;
#elif TC_DSP
                    const int32_t sum_a = 0;
#endif
                    for (int32_t j = 0; j < cols; j++) {
                        const int8_t *column = b + j * col_stride;
                        int32_t acc;
#if TC_DSP || TC_MVE
                        if (contiguous) {
                            acc = dot_contiguous(row, oa, sum_a, column, ob, depth);
                        } else
#endif
                        {
                            acc = dot_strided(row, p->lhs_depth_stride, oa, column, depth_stride, ob, depth);
                        }
                        const int32_t q = tc_requantize(acc, p->multiplier, p->shift) + p->output_offset;
                        *output++ = (int8_t)tc_clamp_i32(q, TC_INT8_MIN, TC_INT8_MAX);
                    }
                }
            }
        }
    }
    return TC_OK;
}
