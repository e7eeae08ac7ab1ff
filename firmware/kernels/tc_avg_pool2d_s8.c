/* AVERAGE_POOL_2D, int8 NHWC: the mean of the cells inside the image, rounded half away from zero. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

tc_status tc_avg_pool2d_s8(const tc_pool2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, channels = p->input.c;
    for (int32_t n = 0; n < p->input.n; n++) {
        const int8_t *image = input + n * in_h * in_w * channels;
        for (int32_t oy = 0; oy < p->output.h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            const int32_t y_start = tc_max_i32(0, y0), y_end = tc_min_i32(in_h, y0 + p->filter_h);
            for (int32_t ox = 0; ox < p->output.w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int32_t x_start = tc_max_i32(0, x0), x_end = tc_min_i32(in_w, x0 + p->filter_w);
                const int32_t count = (y_end - y_start) * (x_end - x_start);
                if (count <= 0) {
                    return TC_ERROR_ARGUMENT; /* a window entirely in the padding */
                }
                for (int32_t c = 0; c < channels; c++) {
                    int32_t sum = 0;
                    for (int32_t y = y_start; y < y_end; y++) {
                        for (int32_t x = x_start; x < x_end; x++) {
                            sum += image[(y * in_w + x) * channels + c];
                        }
                    }
                    const int32_t avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    *output++ = (int8_t)tc_clamp_i32(avg, p->act.min, p->act.max);
                }
            }
        }
    }
    return TC_OK;
}
