/* TRANSPOSE_CONV, int8 activations and per-channel int8 weights, int32 bias, in gather form.
 *
 * TFLite Micro scatters every input pixel into an int32 image of the output and requantizes that image at
 * the end. Each output (oy, ox) receives, along y, the taps ky = (oy + pad_top) mod stride_h + j stride_h
 * from input rows iy = (oy + pad_top) div stride_h - j (j = 0, 1, ... while ky < KH and iy >= 0, rows past
 * the input skipped), and likewise along x. Summing those products per output gives TFLite Micro's
 * accumulator exactly (int32 additions in another order), with no int32 image and no bounds check per MAC.
 * One tap is a dot product of C_in input bytes with C_in weight bytes, contiguous on both sides, as a
 * convolution's row: Helium sums sixteen products per VMLADAVA, the DSP extension four per two SMLADs,
 * for two output channels at a time, which share the input's loads (and its widening on the DSP path).
 * The input offset enters once per tap through tap_offsets (offset x the tap's weight sum, from the host).
 * The mod and div run once per output row; along a row they advance by increments. */
#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"
#include "tc_mve.h"

/* acc0 += sum x[i] w0[i] and acc1 += sum x[i] w1[i], i < n: two output channels share each input load */
static inline void dot2_s8(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n, int32_t *acc0,
                           int32_t *acc1)
{
    int32_t a0 = *acc0, a1 = *acc1, i = 0;
#if TC_MVE
    /* the lanes past n load zeros (and read nothing) */
    for (; i < n; i += 16) {
        const mve_pred16_t lanes = vctp8q((uint32_t)(n - i));
        const int8x16_t v = vldrbq_z_s8(x + i, lanes);
        a0 = vmladavaq_s8(a0, v, vldrbq_z_s8(w0 + i, lanes));
        a1 = vmladavaq_s8(a1, v, vldrbq_z_s8(w1 + i, lanes));
    }
#else
#if TC_DSP
    /* bytes 0 and 2, then 1 and 3, of the words meet in SMLAD's two int16 lanes; the input widened once */
    for (; i + 4 <= n; i += 4) {
        const int32_t v = tc_read_s8x4(x + i), even = __sxtb16(v), odd = tc_sxtb16_ror8(v);
        const int32_t b0 = tc_read_s8x4(w0 + i), b1 = tc_read_s8x4(w1 + i);
        a0 = __smlad(odd, tc_sxtb16_ror8(b0), __smlad(even, __sxtb16(b0), a0));
        a1 = __smlad(odd, tc_sxtb16_ror8(b1), __smlad(even, __sxtb16(b1), a1));
    }
#endif
    for (; i < n; i++) {
        a0 += (int32_t)x[i] * w0[i];
        a1 += (int32_t)x[i] * w1[i];
    }
#endif
    *acc0 = a0;
    *acc1 = a1;
}

#if TC_DSP
typedef tc_channel_quant channel_quant;
static inline channel_quant quant_make(const tc_transpose_conv_params *p, int32_t oc)
{
    return tc_channel_quant_make(&p->requant, oc, p->output_offset, p->act);
}
static inline int8_t quant_output(const channel_quant *q, const tc_transpose_conv_params *p, int32_t acc)
{
    (void)p;
    return tc_channel_output(q, acc);
}
#else
typedef struct {
    int32_t multiplier, shift;
} channel_quant;
static inline channel_quant quant_make(const tc_transpose_conv_params *p, int32_t oc)
{
    const int32_t i = p->requant.per_channel ? oc : 0;
    const channel_quant q = {p->requant.multiplier[i], p->requant.shift[i]};
    return q;
}
static inline int8_t quant_output(const channel_quant *q, const tc_transpose_conv_params *p, int32_t acc)
{
    acc = tc_requantize(acc, q->multiplier, q->shift) + p->output_offset;
    return (int8_t)tc_clamp_i32(acc, p->act.min, p->act.max);
}
#endif

tc_status tc_transpose_conv_s8(const tc_transpose_conv_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t out_h = p->output.h, out_w = p->output.w, out_c = p->output.c;
    const int32_t k_h = p->filter.h, k_w = p->filter.w, s_h = p->stride_h, s_w = p->stride_w;
    const int32_t in_row = in_w * in_c, kernel = k_h * k_w;
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * in_h * in_row;
        int8_t *out_image = output + b * out_h * out_w * out_c;
        /* two output channels per pass; an odd last one is computed twice and stored once */
        for (int32_t oc = 0; oc < out_c; oc += 2) {
            const int32_t pair = oc + 1 < out_c, oc1 = pair ? oc + 1 : oc;
            const int8_t *w0 = p->weights + oc * kernel * in_c, *w1 = p->weights + oc1 * kernel * in_c;
            const int32_t *offsets0 = p->tap_offsets + oc * kernel, *offsets1 = p->tap_offsets + oc1 * kernel;
            const int32_t bias0 = p->bias ? p->bias[oc] : 0, bias1 = p->bias ? p->bias[oc1] : 0;
            const channel_quant q0 = quant_make(p, oc), q1 = quant_make(p, oc1);
            int8_t *dst = out_image + oc;
            for (int32_t oy = 0; oy < out_h; oy++) {
                int32_t ky0 = (oy + p->pad_top) % s_h, iy0 = (oy + p->pad_top) / s_h;
                while (ky0 < k_h && iy0 >= in_h) { /* taps whose row lies past the input */
                    ky0 += s_h;
                    iy0--;
                }
                int32_t kx_first = p->pad_left % s_w, ix_first = p->pad_left / s_w; /* for ox = 0 */
                for (int32_t ox = 0; ox < out_w; ox++) {
                    int32_t kx0 = kx_first, ix0 = ix_first;
                    while (kx0 < k_w && ix0 >= in_w) {
                        kx0 += s_w;
                        ix0--;
                    }
                    int32_t acc0 = bias0, acc1 = bias1;
                    for (int32_t ky = ky0, iy = iy0; ky < k_h && iy >= 0; ky += s_h, iy--) {
                        const int8_t *in_line = image + iy * in_row;
                        for (int32_t kx = kx0, ix = ix0; kx < k_w && ix >= 0; kx += s_w, ix--) {
                            const int32_t tap = ky * k_w + kx;
                            dot2_s8(in_line + ix * in_c, w0 + tap * in_c, w1 + tap * in_c, in_c, &acc0,
                                    &acc1);
                            acc0 += offsets0[tap];
                            acc1 += offsets1[tap];
                        }
                    }
                    dst[0] = quant_output(&q0, p, acc0);
                    if (pair) {
                        dst[1] = quant_output(&q1, p, acc1);
                    }
                    dst += out_c;
                    if (++kx_first == s_w) { /* the next output column: (ox + 1 + pad_left) mod / div s_w */
                        kx_first = 0;
                        ix_first++;
                    }
                }
            }
        }
    }
    return TC_OK;
}
