/* AVERAGE_POOL_2D, int8 NHWC: the mean of the cells inside the image, rounded half away from zero.
 * Portable C, and on cores with the DSP extension four channels summed per SXTAB16 pair. Neither
 * divides per element: each window size gets one exact reciprocal. */
#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

/* Sums of up to this many cells fit an int16 lane: 256 * -128 = -32768. */
#define TC_POOL_MAX_CELLS_INT16 256
/* floor(a * ceil(2^32 / count) / 2^32) = floor(a / count) while a * count < 2^32; a is at most
 * 128.5 * count, so windows up to 4096 cells divide exactly through the reciprocal. */
#define TC_POOL_MAX_CELLS_RECIPROCAL 4096

typedef struct {
    int32_t count, half;
    uint32_t reciprocal; /* ceil(2^32 / count), 0 when the window is too large for it */
} divisor;

static divisor make_divisor(int32_t count)
{
    divisor d = {count, count / 2, 0};
    if (count > 1 && count <= TC_POOL_MAX_CELLS_RECIPROCAL) {
        d.reciprocal = 0xFFFFFFFFu / (uint32_t)count + 1u; /* one division per window size */
    }
    return d;
}

/* TFLite's (sum +- count/2) / count, truncated toward zero: symmetric, so divide the magnitude. */
static inline int32_t rounded_mean(int32_t sum, const divisor *d)
{
    const uint32_t magnitude = (uint32_t)(sum < 0 ? -sum : sum) + (uint32_t)d->half;
    uint32_t q;
    if (d->reciprocal) {
        q = (uint32_t)(((uint64_t)magnitude * d->reciprocal) >> 32);
    } else {
        q = d->count == 1 ? magnitude : magnitude / (uint32_t)d->count;
    }
    return sum < 0 ? -(int32_t)q : (int32_t)q;
}

static inline int8_t output_value(const tc_pool2d_params *p, int32_t sum, const divisor *d)
{
    return (int8_t)tc_clamp_i32(rounded_mean(sum, d), p->act.min, p->act.max);
}

tc_status tc_avg_pool2d_s8(const tc_pool2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, channels = p->input.c;
#if TC_DSP
    const int four_channels = (channels & 3) == 0 && p->filter_h * p->filter_w <= TC_POOL_MAX_CELLS_INT16;
#endif
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
                const divisor d = make_divisor(count);
                const int8_t *corner = image + (y_start * in_w + x_start) * channels;
                const int32_t cols = x_end - x_start, row_skip = (in_w - cols) * channels;
#if TC_DSP
                if (four_channels) {
                    for (int32_t c = 0; c < channels; c += 4, output += 4) {
                        int32_t s02 = 0, s13 = 0; /* channels c, c+2 and c+1, c+3 in int16 lanes */
                        const int8_t *in = corner + c;
                        for (int32_t y = y_start; y < y_end; y++, in += row_skip) {
                            for (int32_t x = cols; x > 0; x--, in += channels) {
                                const int32_t v = tc_read_s8x4(in);
                                s02 = __sxtab16(s02, v);
                                s13 = tc_sxtab16_ror8(s13, v);
                            }
                        }
                        output[0] = output_value(p, (int16_t)s02, &d);
                        output[1] = output_value(p, (int16_t)s13, &d);
                        output[2] = output_value(p, s02 >> 16, &d);
                        output[3] = output_value(p, s13 >> 16, &d);
                    }
                    continue;
                }
#endif
                for (int32_t c = 0; c < channels; c++) {
                    int32_t sum = 0;
                    const int8_t *in = corner + c;
                    for (int32_t y = y_start; y < y_end; y++, in += row_skip) {
                        for (int32_t x = cols; x > 0; x--, in += channels) {
                            sum += *in;
                        }
                    }
                    *output++ = output_value(p, sum, &d);
                }
            }
        }
    }
    return TC_OK;
}
