/* CONV_2D, int8 activations and per-channel int8 weights, int32 bias.
 * Portable C (each output position's window gathered once onto the stack, then flat dot products against
 * two channels' rows at a time, the input offset folded into each channel's start); on cores with Helium
 * int8 im2col plus the matrix kernel of tc_mve_gemm.h; on other cores with the DSP extension im2col into
 * int16 plus the matrix kernel of tc_dsp_gemm.h, first layers (one to four input channels) their columns
 * copied from a band of input rows widened once (conv_dsp_band). tc_conv2d_s4: INT4 weights in the nibble
 * form (tc_int4.h), portable, or on DSP cores without Helium the same im2col and a row against six columns
 * per pass, each weight word unpacked once for the six. */
#include "tc_copy.h"
#include "tc_dsp_gemm.h"
#include "tc_fixedpoint.h"
#include "tc_int4.h"
#include "tc_kernels.h"
#include "tc_mve_gemm.h"
#include "tc_palette.h"
#include "tc_window.h"

/* Output channel oc from its accumulator: bias, requantization, offset and clamp. */
static inline int8_t conv_output(const tc_conv2d_params *p, int32_t acc, int32_t oc)
{
    const tc_channel_requant r =
        tc_channel_requant_of(&p->requant, oc, p->output_offset, p->act.min, p->act.max);
    return tc_channel_requant_apply(&r, acc + tc_channel_bias(p->bias, &p->requant, oc));
}

/* The portable path's window on the stack, and the output channels it serves per gathering. */
#define CONV_COL_BYTES 128
#define CONV_OC_BLOCK 8

/* Over windows of more than CONV_COL_BYTES: only the taps inside the image, each input plus the offset. */
static tc_status conv_portable_taps(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c, out_c = p->output.c;
    const int32_t k_h = p->filter.h, k_w = p->filter.w, input_offset = p->input_offset;
    const int32_t filter_stride = k_h * k_w * in_c; /* weights of one output channel */
    const int32_t x_step = p->dilation_w * in_c, in_row_step = p->dilation_h * in_w * in_c;
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < p->output.h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            tc_inside_taps(y0, p->dilation_h, k_h, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < p->output.w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                tc_inside_taps(x0, p->dilation_w, k_w, in_w, &kx0, &kx1);
                /* Only the taps inside the image: padding cells add nothing. Without dilation along x a
                 * kernel row's inside taps are one run of bytes, in the input as in the weights. */
                const int32_t taps = p->dilation_w == 1 ? 1 : kx1 - kx0;
                const int32_t run = p->dilation_w == 1 ? (kx1 - kx0) * in_c : in_c;
                const int8_t *corner = image + ((y0 + ky0 * p->dilation_h) * in_w + x0 + kx0 * p->dilation_w) * in_c;
                for (int32_t oc = 0; oc < out_c; oc++) {
                    const int8_t *w_row = p->weights + oc * filter_stride + (ky0 * k_w + kx0) * in_c, *in_row = corner;
                    int32_t acc = 0;
                    for (int32_t ky = ky0; ky < ky1; ky++, w_row += k_w * in_c, in_row += in_row_step) {
                        const int8_t *w = w_row, *in = in_row;
                        for (int32_t t = 0; t < taps; t++, in += x_step - run, w += in_c - run) {
                            for (int32_t i = run; i > 0; i--) {
                                acc += (int32_t)*w++ * (*in++ + input_offset);
                            }
                        }
                    }
                    *output++ = conv_output(p, acc, oc);
                }
            }
        }
    }
    return TC_OK;
}

/* acc[k] + sum w[k depth + i] col[i] over i < depth for k = 0, 1: two output channels' rows against one
 * window, each window byte loaded once (5 instructions a MAC on the M0, the index counting up to 0). */
__attribute__((noinline)) static void dot2_s8(const int8_t *w, const int8_t *col, int32_t depth,
                                              int32_t *acc)
{
    const int8_t *w0 = w + depth, *w1 = w + 2 * depth, *c = col + depth;
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t i = -depth; i < 0; i++) {
        const int32_t x = c[i];
        a0 += w0[i] * x;
        a1 += w1[i] * x;
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* Output position (y0, x0)'s window into col in the weights' order, k_h k_w in_c bytes, a tap outside the
 * image as the input's zero point (-input_offset, in [-128, 127]), so that it adds nothing once the input
 * offset is folded into the accumulator's start. A kernel row inside the image without dilation along x is
 * one run of k_w in_c bytes. */
static void gather_window(const tc_conv2d_params *p, const int8_t *image, int32_t y0, int32_t x0,
                          int8_t *col)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c, k_w = p->filter.w;
    const int8_t zero = (int8_t)-p->input_offset;
    const int whole_rows = p->dilation_w == 1 && x0 >= 0 && x0 + k_w <= in_w;
    for (int32_t ky = 0; ky < p->filter.h; ky++) {
        const int32_t y = y0 + ky * p->dilation_h;
        if (y < 0 || y >= in_h) {
            tc_fill_run(col, zero, k_w * in_c);
            col += k_w * in_c;
        } else if (whole_rows) {
            tc_copy_run(col, image + (y * in_w + x0) * in_c, k_w * in_c);
            col += k_w * in_c;
        } else {
            for (int32_t kx = 0; kx < k_w; kx++, col += in_c) {
                const int32_t x = x0 + kx * p->dilation_w;
                if (x < 0 || x >= in_w) {
                    tc_fill_run(col, zero, in_c);
                } else {
                    tc_copy_run(col, image + (y * in_w + x) * in_c, in_c);
                }
            }
        }
    }
}

/* Each output position's window gathered once (gather_window), then against CONV_OC_BLOCK channels at a
 * time: sum w (in + offset) = offset sum w + sum w in, the first term in each channel's accumulator start,
 * computed once per call, the second a flat dot product, two channels at a time (dot2_s8). */
static tc_status conv_portable(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->filter.h * p->filter.w * p->input.c, out_c = p->output.c;
    if (depth > CONV_COL_BYTES) {
        return conv_portable_taps(p, input, output);
    }
    int8_t col[CONV_COL_BYTES] __attribute__((aligned(4)));
    int32_t start[CONV_OC_BLOCK];
    tc_channel_requant requant[CONV_OC_BLOCK];
    for (int32_t oc0 = 0; oc0 < out_c; oc0 += CONV_OC_BLOCK) {
        const int32_t block = out_c - oc0 < CONV_OC_BLOCK ? out_c - oc0 : CONV_OC_BLOCK;
        for (int32_t j = 0; j < block; j++) {
            const int8_t *w = p->weights + (oc0 + j) * depth;
            int32_t sum = 0;
            for (int32_t i = 0; i < depth; i++) {
                sum += w[i];
            }
            start[j] = tc_channel_prepare(p->bias, &p->requant, oc0 + j, sum, p->input_offset,
                                          p->output_offset, p->act, &requant[j]);
        }
        int8_t *out = output + oc0;
        for (int32_t b = 0; b < p->input.n; b++) {
            const int8_t *image = input + b * p->input.h * p->input.w * p->input.c;
            for (int32_t oy = 0; oy < p->output.h; oy++) {
                for (int32_t ox = 0; ox < p->output.w; ox++, out += out_c) {
                    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
                    gather_window(p, image, y0, x0, col);
                    const int8_t *w = p->weights + oc0 * depth;
                    int32_t j = 0;
                    for (; j + 2 <= block; j += 2, w += 2 * depth) {
                        int32_t acc[2] = {start[j], start[j + 1]};
                        dot2_s8(w, col, depth, acc);
                        out[j] = tc_channel_requant_apply(&requant[j], acc[0]);
                        out[j + 1] = tc_channel_requant_apply(&requant[j + 1], acc[1]);
                    }
                    if (j < block) {
                        out[j] = tc_channel_requant_apply(&requant[j], tc_dot_s8(w, col, depth, start[j]));
                    }
                }
            }
        }
    }
    return TC_OK;
}

#if TC_MVE
/* Output positions per matrix call on the im2col path. They share the call's setup (each row block's
 * bias and requantization vectors), so the more the faster, within about 512 bytes of scratch.
 * tinycompress/ops/scratch.py sizes the scratch with the same rule. */
static int32_t im2col_columns(int32_t depth)
{
    return tc_clamp_i32(512 / depth, 4, 16);
}

/* A 1x1 convolution without padding reads its columns straight from the input: each is one pixel. */
static int conv_is_pointwise(const tc_conv2d_params *p)
{
    return p->filter.h == 1 && p->filter.w == 1 && p->pad_top == 0 && p->pad_left == 0;
}

/* `runs` runs of run <= 16 bytes, src_step apart in the input, one after the other in col: a
 * receptive field wholly inside the image, without dilation along x (a first layer's 3x3 RGB rows
 * are 9 bytes). One predicated load and store per run, in a low-overhead loop. */
static inline void copy_short_runs(int8_t *col, const int8_t *src, int32_t runs, int32_t run, int32_t src_step)
{
    int8x16_t x;
    __asm__("vctp.8 %[run]\n\t"
            "dls lr, %[runs]\n"
            "1:\n\t"
            "vpstt\n\t"
            "vldrbt.8 %q[x], [%[src]]\n\t"
            "vstrbt.8 %q[x], [%[col]]\n\t"
            "add %[src], %[src], %[step]\n\t"
            "add %[col], %[col], %[run]\n\t"
            "le lr, 1b\n"
            : [x] "=&w"(x), [col] "+r"(col), [src] "+r"(src), "+m"(*(int8_t(*)[])col)
            : [runs] "r"(runs), [run] "r"(run), [step] "r"(src_step), "m"(*(const int8_t(*)[])src)
            : "lr", "p0");
}

