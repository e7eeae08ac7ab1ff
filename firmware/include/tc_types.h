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
 * channel (per-tensor layers repeat a single entry through `per_channel` = 0). */
typedef struct {
    const int32_t *multiplier; /* Q31 significands, in [2^30, 2^31) or 0 */
    const int32_t *shift;      /* left shift if > 0, right shift if < 0 */
    int32_t per_channel;       /* 1: index by channel, 0: use entry 0 */
} tc_requant;

/* Clamp of the int8 result, from the fused activation (NONE, RELU, RELU6). */
typedef struct {
    int32_t min;
    int32_t max;
} tc_activation;

#endif /* TC_TYPES_H */
