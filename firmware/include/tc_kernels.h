/*
 * tinycompress runtime: int8 operator kernels.
 *
 * One operator per source file under firmware/kernels/, each with TFLite's
 * int8 semantics and TFLite Micro's exact arithmetic. Every kernel reads
 * its shapes and quantization from a const parameter struct that the code
 * generator places in flash, and never allocates memory.
 */
#ifndef TC_KERNELS_H
#define TC_KERNELS_H

#include "tc_broadcast.h"
#include "tc_types.h"

/* FULLY_CONNECTED: output[b, o] = sum_i input[b, i] * weights[o, i] + bias[o], where the code
 * generator has folded the input offset into the bias: bias[o] = the model's bias[o] plus
 * input_offset * sum_i weights[o, i] (exact in int32, and one add less per MAC). */
typedef struct {
    int32_t batches;       /* rows of the input */
    int32_t input_depth;   /* accumulation depth */
    int32_t output_depth;  /* units */
    int32_t output_offset; /* output zero point */
    const int8_t *weights; /* [output_depth, input_depth] */
    const int32_t *bias;   /* [output_depth], with the input offset folded in */
    tc_requant requant;
    tc_activation act;
    int16_t *scratch;      /* optimized path (ops/scratch.py sizes it per core): DSP, one input row widened
                            * to int16 or as the pair form's words, 4-aligned depth; Helium, none (the input
                            * is the column); NULL: portable */
    int32_t dsp_pairs;     /* 1: in builds with the DSP path (TC_DSP) the generator stored weights and bias
                            * in the pair form of tc_fully_connected_s8.c (ops/dsp_forms.py); other builds
                            * of the same project get the plain ones and ignore this */
    const int8_t *palette; /* clustered weights (the `_p4` kernels): the values the indices select */
} tc_fully_connected_params;

tc_status tc_fully_connected_s8(const tc_fully_connected_params *p, const int8_t *input, int8_t *output);

/* The same with INT4 weights (values in [-8, 7]) in the nibble form of tc_int4.h: `weights` holds
 * output_depth rows of tc_s4_words(input_depth) words in blocks of TC_S4_FC_BLOCK rows; scratch (DSP
 * without Helium): the input row widened, in whole words of eight values; dsp_pairs unused. */
tc_status tc_fully_connected_s4(const tc_fully_connected_params *p, const int8_t *input, int8_t *output);

/* The same with clustered weights (tc_palette.h): `weights` holds output_depth rows of 4-bit indices into
 * `palette` in the nibble form; scratch (DSP without Helium): the input row in int16 pairs (x[8j + i],
 * x[8j + 4 + i]) over whole words, then 256 int32: each byte of indices' two weights; dsp_pairs unused. */
tc_status tc_fully_connected_p4(const tc_fully_connected_params *p, const int8_t *input, int8_t *output);

/* CONV_2D, layout [N, H, W, C] and filter [C_out, KH, KW, C_in]. Padding cells add nothing. */
typedef struct {
    tc_dims input;
    tc_dims filter; /* n = C_out, h = KH, w = KW, c = C_in */
    tc_dims output;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left; /* SAME padding before the first row / column */
    int32_t input_offset;
    int32_t output_offset;
    const int8_t *weights;
    const int32_t *bias; /* [C_out], or NULL */
    tc_requant requant;
    tc_activation act;
    int16_t *scratch; /* optimized path (ops/scratch.py sizes it per core): DSP, six im2col columns of 4-aligned
                       * KH*KW*C_in int16 (int8 staging), 12 bytes per output channel for its
                       * requantization, or with C_in <= 4 and no dilation the band path's columns, weights,
                       * requantization and widened input rows (tc_conv2d_s8.c); Helium, the folded bias and
                       * int8 columns; NULL: portable */
    const int8_t *palette; /* clustered weights (the `_p4` kernels): the values the indices select */
} tc_conv2d_params;

tc_status tc_conv2d_s8(const tc_conv2d_params *p, const int8_t *input, int8_t *output);