/* stage_field()'s copy and fill: Helium's tail-predicated loops. */
static inline void field_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    tc_mve_copy_s8(dst, src, n);
}

static inline void field_fill(int8_t *dst, int32_t pad4, int32_t n)
{
    tc_mve_fill_s8(dst, (int8_t)pad4, n);
}
#elif TC_DSP
/* stage_field()'s copy: n bytes from src, four at a time (LDR and STR allow unaligned addresses on
 * these cores). */
static inline void field_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        const int32_t v = tc_read_s8x4(src);
        memcpy(dst, &v, 4);
    }
    for (; n > 0; n--) {
        *dst++ = *src++;
    }
}

/* stage_field()'s fill: n bytes of the padding value, repeated in all four bytes of pad4. */
static inline void field_fill(int8_t *dst, int32_t pad4, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4) {
        memcpy(dst, &pad4, 4);
    }
    for (; n > 0; n--) {
        *dst++ = (int8_t)pad4;
    }
}
#endif

#if TC_MVE || TC_DSP
/* The receptive field of (y0, x0) in weight order (ky, kx, c), int8 as read, through the core's copy and
 * fill. Padding cells hold -input_offset, whose x + input_offset is 0: the DSP widening adds the offset,
 * and Helium's bias has it folded in, so either way they add nothing. A field that touches the padding
 * (or has dilation along x) is filled whole first, then what is inside copied over it: a kernel row's
 * inside taps are one run of bytes without dilation along x. Not inlined: the callers' loops keep their
 * registers. */
__attribute__((noinline)) static void stage_field(const tc_conv2d_params *p, const int8_t *image, int32_t y0,
                                                  int32_t x0, int8_t *stage)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c, k_h = p->filter.h, k_w = p->filter.w;
    const int32_t row_bytes = k_w * in_c, pad4 = (int32_t)(((uint32_t)-p->input_offset & 0xFFu) * 0x01010101u);
    const int32_t lo = tc_clamp_i32(-x0, 0, k_w), hi = tc_clamp_i32(in_w - x0, lo, k_w);
    if (lo > 0 || hi < k_w || p->dilation_w != 1 || y0 < 0 || y0 + (k_h - 1) * p->dilation_h >= in_h) {
        field_fill(stage, pad4, k_h * row_bytes);
    }
    for (int32_t ky = 0, y = y0; ky < k_h; ky++, y += p->dilation_h, stage += row_bytes) {
        if (y < 0 || y >= in_h) {
            continue;
        }
        if (p->dilation_w == 1) {
            field_copy(stage + lo * in_c, image + (y * in_w + x0 + lo) * in_c, (hi - lo) * in_c);
            continue;
        }
        for (int32_t kx = 0, x = x0; kx < k_w; kx++, x += p->dilation_w) {
            if (x >= 0 && x < in_w) {
                field_copy(stage + kx * in_c, image + (y * in_w + x) * in_c, in_c);
            }
        }
    }
}
#endif

#if TC_MVE
/* im2col for `n` output positions from (oy, ox) on: column i at cols + i * depth. */
__attribute__((noinline)) static void im2col_s8(const tc_conv2d_params *p, const int8_t *image, int32_t oy,
                                                int32_t ox, int32_t n, int8_t *cols)
{
    const int32_t in_c = p->input.c, k_h = p->filter.h, k_w = p->filter.w, out_w = p->output.w;
    const int32_t run = k_w * in_c, depth = k_h * run, image_row = p->input.w * in_c;
    const int32_t src_step = p->dilation_h * image_row, stride_w = p->stride_w;
    /* The corners (y0, x0) in [0, y_last] x [0, x_last] have their receptive field all inside: no
     * padding, no dilation along x. As unsigned numbers, negative corners are past the last too. */
    const int32_t y_last = p->input.h - 1 - (k_h - 1) * p->dilation_h;
    const int32_t x_last = p->dilation_w == 1 ? p->input.w - k_w : -1;
    const int none_inside = y_last < 0 || x_last < 0;
    int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * stride_w - p->pad_left;
    for (int8_t *const end = cols + n * depth; cols != end; cols += depth) {
        if (none_inside || (uint32_t)y0 > (uint32_t)y_last || (uint32_t)x0 > (uint32_t)x_last) {
            stage_field(p, image, y0, x0, cols);
        } else if (run <= 16) {
            copy_short_runs(cols, image + y0 * image_row + x0 * in_c, k_h, run, src_step);
        } else {
            const int8_t *src = image + y0 * image_row + x0 * in_c;
            for (int32_t ky = 0; ky < k_h; ky++, src += src_step) {
                tc_mve_copy_s8(cols + ky * run, src, run);
            }
        }
        x0 += stride_w;
        if (++ox == out_w) {
            ox = 0, x0 = -p->pad_left, y0 += p->stride_h;
        }
    }
}

static tc_status conv_mve(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_c = p->input.c, out_c = p->output.c, out_w = p->output.w;
    const int32_t positions = p->output.h * out_w, depth = p->filter.h * p->filter.w * in_c;
    tc_mve_gemm g = {p->weights, p->bias, &p->requant, out_c, depth, p->input_offset, p->output_offset, p->act};
    const int pointwise = conv_is_pointwise(p);
    const int one_call = pointwise && p->stride_h == 1 && p->stride_w == 1 && out_w == p->input.w;
    if (!one_call) { /* several matrix calls: fold the offset into the bias once, in the scratch */
        tc_mve_fold_bias(&g, (tc_alias_i32 *)p->scratch);
        g.bias = (const tc_alias_i32 *)p->scratch;
        g.input_offset = 0;
    }
    int8_t *cols = (int8_t *)p->scratch + 4 * out_c; /* im2col columns after the folded bias */
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * p->input.h * p->input.w * in_c;
        int8_t *out = output + b * positions * out_c;
        if (one_call) {
            tc_mve_gemm_run(&g, image, in_c, positions, out);
        } else if (pointwise) { /* strided: the columns of one output row are evenly spaced pixels */
            for (int32_t oy = 0; oy < p->output.h; oy++) {
                tc_mve_gemm_run(&g, image + oy * p->stride_h * p->input.w * in_c, p->stride_w * in_c, out_w,
                                out + oy * out_w * out_c);
            }
        } else {
            const int32_t columns = im2col_columns(depth);
            for (int32_t pos = 0; pos < positions; pos += columns) {
                const int32_t n = tc_min_i32(columns, positions - pos);
                im2col_s8(p, image, pos / out_w, pos % out_w, n, cols);
                tc_mve_gemm_run(&g, cols, depth, n, out + pos * out_c);
            }
        }
    }
    return TC_OK;
}
#elif TC_DSP
/* The receptive field of output (oy, ox) as column `column` of `columns` interleaved columns: int16
 * with the input offset added, in SMLAD order; cells in the padding give 0, as they add nothing.
 * When groups of four straddle pixels (channels not a multiple of four) the field is first staged
 * as int8 in `stage`, then widened four values at a time like whole groups. */
static void im2col(const tc_conv2d_params *p, const int8_t *image, int32_t oy, int32_t ox, int16_t *cols,
                   int32_t column, int32_t columns, int8_t *stage)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    const int32_t offset = tc_pack_s16x2(p->input_offset, p->input_offset);
    const int32_t skip = 2 * (columns - 1); /* words of the other column after each group */
    tc_alias_i32 *dst = (tc_alias_i32 *)(cols + 4 * column);
    if ((in_c & 3) != 0) {
        const int32_t depth = p->filter.h * p->filter.w * in_c;
        stage_field(p, image, y0, x0, stage);
        for (int32_t k = 0; k < depth; k += 4, dst += 2 + skip) { /* a last partial group reads past depth */
            const int32_t v = tc_read_s8x4(stage + k);                 /* into slots no kernel reads */
            dst[0] = __sxtab16(offset, v);
            dst[1] = tc_sxtab16_ror8(offset, v);
        }
        return;
    }
    /* With whole groups of four per pixel, two SXTAB16 widen and offset four values at a time. */
    for (int32_t ky = 0; ky < p->filter.h; ky++) {
        const int32_t y = y0 + ky * p->dilation_h;
        for (int32_t kx = 0; kx < p->filter.w; kx++) {
            const int32_t x = x0 + kx * p->dilation_w;
            const int inside = y >= 0 && y < in_h && x >= 0 && x < in_w;
            const int8_t *src = inside ? image + (y * in_w + x) * in_c : image;
            for (int32_t c = 0; c < in_c; c += 4, dst += 2 + skip) {
                const int32_t v = inside ? tc_read_s8x4(src + c) : 0;
                dst[0] = inside ? __sxtab16(offset, v) : 0;
                dst[1] = inside ? tc_sxtab16_ror8(offset, v) : 0;
            }
        }
    }
}

/* ---- First layers: one to four input channels, no dilation ----
 * With so few channels the per-position im2col is most of the work, and the depth (9 values for a 3x3
 * grey image) is no multiple of four. So each input row is widened once, with the offset added, into a
 * window of int16 rows with the padding's zeros around it (the band), and a column is k_h runs of whole
 * words copied from the band. Each kernel row's run of k_w * in_c values is padded to an even length and
 * the depth to a multiple of four, both with zero weights, so every column word is a pair of neighbours
 * as the band holds them: (v0, v1), (v2, v3). The weights are copied once per call into the scratch in
 * that layout, each group of four stored as [w0, w2, w1, w3]: SXTB16 gives (w0, w1) and with ROR #8
 * (w2, w3), so tc_dsp_gemm.h's kernel takes them unchanged. Column words past a run meet zero weights:
 * whatever they hold adds 0. Where nothing is padded (runs of even length, the depth a multiple of four:
 * the DS-CNN's 10x4) the kernel reads the weights as they are, and the columns are put in SMLAD order
 * instead, (v0, v2), (v1, v3): no copy of the weights, no scratch for it. ops/scratch.py
 * (dsp_conv_band_bytes) sizes the scratch by the same rules. */
