/*
 * Randomized shape sweep: the DSP-extension kernels against the portable ones on
 * the same random shapes, parameters and data (odd channel counts, padding,
 * strides, dilations, zero points, per-tensor and per-channel requantization).
 * The portable objects are the same sources built with -DTC_PORTABLE and their
 * entry points renamed *_portable. Exit status: the number of cases that differ.
 */
#include <stdint.h>
#include <string.h>

#include "tc_kernels.h"
#include "tc_platform.h"

tc_status tc_conv2d_s8_portable(const tc_conv2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_fully_connected_s8_portable(const tc_fully_connected_params *p, const int8_t *input, int8_t *output);
tc_status tc_depthwise_conv2d_s8_portable(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output);

#define CASES 300
#define MAX_BYTES 4096 /* every buffer: larger shapes are drawn again */

static int8_t input[MAX_BYTES], weights[MAX_BYTES], out_fast[MAX_BYTES], out_portable[MAX_BYTES];
static int32_t bias[256], multiplier[256], shift[256];
static int16_t scratch[MAX_BYTES];

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

static tc_activation activation(void)
{
    const int32_t lo = draw(-128, 0), hi = draw(0, 127);
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

static int conv_case(void)
{
    tc_conv2d_params p;
    memset(&p, 0, sizeof p);
    window g;
    int32_t depth;
    do {
        g = draw_window(draw(1, 12), draw(1, 9));
        depth = g.k_h * g.k_w * g.input.c;
    } while (!fits(&g, g.output.c * depth) || 2 * ((depth + 3) & ~3) > MAX_BYTES);
    SET_WINDOW(p, g);
    const tc_dims filter = {g.output.c, g.k_h, g.k_w, g.input.c};
    p.filter = filter;
    DRAW_QUANTIZATION(p, g.output.c * depth);
    const int32_t n = p.output.h * p.output.w * p.output.c;
    p.scratch = 0;
    if (tc_conv2d_s8_portable(&p, input, out_portable) != TC_OK) {
        return 1;
    }
    p.scratch = scratch;
    if (tc_conv2d_s8(&p, input, out_fast) != TC_OK) {
        return 1;
    }
    return memcmp(out_fast, out_portable, (size_t)n) != 0;
}

static int fully_connected_case(void)
{
    tc_fully_connected_params p;
    memset(&p, 0, sizeof p);
    do {
        p.batches = draw(1, 3);
        p.input_depth = draw(1, 300);
        p.output_depth = draw(1, 40);
    } while (p.batches * p.input_depth > MAX_BYTES || p.output_depth * p.input_depth > MAX_BYTES ||
             p.output_depth > 256);
    p.output_offset = draw(-128, 127);
    fill(input, p.batches * p.input_depth);
    fill(weights, p.output_depth * p.input_depth);
    p.weights = weights;
    p.requant = requant(p.output_depth);
    p.bias = bias;
    p.act = activation();
    p.scratch = 0;
    if (tc_fully_connected_s8_portable(&p, input, out_portable) != TC_OK) {
        return 1;
    }
    p.scratch = scratch;
    if (tc_fully_connected_s8(&p, input, out_fast) != TC_OK) {
        return 1;
    }
    return memcmp(out_fast, out_portable, (size_t)(p.batches * p.output_depth)) != 0;
}

static int depthwise_case(void)
{
    tc_depthwise_conv2d_params p;
    memset(&p, 0, sizeof p);
    window g;
    int32_t mult;
    do {
        mult = (next() & 3) ? 1 : 2;
        const int32_t in_c = (next() & 1) ? 4 * draw(1, 6) : draw(1, 13); /* the DSP path needs 4k channels */
        g = draw_window(in_c, in_c * mult);
    } while (!fits(&g, g.k_h * g.k_w * g.output.c) || g.output.c > 256);
    SET_WINDOW(p, g);
    const tc_dims filter = {1, g.k_h, g.k_w, g.output.c};
    p.filter = filter;
    p.depth_multiplier = mult;
    DRAW_QUANTIZATION(p, g.k_h * g.k_w * g.output.c);
    const int32_t n = p.output.h * p.output.w * p.output.c;
    if (tc_depthwise_conv2d_s8_portable(&p, input, out_portable) != TC_OK ||
        tc_depthwise_conv2d_s8(&p, input, out_fast) != TC_OK) {
        return 1;
    }
    return memcmp(out_fast, out_portable, (size_t)n) != 0;
}

int main(void)
{
    int32_t differ = 0;
    for (int32_t i = 0; i < CASES; i++) {
        differ += conv_case();
        differ += fully_connected_case();
        differ += depthwise_case();
    }
    tc_platform_print(differ ? "sweep: DSP and portable kernels differ" : "sweep: DSP and portable kernels agree");
    return differ;
}