/* The same with INT4 weights in the nibble form of tc_int4.h: C_out rows of tc_s4_words(KH*KW*C_in) words;
 * scratch (DSP without Helium): six im2col columns of KH*KW*C_in in whole words of eight values, then the
 * int8 staging where C_in is no multiple of four. */
tc_status tc_conv2d_s4(const tc_conv2d_params *p, const int8_t *input, int8_t *output);

/* The same with clustered weights (tc_palette.h): C_out rows of KH*KW*C_in 4-bit indices into `palette` in
 * the nibble form; scratch (DSP without Helium): the int8 DSP path's, then TC_P4_ROWS rows decoded to
 * int8. */
tc_status tc_conv2d_p4(const tc_conv2d_params *p, const int8_t *input, int8_t *output);

/* DEPTHWISE_CONV_2D, filter [1, KH, KW, C_in * depth_multiplier]. */
typedef struct {
    tc_dims input;
    tc_dims filter; /* n = 1, h = KH, w = KW, c = C_out */
    tc_dims output;
    int32_t depth_multiplier;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t input_offset;
    int32_t output_offset;
    const int8_t *weights;
    const int32_t *bias;
    tc_requant requant;
    tc_activation act;
    int16_t *scratch; /* 3x3, stride 1 or 2, four channels at a time (DSP or Helium): their padded int16
                       * planes, a band of output lines at a time in at most TC_DW_PLANES_BYTES
                       * (ops/scratch.py sizes them); NULL: the per-position paths */
    const int8_t *palette; /* clustered weights (the `_p4` kernels): the values the indices select */
} tc_depthwise_conv2d_params;

/* The most scratch the depthwise planes take (DSP_PLANES_MAX in ops/scratch.py, checked equal by a test). */
#define TC_DW_PLANES_BYTES 4096

tc_status tc_depthwise_conv2d_s8(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output);

/* The same with INT4 weights in the nibble form of tc_int4.h: KH*KW rows (taps) of tc_s4_words(C_out) words;
 * scratch (DSP without Helium, depth multiplier 1, channels a multiple of four): for a 3x3 stride-1 layer
 * the int16 planes of tc_depthwise_conv2d_s8, NULL where they are too large; for any other, each channel's
 * fast requantization (12 bytes), or NULL. */
tc_status tc_depthwise_conv2d_s4(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output);

/* The same with clustered weights (tc_palette.h): KH*KW rows (taps) of C_out 4-bit indices into `palette` in
 * the nibble form; scratch (DSP without Helium, depth multiplier 1, channels a multiple of four): 8 bytes per
 * tap, four channels' weights at a time. */
tc_status tc_depthwise_conv2d_p4(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output);

/* MAX_POOL_2D and AVERAGE_POOL_2D: input and output share scale and zero point. */
typedef struct {
    tc_dims input;
    tc_dims output;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    tc_activation act;
} tc_pool2d_params;

tc_status tc_max_pool2d_s8(const tc_pool2d_params *p, const int8_t *input, int8_t *output);
tc_status tc_avg_pool2d_s8(const tc_pool2d_params *p, const int8_t *input, int8_t *output);

/* The binary element-wise operators (tinycompress/ops/elementwise.py): two int8 inputs broadcast by
 * NumPy's rules through tc_broadcast (tc_broadcast.h). Either input may be a constant in flash
 * (constant1 / constant2, else NULL): the call then passes the other input in its place too. */

/* ADD and SUB (one kernel, `subtract`): each input rescaled to a common scale (TFLite's left_shift = 20
 * scheme), summed or subtracted, requantized and clamped. */
typedef struct {
    tc_broadcast broadcast;
    int32_t size;                           /* output elements */
    const int8_t *constant1, *constant2;
    int32_t left_shift;
    int32_t input1_offset, input1_multiplier, input1_shift;
    int32_t input2_offset, input2_multiplier, input2_shift;
    int32_t output_offset, output_multiplier, output_shift;
    int32_t subtract;                       /* 0: ADD, 1: SUB */
    tc_activation act;
} tc_add_params;

tc_status tc_add_s8(const tc_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);

