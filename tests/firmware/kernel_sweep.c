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

static int conv_case(void)
{
    tc_conv2d_params p;
    memset(&p, 0, sizeof p);
    for (;;) {
        const int32_t in_h = draw(1, 9), in_w = draw(1, 9), in_c = draw(1, 12), out_c = draw(1, 9);
        const int32_t k_h = draw(1, 5), k_w = draw(1, 5), s_h = draw(1, 3), s_w = draw(1, 3);
        const int32_t d_h = draw(1, 2), d_w = draw(1, 2), same = (int)(next() & 1);
        int32_t pad_top, pad_left;
        const int32_t out_h = axis(in_h, k_h, s_h, d_h, same, &pad_top);
        const int32_t out_w = axis(in_w, k_w, s_w, d_w, same, &pad_left);
        const int32_t depth = k_h * k_w * in_c;
        if (out_h < 1 || out_w < 1 || in_h * in_w * in_c > MAX_BYTES || out_c * depth > MAX_BYTES ||
            out_h * out_w * out_c > MAX_BYTES || 2 * ((depth + 3) & ~3) > MAX_BYTES) {
            continue;
        }
        const tc_dims input_dims = {1, in_h, in_w, in_c}, filter = {out_c, k_h, k_w, in_c};
        const tc_dims output_dims = {1, out_h, out_w, out_c};
        p.input = input_dims;
        p.filter = filter;
        p.output = output_dims;
        p.stride_h = s_h, p.stride_w = s_w, p.dilation_h = d_h, p.dilation_w = d_w;
        p.pad_top = pad_top, p.pad_left = pad_left;
        break;
    }
    p.input_offset = draw(-127, 128);
    p.output_offset = draw(-128, 127);
    fill(input, p.input.h * p.input.w * p.input.c);
    fill(weights, p.filter.n * p.filter.h * p.filter.w * p.filter.c);
    p.weights = weights;
    p.requant = requant(p.output.c);
    p.bias = (next() & 3) ? bias : 0;
    p.act = activation();
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
    for (;;) {
        const int32_t in_h = draw(1, 9), in_w = draw(1, 9), mult = (next() & 3) ? 1 : 2;
        const int32_t in_c = (next() & 1) ? 4 * draw(1, 6) : draw(1, 13); /* the DSP path needs 4k channels */
        const int32_t k_h = draw(1, 5), k_w = draw(1, 5), s_h = draw(1, 3), s_w = draw(1, 3);
        const int32_t d_h = draw(1, 2), d_w = draw(1, 2), same = (int)(next() & 1);
        int32_t pad_top, pad_left;
        const int32_t out_h = axis(in_h, k_h, s_h, d_h, same, &pad_top);
        const int32_t out_w = axis(in_w, k_w, s_w, d_w, same, &pad_left);
        const int32_t out_c = in_c * mult;
        if (out_h < 1 || out_w < 1 || in_h * in_w * in_c > MAX_BYTES || k_h * k_w * out_c > MAX_BYTES ||
            out_h * out_w * out_c > MAX_BYTES || out_c > 256) {
            continue;
        }
        const tc_dims input_dims = {1, in_h, in_w, in_c}, filter = {1, k_h, k_w, out_c};
        const tc_dims output_dims = {1, out_h, out_w, out_c};
        p.input = input_dims;
        p.filter = filter;
        p.output = output_dims;
        p.depth_multiplier = mult;
        p.stride_h = s_h, p.stride_w = s_w, p.dilation_h = d_h, p.dilation_w = d_w;
        p.pad_top = pad_top, p.pad_left = pad_left;
        break;
    }
    p.input_offset = draw(-127, 128);
    p.output_offset = draw(-128, 127);
    fill(input, p.input.h * p.input.w * p.input.c);
    fill(weights, p.filter.h * p.filter.w * p.filter.c);
    p.weights = weights;
    p.requant = requant(p.output.c);
    p.bias = (next() & 3) ? bias : 0;
    p.act = activation();
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