#define TC_BAND_SCRATCH_MAX 8192 /* scratch bytes beyond which the per-position im2col is kept */

typedef struct {
    int32_t words;  /* column words per kernel row: ceil(k_w * in_c / 2) */
    int32_t depth4; /* the padded depth: k_h * 2 * words rounded up to four */
    int32_t length; /* int16 per band row: the padded input row, one value more (the last run's read past
                     * its end), even */
    int32_t rows;   /* band rows: those of the output rows any six neighbouring positions span */
    int32_t copied; /* bytes of weights copied into the band layout: 0 where nothing is padded */
    int32_t bytes;  /* the scratch: six columns, the copied weights, their requantization, the band */
} band_geometry;

static band_geometry band_geometry_of(const tc_conv2d_params *p)
{
    const int32_t in_c = p->input.c, out_w = p->output.w, spanned = 2 + 4 / out_w;
    band_geometry b;
    b.words = (p->filter.w * in_c + 1) >> 1;
    b.depth4 = (p->filter.h * 2 * b.words + 3) & ~3;
    b.length = (((out_w - 1) * p->stride_w + p->filter.w) * in_c + 2) & ~1;
    b.rows = (spanned - 1) * p->stride_h + p->filter.h;
    const int padded = 2 * b.words != p->filter.w * in_c || b.depth4 != p->filter.h * 2 * b.words;
    b.copied = padded ? p->output.c * b.depth4 : 0;
    b.bytes = TC_GEMM_COLUMNS * b.depth4 * 2 + b.copied + p->output.c * (int32_t)sizeof(tc_dsp_quant) +
              b.rows * b.length * 2;
    return b;
}

/* Whether the band path takes the layer, b its geometry where the shape could be one's. */
static int band_applies(const tc_conv2d_params *p, band_geometry *b)
{
    if (p->input.c > 4 || p->dilation_h != 1 || p->dilation_w != 1) {
        return 0;
    }
    *b = band_geometry_of(p);
    return b->bytes <= TC_BAND_SCRATCH_MAX;
}

/* The weights in the band layout, out_c rows of depth4 bytes. */
static void band_weights(const tc_conv2d_params *p, const band_geometry *b, int8_t *dst)
{
    const int32_t run = p->filter.w * p->input.c, padded = 2 * b->words;
    const int8_t *src = p->weights;
    for (int32_t oc = 0; oc < p->output.c; oc++, dst += b->depth4) {
        int32_t k = 0;
        for (int32_t ky = 0; ky < p->filter.h; ky++) {
            for (int32_t t = 0; t < padded; t++, k++) {
                dst[(k & ~3) + tc_smlad_slot[k & 3]] = t < run ? *src++ : 0;
            }
        }
        for (; k < b->depth4; k++) {
            dst[(k & ~3) + tc_smlad_slot[k & 3]] = 0;
        }
    }
}

/* n zeros from dst on: a band row's padding is most often a few values, which cost less stored one by one
 * than a call to memset. */
static inline void band_zeros(int16_t *dst, int32_t n)
{
    if (n > 16) {
        memset(dst, 0, (size_t)n * 2);
        return;
    }
    for (; n > 0; n--) {
        __asm__("" : "+r"(dst)); /* the loop kept: not turned into a call to memset */
        *dst++ = 0;
    }
}

/* Padded input row y (any row: those outside the image are zeros) into a band row, widened with the
 * offset added; `bare`: the row's padding columns are zeros already, only its inside values are written
 * (zeros for a row outside the image). Four values at a time: SXTAB16 gives (v0, v2) and (v1, v3), two half-word packs make
 * (v0, v1) and (v2, v3); each lane is x + offset in [-255, 255], no carry between lanes. */
static void band_row(const tc_conv2d_params *p, const band_geometry *b, const int8_t *image, int32_t y,
                     int16_t *row, int bare)
{
    const int32_t in_c = p->input.c, offset = p->input_offset;
    const int32_t lead = tc_min_i32(p->pad_left * in_c, b->length);
    const int32_t room = tc_max_i32(b->length - 1 - lead, 0); /* values from x = 0 to the row's last */
    const int outside = y < 0 || y >= p->input.h;
    const int32_t inside = outside && !bare ? 0 : tc_min_i32(p->input.w * in_c, room);
    if (!bare) {
        band_zeros(row, lead);
        band_zeros(row + lead + inside, b->length - lead - inside);
    } else if (outside) {
        band_zeros(row + lead, inside);
        return;
    }
    int16_t *dst = row + lead;
    const int8_t *src = image + y * p->input.w * in_c;
    const int32_t offset2 = tc_pack_s16x2(offset, offset);
    int32_t n = inside;
    for (; n >= 4; n -= 4, src += 4, dst += 4) {
        const int32_t v = tc_read_s8x4(src), even = __sxtab16(offset2, v), odd = tc_sxtab16_ror8(offset2, v);
        int32_t lo, hi;
        __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(lo) : "r"(even), "r"(odd)); /* (v0, v1) */
        __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(hi) : "r"(odd), "r"(even)); /* (v2, v3) */
        memcpy(dst, &lo, 4);
        memcpy(dst + 2, &hi, 4);
    }
    for (; n > 0; n--) {
        *dst++ = (int16_t)(*src++ + offset);
    }
}

/* The band: padded input rows [lo, hi) (row 0 the first of the top padding), widened, one after the
 * other from `rows`. */
typedef struct {
    int16_t *rows;
    int32_t lo, hi;
    int bare; /* the band zeroed before its first row: band_row's `bare` */
} band_state;

/* Rows [first, need) into the band. Where they would overflow it, the rows from `first` on move to its
 * start first: b->rows holds all those six neighbouring positions read, so each row is widened once. */
static void band_slide(const tc_conv2d_params *p, const band_geometry *b, const int8_t *image, band_state *s,
                       int32_t first, int32_t need)
{
    if (need - s->lo > b->rows) {
        const int32_t kept = tc_max_i32(s->hi - first, 0);
        memmove(s->rows, s->rows + (s->hi - kept - s->lo) * b->length, (size_t)(kept * b->length) * 2);
        s->lo = first, s->hi = first + kept;
    }
    for (; s->hi < need; s->hi++) {
        band_row(p, b, image, s->hi - p->pad_top, s->rows + (s->hi - s->lo) * b->length, s->bare);
    }
}

/* The columns of n output positions from `first` on, interleaved as tc_dsp_gemm.h's `columns` columns:
 * each k_h runs of b->words words from the band, one after the other, two words a group; a last lone
 * word's partner is 0. A run of an odd number of words leaves the next starting in the second half of a
 * group. Band addresses are half-word aligned: LDR allows it. */
static inline __attribute__((always_inline)) void
band_columns_of(const tc_conv2d_params *p, const band_geometry *b, const band_state *s, int32_t first,
                int32_t n, tc_alias_i32 *cols, int32_t columns, int32_t words)
{
    const int32_t step = 2 * columns, row_bytes = 2 * b->length, k_h = p->filter.h;
    const int32_t out_w = p->output.w, x_step = p->stride_w * p->input.c * 2;
    const int32_t y_step = p->stride_h * row_bytes;
    int32_t oy = first / out_w, ox = first - oy * out_w;
    const int8_t *row = (const int8_t *)s->rows + (oy * p->stride_h - s->lo) * row_bytes;
    for (int32_t i = 0; i < n; i++) {
        const int8_t *src = row + ox * x_step;
        tc_alias_i32 *dst = cols + 2 * i;
        if (words == 2) { /* each run one group: runs of 3 or 4 values */
            for (int32_t ky = k_h; ky > 0; ky--, src += row_bytes, dst += step) {
                dst[0] = tc_read_s8x4(src);
                dst[1] = tc_read_s8x4(src + 4);
            }
        } else if (words == 5) { /* runs of 9 or 10 values (a 3x3 RGB kernel's): two runs are five groups */
            int32_t ky = k_h;
            for (; ky >= 2; ky -= 2, src += 2 * row_bytes, dst += 5 * step) {
                const int8_t *c = src + row_bytes;
                dst[0] = tc_read_s8x4(src), dst[1] = tc_read_s8x4(src + 4);
                dst[step] = tc_read_s8x4(src + 8), dst[step + 1] = tc_read_s8x4(src + 12);
                dst[2 * step] = tc_read_s8x4(src + 16), dst[2 * step + 1] = tc_read_s8x4(c);
                dst[3 * step] = tc_read_s8x4(c + 4), dst[3 * step + 1] = tc_read_s8x4(c + 8);
                dst[4 * step] = tc_read_s8x4(c + 12), dst[4 * step + 1] = tc_read_s8x4(c + 16);
            }
            if (ky) { /* a last run alone: its last word's partner is 0 */
                dst[0] = tc_read_s8x4(src), dst[1] = tc_read_s8x4(src + 4);
                dst[step] = tc_read_s8x4(src + 8), dst[step + 1] = tc_read_s8x4(src + 12);
                dst[2 * step] = tc_read_s8x4(src + 16), dst[2 * step + 1] = 0;
            }
        } else if ((words & 1) == 0) {
            for (int32_t ky = k_h; ky > 0; ky--, src += row_bytes) {
                for (int32_t j = words >> 1; j > 0; j--, src += 8, dst += step) {
                    dst[0] = tc_read_s8x4(src);
                    dst[1] = tc_read_s8x4(src + 4);
                }
                src -= 4 * words;
            }
        } else { /* runs of an odd number of words, two at a time: the first's last word and the second's
                  * first share a group */
            int32_t ky = k_h;
            for (; ky >= 2; ky -= 2, src += 2 * row_bytes) {
                const int8_t *a = src, *c = src + row_bytes;
                for (int32_t j = words >> 1; j > 0; j--, a += 8, dst += step) {
                    dst[0] = tc_read_s8x4(a);
                    dst[1] = tc_read_s8x4(a + 4);
                }
                dst[0] = tc_read_s8x4(a);
                dst[1] = tc_read_s8x4(c);
                dst += step, c += 4;
                for (int32_t j = words >> 1; j > 0; j--, c += 8, dst += step) {
                    dst[0] = tc_read_s8x4(c);
                    dst[1] = tc_read_s8x4(c + 4);
                }
            }
            if (ky) { /* a last run alone: its last word's partner is 0 */
                for (int32_t j = words >> 1; j > 0; j--, src += 8, dst += step) {
                    dst[0] = tc_read_s8x4(src);
                    dst[1] = tc_read_s8x4(src + 4);
                }
                dst[0] = tc_read_s8x4(src);
                dst[1] = 0;
            }
        }
        if (++ox == out_w) {
            ox = 0, row += y_step;
        }
    }
}

