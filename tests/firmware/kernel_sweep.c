/*
 * Randomized shape sweep: the optimized kernels (DSP extension or Helium) against
 * the portable ones on the same random shapes, parameters and data (odd channel
 * counts, padding, strides, dilations, zero points, per-tensor and per-channel
 * requantization), INT4 weights in the nibble form and clustered ones (4-bit indices
 * into a 16-entry palette) included. The portable objects
 * are the same sources built with -DTC_PORTABLE and their entry points renamed
 * *_portable. Each optimized call
 * gets exactly the scratch tinycompress/ops/scratch.py gives it, followed by
 * guard bytes that must stay untouched. Exit status: the number of cases that differ.
 */
#include <stdint.h>
#include <string.h>

#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_int4.h"
#include "tc_kernels.h"
#include "tc_mve.h"
#include "tc_palette.h"
#include "tc_platform.h"

tc_status tc_conv2d_s8_portable(const tc_conv2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_fully_connected_s8_portable(const tc_fully_connected_params *p, const int8_t *input, int8_t *output);
tc_status tc_depthwise_conv2d_s8_portable(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_max_pool2d_s8_portable(const tc_pool2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_avg_pool2d_s8_portable(const tc_pool2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_conv2d_s4_portable(const tc_conv2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_fully_connected_s4_portable(const tc_fully_connected_params *p, const int8_t *input,
                                         int8_t *output);
tc_status tc_depthwise_conv2d_s4_portable(const tc_depthwise_conv2d_params *p, const int8_t *input,
                                          int8_t *output);
tc_status tc_conv2d_p4_portable(const tc_conv2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_fully_connected_p4_portable(const tc_fully_connected_params *p, const int8_t *input,
                                         int8_t *output);
tc_status tc_depthwise_conv2d_p4_portable(const tc_depthwise_conv2d_params *p, const int8_t *input,
                                          int8_t *output);

#define CASES 300
#define MAX_BYTES 4096 /* every buffer: larger shapes are drawn again */

static int8_t input[MAX_BYTES], weights[MAX_BYTES], out_fast[MAX_BYTES], out_portable[MAX_BYTES];
static int8_t palette[16]; /* the clustered weights' values */
static int32_t bias[256], multiplier[256], shift[256];
static int16_t scratch[4 * MAX_BYTES] __attribute__((aligned(16))); /* as the arena */
#define GUARD 64 /* bytes after the scratch a kernel may not touch */

static uint32_t state = 0x9E3779B9u;

static uint32_t next(void) /* xorshift32 */
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

static int32_t draw(int32_t lo, int32_t hi) { return lo + (int32_t)(next() % (uint32_t)(hi - lo + 1)); }

static void fill(int8_t *a, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        a[i] = (int8_t)next();
    }
}

static tc_requant requant(int32_t channels)
{
    for (int32_t i = 0; i < channels; i++) {
        multiplier[i] = (int32_t)(0x40000000u + (next() & 0x3FFFFFFFu)); /* [2^30, 2^31) */
        shift[i] = draw(-12, 1);
        bias[i] = draw(-20000, 20000);
    }
    const tc_requant r = {multiplier, shift, (int32_t)(next() & 1)};
    return r;
}

/* Half the time, the packed form of INT4 convolutions (tc_types.h): each channel's bias, shift and
 * multiplier drawn into one word of `packed`, which then stands for the bias array too (1), else 0. */
static int32_t packed[256];
static int pack_channels(tc_requant *r, int32_t channels)
{
    if (next() & 1) {
        return 0;
    }
    const int32_t bias_shift = TC_PACKED_FRACTION_BITS + TC_PACKED_SHIFT_BITS;
    for (int32_t i = 0; i < channels; i++) {
        const uint32_t b = (uint32_t)draw(-(1 << (31 - bias_shift)), (1 << (31 - bias_shift)) - 1);
        const uint32_t s = (uint32_t)draw(0, (1 << TC_PACKED_SHIFT_BITS) - 1);
        packed[i] = (int32_t)((b << bias_shift) | (s << TC_PACKED_FRACTION_BITS) |
                              (next() & ((1u << TC_PACKED_FRACTION_BITS) - 1)));
    }
    r->packed = packed, r->packed_shift = draw(-12, -2), r->per_channel = 1;
    return 1;
}

static tc_activation activation(void)
{
    if (next() & 1) { /* int8's own clamp: the fast requantization's whole clamp on DSP cores */
        const tc_activation full = {TC_INT8_MIN, TC_INT8_MAX};
        return full;
    }
    /* a quarter of the time [lo, 127], a ReLU's whose zero point is above -128 (tc_dsp_gemm.h's TC_CLAMP_LO) */
    const int32_t lo = draw(-128, 0), hi = (next() & 1) ? 127 : draw(0, 127);
    const tc_activation a = {lo, hi};
    return a;
}

/* Output size and leading padding along one axis, as TFLite computes them. */
static int32_t axis(int32_t in, int32_t k, int32_t stride, int32_t dilation, int same, int32_t *pad)
{
    const int32_t effective = (k - 1) * dilation + 1;
    const int32_t out = same ? (in + stride - 1) / stride : (in - effective) / stride + 1;
    const int32_t total = (out - 1) * stride + effective - in;
    *pad = same && total > 0 ? total / 2 : 0;
    return out;
}

/* The weights of a case: int8, INT4 in the nibble form (tc_int4.h), or clustered: palette indices in the
 * same words (tc_palette.h). */
typedef enum { INT8, INT4, PALETTE } weight_form;

/* The bytes of `rows` rows of `depth` weights in a form. */
static int32_t weight_bytes(weight_form form, int32_t rows, int32_t depth)
{
    return form == INT8 ? rows * depth : rows * 4 * tc_s4_words(depth);
}

/* Nibble i of the word at w to n. */
static void set_nibble(int8_t *w, int32_t i, uint8_t n)
{
    uint8_t *b = (uint8_t *)w + (i & 3);
    *b = (i & 4) ? (uint8_t)((*b & 0xF0) | n) : (uint8_t)((*b & 0x0F) | (n << 4));
}

/* Random nibbles, `rows` rows of `depth` in blocks of `block`, the padding `pad` as ops/nibbles.py writes
 * it: INT4's value 0 (the conv's DSP columns hold anything past the depth), a palette's index 0. */
static void fill_nibbles(int32_t rows, int32_t depth, int32_t block, uint8_t pad)
{
    const int32_t words = tc_s4_words(depth);
    fill(weights, rows * words * 4);
    for (int32_t r = 0; r < rows; r++) {
        int32_t stride;
        int8_t *w = (int8_t *)tc_s4_row(weights, rows, words, block, r, &stride);
        for (int32_t k = depth; k < words * TC_S4_WORD; k++) {
            set_nibble(w + (k >> 3) * stride, k & 7, pad);
        }
    }
}

/* `rows` rows of `depth` random weights in a form, INT4 ones in blocks of `block`; clustered ones with a
 * random palette. */
static void fill_weights(weight_form form, int32_t rows, int32_t depth, int32_t block)
{
    if (form == INT8) {
        fill(weights, rows * depth);
    } else if (form == INT4) {
        fill_nibbles(rows, depth, block, TC_S4_OFFSET);
    } else {
        fill_nibbles(rows, depth, 1, 0);
        fill(palette, sizeof palette);
    }
}

/* A random sliding window: input and output sizes, kernel, strides, dilations, TFLite padding. */
typedef struct {
    tc_dims input, output;
    int32_t k_h, k_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
} window;

static window draw_window(int32_t in_c, int32_t out_c)
{
    window g;
    const int same = (int)(next() & 1);
    g.k_h = draw(1, 5), g.k_w = draw(1, 5), g.stride_h = draw(1, 3), g.stride_w = draw(1, 3);
    g.dilation_h = draw(1, 2), g.dilation_w = draw(1, 2);
    const tc_dims input = {1, draw(1, 9), draw(1, 9), in_c};
    g.input = input;
    const tc_dims output = {1, axis(input.h, g.k_h, g.stride_h, g.dilation_h, same, &g.pad_top),
                            axis(input.w, g.k_w, g.stride_w, g.dilation_w, same, &g.pad_left), out_c};
    g.output = output;
    return g;
}

/* g made the DSP depthwise planes' shape (3x3, stride 1 or 2 along each axis, no dilation), its output that
 * of TFLite padding. */
static void planes_shape(window *g)
{
    g->k_h = g->k_w = 3, g->dilation_h = g->dilation_w = 1;
    g->stride_h = draw(1, 2), g->stride_w = draw(1, 2);
    const int same = (int)(next() & 1);
    g->output.h = axis(g->input.h, 3, g->stride_h, 1, same, &g->pad_top);
    g->output.w = axis(g->input.w, 3, g->stride_w, 1, same, &g->pad_left);
}

static int fits(const window *g, int32_t filter_bytes)
{
    return g->output.h >= 1 && g->output.w >= 1 && g->input.h * g->input.w * g->input.c <= MAX_BYTES &&
           filter_bytes <= MAX_BYTES && g->output.h * g->output.w * g->output.c <= MAX_BYTES;
}

#define SET_WINDOW(p, g)                                                                                          \
    ((p).input = (g).input, (p).output = (g).output, (p).stride_h = (g).stride_h, (p).stride_w = (g).stride_w,    \
     (p).dilation_h = (g).dilation_h, (p).dilation_w = (g).dilation_w, (p).pad_top = (g).pad_top,                 \
     (p).pad_left = (g).pad_left)

/* Offsets, data, requantization, bias and clamp, drawn the same way for both convolutions. */
#define DRAW_QUANTIZATION(p, weight_count)                                                                        \
    ((p).input_offset = draw(-127, 128), (p).output_offset = draw(-128, 127),                                    \
     fill(input, (p).input.h * (p).input.w * (p).input.c), fill(weights, (weight_count)), (p).weights = weights,  \
     (p).requant = requant((p).output.c), (p).bias = (next() & 3) ? bias : 0, (p).act = activation())

/* The scratch bytes tinycompress/ops/scratch.py gives a kernel on this core, and guard bytes after them. */
static int16_t *guarded_scratch(int32_t bytes)
{
    memset(scratch, 0x5A, sizeof scratch);
    return (int16_t *)((int8_t *)scratch + sizeof scratch - GUARD - bytes);
}

static int scratch_fits(int32_t bytes) { return bytes <= (int32_t)sizeof scratch - GUARD; }

static int guard_intact(void)
{
    const int8_t *guard = (const int8_t *)scratch + sizeof scratch - GUARD;
    for (int32_t i = 0; i < GUARD; i++) {
        if (guard[i] != 0x5A) {
            return 0;
        }
    }
    return 1;
}

#if !TC_MVE
/* The DSP path's per-position im2col: six int16 columns, int8 staging where channels are no multiple of
 * four, each row's requantization. */
static int32_t conv_im2col_bytes(const tc_conv2d_params *p)
{
    const int32_t depth4 = (p->filter.h * p->filter.w * p->input.c + 3) & ~3;
    return 6 * depth4 * 2 + (p->input.c % 4 ? depth4 : 0) + 12 * p->output.c;
}

/* The DSP path of first layers (one to four channels, no dilation): six int16 columns of each kernel row's
 * run padded to even and the depth to four, the weights so laid out where anything is padded, each row's
 * requantization, the band of widened input rows; 0 where it does not apply (larger than 8192 bytes). */
static int32_t conv_band_bytes(const tc_conv2d_params *p)
{
    if (p->input.c > 4 || p->dilation_h != 1 || p->dilation_w != 1) {
        return 0;
    }
    const int32_t words = (p->filter.w * p->input.c + 1) / 2, depth4 = (p->filter.h * 2 * words + 3) & ~3;
    const int32_t length = (((p->output.w - 1) * p->stride_w + p->filter.w) * p->input.c + 2) & ~1;
    const int32_t rows = (1 + 4 / p->output.w) * p->stride_h + p->filter.h;
    const int padded = 2 * words != p->filter.w * p->input.c || depth4 != p->filter.h * 2 * words;
    const int32_t copied = padded ? p->output.c * depth4 : 0;
    const int32_t bytes = 6 * depth4 * 2 + copied + 12 * p->output.c + rows * length * 2;
    return bytes <= 8192 ? bytes : 0;
}
#endif

static int32_t conv_scratch_bytes(const tc_conv2d_params *p)
{
#if TC_MVE
    const int32_t depth = p->filter.h * p->filter.w * p->input.c;
    const int pointwise = p->filter.h == 1 && p->filter.w == 1 && p->pad_top == 0 && p->pad_left == 0;
    if (pointwise && p->stride_h == 1 && p->stride_w == 1 && p->output.w == p->input.w) {
        return 4;
    }
    const int32_t columns = 512 / depth < 4 ? 4 : 512 / depth > 16 ? 16 : 512 / depth;
    return 4 * p->output.c + (pointwise ? 0 : columns * depth);
#else
    const int32_t band = conv_band_bytes(p), im2col = conv_im2col_bytes(p);
    /* pointwise layers of 8 or 16 channels: each output channel's bias, widened weights, requantization */
    const int short_depth = p->filter.h == 1 && p->filter.w == 1 && p->pad_top == 0 && p->pad_left == 0 &&
                            (p->input.c == 8 || p->input.c == 16) && p->output.c % 2 == 0;
    const int32_t records = short_depth ? p->output.c * (4 + 2 * p->input.c + 12) : 0;
    return band ? band : im2col > records ? im2col : records;
#endif
}

static int32_t conv_s4_scratch_bytes(const tc_conv2d_params *p)
{
    const int32_t depth = p->filter.h * p->filter.w * p->input.c;
    const int32_t staged = p->input.c % 4 ? (depth + 3) & ~3 : 0;
    return 6 * TC_S4_WORD * tc_s4_words(depth) * 2 + staged + 12 * p->output.c;
}

/* tc_conv2d_p4's: the int8 DSP path's, then TC_P4_ROWS rows decoded to int8; none on Helium. */
static int32_t conv_p4_scratch_bytes(const tc_conv2d_params *p)
{
#if TC_MVE
    (void)p;
    return 0;
#else
    return conv_im2col_bytes(p) + ((TC_P4_ROWS * p->filter.h * p->filter.w * p->input.c + 3) & ~3);
#endif
}

/* The scratch a convolution of a form gets. */
static int32_t conv_form_scratch_bytes(const tc_conv2d_params *p, weight_form form)
{
    return form == INT8   ? conv_scratch_bytes(p)
           : form == INT4 ? conv_s4_scratch_bytes(p)
                          : conv_p4_scratch_bytes(p);
}

static int32_t fully_connected_scratch_bytes(const tc_fully_connected_params *p)
{
#if TC_MVE
    (void)p;
    return 4;
#else /* one widened row */
    return ((p->input_depth + 3) & ~3) * 2;
#endif
}

/* A convolution of the drawn shape: the optimized kernel against the portable one. */
static int conv_compare(tc_conv2d_params *p)
{
    const int32_t n = p->input.n * p->output.h * p->output.w * p->output.c;
    p->scratch = 0;
    if (tc_conv2d_s8_portable(p, input, out_portable) != TC_OK) {
        return 1;
    }
    p->scratch = guarded_scratch(conv_scratch_bytes(p));
    if (tc_conv2d_s8(p, input, out_fast) != TC_OK) {
        return 1;
    }
    return memcmp(out_fast, out_portable, (size_t)n) != 0 || !guard_intact();
}

/* A convolution of a weight form: window and filter (INT4 ones half the time over whole groups of four
 * channels) redrawn until the buffers and the scratch fit; then offsets, data, requantization (INT4's half
 * the time in the packed form, which stands for the bias too), bias, clamp and weights. */
static void draw_conv(tc_conv2d_params *p, weight_form form)
{
    memset(p, 0, sizeof *p);
    window g;
    int32_t depth;
    do {
        const int32_t in_c = form != INT8 && (next() & 1) ? 4 * draw(1, 4) : draw(1, 12);
        g = draw_window(in_c, draw(1, 9));
        depth = g.k_h * g.k_w * g.input.c;
        SET_WINDOW(*p, g);
        const tc_dims filter = {g.output.c, g.k_h, g.k_w, g.input.c};
        p->filter = filter;
    } while (!fits(&g, weight_bytes(form, g.output.c, depth)) ||
             !scratch_fits(conv_form_scratch_bytes(p, form)));
    DRAW_QUANTIZATION(*p, 0);
    if (form == INT4 && pack_channels(&p->requant, g.output.c)) {
        p->bias = 0;
    }
    fill_weights(form, g.output.c, depth, 1);
    p->palette = palette;
}

static int conv_case(void)
{
    tc_conv2d_params p;
    draw_conv(&p, INT8);
    return conv_compare(&p);
}

/* First layers: one to four input channels, no dilation, wider images and more output channels than
 * conv_case draws (the DSP path's band of widened rows, tc_conv2d_s8.c), batches; a quarter of them grey
 * 3x3 ones (its grey path's shape). */
static int first_conv_case(void)
{
    tc_conv2d_params p;
    memset(&p, 0, sizeof p);
    window g;
    do {
        g = draw_window(draw(1, 4), draw(1, 24));
        g.dilation_h = g.dilation_w = 1;
        g.k_h = draw(1, 10), g.k_w = draw(1, 5);
        if ((next() & 3) == 0) { /* a grey image and a 3x3 kernel (conv_dsp_grey), up to 14 channels */
            g.input.c = 1, g.k_h = g.k_w = 3, g.output.c = 2 * draw(1, 7);
        }
        g.input.n = draw(1, 2), g.input.h = draw(1, 20), g.input.w = draw(1, 20);
        const int same = (int)(next() & 1);
        g.output.n = g.input.n;
        g.output.h = axis(g.input.h, g.k_h, g.stride_h, 1, same, &g.pad_top);
        g.output.w = axis(g.input.w, g.k_w, g.stride_w, 1, same, &g.pad_left);
        SET_WINDOW(p, g);
        const tc_dims filter = {g.output.c, g.k_h, g.k_w, g.input.c};
        p.filter = filter;
    } while (!fits(&g, g.output.c * g.k_h * g.k_w * g.input.c) ||
             g.input.n * g.input.h * g.input.w * g.input.c > MAX_BYTES ||
             g.output.n * g.output.h * g.output.w * g.output.c > MAX_BYTES ||
             !scratch_fits(conv_scratch_bytes(&p)));
    DRAW_QUANTIZATION(p, g.output.c * g.k_h * g.k_w * g.input.c);
    fill(input, p.input.n * p.input.h * p.input.w * p.input.c);
    return conv_compare(&p);
}

/* 1x1 convolutions, the ones whose columns are the input pixels on Helium: wider channels (some past
 * the 128 bytes of the portable path's gathered window, CONV_COL_BYTES), strides, batches; a quarter of
 * them 8 or 16 channels into an even number (the DSP path's per-position records, tc_conv2d_s8.c). */
static int pointwise_case(void)
{
    tc_conv2d_params p;
    memset(&p, 0, sizeof p);
    int32_t stride, in_c, out_c;
    tc_dims in;
    do {
        stride = (next() & 3) ? 1 : draw(2, 3);
        const int short_depth = (next() & 3) == 0;
        in_c = short_depth      ? 8 * draw(1, 2)
               : (next() & 1)   ? 16 * draw(1, 4)
               : (next() & 3)   ? draw(1, 70)
                                : draw(200, 320);
        out_c = short_depth ? 2 * draw(1, 20) : draw(1, 40);
        const tc_dims d = {draw(1, 2), draw(1, 7), draw(1, 7), in_c};
        in = d;
    } while (in.n * in.h * in.w * in_c > MAX_BYTES || out_c * in_c > MAX_BYTES ||
             in.n * in.h * in.w * out_c > MAX_BYTES);
    const tc_dims filter = {out_c, 1, 1, in_c};
    const tc_dims out = {in.n, (in.h - 1) / stride + 1, (in.w - 1) / stride + 1, out_c};
    p.input = in, p.filter = filter, p.output = out;
    p.stride_h = p.stride_w = stride, p.dilation_h = p.dilation_w = 1;
    DRAW_QUANTIZATION(p, out_c * in_c);
    fill(input, in.n * in.h * in.w * in_c);
    return conv_compare(&p);
}

/* FULLY_CONNECTED of the drawn shape: the portable kernel on p's weights and bias against the optimized
 * one on `weights` and `bias` in the form dsp_pairs names, with guarded scratch. */
static int fully_connected_compare(tc_fully_connected_params *p, const int8_t *fast_weights, const int32_t *fast_bias,
                                   int32_t dsp_pairs)
{
    p->scratch = 0;
    if (tc_fully_connected_s8_portable(p, input, out_portable) != TC_OK) {
        return 1;
    }
    p->weights = fast_weights, p->bias = fast_bias, p->dsp_pairs = dsp_pairs;
    p->scratch = guarded_scratch(fully_connected_scratch_bytes(p));
    if (tc_fully_connected_s8(p, input, out_fast) != TC_OK) {
        return 1;
    }
    return memcmp(out_fast, out_portable, (size_t)(p->batches * p->output_depth)) != 0 || !guard_intact();
}

/* FULLY_CONNECTED of a weight form: shape (INT4 depths half the time whole words), input, weights,
 * requantization, bias and clamp. */
static void draw_fully_connected(tc_fully_connected_params *p, weight_form form, int32_t block)
{
    memset(p, 0, sizeof *p);
    do {
        p->batches = draw(1, 3);
        p->input_depth = form != INT8 && (next() & 1) ? 8 * draw(1, 40) : draw(1, 300);
        p->output_depth = draw(1, 40);
    } while (p->batches * p->input_depth > MAX_BYTES ||
             weight_bytes(form, p->output_depth, p->input_depth) > MAX_BYTES || p->output_depth > 256);
    p->output_offset = draw(-128, 127);
    fill(input, p->batches * p->input_depth);
    fill_weights(form, p->output_depth, p->input_depth, block);
    p->weights = weights, p->requant = requant(p->output_depth), p->bias = bias, p->act = activation();
    p->palette = palette;
}

static int fully_connected_case(void)
{
    tc_fully_connected_params p;
    draw_fully_connected(&p, INT8, 1);
    return fully_connected_compare(&p, weights, bias, 0);
}

#if TC_DSP && !TC_MVE
static int8_t pairs[MAX_BYTES] __attribute__((aligned(4)));
static int32_t pair_bias[256];

/* The pair form of p's weights and bias, as ops/dsp_forms.py writes it (tc_fully_connected_s8.c): 0 where
 * a row's sum could leave [-2^23, 2^23) or its requantization has no fast form, so the generator would keep
 * the plain form. */
static int encode_pairs(const tc_fully_connected_params *p)
{
    const int32_t rows = p->output_depth, depth = p->input_depth;
    for (int32_t o = 0; o < rows; o++) {
        const int32_t q = p->requant.per_channel ? o : 0;
        if (!tc_dsp_quant_fits(p->requant.multiplier[q], p->requant.shift[q])) {
            return 0;
        }
        const int8_t *s = p->weights + o * depth;
        const int32_t block = o & ~3, m = rows - block < 4 ? rows - block : 4, j = o - block;
        int32_t lo = p->bias[o], hi = p->bias[o], odd = 0;
        for (int32_t k = 0; k < depth; k++) {
            lo += s[k] < 0 ? 127 * s[k] : -128 * s[k];
            hi += s[k] < 0 ? -128 * s[k] : 127 * s[k];
            odd += (k & 1) ? s[k] : 0;
            const int32_t borrow = (k & 1) && s[k - 1] < 0;
            pairs[block * depth + ((k >> 2) * m + j) * 4 + (k & 3)] = (int8_t)(s[k] - borrow);
        }
        if (lo < -(1 << 23) || hi >= (1 << 23)) {
            return 0;
        }
        pair_bias[o] = p->bias[o] + 127 * odd;
    }
    return 1;
}

/* FULLY_CONNECTED in the pair form against the portable kernel on the plain weights: depths up to where
 * rows start to fail the range check, weights in [-127, 127] as TFLite's, and at times an input that
 * drives row 0 to an end of its range. */
static int fully_connected_pairs_case(void)
{
    tc_fully_connected_params p;
    memset(&p, 0, sizeof p);
    do {
        p.batches = draw(1, 3);
        p.input_depth = 4 * ((next() & 1) ? draw(1, 40) : draw(40, 256));
        p.output_depth = draw(1, 40);
    } while (p.batches * p.input_depth > MAX_BYTES || p.output_depth * p.input_depth > MAX_BYTES);
    p.output_offset = draw(-128, 127);
    fill(input, p.batches * p.input_depth);
    const int heavy = (int)(next() & 1); /* large weights: rows reach the range check at smaller depths */
    for (int32_t i = 0; i < p.output_depth * p.input_depth; i++) {
        weights[i] = (int8_t)(heavy ? ((next() & 1) ? 1 : -1) * draw(96, 127) : draw(-127, 127));
    }
    const int32_t end = (next() & 1) ? 127 : -128, extreme = (int32_t)(next() & 1);
    for (int32_t k = 0; extreme && k < p.input_depth; k++) {
        input[k] = (int8_t)(weights[k] < 0 ? -1 - end : end);
    }
    p.weights = weights;
    p.requant = requant(p.output_depth);
    p.bias = bias;
    p.act = activation();
    if (!encode_pairs(&p)) {
        return 0;
    }
    return fully_connected_compare(&p, pairs, pair_bias, 1);
}
#endif

/* The bytes of the four padded int16 planes scratch.py gives a 3x3 layer of stride 1 or 2: a band of as many
 * output lines as fit TC_DW_PLANES_BYTES with their halo, 0 where not one does. */
static int32_t depthwise_planes_bytes(const tc_depthwise_conv2d_params *p, int *one_band)
{
    const int along_x = p->output.w >= p->output.h;
    const int32_t length = along_x ? p->output.w : p->output.h, lines = along_x ? p->output.h : p->output.w;
    const int32_t step = along_x ? p->stride_w : p->stride_h, line_step = along_x ? p->stride_h : p->stride_w;
    const int32_t pitch = step * 4 * ((length + 3) / 4) + 2, most = TC_DW_PLANES_BYTES / (4 * pitch * 2);
    *one_band = 0;
    if (most < 3) {
        return 0;
    }
    const int32_t band = (most - 3) / line_step + 1 < lines ? (most - 3) / line_step + 1 : lines;
    *one_band = band == lines;
    return 4 * ((band - 1) * line_step + 3) * pitch * 2;
}

static int32_t depthwise_scratch_bytes(const tc_depthwise_conv2d_params *p)
{
    int one_band;
    return depthwise_planes_bytes(p, &one_band);
}

/* The layer over its own input where the generator runs it so (ops/scratch.py writes_over_input: the planes
 * take every line at once, batch 1), in this build and in the portable one (which copies a channel's plane
 * at a time into the same scratch): 1 where either fails or differs from `expected`. */
static int depthwise_over_input(tc_depthwise_conv2d_params *p, const int8_t *expected)
{
    static int8_t over[MAX_BYTES];
    int one_band;
    const int32_t bytes = depthwise_planes_bytes(p, &one_band);
    const int32_t in_bytes = p->input.h * p->input.w * p->input.c, n = p->output.h * p->output.w * p->output.c;
    if (!bytes || !one_band || p->input.n != 1) {
        return 0;
    }
    for (int build = 0; build < 2; build++) {
        memcpy(over, input, (size_t)in_bytes);
        p->scratch = guarded_scratch(bytes);
        const tc_status s = build ? tc_depthwise_conv2d_s8_portable(p, over, over)
                                  : tc_depthwise_conv2d_s8(p, over, over);
        if (s != TC_OK || memcmp(over, expected, (size_t)n) != 0 || !guard_intact()) {
            return 1;
        }
    }
    return 0;
}

/* Whether scratch.py gives an int8 depthwise layer of this shape the planes (DSP and Helium alike). */
static int planes_shape_of(const tc_depthwise_conv2d_params *p)
{
    return p->depth_multiplier == 1 && p->input.c % 4 == 0 && p->filter.h == 3 && p->filter.w == 3 &&
           p->stride_h <= 2 && p->stride_w <= 2 && p->dilation_h == 1 && p->dilation_w == 1;
}

/* A depth multiplier m > 1 against multiplier 1 over the input with each channel repeated m times (the same
 * weights and outputs): on every core two different paths of tc_depthwise_conv2d_s8, where the portable
 * build alone runs them both the same way. */
static int depthwise_repeated_channels(const tc_depthwise_conv2d_params *p)
{
    static int8_t repeated[MAX_BYTES];
    const int32_t pixels = p->input.h * p->input.w, mult = p->depth_multiplier, out_c = p->output.c;
    if (mult == 1 || pixels * out_c > MAX_BYTES) {
        return 0;
    }
    for (int32_t i = 0; i < pixels * out_c; i++) {
        repeated[i] = input[(i / out_c) * p->input.c + (i % out_c) / mult];
    }
    tc_depthwise_conv2d_params q = *p;
    q.input.c = out_c, q.depth_multiplier = 1, q.scratch = 0;
    return tc_depthwise_conv2d_s8(&q, repeated, out_fast) != TC_OK ||
           memcmp(out_fast, out_portable, (size_t)(p->output.h * p->output.w * out_c)) != 0;
}

/* A depthwise convolution of the drawn shape: the optimized kernel (with its planes where it takes
 * them) against the portable one. */
static int depthwise_compare(tc_depthwise_conv2d_params *p)
{
    const int32_t n = p->output.h * p->output.w * p->output.c;
    p->scratch = 0;
    if (tc_depthwise_conv2d_s8_portable(p, input, out_portable) != TC_OK) {
        return 1;
    }
    if (depthwise_repeated_channels(p)) {
        return 1;
    }
    const int32_t bytes = planes_shape_of(p) ? depthwise_scratch_bytes(p) : 0;
    p->scratch = bytes ? guarded_scratch(bytes) : 0;
    if (tc_depthwise_conv2d_s8(p, input, out_fast) != TC_OK) {
        return 1;
    }
    if (memcmp(out_fast, out_portable, (size_t)n) != 0 || !guard_intact()) {
        return 1;
    }
    return planes_shape_of(p) && depthwise_over_input(p, out_portable);
}

/* The scratch an INT4 depthwise case gets: for the planes' shape (drawn so or by chance) the planes, but at
 * times none (a layer whose planes are too large); otherwise each channel's requantization where the
 * multiplier is 1 and the channels a multiple of four (ops/scratch.py). */
static int32_t depthwise_s4_scratch_bytes(const window *g, int32_t mult)
{
    tc_depthwise_conv2d_params p;
    SET_WINDOW(p, *g);
    const tc_dims filter = {1, g->k_h, g->k_w, g->output.c};
    p.filter = filter, p.depth_multiplier = mult;
    if (planes_shape_of(&p)) {
        return (next() & 3) ? depthwise_scratch_bytes(&p) : 0;
    }
    return mult == 1 && g->input.c % 4 == 0 ? 12 * g->output.c : 0;
}

/* tc_depthwise_conv2d_p4's, where the multiplier is 1 and the channels a multiple of four: a block of up to
 * 16 channels' taps, four channels' as two int16 pairs; none on Helium. */
static int32_t depthwise_p4_scratch_bytes(const window *g, int32_t mult)
{
    const int32_t quads = (g->output.c < 16 ? g->output.c : 16) / 4;
    return !TC_MVE && mult == 1 && g->output.c % 4 == 0 ? quads * g->k_h * g->k_w * 2 * 4 : 0;
}

/* A depthwise convolution of a weight form: multiplier 1 three times in four, else 2, channels half the
 * time a multiple of four (the DSP paths need them); with `planes` the planes' shape, multiplier 1 and
 * channels by fours. Redrawn until the buffers and the scratch fit; returns the scratch bytes of INT4 and
 * clustered weights (int8's depthwise_compare sizes its own). */
static int32_t draw_depthwise(tc_depthwise_conv2d_params *p, weight_form form, int planes)
{
    memset(p, 0, sizeof *p);
    window g;
    int32_t mult, bytes;
    do {
        mult = (!planes && !(next() & 3)) ? 2 : 1;
        const int32_t in_c = (planes || (next() & 1)) ? 4 * draw(1, 6) : draw(1, 13);
        g = draw_window(in_c, in_c * mult);
        if (planes) {
            planes_shape(&g);
        }
        bytes = form == INT8   ? 0
                : form == INT4 ? depthwise_s4_scratch_bytes(&g, mult)
                               : depthwise_p4_scratch_bytes(&g, mult);
    } while (!fits(&g, weight_bytes(form, g.k_h * g.k_w, g.output.c)) || g.output.c > 256 ||
             !scratch_fits(bytes));
    SET_WINDOW(*p, g);
    const tc_dims filter = {1, g.k_h, g.k_w, g.output.c};
    p->filter = filter;
    p->depth_multiplier = mult;
    DRAW_QUANTIZATION(*p, 0);
    if (form == INT4 && pack_channels(&p->requant, g.output.c)) {
        p->bias = 0;
    }
    fill_weights(form, g.k_h * g.k_w, g.output.c, 1);
    p->palette = palette;
    return bytes;
}

static int depthwise_case(void)
{
    tc_depthwise_conv2d_params p;
    draw_depthwise(&p, INT8, 0);
    return depthwise_compare(&p);
}

/* 3x3, stride 1 or 2, multiplier 1, four channels at a time: the DSP planes, lines along either axis, half
 * the time images up to 64 wide or high whose planes take several bands (of as few as one output line), a
 * quarter of the time only some of the output rows with any top padding up to 3 (a band of a larger call). */
static int depthwise_planes_case(void)
{
    tc_depthwise_conv2d_params p;
    memset(&p, 0, sizeof p);
    window g;
    const int large = (int)(next() & 1);
    do {
        g = draw_window(large ? 4 * draw(1, 2) : 4 * draw(1, 8), 0);
        g.input.h = draw(1, large ? 64 : 14), g.input.w = draw(1, large ? 64 : 14);
        planes_shape(&g);
        g.output.c = g.input.c;
        if ((next() & 3) == 0 && g.output.h > 0) { /* a band of the output rows, as a planner may call it */
            g.output.h = draw(1, g.output.h), g.pad_top = draw(0, 3);
        }
    } while (!fits(&g, 9 * g.output.c));
    SET_WINDOW(p, g);
    const tc_dims filter = {1, 3, 3, g.output.c};
    p.filter = filter;
    p.depth_multiplier = 1;
    DRAW_QUANTIZATION(p, 9 * g.output.c);
    return depthwise_compare(&p);
}

/* ---- INT4 and clustered weights: their kernels' DSP paths against their portable ones ---- */

/* 1 where `kernel` on p (drawn without scratch), given `bytes` of guarded scratch (none: NULL), and its
 * portable build do not write the same n outputs, either fails, or the kernel touches the guard. */
#define PATHS_DIFFER(kernel, p, bytes, n)                                                                 \
    (kernel##_portable(&(p), input, out_portable) != TC_OK ||                                               \
     ((p).scratch = (bytes) ? guarded_scratch(bytes) : 0, kernel(&(p), input, out_fast)) != TC_OK ||       \
     memcmp(out_fast, out_portable, (size_t)(n)) != 0 || ((bytes) && !guard_intact()))

/* FULLY_CONNECTED with INT4 weights (the input row in whole words) or clustered ones (the input in int16
 * pairs and a table of 256 weight pairs; none on Helium). */
static int fully_connected_w4_case(weight_form form)
{
    tc_fully_connected_params p;
    draw_fully_connected(&p, form, form == INT4 ? TC_S4_FC_BLOCK : 1);
    const int32_t row = TC_S4_WORD * tc_s4_words(p.input_depth) * 2, n = p.batches * p.output_depth;
    if (form == INT4) {
        return PATHS_DIFFER(tc_fully_connected_s4, p, row, n);
    }
    return PATHS_DIFFER(tc_fully_connected_p4, p, TC_MVE ? 0 : row + 256 * 4, n);
}

static int conv_w4_case(weight_form form)
{
    tc_conv2d_params p;
    draw_conv(&p, form);
    const int32_t bytes = conv_form_scratch_bytes(&p, form), n = p.output.h * p.output.w * p.output.c;
    return form == INT4 ? PATHS_DIFFER(tc_conv2d_s4, p, bytes, n) : PATHS_DIFFER(tc_conv2d_p4, p, bytes, n);
}

/* Depthwise: half the time the planes' shape (3x3, stride 1, multiplier 1, channels by fours). */
static int depthwise_w4_case(weight_form form)
{
    tc_depthwise_conv2d_params p;
    const int32_t bytes = draw_depthwise(&p, form, (int)(next() & 1));
    const int32_t n = p.output.h * p.output.w * p.output.c;
    return form == INT4 ? PATHS_DIFFER(tc_depthwise_conv2d_s4, p, bytes, n)
                        : PATHS_DIFFER(tc_depthwise_conv2d_p4, p, bytes, n);
}

#if TC_MVE
/* The vector requantization against tc_requantize on the values where rounding is decided: halves
 * of either sign (a multiplier of 2^30 halves x exactly), the int32 extremes, random values. */
static int requantize_case(void)
{
    int32_t x[4], multiplier[4], shift[4], expected[4], got[4];
    for (int32_t i = 0; i < 4; i++) {
        shift[i] = draw(-31, 3);
        const int32_t right = shift[i] < 0 ? -shift[i] : 0;
        multiplier[i] = (next() & 1) ? 0x40000000 : (int32_t)(0x40000000u + (next() & 0x3FFFFFFFu));
        switch (next() & 3) {
        case 0: x[i] = (next() & 1) ? INT32_MIN : INT32_MAX; break;
        case 1: /* (k + 1/2) * 2^right after the halving, either sign */
            x[i] = (int32_t)(((int64_t)draw(-1000, 1000) * 2 + 1) << (right > 20 ? 20 : right));
            break;
        default: x[i] = (int32_t)next(); break;
        }
        if (shift[i] > 0) {
            x[i] >>= 8; /* x * 2^shift must not overflow: TFLite Micro leaves that undefined */
        }
        expected[i] = tc_requantize(x[i], multiplier[i], shift[i]);
    }
    const int32x4_t s = vldrwq_s32(shift), zero = vdupq_n_s32(0);
    vstrwq_s32(got, tc_mve_requantize(vldrwq_s32(x), vldrwq_s32(multiplier), vmaxq_s32(s, zero), vminq_s32(s, zero)));
    return memcmp(got, expected, sizeof got) != 0;
}
#endif

/* MAX_POOL_2D and AVERAGE_POOL_2D on one random window: channel counts with and without a
 * multiple of four, clamps narrower than int8. */
static int pool_case(void)
{
    tc_pool2d_params p;
    memset(&p, 0, sizeof p);
    window g;
    do {
        const int32_t c = (next() & 1) ? 4 * draw(1, 8) : draw(1, 13);
        g = draw_window(c, c);
    } while (!fits(&g, 0));
    p.input = g.input, p.output = g.output, p.filter_h = g.k_h, p.filter_w = g.k_w;
    p.stride_h = g.stride_h, p.stride_w = g.stride_w, p.pad_top = g.pad_top, p.pad_left = g.pad_left;
    p.act = activation();
    fill(input, p.input.h * p.input.w * p.input.c);
    const size_t n = (size_t)(p.output.h * p.output.w * p.output.c);
    int differ = tc_max_pool2d_s8_portable(&p, input, out_portable) != tc_max_pool2d_s8(&p, input, out_fast) ||
                 memcmp(out_fast, out_portable, n) != 0;
    const tc_status portable = tc_avg_pool2d_s8_portable(&p, input, out_portable);
    differ |= portable != tc_avg_pool2d_s8(&p, input, out_fast) || (portable == TC_OK && memcmp(out_fast, out_portable, n) != 0);
    return differ;
}

int main(void)
{
    int32_t differ = 0;
    for (int32_t i = 0; i < CASES; i++) {
        differ += conv_case();
        differ += first_conv_case();
        differ += pointwise_case();
        differ += fully_connected_case();
#if TC_DSP && !TC_MVE
        differ += fully_connected_pairs_case();
#endif
        differ += depthwise_case();
        differ += depthwise_planes_case();
        differ += pool_case();
        for (weight_form form = INT4; form <= PALETTE; form++) {
            differ += fully_connected_w4_case(form);
            differ += conv_w4_case(form);
            differ += depthwise_w4_case(form);
        }
#if TC_MVE
        for (int32_t k = 0; k < 20; k++) {
            differ += requantize_case();
        }
#endif
    }
    tc_platform_print(differ ? "sweep: optimized and portable kernels differ" : "sweep: optimized and portable kernels agree");
    return differ;
}
