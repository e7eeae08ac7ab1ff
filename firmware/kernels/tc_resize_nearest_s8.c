/* RESIZE_NEAREST_NEIGHBOR: each output pixel is a copy of one input pixel. The host chose the source row
 * and column of every output row and column with TFLite Micro's float32 arithmetic (ops/resize.py) and
 * stored them as byte offsets, so no division, float or multiply runs here. An output row whose source row
 * is the previous one's (every row after the first of an upscaling) is one copy of the row just written. */
#include <string.h>

#include "tc_kernels.h"
#include "tc_mve.h"

static inline void copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
#if TC_MVE
    tc_mve_copy_s8(dst, src, n);
#else
    memcpy(dst, src, (size_t)n);
#endif
}

tc_status tc_resize_nearest_s8(const tc_resize_nearest_params *p, const int8_t *input, int8_t *output)
{
    const int32_t c = p->output.c, out_w = p->output.w, row_bytes = out_w * c;
    const int32_t image_bytes = p->input.h * p->input.w * p->input.c;
    for (int32_t b = 0; b < p->output.n; b++, input += image_bytes) {
        for (int32_t y = 0; y < p->output.h; y++, output += row_bytes) {
            if (y > 0 && p->rows[y] == p->rows[y - 1]) {
                copy_s8(output, output - row_bytes, row_bytes);
                continue;
            }
            const int8_t *line = input + p->rows[y];
#if !TC_MVE && defined(__ARM_FEATURE_UNALIGNED)
            if (c <= 16 && (c & 3) == 0) {
                /* a few words per pixel (M3/M4/M7/M33, whose word loads and stores may be unaligned):
                 * a word loop in place of a library call per pixel */
                for (int32_t x = 0; x < out_w; x++) {
                    const int8_t *src = line + p->cols[x];
                    int8_t *dst = output + x * c;
                    for (int32_t k = 0; k < c; k += 4) {
                        uint32_t word;
                        memcpy(&word, src + k, sizeof word);
                        memcpy(dst + k, &word, sizeof word);
                    }
                }
                continue;
            }
#endif
            for (int32_t x = 0; x < out_w; x++) {
                copy_s8(output + x * c, line + p->cols[x], c);
            }
        }
    }
    return TC_OK;
}