/* band_columns_of for a whole pass, with the number of words a run known to the compiler where it is the
 * common 2 (runs of 3 or 4 values) or 5 (9 or 10), each its own function: alone, each keeps its values in
 * registers, and with six columns known its stores take constant offsets. */
__attribute__((noinline)) static void band_columns_2(const tc_conv2d_params *p, const band_geometry *b,
                                                     const band_state *s, int32_t first, tc_alias_i32 *cols)
{
    band_columns_of(p, b, s, first, TC_GEMM_COLUMNS, cols, TC_GEMM_COLUMNS, 2);
}

__attribute__((noinline)) static void band_columns_5(const tc_conv2d_params *p, const band_geometry *b,
                                                     const band_state *s, int32_t first, tc_alias_i32 *cols)
{
    band_columns_of(p, b, s, first, TC_GEMM_COLUMNS, cols, TC_GEMM_COLUMNS, 5);
}

__attribute__((noinline)) static void band_columns_any(const tc_conv2d_params *p, const band_geometry *b,
                                                       const band_state *s, int32_t first, int32_t n,
                                                       tc_alias_i32 *cols, int32_t columns)
{
    band_columns_of(p, b, s, first, n, cols, columns, b->words);
}

static void band_columns(const tc_conv2d_params *p, const band_geometry *b, const band_state *s,
                         int32_t first, int32_t n, tc_alias_i32 *cols, int32_t columns)
{
    const int pass = n == TC_GEMM_COLUMNS && columns == TC_GEMM_COLUMNS;
    if (pass && b->words == 2) {
        band_columns_2(p, b, s, first, cols);
    } else if (pass && b->words == 5) {
        band_columns_5(p, b, s, first, cols);
    } else {
        band_columns_any(p, b, s, first, n, cols, columns);
    }
    if (!b->copied) { /* the weights as they are: each group's (v0, v1), (v2, v3) to (v0, v2), (v1, v3) */
        for (tc_alias_i32 *const end = cols + b->depth4 / 2 * columns; cols != end; cols += 2) {
            const int32_t a = cols[0], c = cols[1];
            __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(cols[0]) : "r"(a), "r"(c));
            __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(cols[1]) : "r"(c), "r"(a));
        }
    }
}

/* What the rows of one pass share, kept in memory by band_rows: the loop takes every register. */
typedef struct {
    const int16_t *cols, *single_end, *end; /* tc_gemm_pass's */
    const int32_t *bias;                    /* the next row's */
    const tc_dsp_quant *q;                  /* the next row's fast requantization */
    int8_t *out;                            /* the next row's first output */
    int32_t stride, rows, lo, hi;           /* rows: those left */
} band_pass;

/* One row's outputs in band_rows: out and stride in x and e, lo and hi in c and r11. */
#define BAND_OUTPUT(a, clamp) TC_QUICK_OUTPUT_TO(a, clamp(a), "%[x]", "%[e]")
#define BAND_OUTPUTS(clamp)                                                                                 \
    BAND_OUTPUT("a0", clamp) BAND_OUTPUT("a1", clamp) BAND_OUTPUT("a2", clamp) BAND_OUTPUT("a3", clamp)     \
        BAND_OUTPUT("a4", clamp) BAND_OUTPUT("a5", clamp)
#define BAND_CLAMP_ACT(a) TC_CLAMP_ACT_TO(a, "%[c]", "r11")
/* Every row of a pass in one assembly loop: the bias into the six accumulators, tc_dsp_gemm.h's groups
 * (tc_dot_1x6's loops), its fast outputs (TC_QUICK_OUTPUTS), then the next row, whose weights follow. A
 * row costs a few loads and stores of the loop's values instead of a call. `load`: the clamp's bounds. */
#define BAND_ROWS(clamp, load)                                                                              \
    "1:\n\t"                                                                                                \
    "ldr r8, %[bias]\n\t"                                                                                   \
    "ldr %[a0], [r8], #4\n\t"                                                                               \
    "str r8, %[bias]\n\t"                                                                                   \
    "mov %[a1], %[a0]\n\t"                                                                                  \
    "mov %[a2], %[a0]\n\t"                                                                                  \
    "mov %[a3], %[a0]\n\t"                                                                                  \
    "mov %[a4], %[a0]\n\t"                                                                                  \
    "mov %[a5], %[a0]\n\t"                                                                                  \
    "ldr %[c], %[cols]\n\t"                                                                                 \
    "ldr r8, %[single_end]\n\t"                                                                             \
    "cmp %[c], r8\n\t"                                                                                      \
    "beq 3f\n"                                                                                              \
    "2:\n\t" TC_DOT_1X6_GROUP "ldr r8, %[single_end]\n\t"                                                   \
    "cmp %[c], r8\n\t"                                                                                      \
    "bne 2b\n"                                                                                              \
    "3:\n\t"                                                                                                \
    "ldr r8, %[end]\n\t"                                                                                    \
    "cmp %[c], r8\n\t"                                                                                      \
    "beq 5f\n"                                                                                              \
    "4:\n\t" TC_DOT_1X6_GROUP TC_DOT_1X6_GROUP TC_DOT_1X6_GROUP TC_DOT_1X6_GROUP "ldr r8, %[end]\n\t"       \
    "cmp %[c], r8\n\t"                                                                                      \
    "bne 4b\n"                                                                                              \
    "5:\n\t"                                                                                                \
    "ldr r11, %[q]\n\t"                                                                                     \
    "ldm r11!, {r8, r9, r10}\n\t"                                                                           \
    "str r11, %[q]\n\t"                                                                                     \
    "ldr %[x], %[out]\n\t"                                                                                  \
    "ldr %[e], %[stride]\n\t" load BAND_OUTPUTS(clamp) "ldr %[x], %[out]\n\t"                               \
    "add %[x], %[x], #1\n\t"                                                                                \
    "str %[x], %[out]\n\t"                                                                                  \
    "ldr %[x], %[rows]\n\t"                                                                                 \
    "subs %[x], %[x], #1\n\t"                                                                               \
    "str %[x], %[rows]\n\t"                                                                                 \
    "bne 1b\n\t"

/* The outputs of one pass of six columns for every row: tc_gemm_cols where every row has the fast
 * requantization and a bias, the depth whole groups (the band path's). */
__attribute__((noinline)) static void band_rows(const tc_gemm *g, const tc_dsp_quant *quick,
                                                const int16_t *cols, int8_t *out, int32_t stride)
{
    const int32_t group_values = 4 * TC_GEMM_COLUMNS, groups = g->depth >> 2;
    band_pass m = {cols,   cols + group_values * (groups & 3), cols + group_values * groups,
                   g->bias, quick, out, stride, g->rows, g->act.min, g->act.max};
    const int8_t *w = g->weights;
    int32_t a0, a1, a2, a3, a4, a5, c, x, e;
#define BAND_ROWS_OPERANDS                                                                                  \
    : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [a4] "=&r"(a4), [a5] "=&r"(a5),       \
      [w] "+r"(w), [c] "=&r"(c), [x] "=&r"(x), [e] "=&r"(e), [bias] "+m"(m.bias), [q] "+m"(m.q),            \
      [out] "+m"(m.out), [rows] "+m"(m.rows)                                                                \
    : [cols] "m"(m.cols), [single_end] "m"(m.single_end), [end] "m"(m.end), [stride] "m"(m.stride),         \
      [lo] "m"(m.lo), [hi] "m"(m.hi)                                                                        \
    : "r8", "r9", "r10", "r11", "cc", "memory"
    if (g->act.min == TC_INT8_MIN && g->act.max == TC_INT8_MAX) {
        __asm__ volatile(BAND_ROWS(TC_CLAMP_INT8, "") BAND_ROWS_OPERANDS);
    } else {
        __asm__ volatile(BAND_ROWS(BAND_CLAMP_ACT, "ldr %[c], %[lo]\n\t"
                                                   "ldr r11, %[hi]\n\t") BAND_ROWS_OPERANDS);
    }
#undef BAND_ROWS_OPERANDS
}

