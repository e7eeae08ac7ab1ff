/* MAX_POOL_2D, int8 NHWC, padding cells ignored. Portable C, and on cores with the DSP extension
 * four channels per word: SSUB8 sets one GE flag per byte, SEL keeps the larger bytes. */
#include <string.h>

#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

#if TC_DSP
/* Bytewise max of four int8 lanes. */
static inline int32_t max4(int32_t a, int32_t b)
{
    (void)__ssub8((int8x4_t)a, (int8x4_t)b);
    return (int32_t)__sel((uint8x4_t)a, (uint8x4_t)b);
}

/* The same value in all four lanes. */
static inline int32_t splat4(int32_t v) { return (int32_t)(((uint32_t)v & 0xFFu) * 0x01010101u); }
#endif

tc_status tc_max_pool2d_s8(const tc_pool2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, channels = p->input.c;
#if TC_DSP
    const int32_t lo4 = splat4(p->act.min), hi4 = splat4(p->act.max);
#endif
    for (int32_t n = 0; n < p->input.n; n++) {
        const int8_t *image = input + n * in_h * in_w * channels;
        for (int32_t oy = 0; oy < p->output.h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            const int32_t y_start = tc_max_i32(0, y0), y_end = tc_min_i32(in_h, y0 + p->filter_h);
            for (int32_t ox = 0; ox < p->output.w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int32_t x_start = tc_max_i32(0, x0), x_end = tc_min_i32(in_w, x0 + p->filter_w);
                const int8_t *corner = image + (y_start * in_w + x_start) * channels;
                const int32_t cols = x_end - x_start, row_skip = (in_w - cols) * channels;
                int32_t c = 0;
#if TC_DSP
                for (; c + 4 <= channels; c += 4, output += 4) {
                    int32_t m = lo4; /* the clamp's lower bound is the starting maximum */
                    const int8_t *in = corner + c;
                    for (int32_t y = y_start; y < y_end; y++, in += row_skip) {
                        for (int32_t x = cols; x > 0; x--, in += channels) {
                            m = max4(tc_read_s8x4(in), m);
                        }
                    }
                    (void)__ssub8((int8x4_t)hi4, (int8x4_t)m); /* GE where hi >= m: keep m, else hi */
                    m = (int32_t)__sel((uint8x4_t)m, (uint8x4_t)hi4);
                    memcpy(output, &m, 4);
                }
#endif
                for (; c < channels; c++) {
                    int32_t max = TC_INT8_MIN;
                    const int8_t *in = corner + c;
                    for (int32_t y = y_start; y < y_end; y++, in += row_skip) {
                        for (int32_t x = cols; x > 0; x--, in += channels) {
                            max = tc_max_i32(max, *in);
                        }
                    }
                    *output++ = (int8_t)tc_clamp_i32(max, p->act.min, p->act.max);
                }
            }
        }
    }
    return TC_OK;
}