/* MUL: (q1 + offset1) (q2 + offset2) requantized by one multiplier, offset and clamped. */
typedef struct {
    tc_broadcast broadcast;
    int32_t size;
    const int8_t *constant1, *constant2;
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_multiplier, output_shift;
    tc_activation act;
} tc_mul_params;

tc_status tc_mul_s8(const tc_mul_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);

/* SQUARED_DIFFERENCE: both inputs rescaled as ADD's with left_shift = 7, the difference squared and
 * requantized; the result clamps to int8 only (the operator has no activation). */
typedef struct {
    tc_broadcast broadcast;
    int32_t size;
    const int8_t *constant1, *constant2;
    int32_t left_shift;
    int32_t input1_offset, input1_multiplier, input1_shift;
    int32_t input2_offset, input2_multiplier, input2_shift;
    int32_t output_offset, output_multiplier, output_shift;
} tc_squared_difference_params;

tc_status tc_squared_difference_s8(const tc_squared_difference_params *p, const int8_t *input1,
                                   const int8_t *input2, int8_t *output);

/* MAXIMUM and MINIMUM of the raw int8 values (TFLite Micro ignores the quantization). */
typedef struct {
    tc_broadcast broadcast;
    int32_t size;
    const int8_t *constant1, *constant2;
} tc_minmax_params;

tc_status tc_maximum_s8(const tc_minmax_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);
tc_status tc_minimum_s8(const tc_minmax_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);

/* MEAN, SUM, REDUCE_MAX and ARG_MAX over any axes (keep_dims or not: same bytes): the input seen as
 * [outer, reduced, inner], one output per [outer, inner] (int8, or int32 indices for ARG_MAX). */
typedef enum { TC_REDUCE_SUM = 0, TC_REDUCE_MAX = 1, TC_REDUCE_ARG_MAX = 2 } tc_reduce_op;
typedef struct {
    int32_t op;               /* tc_reduce_op: MEAN and SUM are TC_REDUCE_SUM with their own multiplier */
    int32_t outer, reduced, inner;
    int32_t input_zero_point; /* SUM: subtracted once per element of the sum */
    int32_t output_offset;    /* SUM: output zero point */
    int32_t multiplier;       /* SUM: input/output scale; MEAN: with 1/reduced folded in, as TFLite Micro folds it */
    int32_t shift;
} tc_reduce_params;

tc_status tc_reduce_s8(const tc_reduce_params *p, const int8_t *input, void *output);

/* BATCH_MATMUL: output [batches..., rows, cols] = lhs [.., rows, depth] @ rhs [.., depth, cols], requantized;
 * element (i, k) of a left-hand matrix at i * lhs_row_stride + k * lhs_depth_stride, element (k, j) of a
 * right-hand one at j * rhs_col_stride + k * rhs_depth_stride (adj_x / adj_y are strides). */
typedef struct {
    int32_t batches[3];           /* output batch axes, outer first, padded with 1 */
    int32_t lhs_batch_strides[3]; /* elements per step along each batch axis, 0 where broadcast */
    int32_t rhs_batch_strides[3];
    int32_t rows, cols, depth;    /* M, N, K */
    int32_t lhs_row_stride, lhs_depth_stride;
    int32_t rhs_col_stride, rhs_depth_stride;
    int32_t lhs_offset, rhs_offset; /* minus the zero points */
    int32_t output_offset;
    int32_t multiplier, shift;    /* lhs scale x rhs scale / output scale */
    const int8_t *constant_rhs;   /* a constant right-hand side in flash, [batch, N, K]; NULL: the argument */
    int16_t *scratch;             /* DSP / Helium: one batch of a right-hand side whose depth is strided,
                                   * as [N, K] int8 (ops/scratch.py sizes it); NULL: read it strided */
} tc_batch_matmul_params;

tc_status tc_batch_matmul_s8(const tc_batch_matmul_params *p, const int8_t *lhs, const int8_t *rhs, int8_t *output);

