/* CONV_2D, int8 activations and per-channel int8 weights, int32 bias.
 * Portable C, and on cores with the DSP extension im2col into int16 plus the matrix kernel of tc_dsp_gemm.h. */
#include "tc_dsp_gemm.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

static tc_status conv_portable(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t k_h = p->filter.h, k_w = p->filter.w, out_c = p->output.c;
    const int32_t filter_stride = k_h * k_w * in_c; /* weights of one output channel */

    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < p->output.h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < p->output.w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                for (int32_t oc = 0; oc < out_c; oc++) {
                    const int8_t *w_oc = p->weights + oc * filter_stride;
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < k_h; ky++) {
                        const int32_t y = y0 + ky * p->dilation_h;
                        if (y < 0 || y >= in_h) {
                            continue; /* padding rows contribute nothing */
                        }
                        for (int32_t kx = 0; kx < k_w; kx++) {
                            const int32_t x = x0 + kx * p->dilation_w;
                            if (x < 0 || x >= in_w) {
                                continue;
                            }
                            const int8_t *in = image + (y * in_w + x) * in_c;
                            const int8_t *w = w_oc + (ky * k_w + kx) * in_c;
                            for (int32_t ic = 0; ic < in_c; ic++) {
                                acc += (int32_t)w[ic] * ((int32_t)in[ic] + p->input_offset);
                            }
                        }
                    }
                    if (p->bias) {
                        acc += p->bias[oc];
                    }
                    const int32_t q = p->requant.per_channel ? oc : 0;
                    acc = tc_requantize(acc, p->requant.multiplier[q], p->requant.shift[q]) + p->output_offset;
                    *output++ = (int8_t)tc_clamp_i32(acc, p->act.min, p->act.max);
                }
            }
        }
    }
    return TC_OK;
}

#if TC_DSP
/* The receptive field of output (oy, ox) as column `column` of `columns` interleaved columns: int16
 * with the input offset added, in SMLAD order; cells in the padding give 0, as they add nothing. */
static void im2col(const tc_conv2d_params *p, const int8_t *image, int32_t oy, int32_t ox, int16_t *cols,
                   int32_t column, int32_t columns)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    /* With whole groups of four per pixel, two SXTAB16 widen and offset four values at a time. */
    const int whole_groups = (in_c & 3) == 0;
    const int32_t offset = (int32_t)(((uint32_t)p->input_offset << 16) | ((uint32_t)p->input_offset & 0xFFFFu));
    const int32_t skip = 2 * (columns - 1); /* words of the other column after each group */
    int32_t *dst = (int32_t *)(cols + 4 * column);
    int32_t k = 0;
    for (int32_t ky = 0; ky < p->filter.h; ky++) {
        const int32_t y = y0 + ky * p->dilation_h;
        for (int32_t kx = 0; kx < p->filter.w; kx++) {
            const int32_t x = x0 + kx * p->dilation_w;
            const int inside = y >= 0 && y < in_h && x >= 0 && x < in_w;
            const int8_t *src = inside ? image + (y * in_w + x) * in_c : image;
            if (whole_groups) {
                for (int32_t c = 0; c < in_c; c += 4, dst += 2 + skip) {
                    const int32_t v = inside ? tc_read_s8x4(src + c) : 0;
                    dst[0] = inside ? __sxtab16(offset, v) : 0;
                    dst[1] = inside ? tc_sxtab16_ror8(offset, v) : 0;
                }
                continue;
            }
            for (int32_t c = 0; c < in_c; c++, k++) { /* groups straddle pixels: place value by value */
                cols[tc_col_index(k, column, columns)] = (int16_t)(inside ? src[c] + p->input_offset : 0);
            }
        }
    }
}

static tc_status conv_dsp(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t out_c = p->output.c, out_w = p->output.w, positions = p->output.h * out_w;
    const tc_gemm g = {p->weights, p->bias, &p->requant, out_c, p->filter.h * p->filter.w * p->input.c,
                       p->output_offset, p->act};
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * p->input.h * p->input.w * p->input.c;
        int8_t *out = output + b * positions * out_c;
        int32_t pos = 0;
        for (; pos + 2 <= positions; pos += 2) { /* two output positions share every weight load */
            im2col(p, image, pos / out_w, pos % out_w, p->scratch, 0, 2);
            im2col(p, image, (pos + 1) / out_w, (pos + 1) % out_w, p->scratch, 1, 2);
            tc_gemm_2cols(&g, p->scratch, out + pos * out_c, out + (pos + 1) * out_c);
        }
        if (pos < positions) {
            im2col(p, image, pos / out_w, pos % out_w, p->scratch, 0, 1);
            tc_gemm_1col(&g, p->scratch, out + pos * out_c);
        }
    }
    return TC_OK;
}
#endif

tc_status tc_conv2d_s8(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    if (p->filter.c != p->input.c) {
        return TC_ERROR_ARGUMENT; /* grouped convolution */
    }
#if TC_DSP
    if (p->scratch) {
        return conv_dsp(p, input, output);
    }
#endif
    return conv_portable(p, input, output);
}