static tc_status conv_dsp_band(const tc_conv2d_params *p, const band_geometry *geometry, const int8_t *input,
                               int8_t *output)
{
    const band_geometry b = *geometry;
    const int32_t out_c = p->output.c, out_w = p->output.w, positions = p->output.h * out_w;
    const int32_t columns = TC_GEMM_COLUMNS, stride_h = p->stride_h, k_h = p->filter.h;
    /* Scratch: the columns, the weights, their rows' fast requantization, the band. */
    tc_alias_i32 *cols = (tc_alias_i32 *)p->scratch;
    int8_t *copy = (int8_t *)(p->scratch + columns * b.depth4);
    tc_dsp_quant *table = (tc_dsp_quant *)(copy + b.copied);
    if (b.copied) {
        band_weights(p, &b, copy);
    }
    const tc_gemm g = {b.copied ? copy : p->weights, p->bias, &p->requant, out_c, b.depth4, p->output_offset,
                       p->act};
    const tc_dsp_quant *quick = tc_gemm_quick_table(&g, table);
    for (int32_t n = 0; n < p->input.n; n++) {
        const int8_t *image = input + n * p->input.h * p->input.w * p->input.c;
        int8_t *out = output + n * positions * out_c;
        band_state s = {(int16_t *)(table + out_c), 0, 0, 0};
        int32_t pos = 0;
        /* six positions per pass, a last one overlapping the pass before, as conv_dsp */
        for (; positions >= columns && pos < positions; pos += columns) {
            const int32_t first = tc_min_i32(pos, positions - columns);
            const int32_t last = first + columns - 1;
            band_slide(p, &b, image, &s, first / out_w * stride_h, last / out_w * stride_h + k_h);
            band_columns(p, &b, &s, first, columns, cols, columns);
            if (quick && p->bias) {
                band_rows(&g, quick, p->scratch, out + first * out_c, out_c);
            } else {
                tc_gemm_cols(&g, quick, p->scratch, out + first * out_c, out_c);
            }
        }
        for (; pos < positions; pos++) {
            band_slide(p, &b, image, &s, pos / out_w * stride_h, pos / out_w * stride_h + k_h);
            band_columns(p, &b, &s, pos, 1, cols, 1);
            tc_gemm_1col(&g, quick, p->scratch, out + pos * out_c);
        }
    }
    return TC_OK;
}

/* im2col's six columns from output position `first` on for a pointwise layer (1x1, no padding) of whole
 * groups: each column one pixel widened, the offset added, no window to check. */
__attribute__((noinline)) static void pointwise_columns(const tc_conv2d_params *p, const int8_t *image,
                                                        int32_t first, int16_t *cols)
{
    const int32_t in_c = p->input.c, out_w = p->output.w;
    const int32_t offset = tc_pack_s16x2(p->input_offset, p->input_offset);
    const int32_t x_step = p->stride_w * in_c, y_step = p->stride_h * p->input.w * in_c;
    int32_t oy = first / out_w, ox = first - oy * out_w;
    const int8_t *src = image + oy * y_step + ox * x_step;
    for (int32_t i = 0; i < TC_GEMM_COLUMNS; i++) {
        tc_alias_i32 *dst = (tc_alias_i32 *)(cols + 4 * i);
        for (int32_t c = 0; c < in_c; c += 4, dst += 2 * TC_GEMM_COLUMNS) {
            const int32_t v = tc_read_s8x4(src + c);
            dst[0] = __sxtab16(offset, v);
            dst[1] = tc_sxtab16_ror8(offset, v);
        }
        src += x_step;
        if (++ox == out_w) {
            ox = 0, oy++, src = image + oy * y_step;
        }
    }
}

/* The six columns of a pass from output position `first` on (conv_dsp, conv_s4_dsp). */
static void pass_columns(const tc_conv2d_params *p, const int8_t *image, int32_t first, int8_t *stage)
{
    if (p->filter.h == 1 && p->filter.w == 1 && p->pad_top == 0 && p->pad_left == 0 && !(p->input.c & 3)) {
        pointwise_columns(p, image, first, p->scratch);
        return;
    }
    for (int32_t i = 0; i < TC_GEMM_COLUMNS; i++) {
        im2col(p, image, (first + i) / p->output.w, (first + i) % p->output.w, p->scratch, i, TC_GEMM_COLUMNS,
               stage);
    }
}

static tc_status conv_dsp(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t out_c = p->output.c, out_w = p->output.w, positions = p->output.h * out_w;
    const int32_t depth = p->filter.h * p->filter.w * p->input.c, columns = TC_GEMM_COLUMNS;
    const tc_gemm g = {p->weights, p->bias, &p->requant, out_c, depth, p->output_offset, p->act};
    /* Scratch (ops/scratch.py): the columns, the int8 staging where channels are no multiple of four,
     * then the rows' fast requantization. */
    int8_t *stage = (int8_t *)(p->scratch + columns * ((depth + 3) & ~3));
    const int32_t staged = (p->input.c & 3) ? (depth + 3) & ~3 : 0;
    const tc_dsp_quant *quick = tc_gemm_quick_table(&g, (tc_dsp_quant *)(stage + staged));
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * p->input.h * p->input.w * p->input.c;
        int8_t *out = output + b * positions * out_c;
        int32_t pos = 0;
        /* Six output positions share every weight load. A last block of fewer overlaps the one before
         * it, writing some outputs twice, alike. Fewer than six in all run one column at a time. */
        for (; positions >= columns && pos < positions; pos += columns) {
            const int32_t first = tc_min_i32(pos, positions - columns);
            pass_columns(p, image, first, stage);
            tc_gemm_cols(&g, quick, p->scratch, out + first * out_c, out_c);
        }
        for (; pos < positions; pos++) {
            im2col(p, image, pos / out_w, pos % out_w, p->scratch, 0, 1, stage);
            tc_gemm_1col(&g, quick, p->scratch, out + pos * out_c);
        }
    }
    return TC_OK;
}

/* ---- Pointwise layers of 8 or 16 input channels ----
 * With so short a depth each output's requantization and each pass's setup outweigh the MACs in the
 * matrix kernel, so each output position runs against every channel at once: its 8 or 16 input values,
 * widened with the offset added, stay in registers, and each channel's bias, widened weights (SMLAD
 * order: SXTB16 gives (w0, w2), with ROR #8 (w1, w3), as the input words) and fast requantization are
 * one record of the scratch, made once per call, read by LDM: an output costs its loads, the SMLADs, the
 * five-instruction requantization and one store, 13 instructions with 8 channels, 18 with 16 (two
 * channels per loop). ops/scratch.py (dsp_conv_pointwise_bytes) sizes the records by the same rule. */
#define SHORT_WORDS(depth) ((depth) / 2 + 4) /* a channel's record: bias, depth / 2 weight words, quant */

static int short_pointwise_shape(const tc_conv2d_params *p)
{
    return p->filter.h == 1 && p->filter.w == 1 && p->pad_top == 0 && p->pad_left == 0 &&
           (p->input.c == 8 || p->input.c == 16) && (p->output.c & 1) == 0;
}

/* Channel oc's fast requantization, the end of its record (conv_dsp_short's, conv_dsp_grey's), at `at`; 0
 * where it does not apply. */
static int record_quant(const tc_conv2d_params *p, int32_t oc, tc_alias_i32 *at)
{
    const int32_t i = oc * p->requant.per_channel;
    const int32_t multiplier = tc_requant_multiplier(&p->requant, i);
    const int32_t shift = tc_requant_shift(&p->requant, i);
    if (!tc_dsp_quant_fits(multiplier, shift)) {
        return 0;
    }
    const tc_dsp_quant q = tc_dsp_quant_make(multiplier, shift, p->output_offset);
    at[0] = q.multiplier2, at[1] = q.shift, at[2] = q.rounding;
    return 1;
}

/* The channels' records into `table`; 0 where the path does not apply: a channel without the fast
 * requantization, or a fused clamp narrower than int8. */
static int short_records(const tc_conv2d_params *p, tc_alias_i32 *table)
{
    const int32_t depth = p->input.c;
    if (!short_pointwise_shape(p) || p->act.min != TC_INT8_MIN || p->act.max != TC_INT8_MAX) {
        return 0;
    }
    for (int32_t oc = 0; oc < p->output.c; oc++, table += 3) {
        *table++ = tc_channel_bias(p->bias, &p->requant, oc);
        for (int32_t k = 0; k < depth; k += 4) {
            const int32_t v = tc_read_s8x4(p->weights + oc * depth + k);
            *table++ = __sxtb16(v);
            *table++ = tc_sxtb16_ror8(v);
        }
        if (!record_quant(p, oc, table)) {
            return 0;
        }
    }
    return 1;
}

/* One channel's output from its record at %[t] (moved past it) and the input words: r8 the bias then
 * the accumulator, r9-r11 the weights a few at a time, then the requantization's three values. */
#define SHORT_REQUANT_STORE                                                                                 \
    "ldm %[t]!, {r9, r10, r11}\n\t"                                                                         \
    "smmlar r8, r8, r9, r8\n\t"                                                                             \
    "add r8, r8, r8, asr #31\n\t"                                                                           \
    "qadd r8, r8, r11\n\t"                                                                                  \
    "asr r8, r8, r10\n\t"                                                                                   \
    "ssat r8, #8, r8\n\t"                                                                                   \
    "strb r8, [%[out]], #1\n\t"
#define SHORT_OUTPUT_8                                                                                      \
    "ldm %[t]!, {r8, r9, r10, r11, r12}\n\t"                                                                \
    "smlad r8, r9, %[c0], r8\n\t"                                                                           \
    "smlad r8, r10, %[c1], r8\n\t"                                                                          \
    "smlad r8, r11, %[c2], r8\n\t"                                                                          \
    "smlad r8, r12, %[c3], r8\n\t" SHORT_REQUANT_STORE