/* SOFTMAX over the last axis, output scale 1/256 and zero point -128. */
typedef struct {
    int32_t rows;
    int32_t depth;
    int32_t input_multiplier; /* beta * input_scale in Q31, scaled by 2^input_left_shift */
    int32_t input_left_shift;
    int32_t diff_min;         /* differences below this give exp() = 0 */
    const int32_t *exp_table; /* [table_size]: exp() in Q0 of an input d below the row's largest, d = 0 ..
                               * table_size - 1 = min(255, -diff_min) (tinycompress/ops/softmax.py) */
    int32_t table_size;
} tc_softmax_params;

tc_status tc_softmax_s8(const tc_softmax_params *p, const int8_t *input, int8_t *output);

/* RESHAPE: a byte copy when the planner could not alias input and output. */
typedef struct {
    int32_t size; /* bytes */
} tc_reshape_params;

tc_status tc_reshape_s8(const tc_reshape_params *p, const int8_t *input, int8_t *output);

/* Data movement (tinycompress/ops/shape.py). Axes are listed outermost first; the generator drops axes of
 * extent 1 and merges neighbours that stay contiguous, so rank is at most TC_COPY_MAX_RANK. */
#define TC_COPY_MAX_RANK 5

/* TRANSPOSE, SLICE and STRIDED_SLICE: output element (i0, .., ik), in order, is
 * input[offset + i0 * step[0] + .. + ik * step[k]]; a step may be negative. */
typedef struct {
    int32_t rank;
    int32_t count[TC_COPY_MAX_RANK]; /* output extent along each axis */
    int32_t step[TC_COPY_MAX_RANK];  /* input elements between neighbours along it */
    int32_t offset;                  /* input element of output element 0 */
} tc_strided_copy_params;

tc_status tc_strided_copy_s8(const tc_strided_copy_params *p, const int8_t *input, int8_t *output);

/* PAD and PADV2: the output filled with pad_value, input element (i0, .., ik), in order, written to
 * output[offset + i0 * step[0] + .. + ik * step[k]]. */
typedef struct {
    int32_t rank;
    int32_t count[TC_COPY_MAX_RANK]; /* input extent along each axis */
    int32_t step[TC_COPY_MAX_RANK];  /* output elements between neighbours along it */
    int32_t offset;                  /* output element of input element 0 */
    int32_t output_size;             /* bytes */
    int32_t pad_value;               /* int8 */
} tc_pad_params;

tc_status tc_pad_s8(const tc_pad_params *p, const int8_t *input, int8_t *output);

/* FILL: size bytes of value (ops/fill.py). */
typedef struct {
    int32_t size;    /* bytes */
    int32_t value;   /* int8 */
} tc_fill_params;

tc_status tc_fill_s8(const tc_fill_params *p, int8_t *output);

/* CONCATENATION and PACK: outer times, each input gives its next sizes[i] bytes. */
typedef struct {
    int32_t count;          /* inputs */
    int32_t outer;          /* product of the extents before the axis */
    const int32_t *sizes;   /* [count]: extent along the axis times the product of the extents after it */
} tc_concatenation_params;

tc_status tc_concatenation_s8(const tc_concatenation_params *p, const int8_t *const *inputs, int8_t *output);

/* SPLIT, SPLIT_V and UNPACK: outer times, each output takes its next sizes[i] bytes of the input. */
typedef tc_concatenation_params tc_split_params;

tc_status tc_split_s8(const tc_split_params *p, const int8_t *input, int8_t *const *outputs);

/* An element-wise int8 activation (LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RELU, RELU6) as its table of
 * 256 results, computed on the host with TFLite Micro's arithmetic. May run in place. */
typedef struct {
    int32_t size;        /* elements */
    const int8_t *table; /* [256]: the result for input q at table[q + 128] */
} tc_lut_params;

tc_status tc_lut_s8(const tc_lut_params *p, const int8_t *input, int8_t *output);

/* The float ends of a float-I/O model (the generated tc_model_input_float / tc_model_output_float):
 * QUANTIZE float32 -> int8 and DEQUANTIZE int8 -> float32 with TFLite Micro's float arithmetic. */
typedef struct {
    int32_t size;        /* elements */
    float scale;         /* the int8 tensor's: real = scale * (q - zero_point) */
    int32_t zero_point;
} tc_quantize_f32_params;

