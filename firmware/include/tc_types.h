/*
 * tinycompress runtime: shared types for the int8 kernels.
 *
 * Layouts follow TFLite: activations are [N, H, W, C], CONV_2D filters are
 * [C_out, KH, KW, C_in], DEPTHWISE_CONV_2D filters are [1, KH, KW, C_out].
 * Offsets are the negated zero points the kernels add before multiplying, so
 * an int8 input offset lies in [-127, 128].
 */
#ifndef TC_TYPES_H
#define TC_TYPES_H

#include <stdint.h>

typedef enum {
    TC_OK = 0,
    TC_ERROR_ARGUMENT = -1, /* a parameter the kernel cannot handle */
    TC_ERROR_ADAPTER_INDEX = -2,  /* no adapter slot of that index */
    TC_ERROR_ADAPTER_HEADER = -3, /* an adapter slot's header: magic, version, layout, shapes or length */
    TC_ERROR_ADAPTER_CRC = -4,    /* an adapter slot's CRC-32 does not match its bytes */
} tc_status;

/* The arena is int8_t, and the optimized kernels keep int16 and int32 words in its scratch, written at
 * one width and read at another: a word stored into it goes through this type, which may alias anything
 * (reads go through it or through memcpy, as tc_read_s8x4 does). GCC compiles it to the same LDR/STR as
 * a plain int32_t pointer, without the strict-aliasing licence to reorder those accesses. */
typedef int32_t tc_alias_i32 __attribute__((may_alias));

/* Tensor dimensions in NHWC order; unused leading dimensions are 1. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} tc_dims;

/* Requantization of an int32 accumulator to int8, one entry per output
 * channel (per-tensor layers repeat a single entry through `per_channel` = 0).
 *
 * The packed form (`packed` not NULL; INT4 convolutions, ops/fixedpoint.py pack_channels) holds channel c's
 * bias and requantization in one word, where compress/int4.py chose the weight scales so that it could:
 *   bits 19..31  the bias, 13-bit signed (the layer's own bias pointer is then NULL);
 *   bits 17..18  the shift, less `packed_shift`;
 *   bits  0..16  the multiplier's bits 13..29: its bit 30 is 1, bits 0..12 are 0.
 * 4 bytes a channel instead of 12, and the same multipliers and shifts as TFLite Micro derives from the
 * same scales. Read through tc_requant_multiplier, tc_requant_shift and tc_channel_bias. */
#define TC_PACKED_FRACTION_BITS 17
#define TC_PACKED_SHIFT_BITS 2
typedef struct {
    const int32_t *multiplier; /* Q31 significands, in [2^30, 2^31) or 0 */
    const int32_t *shift;      /* left shift if > 0, right shift if < 0 */
    int32_t per_channel;       /* 1: index by channel, 0: use entry 0 */
    const int32_t *packed;     /* the packed form above, or NULL */
    int32_t packed_shift;
} tc_requant;

/* Entry i's multiplier and shift (i: the channel, or 0 where per_channel is 0). */
static inline int32_t tc_requant_multiplier(const tc_requant *r, int32_t i)
{
    if (r->packed) {
        const uint32_t fraction = (uint32_t)r->packed[i] & ((1u << TC_PACKED_FRACTION_BITS) - 1);
        return (int32_t)(0x40000000u | (fraction << (30 - TC_PACKED_FRACTION_BITS)));
    }
    return r->multiplier[i];
}

static inline int32_t tc_requant_shift(const tc_requant *r, int32_t i)
{
    if (r->packed) {
        return r->packed_shift +
               (int32_t)(((uint32_t)r->packed[i] >> TC_PACKED_FRACTION_BITS) & ((1u << TC_PACKED_SHIFT_BITS) - 1));
    }
    return r->shift[i];
}

/* Channel c's bias: from the layer's bias array, else from the packed form, else 0. */
static inline int32_t tc_channel_bias(const int32_t *bias, const tc_requant *r, int32_t c)
{
    if (bias) {
        return bias[c];
    }
    return r->packed ? r->packed[c] >> (TC_PACKED_FRACTION_BITS + TC_PACKED_SHIFT_BITS) : 0;
}

/* Clamp of the int8 result, from the fused activation (NONE, RELU, RELU6). */
typedef struct {
    int32_t min;
    int32_t max;
} tc_activation;

#endif /* TC_TYPES_H */