#define SHORT_OUTPUT_16                                                                                     \
    "ldm %[t]!, {r8, r9, r10, r11}\n\t"                                                                     \
    "smlad r8, r9, %[c0], r8\n\t"                                                                           \
    "smlad r8, r10, %[c1], r8\n\t"                                                                          \
    "smlad r8, r11, %[c2], r8\n\t"                                                                          \
    "ldm %[t]!, {r9, r10, r11}\n\t"                                                                         \
    "smlad r8, r9, %[c3], r8\n\t"                                                                           \
    "smlad r8, r10, %[c4], r8\n\t"                                                                          \
    "smlad r8, r11, %[c5], r8\n\t"                                                                          \
    "ldm %[t]!, {r9, r10}\n\t"                                                                              \
    "smlad r8, r9, %[c6], r8\n\t"                                                                           \
    "smlad r8, r10, %[c7], r8\n\t" SHORT_REQUANT_STORE

/* One output row of the pointwise layer: what its loops read from the stack (every register is taken). */
typedef struct {
    const tc_alias_i32 *table; /* the channels' records */
    const int8_t *in;          /* the next position's input */
    int8_t *end;               /* the end of the position's outputs */
    int8_t *row_end;           /* the end of the row's outputs */
    int32_t x_step, out_c, offset2;
} short_row;

/* Input words c0..c(k+1) from the four bytes at [base, #at] (r9, r10 as temporaries, r11 the offset in
 * both int16 lanes): (v0, v2) and (v1, v3), each plus the offset, in SMLAD order. */
#define SHORT_WIDEN(base, at, k, k1)                                                                        \
    "ldr r9, [" base ", #" at "]\n\t"                                                                       \
    "sxtab16 %[c" k "], r11, r9\n\t"                                                                        \
    "sxtab16 %[c" k1 "], r11, r9, ror #8\n\t"

/* Every output of one row with 8 input channels: per position the input widened into c0-c3 (17
 * instructions), then two channels per loop, 26 instructions. */
__attribute__((noinline)) static void short_row_8(const short_row *row, int8_t *out)
{
    const short_row m = *row, *const r = &m; /* on the stack: the operands address it from SP */
    int32_t c0, c1, c2, c3;
    const tc_alias_i32 *t;
    const int8_t *in = r->in;
    int8_t *end;
    __asm__ volatile("1:\n\t"
                     "ldr r11, %[offset2]\n\t" SHORT_WIDEN("%[in]", "0", "0", "1") SHORT_WIDEN("%[in]", "4", "2", "3")
                     "ldr r9, %[x_step]\n\t"
                     "add %[in], %[in], r9\n\t"
                     "ldr %[t], %[table]\n\t"
                     "ldr %[end], %[out_c]\n\t"
                     "add %[end], %[out], %[end]\n"
                     "2:\n\t" SHORT_OUTPUT_8 SHORT_OUTPUT_8 "cmp %[out], %[end]\n\t"
                     "bne 2b\n\t"
                     "ldr r8, %[row_end]\n\t"
                     "cmp %[out], r8\n\t"
                     "bne 1b\n\t"
                     : [c0] "=&r"(c0), [c1] "=&r"(c1), [c2] "=&r"(c2), [c3] "=&r"(c3), [t] "=&r"(t),
                       [end] "=&r"(end), [in] "+r"(in), [out] "+r"(out)
                     : [offset2] "m"(r->offset2), [x_step] "m"(r->x_step), [table] "m"(r->table),
                       [out_c] "m"(r->out_c), [row_end] "m"(r->row_end)
                     : "r8", "r9", "r10", "r11", "r12", "cc", "memory");
}

/* The same with 16 channels: c0-c7 and two channels per loop take every register, so the input and the
 * end of the position's outputs live in r; 39 instructions for two channels. */
__attribute__((noinline)) static void short_row_16(const short_row *row, int8_t *out)
{
    short_row m = *row, *const r = &m; /* on the stack: the operands address it from SP */
    int32_t c0, c1, c2, c3, c4, c5, c6, c7;
    const tc_alias_i32 *t;
    __asm__ volatile("1:\n\t"
                     "ldr r8, %[in]\n\t"
                     "ldr r11, %[offset2]\n\t" SHORT_WIDEN("r8", "0", "0", "1") SHORT_WIDEN("r8", "4", "2", "3")
                         SHORT_WIDEN("r8", "8", "4", "5") SHORT_WIDEN("r8", "12", "6", "7")
                     "ldr r9, %[x_step]\n\t"
                     "add r8, r8, r9\n\t"
                     "str r8, %[in]\n\t"
                     "ldr %[t], %[table]\n\t"
                     "ldr r8, %[out_c]\n\t"
                     "add r8, %[out], r8\n\t"
                     "str r8, %[end]\n"
                     "2:\n\t" SHORT_OUTPUT_16 SHORT_OUTPUT_16 "ldr r8, %[end]\n\t"
                     "cmp %[out], r8\n\t"
                     "bne 2b\n\t"
                     "ldr r8, %[row_end]\n\t"
                     "cmp %[out], r8\n\t"
                     "bne 1b\n\t"
                     : [c0] "=&r"(c0), [c1] "=&r"(c1), [c2] "=&r"(c2), [c3] "=&r"(c3), [c4] "=&r"(c4),
                       [c5] "=&r"(c5), [c6] "=&r"(c6), [c7] "=&r"(c7), [t] "=&r"(t), [out] "+r"(out),
                       [in] "+m"(r->in), [end] "+m"(r->end)
                     : [offset2] "m"(r->offset2), [x_step] "m"(r->x_step), [table] "m"(r->table),
                       [out_c] "m"(r->out_c), [row_end] "m"(r->row_end)
                     : "r8", "r9", "r10", "r11", "cc", "memory");
}

/* The pointwise layer from the records in the scratch (short_records made them), a row at a time. */
static tc_status conv_dsp_short(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_c = p->input.c, out_c = p->output.c, row_bytes = p->output.w * out_c;
    short_row r = {(const tc_alias_i32 *)p->scratch, input, 0, 0, p->stride_w * in_c, out_c,
                   tc_pack_s16x2(p->input_offset, p->input_offset)};
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * p->input.h * p->input.w * in_c;
        for (int32_t oy = 0; oy < p->output.h; oy++, output += row_bytes) {
            r.in = image + oy * p->stride_h * p->input.w * in_c;
            r.row_end = output + row_bytes;
            if (in_c == 8) {
                short_row_8(&r, output);
            } else {
                short_row_16(&r, output);
            }
        }
    }
    return TC_OK;
}

/* ---- First layers of one input channel and a 3x3 kernel (the digits CNN's 8x8 grey image) ----
 * Nine MACs an output: the band path's passes (six columns of twelve values, rows of three groups) spend
 * more on columns, setup and requantization than on the MACs. Here each output position's nine widened
 * inputs come from the band (band_slide, one output row at a time) into five registers, (r0 v0, r0 v1),
 * (r1 v0, r1 v1), (r2 v0, r2 v1), (r0 v2, r1 v2), (r2 v2, r2 v3) (r the kernel row, v the tap; SMLAD
 * pairs as the band holds them, but for the fourth, one PKHBT), and each channel's record holds its bias,
 * its weights in the same pairs, (w22, 0) last (r2 v3 meets a zero weight), then its fast requantization
 * (tc_dsp.h): an output costs two LDMs, five SMLADs, the five-instruction requantization and a store, 13
 * instructions for 9 MACs, and a position's registers about 16 for all its channels. The records take the
 * scratch before the band (the band path's columns, copied weights and requantization table), which
 * bounds the channels (grey_records); ops/scratch.py's dsp_conv_band_bytes needs no more. */
#define GREY_WORDS 9 /* a channel's record: bias, five weight words, quant */

/* The channels' records at the scratch's start; 0 where the path does not apply: another shape, an odd
 * number of channels, a channel without the fast requantization, a fused clamp narrower than int8, or
 * records past the band's start. */
static int grey_records(const tc_conv2d_params *p, const band_geometry *b)
{
    const int32_t out_c = p->output.c;
    const int32_t before_band =
        TC_GEMM_COLUMNS * b->depth4 * 2 + b->copied + out_c * (int32_t)sizeof(tc_dsp_quant);
    if (p->input.c != 1 || p->filter.h != 3 || p->filter.w != 3 || (out_c & 1) ||
        out_c * GREY_WORDS * 4 > before_band || p->act.min != TC_INT8_MIN || p->act.max != TC_INT8_MAX) {
        return 0;
    }
    tc_alias_i32 *table = (tc_alias_i32 *)p->scratch;
    for (int32_t oc = 0; oc < out_c; oc++, table += 3) {
        const int8_t *w = p->weights + 9 * oc;
        *table++ = tc_channel_bias(p->bias, &p->requant, oc);
        *table++ = tc_pack_s16x2(w[0], w[1]), *table++ = tc_pack_s16x2(w[3], w[4]);
        *table++ = tc_pack_s16x2(w[6], w[7]), *table++ = tc_pack_s16x2(w[2], w[5]);
        *table++ = tc_pack_s16x2(w[8], 0);
        if (!record_quant(p, oc, table)) {
            return 0;
        }
    }
    return 1;
}

/* One channel's output from its record at %[t] (moved past it): r8 the bias then the accumulator, r9-r12
 * four weights, then the last weight and the requantization's three values. */