typedef tc_quantize_f32_params tc_dequantize_f32_params;

tc_status tc_quantize_f32_s8(const tc_quantize_f32_params *p, const float *input, int8_t *output);
tc_status tc_dequantize_s8_f32(const tc_dequantize_f32_params *p, const int8_t *input, float *output);

/* PRELU: x >= 0 requantized by input/output scale, x < 0 multiplied by its alpha and requantized by
 * input * alpha / output scale. alpha is constant; it repeats every alpha_size elements (the trailing axes
 * of the output, or one value for all). May run in place. */
typedef struct {
    int32_t size;          /* elements */
    int32_t alpha_size;
    const int8_t *alpha;
    int32_t input_offset, alpha_offset, output_offset;
    int32_t identity_multiplier, identity_shift;
    int32_t alpha_multiplier, alpha_shift;
} tc_prelu_params;

tc_status tc_prelu_s8(const tc_prelu_params *p, const int8_t *input, int8_t *output);

/* TRANSPOSE_CONV, filter [C_out, KH, KW, C_in]: input pixel (iy, ix) reaches output (iy stride_h - pad_top + ky,
 * ix stride_w - pad_left + kx) through tap (ky, kx). The kernel gathers each output's taps; the input offset
 * times each tap's weights comes folded from the host (tinycompress/ops/transpose_conv.py). */
typedef struct {
    tc_dims input;
    tc_dims filter; /* n = C_out, h = KH, w = KW, c = C_in */
    tc_dims output;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;   /* TFLite's padding of the output seen as a convolution's input */
    int32_t output_offset;
    const int8_t *weights;
    const int32_t *tap_offsets;  /* [C_out, KH, KW]: input offset x the sum of the tap's C_in weights */
    const int32_t *bias;         /* [C_out], or NULL */
    tc_requant requant;
    tc_activation act;
} tc_transpose_conv_params;

tc_status tc_transpose_conv_s8(const tc_transpose_conv_params *p, const int8_t *input, int8_t *output);

/* RESIZE_NEAREST_NEIGHBOR: output pixel (y, x) is the input pixel at byte offset rows[y] + cols[x] of its
 * image, the tables holding TFLite Micro's choice of source row and column (tinycompress/ops/resize.py). */
typedef struct {
    tc_dims input;
    tc_dims output;
    const int32_t *rows; /* [output.h]: source row x input.w x input.c */
    const int32_t *cols; /* [output.w]: source column x input.c */
} tc_resize_nearest_params;

tc_status tc_resize_nearest_s8(const tc_resize_nearest_params *p, const int8_t *input, int8_t *output);

/* RESIZE_BILINEAR with TFLite Micro's 10-bit fixed point (ResizeBilinearInteger): per output row and column
 * the two source rows / columns (byte offsets) and the weight of the second in 1/1024, from the host. */
typedef struct {
    tc_dims input;
    tc_dims output;
    const int32_t *rows; /* [output.h][3]: upper row x input.w x input.c, lower row x ..., weight of lower */
    const int32_t *cols; /* [output.w][3]: left column x input.c, right column x input.c, weight of right */
} tc_resize_bilinear_params;

tc_status tc_resize_bilinear_s8(const tc_resize_bilinear_params *p, const int8_t *input, int8_t *output);

/* ---- Embedding lookups: token ids (int32) in, one int8 row of `width` per id out -------------------
 * Each kernel returns TC_ERROR_ARGUMENT for an id outside [0, vocab_size), as TFLite Micro's GATHER
 * does. The compressed forms decode each row on the fly, at the scale and zero point of the table
 * they replace (tinycompress/compress/embeddings.py fits them and holds the same arithmetic in numpy). */

/* GATHER (and EMBEDDING_LOOKUP) of rows of an int8 table: output[t] = table[ids[t]]. */
typedef struct {
    int32_t count;        /* ids per call */
    int32_t vocab_size;   /* rows of the table */
    int32_t width;        /* values per row */
    const int8_t *table;  /* [vocab_size, width] */
} tc_gather_params;

