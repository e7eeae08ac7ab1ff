/* CONV_2D, int8 activations and per-channel int8 weights, int32 bias: portable C. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

tc_status tc_conv2d_s8(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t k_h = p->filter.h, k_w = p->filter.w, out_c = p->output.c;
    if (p->filter.c != in_c) {
        return TC_ERROR_ARGUMENT; /* grouped convolution */
    }
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