#define GREY_OUTPUT                                                                                         \
    "ldm %[t]!, {r8, r9, r10, r11, r12}\n\t"                                                                \
    "smlad r8, r9, %[c0], r8\n\t"                                                                           \
    "smlad r8, r10, %[c1], r8\n\t"                                                                          \
    "smlad r8, r11, %[c2], r8\n\t"                                                                          \
    "smlad r8, r12, %[c3], r8\n\t"                                                                          \
    "ldm %[t]!, {r9, r10, r11, r12}\n\t"                                                                    \
    "smlad r8, r9, %[c4], r8\n\t"                                                                           \
    "smmlar r8, r8, r10, r8\n\t"                                                                            \
    "add r8, r8, r8, asr #31\n\t"                                                                           \
    "qadd r8, r8, r12\n\t"                                                                                  \
    "asr r8, r8, r11\n\t"                                                                                   \
    "ssat r8, #8, r8\n\t"                                                                                   \
    "strb r8, [%[out]], #1\n\t"

/* One output row: what its loops read from the stack (every register is taken). */
typedef struct {
    const tc_alias_i32 *table; /* the channels' records */
    int8_t *row_end;           /* the end of the row's outputs */
    int32_t pitch;             /* bytes from a band row to the next */
    int32_t x_step, out_c;     /* bytes from a position's first tap to the next; channels */
} grey_row;

/* Every output of one row, `in` its first position's first tap in the band: per position the five words,
 * then `outputs` (GREY_OUTPUT two or four times) per loop, 27 instructions for two channels, 53 for four. */
#define GREY_ROW(outputs)                                                                                   \
    "1:\n\t"                                                                                                \
    "ldr r8, %[pitch]\n\t"                                                                                  \
    "add r9, %[in], r8\n\t"                                                                                 \
    "ldr %[c0], [%[in]]\n\t"                                                                                \
    "ldr %[c1], [r9]\n\t"                                                                                   \
    "ldr r10, [%[in], #4]\n\t"                                                                              \
    "ldr r11, [r9, #4]\n\t"                                                                                 \
    "pkhbt %[c3], r10, r11, lsl #16\n\t"                                                                    \
    "add r9, r9, r8\n\t"                                                                                    \
    "ldr %[c2], [r9]\n\t"                                                                                   \
    "ldr %[c4], [r9, #4]\n\t"                                                                               \
    "ldr r8, %[x_step]\n\t"                                                                                 \
    "add %[in], %[in], r8\n\t"                                                                              \
    "ldr %[t], %[table]\n\t"                                                                                \
    "ldr %[end], %[out_c]\n\t"                                                                              \
    "add %[end], %[out], %[end]\n"                                                                          \
    "2:\n\t" outputs "cmp %[out], %[end]\n\t"                                                              \
    "bne 2b\n\t"                                                                                           \
    "ldr r8, %[row_end]\n\t"                                                                                \
    "cmp %[out], r8\n\t"                                                                                    \
    "bne 1b\n\t"

__attribute__((noinline)) static void grey_row_run(const grey_row *row, const int16_t *in, int8_t *out)
{
    const grey_row m = *row, *const r = &m; /* on the stack: the operands address it from SP */
    int32_t c0, c1, c2, c3, c4;
    const tc_alias_i32 *t;
    int8_t *end;
#define GREY_ROW_OPERANDS                                                                                   \
    : [c0] "=&r"(c0), [c1] "=&r"(c1), [c2] "=&r"(c2), [c3] "=&r"(c3), [c4] "=&r"(c4), [t] "=&r"(t),        \
      [end] "=&r"(end), [in] "+r"(in), [out] "+r"(out)                                                      \
    : [pitch] "m"(r->pitch), [x_step] "m"(r->x_step), [table] "m"(r->table), [out_c] "m"(r->out_c),         \
      [row_end] "m"(r->row_end)                                                                             \
    : "r8", "r9", "r10", "r11", "r12", "cc", "memory"
    if (r->out_c & 3) {
        __asm__ volatile(GREY_ROW(GREY_OUTPUT GREY_OUTPUT) GREY_ROW_OPERANDS);
    } else {
        __asm__ volatile(GREY_ROW(GREY_OUTPUT GREY_OUTPUT GREY_OUTPUT GREY_OUTPUT) GREY_ROW_OPERANDS);
    }
#undef GREY_ROW_OPERANDS
}

/* The layer from the records grey_records made, an output row at a time from the band. */
static tc_status conv_dsp_grey(const tc_conv2d_params *p, const band_geometry *b, const int8_t *input,
                               int8_t *output)
{
    const int32_t out_c = p->output.c, row_bytes = p->output.w * out_c, stride_h = p->stride_h;
    const int8_t *copy = (const int8_t *)(p->scratch + TC_GEMM_COLUMNS * b->depth4);
    int16_t *band = (int16_t *)((const tc_dsp_quant *)(copy + b->copied) + out_c);
    grey_row r = {(const tc_alias_i32 *)p->scratch, 0, 2 * b->length, 2 * p->stride_w, out_c};
    for (int32_t n = 0; n < p->input.n; n++) {
        const int8_t *image = input + n * p->input.h * p->input.w;
        band_state s = {band, 0, 0, 1};
        memset(band, 0, (size_t)(b->rows * b->length) * 2);
        for (int32_t oy = 0; oy < p->output.h; oy++, output += row_bytes) {
            band_slide(p, b, image, &s, oy * stride_h, oy * stride_h + 3);
            r.row_end = output + row_bytes;
            grey_row_run(&r, s.rows + (oy * stride_h - s.lo) * b->length, output);
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
#if TC_MVE
    if (p->scratch) {
        return conv_mve(p, input, output);
    }
#elif TC_DSP
    if (p->scratch) {
        band_geometry b;
        if (band_applies(p, &b)) {
            return grey_records(p, &b) ? conv_dsp_grey(p, &b, input, output)
                                       : conv_dsp_band(p, &b, input, output);
        }
        return short_records(p, (tc_alias_i32 *)p->scratch) ? conv_dsp_short(p, input, output)
                                                            : conv_dsp(p, input, output);
    }
#endif
    return conv_portable(p, input, output);
}

/* ---- INT4 weights: tc_conv2d_s4 ---- */

/* The portable path of tc_conv2d_s4 and tc_conv2d_p4, which differ only in how a weight is read: `weight`
 * (tc_palette.h), a constant in each caller. */
static inline __attribute__((always_inline)) tc_status conv_w4_portable(const tc_conv2d_params *p,
                                                                        const int8_t *input, int8_t *output,
                                                                        tc_w4_decoder weight)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c, out_c = p->output.c;
    const int32_t k_h = p->filter.h, k_w = p->filter.w, input_offset = p->input_offset;
    const int32_t row_bytes = 4 * tc_s4_words(k_h * k_w * in_c);
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < p->output.h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            tc_inside_taps(y0, p->dilation_h, k_h, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < p->output.w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                tc_inside_taps(x0, p->dilation_w, k_w, in_w, &kx0, &kx1);
                for (int32_t oc = 0; oc < out_c; oc++) { /* only the taps inside: padding adds nothing */
                    const int8_t *row = p->weights + oc * row_bytes;
                    int32_t acc = 0;
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        for (int32_t kx = kx0; kx < kx1; kx++) {
                            const int32_t y = y0 + ky * p->dilation_h, x = x0 + kx * p->dilation_w;
                            const int8_t *in = image + (y * in_w + x) * in_c;
                            const int32_t k = (ky * k_w + kx) * in_c;
                            for (int32_t c = 0; c < in_c; c++) {
                                acc += weight(row, p->palette, k + c) * (in[c] + input_offset);
                            }
                        }
                    }
                    *output++ = conv_output(p, acc, oc);
                }
            }
        }
    }
    return TC_OK;
}

static tc_status conv_s4_portable(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    return conv_w4_portable(p, input, output, tc_s4_weight);
}

#if TC_DSP && !TC_MVE
/* Half a weight word (its high nibbles, or after `load` its low ones moved up) against one group of the
 * six interleaved columns: made signed, widened into (16 w0, 16 w2) and (16 w1, 16 w3) (tc_int4.h), then
 * tc_dsp_gemm.h's pairs. */
#define TC_S4_1X6_HALF(load)                                                                                      \
    load "eor %[e], %[e], #0x88888888\n\t"                                                                        \
         "and %[e], %[e], #0xF0F0F0F0\n\t"                                                                        \
         "sxtb16 %[x], %[e]\n\t"                                                                                  \
         "sxtb16 %[e], %[e], ror #8\n\t" TC_DOT_1X6_PAIR("a0", "a1") TC_DOT_1X6_PAIR("a2", "a3")                 \
             TC_DOT_1X6_PAIR("a4", "a5")
/* One word, eight values of the row, against two groups: 48 MACs in 41 instructions (int8: 36). The word
 * is read twice: every register is taken. */
#define TC_S4_1X6_WORD                                                                                            \
    TC_S4_1X6_HALF("ldr %[e], [%[w]]\n\t") TC_S4_1X6_HALF("ldr %[e], [%[w]], #4\n\t"                              \
                                                          "lsl %[e], %[e], #4\n\t")

