/*
 * tinycompress runtime: adapters from our kernel parameters to CMSIS-NN, for
 * builds with --kernels cmsis-nn. Each adapter has the signature of the kernel
 * it replaces and gives the same bytes; the code generator keeps our own
 * kernel for a layer CMSIS-NN has no function for.
 *
 * CMSIS-NN's optimized paths need scratch memory: the generated model.c
 * defines one buffer, sized on the host for the board's core (tc_cmsis_scratch_bytes),
 * and every adapter checks its layer's need against it before the call.
 */
#ifndef TC_CMSIS_NN_H
#define TC_CMSIS_NN_H

#include "arm_nnfunctions.h"
#include "tc_kernels.h"

extern int8_t tc_cmsis_scratch[];
extern const int32_t tc_cmsis_scratch_bytes;

/* A context over the scratch buffer for `needed` bytes; 0 when they do not fit. */
static inline int tc_cmsis_context(cmsis_nn_context *ctx, int32_t needed)
{
    ctx->buf = needed > 0 ? tc_cmsis_scratch : 0;
    ctx->size = needed;
    return needed <= tc_cmsis_scratch_bytes;
}

static inline tc_status tc_cmsis_status(arm_cmsis_nn_status status)
{
    return status == ARM_CMSIS_NN_SUCCESS ? TC_OK : TC_ERROR_ARGUMENT;
}

static inline cmsis_nn_dims tc_cmsis_dims(const tc_dims *d)
{
    const cmsis_nn_dims dims = {d->n, d->h, d->w, d->c};
    return dims;
}

/* CMSIS-NN's quantization structs are not const-qualified; it only reads them. */
static inline cmsis_nn_per_channel_quant_params tc_cmsis_per_channel(const tc_requant *r)
{
    const cmsis_nn_per_channel_quant_params q = {(int32_t *)r->multiplier, (int32_t *)r->shift};
    return q;
}

/* The fields cmsis_nn_conv_params and cmsis_nn_dw_conv_params share, from either of our structs. */
#define TC_CMSIS_CONV_FIELDS(p)                                                                                   \
    .input_offset = (p)->input_offset, .output_offset = (p)->output_offset,                                      \
    .stride = {(p)->stride_w, (p)->stride_h}, .padding = {(p)->pad_left, (p)->pad_top},                          \
    .dilation = {(p)->dilation_w, (p)->dilation_h}, .activation = {(p)->act.min, (p)->act.max}

/* The tensors of a convolution as CMSIS-NN describes them. */
typedef struct {
    cmsis_nn_per_channel_quant_params quant;
    cmsis_nn_dims input, filter, bias, output;
} tc_cmsis_conv_tensors;

static inline tc_cmsis_conv_tensors tc_cmsis_conv(const tc_requant *requant, const tc_dims *input,
                                                  const tc_dims *filter, const tc_dims *output)
{
    const tc_cmsis_conv_tensors t = {
        tc_cmsis_per_channel(requant), tc_cmsis_dims(input), tc_cmsis_dims(filter),
        {1, 1, 1, output->c}, tc_cmsis_dims(output),
    };
    return t;
}

/* A pooling layer as CMSIS-NN describes it. */
typedef struct {
    cmsis_nn_pool_params pool;
    cmsis_nn_dims input, filter, output;
} tc_cmsis_pool_layer;

static inline tc_cmsis_pool_layer tc_cmsis_pool(const tc_pool2d_params *p)
{
    const tc_cmsis_pool_layer l = {
        {{p->stride_w, p->stride_h}, {p->pad_left, p->pad_top}, {p->act.min, p->act.max}},
        tc_cmsis_dims(&p->input), {1, p->filter_h, p->filter_w, 1}, tc_cmsis_dims(&p->output),
    };
    return l;
}

tc_status tc_cmsis_fully_connected_s8(const tc_fully_connected_params *p, const int8_t *input, int8_t *output);
tc_status tc_cmsis_conv2d_s8(const tc_conv2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_cmsis_depthwise_conv2d_s8(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_cmsis_max_pool2d_s8(const tc_pool2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_cmsis_avg_pool2d_s8(const tc_pool2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_cmsis_softmax_s8(const tc_softmax_params *p, const int8_t *input, int8_t *output);
tc_status tc_cmsis_add_s8(const tc_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);

#endif /* TC_CMSIS_NN_H */
