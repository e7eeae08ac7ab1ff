/* RESIZE_BILINEAR with TFLite Micro's integer arithmetic (ResizeBilinearInteger). With weights wy, wx in
 * 1/1024 (from the host's tables, ops/resize.py), TFLite Micro sums in int64
 *   v00 (1024 - wy)(1024 - wx) + v10 wy (1024 - wx) + v01 (1024 - wy) wx + v11 wy wx
 * and divides by 2^20, rounding halves away from zero. The same sum, factored, is
 *   t0 = 1024 v00 + (v01 - v00) wx,  t1 = 1024 v10 + (v11 - v10) wx,  acc = 1024 t0 + (t1 - t0) wy:
 * three multiplies, in int32 without overflow. A weight lies in [-512, 1024) (negative only at the first
 * half-pixel rows, where both source rows are row 0), so |t| <= 128 (1536 + 512) < 2^18 and
 * |acc| < 2^18 (1024 + 2 1536) < 2^31. The rounding: (|acc| + 2^19) >> 20, with acc's sign. */
#include "tc_kernels.h"
#include "tc_mve.h"

#if TC_MVE
/* 1024 lo + (hi - lo) w in each lane */
static inline int32x4_t lerp_s32(int32x4_t lo, int32x4_t hi, int32_t w)
{
    return vaddq_s32(vshlq_n_s32(lo, 10), vmulq_n_s32(vsubq_s32(hi, lo), w));
}
#endif

static inline int8_t round_s8(int32_t acc)
{
    return (int8_t)(acc >= 0 ? (acc + (1 << 19)) >> 20 : -((-acc + (1 << 19)) >> 20));
}

tc_status tc_resize_bilinear_s8(const tc_resize_bilinear_params *p, const int8_t *input, int8_t *output)
{
    const int32_t c = p->output.c, out_w = p->output.w;
    const int32_t image_bytes = p->input.h * p->input.w * p->input.c;
    for (int32_t b = 0; b < p->output.n; b++, input += image_bytes) {
        const int32_t *row = p->rows;
        for (int32_t y = 0; y < p->output.h; y++, row += 3) {
            const int8_t *upper = input + row[0], *lower = input + row[1];
            const int32_t wy = row[2];
            const int32_t *col = p->cols;
            for (int32_t x = 0; x < out_w; x++, col += 3, output += c) {
                const int8_t *a = upper + col[0], *b2 = upper + col[1];   /* upper left, upper right */
                const int8_t *d = lower + col[0], *e = lower + col[1];    /* lower left, lower right */
                const int32_t wx = col[2];
                int32_t i = 0;
#if TC_MVE
                /* four channels per pass in int32 lanes; the lanes past c neither load nor store */
                for (; i < c; i += 4) {
                    const mve_pred16_t lanes = vctp32q((uint32_t)(c - i));
                    const int32x4_t v00 = vldrbq_z_s32(a + i, lanes), v01 = vldrbq_z_s32(b2 + i, lanes);
                    const int32x4_t v10 = vldrbq_z_s32(d + i, lanes), v11 = vldrbq_z_s32(e + i, lanes);
                    const int32x4_t acc = lerp_s32(lerp_s32(v00, v01, wx), lerp_s32(v10, v11, wx), wy);
                    const int32x4_t size = vrshrq_n_s32(vabsq_s32(acc), 20); /* (|acc| + 2^19) >> 20 */
                    const int32x4_t rounded = vpselq_s32(vnegq_s32(size), size, vcmpltq_n_s32(acc, 0));
                    vstrbq_p_s32(output + i, rounded, lanes);
                }
#endif
                for (; i < c; i++) {
                    const int32_t t0 = a[i] * 1024 + (b2[i] - a[i]) * wx;
                    const int32_t t1 = d[i] * 1024 + (e[i] - d[i]) * wx;
                    output[i] = round_s8(t0 * 1024 + (t1 - t0) * wy);
                }
            }
        }
    }
    return TC_OK;
}