/* 16 times the row's products with the six columns, over `words` words (two of them per loop). */
static inline __attribute__((always_inline)) tc_acc6 dot_s4_1x6(const int8_t *w, const int16_t *cols, int32_t words)
{
    const int16_t *c = cols;
    const int16_t *volatile end = cols + 2 * 4 * TC_GEMM_COLUMNS * words;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, x, e;
#define TC_S4_1X6_OPERANDS                                                                                        \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [a4] "+r"(a4), [a5] "+r"(a5), [w] "+r"(w),     \
      [c] "+r"(c), [x] "=&r"(x), [e] "=&r"(e)                                                               \
    : [end] "m"(end)                                                                                              \
    : "r8", "r9", "r10", "r11", "cc", "memory"
    if (words & 1) {
        __asm__ volatile(TC_S4_1X6_WORD TC_S4_1X6_OPERANDS);
    }
    if (words > 1) {
        __asm__ volatile("1:\n\t" TC_S4_1X6_WORD TC_S4_1X6_WORD "ldr r8, %[end]\n\t"
                         "cmp %[c], r8\n\t"
                         "bne 1b\n\t" TC_S4_1X6_OPERANDS);
    }
#undef TC_S4_1X6_OPERANDS
    const tc_acc6 acc = {a0, a1, a2, a3, a4, a5};
    return acc;
}

/* One row's six outputs at out, out + stride, ...: the sums (16 times, shifted back) plus the bias, then
 * the fast requantization q (tc_dsp_gemm.h's outputs; `full`: int8's own clamp) or, with q NULL, r's. */
__attribute__((noinline)) static void row_s4_1x6(const tc_conv2d_params *p, int32_t oc, int32_t words,
                                                 const tc_dsp_quant *q, int8_t *out)
{
    tc_acc6 a = dot_s4_1x6(p->weights + oc * 4 * words, p->scratch, words);
    const int32_t bias = tc_channel_bias(p->bias, &p->requant, oc), stride = p->output.c;
    a.a0 = (a.a0 >> 4) + bias, a.a1 = (a.a1 >> 4) + bias, a.a2 = (a.a2 >> 4) + bias;
    a.a3 = (a.a3 >> 4) + bias, a.a4 = (a.a4 >> 4) + bias, a.a5 = (a.a5 >> 4) + bias;
#define TC_S4_OUTPUT_OPERANDS                                                                                     \
    : [a0] "+r"(a.a0), [a1] "+r"(a.a1), [a2] "+r"(a.a2), [a3] "+r"(a.a3), [a4] "+r"(a.a4), [a5] "+r"(a.a5),       \
      [out] "+r"(out)                                                                                             \
    : [q] "r"(q), [stride] "r"(stride), [lo] "r"(p->act.min), [hi] "r"(p->act.max), "m"(*q)                       \
    : "r8", "r9", "r10", "cc", "memory"
    if (q && p->act.min == TC_INT8_MIN && p->act.max == TC_INT8_MAX) {
        __asm__ volatile(TC_QUICK_OUTPUTS(TC_CLAMP_INT8) TC_S4_OUTPUT_OPERANDS);
    } else if (q) {
        __asm__ volatile(TC_QUICK_OUTPUTS(TC_CLAMP_ACT) TC_S4_OUTPUT_OPERANDS);
    } else {
        const tc_channel_quant r = tc_channel_quant_make(&p->requant, oc, p->output_offset, p->act);
        const int32_t acc[TC_GEMM_COLUMNS] = {a.a0, a.a1, a.a2, a.a3, a.a4, a.a5};
        for (int32_t i = 0; i < TC_GEMM_COLUMNS; i++) {
            out[i * stride] = tc_channel_output(&r, acc[i]);
        }
    }
#undef TC_S4_OUTPUT_OPERANDS
}

/* 16 times a row's products with one column. */
static int32_t dot_s4_1x1(const int8_t *w, const tc_alias_i32 *col, int32_t words)
{
    int32_t a = 0;
    for (int32_t j = 0; j < words; j++, col += 4) {
        const int32_t v = tc_read_s8x4(w + 4 * j), hi = tc_s4_high16(v), lo = tc_s4_low16(v);
        a = __smlad(__sxtb16(hi), col[0], a);
        a = __smlad(tc_sxtb16_ror8(hi), col[1], a);
        a = __smlad(__sxtb16(lo), col[2], a);
        a = __smlad(tc_sxtb16_ror8(lo), col[3], a);
    }
    return a;
}

static tc_status conv_s4_dsp(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t out_c = p->output.c, out_w = p->output.w, positions = p->output.h * out_w;
    const int32_t depth = p->filter.h * p->filter.w * p->input.c, words = tc_s4_words(depth);
    const int32_t columns = TC_GEMM_COLUMNS, row_bytes = 4 * words;
    /* Scratch (ops/scratch.py): the columns in whole words, the int8 staging, then the rows' fast
     * requantization. Column values past the depth meet zero weights: what the scratch holds there adds 0. */
    int8_t *stage = (int8_t *)(p->scratch + columns * TC_S4_WORD * words);
    const int32_t staged = (p->input.c & 3) ? (depth + 3) & ~3 : 0;
    const tc_gemm g = {p->weights, p->bias, &p->requant, out_c, depth, p->output_offset, p->act};
    const tc_dsp_quant *quick = tc_gemm_quick_table(&g, (tc_dsp_quant *)(stage + staged));
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * p->input.h * p->input.w * p->input.c;
        int8_t *out = output + b * positions * out_c;
        int32_t pos = 0;
        /* six positions per pass, a last one overlapping the pass before, as conv_dsp */
        for (; positions >= columns && pos < positions; pos += columns) {
            const int32_t first = tc_min_i32(pos, positions - columns);
            pass_columns(p, image, first, stage);
            for (int32_t oc = 0; oc < out_c; oc++) {
                row_s4_1x6(p, oc, words, quick ? quick + oc : 0, out + first * out_c + oc);
            }
        }
        for (; pos < positions; pos++) {
            im2col(p, image, pos / out_w, pos % out_w, p->scratch, 0, 1, stage);
            for (int32_t oc = 0; oc < out_c; oc++) {
                const int32_t acc = dot_s4_1x1(p->weights + oc * row_bytes, (const tc_alias_i32 *)p->scratch,
                                               words);
                const tc_channel_quant q = tc_channel_quant_make(&p->requant, oc, p->output_offset, p->act);
                const int32_t bias = tc_channel_bias(p->bias, &p->requant, oc);
                out[pos * out_c + oc] = tc_channel_output(&q, (acc >> 4) + bias);
            }
        }
    }
    return TC_OK;
}
#endif

tc_status tc_conv2d_s4(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    if (p->filter.c != p->input.c) {
        return TC_ERROR_ARGUMENT; /* grouped convolution */
    }
#if TC_DSP && !TC_MVE
    if (p->scratch) {
        return conv_s4_dsp(p, input, output);
    }
#endif
    return conv_s4_portable(p, input, output);
}

/* ---- Clustered weights: tc_conv2d_p4 ---- */

static tc_status conv_p4_portable(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    return conv_w4_portable(p, input, output, tc_p4_value);
}

#if TC_DSP && !TC_MVE
/* conv_dsp with the weights decoded TC_P4_ROWS rows at a time, for each pass of six positions, into the
 * scratch after the int8 path's (ops/scratch.py): the same matrix kernel on the same int8 values, so the
 * same outputs. Each row is decoded once per pass: its int8 form never lies in RAM whole. */
static tc_status conv_p4_dsp(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t out_c = p->output.c, out_w = p->output.w, positions = p->output.h * out_w;
    const int32_t depth = p->filter.h * p->filter.w * p->input.c, columns = TC_GEMM_COLUMNS;
    const int32_t row_bytes = 4 * tc_s4_words(depth);
    const tc_gemm g = {0, p->bias, &p->requant, out_c, depth, p->output_offset, p->act};
    int8_t *stage = (int8_t *)(p->scratch + columns * ((depth + 3) & ~3));
    const int32_t staged = (p->input.c & 3) ? (depth + 3) & ~3 : 0;
    tc_dsp_quant *table = (tc_dsp_quant *)(stage + staged);
    const tc_dsp_quant *quick = tc_gemm_quick_table(&g, table);
    int8_t *block = (int8_t *)(table + out_c);
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * p->input.h * p->input.w * p->input.c;
        int8_t *out = output + b * positions * out_c;
        /* passes of six positions, a last one overlapping the one before, as conv_dsp; then one at a time */
        for (int32_t pos = 0; pos < positions;) {
            const int32_t n = positions >= columns ? columns : 1;
            const int32_t first = n == columns ? tc_min_i32(pos, positions - columns) : pos;
            for (int32_t i = 0; i < n; i++) {
                im2col(p, image, (first + i) / out_w, (first + i) % out_w, p->scratch, i, n, stage);
            }
            for (int32_t row = 0; row < out_c; row += TC_P4_ROWS) {
                const int32_t count = tc_min_i32(TC_P4_ROWS, out_c - row);
                const int32_t q = p->requant.per_channel ? row : 0;
                const tc_requant requant = {p->requant.multiplier + q, p->requant.shift + q,
                                            p->requant.per_channel};
                const tc_gemm rows = {block, p->bias ? p->bias + row : 0, &requant, count, depth,
                                      p->output_offset, p->act};
                tc_p4_decode(p->weights + row * row_bytes, depth, count, p->palette, block);
                if (n == columns) {
                    tc_gemm_cols(&rows, quick ? quick + row : 0, p->scratch, out + first * out_c + row,
                                 out_c);
                } else {
                    tc_gemm_1col(&rows, quick ? quick + row : 0, p->scratch, out + first * out_c + row);
                }
            }
            pos += n;
        }
    }
    return TC_OK;
}
#endif

tc_status tc_conv2d_p4(const tc_conv2d_params *p, const int8_t *input, int8_t *output)
{
    if (p->filter.c != p->input.c) {
        return TC_ERROR_ARGUMENT; /* grouped convolution */
    }
#if TC_DSP && !TC_MVE
    if (p->scratch) {
        return conv_p4_dsp(p, input, output);
    }
#endif
    return conv_p4_portable(p, input, output);
}