tc_status tc_gather_s8(const tc_gather_params *p, const int32_t *ids, int8_t *output);

/* row-int8: int8 codes with one scale per row; value = zero_point + round(code * m / 2^15), where the
 * Q15 multiplier m is the row's scale over the table's. */
typedef struct {
    int32_t count, vocab_size, width;
    int32_t zero_point;
    const int8_t *codes;             /* [vocab_size, width] */
    const uint16_t *row_multiplier;  /* [vocab_size], Q15 */
} tc_embedding_row_int8_params;

tc_status tc_embedding_row_int8_s8(const tc_embedding_row_int8_params *p, const int32_t *ids, int8_t *output);

/* lowrank:R: row t is requant(factors[t] . projection[j]) + zero_point for each column j. */
typedef struct {
    int32_t count, vocab_size, width;
    int32_t rank;
    int32_t zero_point;
    const int8_t *factors;     /* [vocab_size, rank], one scale */
    const int8_t *projection;  /* [width, rank]: the rank x width projection, one column per row */
    tc_requant requant;        /* per column: factor scale x projection scale / table scale */
} tc_embedding_lowrank_params;

tc_status tc_embedding_lowrank_s8(const tc_embedding_lowrank_params *p, const int32_t *ids, int8_t *output);

/* pq:MxK: the row is M sub-vectors, sub-vector i copied from entry codes[t][i] of codebook i. */
typedef struct {
    int32_t count, vocab_size, width;
    int32_t subvectors;        /* M; width / M values each */
    int32_t entries;           /* K, entries per codebook (2..256: a code is one uint8); every code < K */
    const uint8_t *codes;      /* [vocab_size, subvectors] */
    const int8_t *codebooks;   /* [subvectors, entries, width / subvectors], at the table's scale */
} tc_embedding_pq_params;

tc_status tc_embedding_pq_s8(const tc_embedding_pq_params *p, const int32_t *ids, int8_t *output);

/* hash:B: token t reads row ((t * 2654435761) mod 2^32 >> 16) mod B of a B-row table. */
#define TC_HASH_MULTIPLIER 2654435761u  /* Knuth's multiplicative hash: 2^32 / golden ratio */
#define TC_HASH_SHIFT 16                /* the high half of the product mixes every bit of t */
typedef struct {
    int32_t count, vocab_size, width;
    int32_t buckets;
    const int8_t *table;       /* [buckets, width], at the table's scale */
} tc_embedding_hash_params;

tc_status tc_embedding_hash_s8(const tc_embedding_hash_params *p, const int32_t *ids, int8_t *output);

/* kronecker: no per-token row. The first 16 bytes b_i of token t's string give 128 integer features,
 * f[16 x 8] = sum_i code(b_i) (x) position(i), where code(b) is the 16 signs of the bits of
 * (b + 1) * 40503 mod 2^16 and position(i) the 8 signs of (i + 1) * 157 mod 2^8 (bit set: -1);
 * the row is requant(bias[j] + projection[j] . f) + zero_point for each column j. */
#define TC_KRONECKER_MAX_BYTES 16
#define TC_KRONECKER_BYTE_BITS 16
#define TC_KRONECKER_POSITION_BITS 8
#define TC_KRONECKER_FEATURES (TC_KRONECKER_BYTE_BITS * TC_KRONECKER_POSITION_BITS)
typedef struct {
    int32_t count, vocab_size, width;
    int32_t zero_point;
    const uint8_t *strings;    /* the token strings, UTF-8, each cut to 16 bytes, back to back */
    const uint16_t *offsets;   /* [vocab_size + 1]: token t is strings[offsets[t] .. offsets[t + 1]) */
    const int8_t *projection;  /* [width, 128] */
    const int32_t *bias;       /* [width] */
    tc_requant requant;        /* per column: projection scale / table scale */
} tc_embedding_kronecker_params;

tc_status tc_embedding_kronecker_s8(const tc_embedding_kronecker_params *p, const int32_t *ids, int8_t *output);

#endif /* TC_KERNELS_H */
