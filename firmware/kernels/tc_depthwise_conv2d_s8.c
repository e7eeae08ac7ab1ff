/* DEPTHWISE_CONV_2D, int8, any depth multiplier, per-channel weights.
 * Portable C that visits only the taps inside the image, and on cores with the DSP extension four
 * channels per pass (depth multiplier 1, channels a multiple of four): one load widens four inputs
 * and four weights, and SMLABB/SMLATT accumulate the four channels. */
#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

/* Which taps [first, last) of one axis read inside the image from `origin`. */
static void inside_taps(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *first, int32_t *last)
{
    int32_t f = 0, l = taps;
    while (f < taps && origin + f * dilation < 0) {
        f++;
    }
    while (l > f && origin + (l - 1) * dilation >= size) {
        l--;
    }
    *first = f;
    *last = l;
}

static inline int8_t output_value(const tc_depthwise_conv2d_params *p, int32_t acc, int32_t oc)
{
    if (p->bias) {
        acc += p->bias[oc];
    }
    const int32_t q = p->requant.per_channel ? oc : 0;
    acc = tc_requantize(acc, p->requant.multiplier[q], p->requant.shift[q]) + p->output_offset;
    return (int8_t)tc_clamp_i32(acc, p->act.min, p->act.max);
}

/* One output position: the taps [ky0, ky1) x [kx0, kx1) around input (y0, x0). */
typedef struct {
    const int8_t *image;
    int32_t y0, x0, ky0, ky1, kx0, kx1;
} window;

static void position_portable(const tc_depthwise_conv2d_params *p, const window *v, int8_t *out)
{
    const int32_t in_w = p->input.w, in_c = p->input.c, out_c = p->output.c, mult = p->depth_multiplier;
    for (int32_t oc = 0; oc < out_c; oc++) {
        const int32_t ic = oc / mult; /* once per output, not per tap */
        int32_t acc = 0;
        for (int32_t ky = v->ky0; ky < v->ky1; ky++) {
            const int8_t *row = v->image + (v->y0 + ky * p->dilation_h) * in_w * in_c + ic;
            const int8_t *w = p->weights + ky * p->filter.w * out_c + oc;
            for (int32_t kx = v->kx0; kx < v->kx1; kx++) {
                acc += (int32_t)w[kx * out_c] * (row[(v->x0 + kx * p->dilation_w) * in_c] + p->input_offset);
            }
        }
        out[oc] = output_value(p, acc, oc);
    }
}

#if TC_DSP
static void position_dsp(const tc_depthwise_conv2d_params *p, const window *v, int8_t *out)
{
    /* Everything the loops read, in locals: a store through an int8_t pointer may alias any
     * memory, so the compiler would otherwise reload the parameters after every output. */
    const int32_t channels = p->input.c, x_step = p->dilation_w * channels, taps = v->kx1 - v->kx0;
    const int32_t in_row_step = p->dilation_h * p->input.w * channels, w_row_step = p->filter.w * channels;
    const int32_t rows = v->ky1 - v->ky0;
    const int32_t offset = (int32_t)(((uint32_t)p->input_offset << 16) | ((uint32_t)p->input_offset & 0xFFFFu));
    const int8_t *in_base = v->image + ((v->y0 + v->ky0 * p->dilation_h) * p->input.w + v->x0 +
                                        v->kx0 * p->dilation_w) * channels;
    const int8_t *w_base = p->weights + (v->ky0 * p->filter.w + v->kx0) * channels;
    const tc_depthwise_conv2d_params stage = *p; /* the requantization fields, read from a local copy */
    for (int32_t c = 0; c < channels; c += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        const int8_t *in_row = in_base + c, *w_row = w_base + c;
        for (int32_t r = 0; r < rows; r++, in_row += in_row_step, w_row += w_row_step) {
            const int8_t *in = in_row, *w = w_row;
            for (int32_t n = taps; n > 0; n--, in += x_step, w += channels) {
                const int32_t x = tc_read_s8x4(in);
                const int32_t k = tc_read_s8x4(w);
                const int32_t x02 = __sxtab16(offset, x), x13 = tc_sxtab16_ror8(offset, x);
                const int32_t k02 = __sxtb16(k), k13 = tc_sxtb16_ror8(k);
                a0 = __smlabb(x02, k02, a0);
                a2 = __smlatt(x02, k02, a2);
                a1 = __smlabb(x13, k13, a1);
                a3 = __smlatt(x13, k13, a3);
            }
        }
        out[c] = output_value(&stage, a0, c);
        out[c + 1] = output_value(&stage, a1, c + 1);
        out[c + 2] = output_value(&stage, a2, c + 2);
        out[c + 3] = output_value(&stage, a3, c + 3);
    }
}
#endif

tc_status tc_depthwise_conv2d_s8(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c, out_c = p->output.c;
    if (out_c != in_c * p->depth_multiplier) {
        return TC_ERROR_ARGUMENT;
    }
#if TC_DSP
    const int four_channels = p->depth_multiplier == 1 && (in_c & 3) == 0;
#endif
    for (int32_t b = 0; b < p->input.n; b++) {
        window v = {.image = input + b * in_h * in_w * in_c};
        for (int32_t oy = 0; oy < p->output.h; oy++) {
            v.y0 = oy * p->stride_h - p->pad_top;
            inside_taps(v.y0, p->dilation_h, p->filter.h, in_h, &v.ky0, &v.ky1);
            for (int32_t ox = 0; ox < p->output.w; ox++, output += out_c) {
                v.x0 = ox * p->stride_w - p->pad_left;
                inside_taps(v.x0, p->dilation_w, p->filter.w, in_w, &v.kx0, &v.kx1);
#if TC_DSP
                if (four_channels) {
                    position_dsp(p, &v, output);
                    continue;
                }
#endif
                position_portable(p, &v, output);
            }
        }
    }
    return TC_OK;
}
