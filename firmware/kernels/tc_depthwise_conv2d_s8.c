/* DEPTHWISE_CONV_2D, int8, any depth multiplier, per-channel weights.
 * Portable C that gathers each output position's window of a block of channels onto the stack (padding
 * as the input's zero point, the input offset folded into each channel's start), and on cores with the DSP
 * extension four channels per pass (depth multiplier 1, channels a multiple of four): one load widens four
 * inputs and four weights, and SMLABB/SMLATT accumulate the four channels; a 3x3 layer of stride 1 or 2
 * given scratch instead runs along int16 planes staged in bands, four outputs of one channel per step with
 * SMLAD pairing neighbouring taps. On Helium the same planes, else eight channels per pass (depth
 * multiplier 1, any channel count). tc_depthwise_conv2d_s4: INT4 weights in the nibble form (tc_int4.h),
 * portable, or on DSP cores without Helium the int16 planes with the taps unpacked per channel (3x3, stride
 * 1 or 2), else four channels per pass from half a weight word (depth multiplier 1, channels a multiple of
 * four). */
#include "tc_copy.h"
#include "tc_dsp.h"
#include "tc_fixedpoint.h"
#include "tc_int4.h"
#include "tc_kernels.h"
#include "tc_mve.h"
#include "tc_palette.h"
#include "tc_window.h"

static inline int8_t output_value(const tc_depthwise_conv2d_params *p, int32_t acc, int32_t oc)
{
    const tc_channel_requant r =
        tc_channel_requant_of(&p->requant, oc, p->output_offset, p->act.min, p->act.max);
    return tc_channel_requant_apply(&r, acc + tc_channel_bias(p->bias, &p->requant, oc));
}

/* One output position: the taps [ky0, ky1) x [kx0, kx1) around input (y0, x0). */
typedef struct {
    const int8_t *image;
    int32_t y0, x0, ky0, ky1, kx0, kx1;
} window;

static void position_portable(const tc_depthwise_conv2d_params *p, const window *v, int8_t *out)
{
    const int32_t in_w = p->input.w, in_c = p->input.c, out_c = p->output.c, mult = p->depth_multiplier;
    const int32_t x_step = p->dilation_w * in_c, w_step = out_c, taps = v->kx1 - v->kx0;
    const int32_t in_row_step = p->dilation_h * in_w * in_c, w_row_step = p->filter.w * out_c;
    const int8_t *in_base = v->image + ((v->y0 + v->ky0 * p->dilation_h) * in_w + v->x0 + v->kx0 * p->dilation_w) * in_c;
    const int8_t *w_base = p->weights + (v->ky0 * p->filter.w + v->kx0) * out_c;
    int32_t oc = 0;
    for (int32_t ic = 0; ic < in_c; ic++) { /* input channel ic feeds outputs ic * mult ... + mult - 1 */
        for (int32_t m = 0; m < mult; m++, oc++) {
            int32_t acc = 0;
            const int8_t *in_row = in_base + ic, *w_row = w_base + oc;
            for (int32_t r = v->ky1 - v->ky0; r > 0; r--, in_row += in_row_step, w_row += w_row_step) {
                const int8_t *in = in_row, *w = w_row;
                for (int32_t n = taps; n > 0; n--, in += x_step, w += w_step) {
                    acc += (int32_t)*w * (*in + p->input_offset);
                }
            }
            out[oc] = output_value(p, acc, oc);
        }
    }
}

#if TC_DSP
/* Four channels of one tap: input and weight words widened in SMLABB/SMLATT order. */
#define TC_DW_TAP(x, k)                                                                                           \
    do {                                                                                                          \
        const int32_t x02 = __sxtab16(offset, (x)), x13 = tc_sxtab16_ror8(offset, (x));                           \
        const int32_t k02 = __sxtb16(k), k13 = tc_sxtb16_ror8(k);                                                 \
        a0 = __smlabb(x02, k02, a0);                                                                              \
        a2 = __smlatt(x02, k02, a2);                                                                              \
        a1 = __smlabb(x13, k13, a1);                                                                              \
        a3 = __smlatt(x13, k13, a3);                                                                              \
    } while (0)

/* The requantization of four neighbouring channels, read once per position. */
typedef struct {
    const int32_t *bias, *multiplier, *shift;
    int32_t per_channel, output_offset, act_min, act_max;
} outputs4;

static inline int8_t output4(const outputs4 *o, int32_t acc, int32_t oc)
{
    const int32_t q = o->per_channel ? oc : 0;
    acc = tc_requantize(acc, o->multiplier[q], o->shift[q]) + o->output_offset;
    return (int8_t)tc_clamp_i32(acc, o->act_min, o->act_max);
}

/* Three taps of one filter row for four channels; leaves `in` and `w` on the third tap. Inline
 * assembly: in C the compiler runs out of registers and reloads the steps from the stack. */
static inline __attribute__((always_inline)) void dw_row3(const int8_t **in_p, const int8_t **w_p, int32_t x_step,
                                                          int32_t channels, int32_t offset, int32_t *a0_p,
                                                          int32_t *a1_p, int32_t *a2_p, int32_t *a3_p)
{
    const int8_t *in = *in_p, *w = *w_p;
    int32_t a0 = *a0_p, a1 = *a1_p, a2 = *a2_p, a3 = *a3_p, x, k, t, u;
#define TC_DW_TAP_ASM                                                                                             \
    "ldr %[x], [%[in]]\n\t"                                                                                        \
    "ldr %[k], [%[w]]\n\t"                                                                                         \
    "sxtab16 %[t], %[off], %[x]\n\t"                                                                               \
    "sxtab16 %[x], %[off], %[x], ror #8\n\t"                                                                       \
    "sxtb16 %[u], %[k]\n\t"                                                                                        \
    "sxtb16 %[k], %[k], ror #8\n\t"                                                                                \
    "smlabb %[a0], %[t], %[u], %[a0]\n\t"                                                                          \
    "smlatt %[a2], %[t], %[u], %[a2]\n\t"                                                                          \
    "smlabb %[a1], %[x], %[k], %[a1]\n\t"                                                                          \
    "smlatt %[a3], %[x], %[k], %[a3]\n\t"
    __asm__(TC_DW_TAP_ASM "add %[in], %[in], %[xs]\n\t"
                          "add %[w], %[w], %[ws]\n\t" TC_DW_TAP_ASM "add %[in], %[in], %[xs]\n\t"
                          "add %[w], %[w], %[ws]\n\t" TC_DW_TAP_ASM
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [in] "+r"(in), [w] "+r"(w),
              [x] "=&r"(x), [k] "=&r"(k), [t] "=&r"(t), [u] "=&r"(u)
            : [xs] "r"(x_step), [ws] "r"(channels), [off] "r"(offset)
            : "memory");
#undef TC_DW_TAP_ASM
    *in_p = in;
    *w_p = w;
    *a0_p = a0;
    *a1_p = a1;
    *a2_p = a2;
    *a3_p = a3;
}

static void position_dsp(const tc_depthwise_conv2d_params *p, const window *v, int8_t *out)
{
    /* Everything the loops read, in locals: a store through an int8_t pointer may alias any
     * memory, so the compiler would otherwise reload the parameters after every output. */
    const int32_t channels = p->input.c, x_step = p->dilation_w * channels, taps = v->kx1 - v->kx0;
    const int32_t in_row_step = p->dilation_h * p->input.w * channels, w_row_step = p->filter.w * channels;
    const int32_t rows = v->ky1 - v->ky0;
    const int32_t offset = tc_pack_s16x2(p->input_offset, p->input_offset);
    const int8_t *in_base = v->image + ((v->y0 + v->ky0 * p->dilation_h) * p->input.w + v->x0 +
                                        v->kx0 * p->dilation_w) * channels;
    const int8_t *w_base = p->weights + (v->ky0 * p->filter.w + v->kx0) * channels;
    const outputs4 o = {p->bias, p->requant.multiplier, p->requant.shift, p->requant.per_channel,
                        p->output_offset, p->act.min, p->act.max};
    for (int32_t c = 0; c < channels; c += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (o.bias) {
            a0 = o.bias[c];
            a1 = o.bias[c + 1];
            a2 = o.bias[c + 2];
            a3 = o.bias[c + 3];
        }
        const int8_t *in = in_base + c, *w = w_base + c;
        if (taps == 3) { /* a whole row of a 3-wide filter: three taps unrolled in registers */
            const int32_t in_skip = in_row_step - 2 * x_step, w_skip = w_row_step - 2 * channels;
            for (int32_t r = rows; r > 0; r--, in += in_skip, w += w_skip) {
                dw_row3(&in, &w, x_step, channels, offset, &a0, &a1, &a2, &a3);
            }
        } else {
            for (int32_t r = rows; r > 0; r--, in += in_row_step - taps * x_step, w += w_row_step - taps * channels) {
                for (int32_t n = taps; n > 0; n--, in += x_step, w += channels) {
                    TC_DW_TAP(tc_read_s8x4(in), tc_read_s8x4(w));
                }
            }
        }
        out[c] = output4(&o, a0, c);
        out[c + 1] = output4(&o, a1, c + 1);
        out[c + 2] = output4(&o, a2, c + 2);
        out[c + 3] = output4(&o, a3, c + 3);
    }
}
#endif

#if TC_DSP || TC_MVE
/* 3x3, stride 1 or 2, four channels at a time through int16 planes.
 *
 * The four channels' padded inputs are staged as int16 planes, offset added and 0 in the padding, with
 * each plane's lines along the longer output axis, in bands of output lines: a band of n lines reads
 * (n - 1) * line_step + 3 plane lines (its two or one halo lines staged again with the next band), as many
 * as fit TC_DW_PLANES_BYTES. Along a line, four neighbouring outputs of one channel per step. Stride 1
 * reads six inputs in three words (p0 p1) (p2 p3) (p4 p5) per filter row; with that row's weights as
 * A = (w0 w1) and B = (w1 w2),
 *   o0 = SMLAD(p01, A) + SMLABT(p23, B)    o1 = SMLATB(p01, A) + SMLAD(p23, B)
 *   o2 = SMLAD(p23, A) + SMLABT(p45, B)    o3 = SMLATB(p23, A) + SMLAD(p45, B)
 * 36 MACs in 32 instructions. Stride 2 reads ten inputs in five words, output i at p(2i) p(2i+1) p(2i+2);
 * with A = (w0 w1) and B = (w2 0),
 *   oi = SMLAD(p(2i, 2i+1), A) + SMLABB(p(2i+2, 2i+3), B)
 * 36 MACs in 35 instructions. Lines are read in steps of four outputs past their end into zeros, so a
 * plane's pitch is the line's inputs for a multiple of four outputs plus the two padding cells.
 * On Helium the same planes, four outputs of a line in the int32 lanes: per tap one widening load
 * (a gather for stride 2) and one VMLA by the tap's weight as a scalar, 36 MACs in 18 instructions. */
typedef struct {
    int along_x;                  /* lines run along x (output rows), else along y (output columns) */
    int32_t lines, length, pitch; /* lines of `length` outputs; int16 per plane line */
    int32_t step, line_step;      /* the stride along a line and across the lines */
    int32_t band, rows;           /* output lines per band (0: the planes do not fit) and its plane lines */
} planes;

static planes planes_of(const tc_depthwise_conv2d_params *p)
{
    const int along_x = p->output.w >= p->output.h;
    const int32_t length = along_x ? p->output.w : p->output.h, lines = along_x ? p->output.h : p->output.w;
    const int32_t step = along_x ? p->stride_w : p->stride_h, line_step = along_x ? p->stride_h : p->stride_w;
    const int32_t pitch = step * 4 * ((length + 3) / 4) + 2;
    const int32_t most = TC_DW_PLANES_BYTES / (4 * pitch * (int32_t)sizeof(int16_t)); /* plane lines */
    const int32_t band = most < 3 ? 0 : tc_min_i32(lines, (most - 3) / line_step + 1);
    const planes g = {along_x, lines, length, pitch, step, line_step, band, (band - 1) * line_step + 3};
    return g;
}

/* Whether the layer takes the plane path; ops/scratch.py gives scratch on the same conditions. */
static int planes_apply(const tc_depthwise_conv2d_params *p)
{
    return p->scratch && p->depth_multiplier == 1 && (p->input.c & 3) == 0 && p->filter.h == 3 &&
           p->filter.w == 3 && (uint32_t)(p->stride_h - 1) < 2 && (uint32_t)(p->stride_w - 1) < 2 &&
           p->dilation_h == 1 && p->dilation_w == 1 && planes_of(p).band > 0;
}

#if !TC_MVE
/* Two int16 at any even address (STR allows unaligned access on these cores). */
static inline void tc_write_u32(int16_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

/* The bottom int16 lanes of a and b, and their top ones, as one word each (GCC 12 makes two instructions of
 * either). */
static inline uint32_t tc_pack_bottoms(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline uint32_t tc_pack_tops(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#endif

/* Plane lines [first, first + rows) (padded coordinates across the lines) of channels c..c+3 into four
 * planes of g->rows x pitch int16, (channel c + i) at plane + i * plane_size. The cells outside the image
 * along a line were zeroed once per layer and nothing writes them; lines outside it are zeroed here. */
static void stage_band(const tc_depthwise_conv2d_params *p, const planes *g, const int8_t *image, int32_t c,
                       int32_t first, int32_t rows, int16_t *plane)
{
    const int32_t in_c = p->input.c, plane_size = g->rows * g->pitch;
    const int32_t offset = tc_pack_s16x2(p->input_offset, p->input_offset);
    const int along_x = g->along_x;
    const int32_t pad_along = along_x ? p->pad_left : p->pad_top;
    const int32_t pad_across = along_x ? p->pad_top : p->pad_left;
    const int32_t in_along = along_x ? p->input.w : p->input.h, in_across = along_x ? p->input.h : p->input.w;
    const int32_t along_step = (along_x ? 1 : p->input.w) * in_c;
    const int32_t across_step = (along_x ? p->input.w : 1) * in_c;
    /* Inputs beyond the padded output line are never read: leave them out. */
    const int32_t cols = tc_min_i32(in_along, g->step * (g->length - 1) + 3 - pad_along);
    if (cols <= 0) {
        return;
    }
    for (int32_t r = 0; r < rows; r++) {
        int16_t *const p0 = plane + r * g->pitch + pad_along, *const p1 = p0 + plane_size;
        int16_t *const p2 = p1 + plane_size, *const p3 = p2 + plane_size;
        const int32_t u = first + r - pad_across;
        if (u < 0 || u >= in_across) {
            if (g->band < g->lines) { /* else the line is outside the image in every pass: still zero */
                for (int32_t i = 0; i < 4; i++) {
                    memset(p0 + i * plane_size, 0, (size_t)cols * sizeof(int16_t));
                }
            }
            continue;
        }
        const int8_t *in = image + u * across_step + c;
#if TC_MVE
        /* the four channels of a position widened, offset added, scattered to the four planes */
        const uint32x4_t planes4 = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)plane_size);
        for (int32_t x = 0; x < cols; x++, in += along_step) {
            vstrhq_scatter_shifted_offset_s32(p0 + x, planes4, vaddq_n_s32(vldrbq_s32(in), p->input_offset));
        }
        (void)offset, (void)p1, (void)p2, (void)p3;
#else
        int32_t x = 0;
        for (; x + 1 < cols; x += 2, in += 2 * along_step) { /* two positions: a word into each plane */
            const int32_t v = tc_read_s8x4(in), u = tc_read_s8x4(in + along_step);
            const uint32_t v02 = (uint32_t)__sxtab16(offset, v), v13 = (uint32_t)tc_sxtab16_ror8(offset, v);
            const uint32_t u02 = (uint32_t)__sxtab16(offset, u), u13 = (uint32_t)tc_sxtab16_ror8(offset, u);
            tc_write_u32(p0 + x, tc_pack_bottoms(v02, u02));
            tc_write_u32(p2 + x, tc_pack_tops(v02, u02));
            tc_write_u32(p1 + x, tc_pack_bottoms(v13, u13));
            tc_write_u32(p3 + x, tc_pack_tops(v13, u13));
        }
        if (x < cols) {
            const int32_t v = tc_read_s8x4(in);
            const int32_t even = __sxtab16(offset, v), odd = tc_sxtab16_ror8(offset, v);
            p0[x] = (int16_t)even;
            p2[x] = (int16_t)(even >> 16);
            p1[x] = (int16_t)odd;
            p3[x] = (int16_t)(odd >> 16);
        }
#endif
    }
}

/* A layer's planes, their padding zeroed: each plane's int16 and the bytes between neighbours along a
 * line and between successive lines in the output. */
typedef struct {
    planes g;
    int32_t plane_size, stride, line_stride;
} plane_pass;

static plane_pass planes_begin(const tc_depthwise_conv2d_params *p)
{
    const planes g = planes_of(p);
    const int32_t channels = p->input.c, across = p->output.w * channels;
    const plane_pass pass = {g, g.rows * g.pitch, g.along_x ? channels : across,
                             g.along_x ? across : channels};
    memset(p->scratch, 0, (size_t)(4 * pass.plane_size) * sizeof(int16_t));
    return pass;
}

/* Tap (ky, kx) of channel ch: int8 weights [1, 3, 3, C], or with `s4` INT4 ones, a nibble-form row of the
 * channels per tap (tc_int4.h), unpacked here once per channel. */
static inline __attribute__((always_inline)) int32_t plane_tap(const tc_depthwise_conv2d_params *p, int s4,
                                                               int32_t ky, int32_t kx, int32_t ch)
{
    const int32_t tap = ky * 3 + kx;
    if (s4) {
        return tc_s4_value(p->weights + tap * 4 * tc_s4_words(p->input.c), ch);
    }
    return p->weights[tap * p->input.c + ch];
}
#endif

#if TC_DSP && !TC_MVE

/* Stride 1, a filter row's taps against (p0 p1) (p2 p3) only: o0 and o1 of the four (above), 12 MACs in 8
 * instructions. The row's pointer stays. */
#define TC_DW_ROW_PAIR(offset)                                                                                    \
    "ldrd r8, r9, [%[row]]\n\t"                                                                                   \
    "ldrd %[A], %[B], [%[w], #" offset "]\n\t"                                                                   \
    "smlad %[a0], r8, %[A], %[a0]\n\t"                                                                            \
    "smlabt %[a0], r9, %[B], %[a0]\n\t"                                                                           \
    "smlatb %[a1], r8, %[A], %[a1]\n\t"                                                                           \
    "smlad %[a1], r9, %[B], %[a1]\n\t"

/* A line's last two outputs at o and o + stride, stride 1, from `row` on (lines of 6, 10, ...: half a step
 * of plane_outputs), with its weights, bias and requantization. Not inlined: the step loop keeps its
 * registers. */
__attribute__((noinline)) static void plane_pair(const int16_t *row, const int32_t w[7], int32_t pitch_bytes,
                                                 const tc_channel_quant *q, int8_t *o, int32_t stride)
{
    int32_t a0, a1, A, B;
    __asm__("ldr %[a0], [%[w], #24]\n\t"
            "mov %[a1], %[a0]\n\t" TC_DW_ROW_PAIR("0") "add %[row], %[row], %[pitch]\n\t" TC_DW_ROW_PAIR("8")
            "add %[row], %[row], %[pitch]\n\t" TC_DW_ROW_PAIR("16")
            : [a0] "=&r"(a0), [a1] "=&r"(a1), [A] "=&r"(A), [B] "=&r"(B), [row] "+r"(row)
            : [w] "r"(w), [pitch] "r"(pitch_bytes), "m"(*(const int32_t(*)[7])w)
            : "r8", "r9", "memory");
    if (q->quick_applies) {
        int32_t v0 = tc_dsp_requantize_s8(a0, &q->quick), v1 = tc_dsp_requantize_s8(a1, &q->quick);
        if (!q->full_range) {
            v0 = tc_clamp_i32(v0, q->lo, q->hi), v1 = tc_clamp_i32(v1, q->lo, q->hi);
        }
        o[0] = (int8_t)v0;
        o[stride] = (int8_t)v1;
        return;
    }
    o[0] = tc_channel_output(q, a0);
    o[stride] = tc_channel_output(q, a1);
}

/* One channel's plane: `lines` lines, four outputs per step, `stride` bytes between neighbours along a
 * line and `line_stride` between lines. `w` holds the two weight words of each filter row (above), then the
 * channel's bias. With
 * `step2` stride 2 along the lines; with `clamp` a fused activation narrower than int8 (where the fast
 * requantization applies). */
static inline __attribute__((always_inline)) void plane_outputs(const planes *g, int32_t lines,
                                                                const int16_t *plane, const int32_t w[7],
                                                                const tc_channel_quant *q, int8_t *out,
                                                                int32_t stride, int32_t line_stride,
                                                                int step2, int clamp)
{
    const int32_t pitch_bytes = 2 * g->pitch, line_pitch = g->line_step * g->pitch, length = g->length;
    const int fast = q->quick_applies;
    const tc_dsp_quant quick = q->quick; /* in registers: the int8 stores could alias *q */
    const uint32_t lo4 = ((uint32_t)q->lo & 0xFFu) * 0x01010101u; /* the clamp's bounds in each byte */
    const uint32_t hi4 = ((uint32_t)q->hi & 0xFFu) * 0x01010101u;
    const int32_t pair = !step2 && (length & 3) == 2 ? 2 : 0; /* the last two outputs by plane_pair */
    for (int32_t line = 0; line < lines; line++, plane += line_pitch, out += line_stride) {
        if (pair) {
            plane_pair(plane + length - 2, w, pitch_bytes, q, out + (length - 2) * stride, stride);
        }
        int8_t *o = out;
        const int16_t *row = plane;
        for (int32_t left = length - pair; left > 0; left -= 4, row += step2 ? 8 : 4, o += 4 * stride) {
            int32_t a0, a1, a2, a3, A, B;
/* The three filter rows of a step, ROW(offset) one of them with its weights at w + offset bytes, from the
 * bias (w[6]); `row` back where it was. */
#define TC_DW_PLANE_STEP(ROW)                                                                                     \
    __asm__("ldr %[a0], [%[w], #24]\n\t"                                                                          \
            "mov %[a1], %[a0]\n\t"                                                                                \
            "mov %[a2], %[a0]\n\t"                                                                                \
            "mov %[a3], %[a0]\n\t" ROW("0") "add %[row], %[row], %[pitch]\n\t" ROW("8")                          \
            "add %[row], %[row], %[pitch]\n\t" ROW("16") "sub %[row], %[row], %[pitch], lsl #1\n\t"               \
            : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [row] "+r"(row), [A] "=&r"(A),      \
              [B] "=&r"(B)                                                                                        \
            : [w] "r"(w), [pitch] "r"(pitch_bytes), "m"(*(const int32_t(*)[7])w)                                  \
            : "r8", "r9", "r10", "memory")
#define TC_DW_ROW_STRIDE1(offset)                                                                                 \
    "ldm %[row], {r8, r9, r10}\n\t"                                                                               \
    "ldrd %[A], %[B], [%[w], #" offset "]\n\t"                                                                   \
    "smlad %[a0], r8, %[A], %[a0]\n\t"                                                                            \
    "smlabt %[a0], r9, %[B], %[a0]\n\t"                                                                           \
    "smlatb %[a1], r8, %[A], %[a1]\n\t"                                                                           \
    "smlad %[a1], r9, %[B], %[a1]\n\t"                                                                            \
    "smlad %[a2], r9, %[A], %[a2]\n\t"                                                                            \
    "smlabt %[a2], r10, %[B], %[a2]\n\t"                                                                          \
    "smlatb %[a3], r9, %[A], %[a3]\n\t"                                                                           \
    "smlad %[a3], r10, %[B], %[a3]\n\t"
#define TC_DW_ROW_STRIDE2(offset)                                                                                 \
    "ldm %[row], {r8, r9, r10}\n\t"                                                                               \
    "ldrd %[A], %[B], [%[w], #" offset "]\n\t"                                                                   \
    "smlad %[a0], r8, %[A], %[a0]\n\t"                                                                            \
    "smlabb %[a0], r9, %[B], %[a0]\n\t"                                                                           \
    "smlad %[a1], r9, %[A], %[a1]\n\t"                                                                            \
    "smlabb %[a1], r10, %[B], %[a1]\n\t"                                                                          \
    "ldrd r8, r9, [%[row], #12]\n\t"                                                                              \
    "smlad %[a2], r10, %[A], %[a2]\n\t"                                                                           \
    "smlabb %[a2], r8, %[B], %[a2]\n\t"                                                                           \
    "smlad %[a3], r8, %[A], %[a3]\n\t"                                                                            \
    "smlabb %[a3], r9, %[B], %[a3]\n\t"
            if (step2) {
                TC_DW_PLANE_STEP(TC_DW_ROW_STRIDE2);
            } else {
                TC_DW_PLANE_STEP(TC_DW_ROW_STRIDE1);
            }
#undef TC_DW_PLANE_STEP
#undef TC_DW_ROW_STRIDE1
#undef TC_DW_ROW_STRIDE2
            const int32_t n = tc_min_i32(4, left);
            if (fast) { /* the common case, from the registers */
                int32_t v0 = tc_dsp_requantize_s8(a0, &quick), v1 = tc_dsp_requantize_s8(a1, &quick);
                int32_t v2 = tc_dsp_requantize_s8(a2, &quick), v3 = tc_dsp_requantize_s8(a3, &quick);
                if (clamp) { /* the four in the bytes of one word: max(v, lo), min(v, hi) by SSUB8's flags */
                    uint32_t v = (uint32_t)v0;
                    __asm__("bfi %0, %1, #8, #8\n\t"
                            "bfi %0, %2, #16, #8\n\t"
                            "bfi %0, %3, #24, #8"
                            : "+r"(v)
                            : "r"(v1), "r"(v2), "r"(v3));
                    (void)__ssub8((int32_t)v, (int32_t)lo4);
                    v = __sel(v, lo4);
                    (void)__ssub8((int32_t)hi4, (int32_t)v);
                    v = __sel(v, hi4);
                    v0 = (int32_t)v, v1 = (int32_t)(v >> 8), v2 = (int32_t)(v >> 16), v3 = (int32_t)(v >> 24);
                }
                o[0] = (int8_t)v0;
                if (n == 4) {
                    o[stride] = (int8_t)v1;
                    o[2 * stride] = (int8_t)v2;
                    o[3 * stride] = (int8_t)v3;
                } else if (n > 1) { /* the line's last two or three */
                    o[stride] = (int8_t)v1;
                    if (n > 2) {
                        o[2 * stride] = (int8_t)v2;
                    }
                }
                continue;
            }
            const int32_t acc[4] = {a0, a1, a2, a3};
            for (int32_t i = 0; i < n; i++) {
                o[i * stride] = tc_channel_output(q, acc[i]);
            }
        }
    }
}

/* plane_outputs for each stride along the lines and clamp, each with its own loop. */
#define TC_DW_PLANE_OUTPUTS(name, step2, clamp)                                                                   \
    __attribute__((noinline)) static void name(const planes *g, int32_t lines, const int16_t *plane,             \
                                               const int32_t w[7], const tc_channel_quant *q,                    \
                                               int8_t *out, int32_t stride, int32_t line_stride)                  \
    {                                                                                                             \
        plane_outputs(g, lines, plane, w, q, out, stride, line_stride, step2, clamp);                            \
    }
TC_DW_PLANE_OUTPUTS(plane_outputs_1, 0, 0)
TC_DW_PLANE_OUTPUTS(plane_outputs_2, 1, 0)
TC_DW_PLANE_OUTPUTS(plane_outputs_1_clamped, 0, 1)
TC_DW_PLANE_OUTPUTS(plane_outputs_2_clamped, 1, 1)
#undef TC_DW_PLANE_OUTPUTS

typedef void (*plane_outputs_fn)(const planes *g, int32_t lines, const int16_t *plane, const int32_t w[7],
                                 const tc_channel_quant *q, int8_t *out, int32_t stride, int32_t line_stride);

/* Channel ch's weight words, per filter row along the lines: (w0 w1) (w1 w2) for stride 1 along them,
 * (w0 w1) (w2 0) for stride 2. */
static inline __attribute__((always_inline)) void plane_weights(const tc_depthwise_conv2d_params *p,
                                                                const planes *g, int s4, int32_t ch,
                                                                int32_t w[6])
{
    int32_t k[9]; /* the taps in the filter's order, read once */
    for (int32_t t = 0; t < 9; t++) {
        k[t] = plane_tap(p, s4, t / 3, t % 3, ch);
    }
    /* filter row r along the lines: taps r * across + t * along */
    const int32_t across = g->along_x ? 3 : 1, along = g->along_x ? 1 : 3;
    for (int32_t r = 0; r < 3; r++) {
        const int32_t k0 = k[r * across], k1 = k[r * across + along], k2 = k[r * across + 2 * along];
        w[2 * r] = tc_pack_s16x2(k0, k1);
        w[2 * r + 1] = g->step == 1 ? tc_pack_s16x2(k1, k2) : tc_pack_s16x2(k2, 0);
    }
}

/* Inlined in each entry point, so each has its own tap loop. */
static inline __attribute__((always_inline)) void depthwise_planes(const tc_depthwise_conv2d_params *p,
                                                                   const int8_t *input, int8_t *output, int s4)
{
    const plane_pass pass = planes_begin(p);
    const planes g = pass.g;
    const int32_t channels = p->input.c, plane_size = pass.plane_size;
    const int32_t stride = pass.stride, line_stride = pass.line_stride;
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * p->input.h * p->input.w * channels;
        int8_t *out = output + b * p->output.h * p->output.w * channels;
        for (int32_t c = 0; c < channels; c += 4) {
            int32_t w[4][7]; /* the weight words, then the bias */
            tc_channel_quant q[4];
            for (int32_t i = 0; i < 4; i++) {
                plane_weights(p, &g, s4, c + i, w[i]);
                q[i] = tc_channel_quant_make(&p->requant, c + i, p->output_offset, p->act);
                w[i][6] = tc_channel_bias(p->bias, &p->requant, c + i);
            }
            for (int32_t first = 0; first < g.lines; first += g.band) {
                const int32_t lines = tc_min_i32(g.band, g.lines - first);
                stage_band(p, &g, image, c, first * g.line_step, (lines - 1) * g.line_step + 3, p->scratch);
                for (int32_t i = 0; i < 4; i++) {
                    const plane_outputs_fn f =
                        q[i].full_range ? (g.step == 1 ? plane_outputs_1 : plane_outputs_2)
                                        : (g.step == 1 ? plane_outputs_1_clamped : plane_outputs_2_clamped);
                    f(&g, lines, p->scratch + i * plane_size, w[i], &q[i],
                      out + first * line_stride + c + i, stride, line_stride);
                }
            }
        }
    }
}
#endif

#if TC_MVE
/* What the MVE loops read for one output position, in locals. */
typedef struct {
    const int8_t *in, *w; /* the first inside tap, channel 0 */
    int32_t x_step, channels, taps, rows, in_row_step, w_row_step, input_offset;
} taps_mve;

/* The taps of eight channels from c, as int16 lanes: per tap two widening loads, the offset add
 * (x + offset fits int16), and VMULLB/VMULLT multiply the even and the odd channels into int32
 * lanes added to `even` and `odd`: 8 MACs in 7 instructions. `full`, constant in each caller,
 * drops the predication that only the last vector of a channel count no multiple of 8 needs. */
static inline __attribute__((always_inline)) void accumulate_mve(const taps_mve *t, int32_t c, int32x4_t *even,
                                                                 int32x4_t *odd, mve_pred16_t lanes, int full)
{
    const int8_t *in_row = t->in + c, *w_row = t->w + c;
    const int16_t offset = (int16_t)t->input_offset;
    int32x4_t e = *even, o = *odd;
    for (int32_t r = t->rows; r > 0; r--, in_row += t->in_row_step, w_row += t->w_row_step) {
        const int8_t *in = in_row, *w = w_row;
        for (int32_t n = t->taps; n > 0; n--, in += t->x_step, w += t->channels) {
            const int16x8_t x = vaddq_n_s16(full ? vldrbq_s16(in) : vldrbq_z_s16(in, lanes), offset);
            const int16x8_t k = full ? vldrbq_s16(w) : vldrbq_z_s16(w, lanes);
            e = vaddq_s32(e, vmullbq_int_s16(x, k));
            o = vaddq_s32(o, vmulltq_int_s16(x, k));
        }
    }
    *even = e;
    *odd = o;
}

/* Four of the eight channels (the even or the odd ones, `lane` channels c + 2i apart from base):
 * requantized, clamped and stored where `keep` says they exist. */
static inline void store_mve(const tc_depthwise_conv2d_params *p, int32x4_t acc, int32_t first, uint32x4_t lane,
                             mve_pred16_t keep, int8_t *out)
{
    const int32x4_t zero = vdupq_n_s32(0);
    int32x4_t multiplier = vdupq_n_s32(p->requant.multiplier[0]), shift = vdupq_n_s32(p->requant.shift[0]);
    if (p->bias) {
        acc = vaddq_s32(acc, vldrwq_gather_shifted_offset_z_s32(p->bias + first, lane, keep));
    }
    if (p->requant.per_channel) {
        multiplier = vldrwq_gather_shifted_offset_z_s32(p->requant.multiplier + first, lane, keep);
        shift = vldrwq_gather_shifted_offset_z_s32(p->requant.shift + first, lane, keep);
    }
    acc = tc_mve_requantize(acc, multiplier, vmaxq_s32(shift, zero), vminq_s32(shift, zero));
    acc = vminq_s32(vmaxq_s32(vaddq_n_s32(acc, p->output_offset), vdupq_n_s32(p->act.min)), vdupq_n_s32(p->act.max));
    vstrbq_scatter_offset_p_s32(out + first, lane, acc, keep);
}

/* Eight channels per pass (depth multiplier 1, any channel count). */
static void position_mve(const tc_depthwise_conv2d_params *p, const window *v, int8_t *out)
{
    const int32_t channels = p->input.c;
    const taps_mve t = {
        v->image + ((v->y0 + v->ky0 * p->dilation_h) * p->input.w + v->x0 + v->kx0 * p->dilation_w) * channels,
        p->weights + (v->ky0 * p->filter.w + v->kx0) * channels,
        p->dilation_w * channels, channels, v->kx1 - v->kx0, v->ky1 - v->ky0,
        p->dilation_h * p->input.w * channels, p->filter.w * channels, p->input_offset,
    };
    const uint32x4_t lane = vidupq_n_u32(0, 2); /* 0, 2, 4, 6: channel offsets of the even lanes */
    for (int32_t c = 0; c < channels; c += 8) {
        const int32_t left = channels - c;
        const mve_pred16_t lanes = vctp16q((uint32_t)left);
        int32x4_t even = vdupq_n_s32(0), odd = vdupq_n_s32(0);
        if (left >= 8) {
            accumulate_mve(&t, c, &even, &odd, lanes, 1);
        } else {
            accumulate_mve(&t, c, &even, &odd, lanes, 0);
        }
        store_mve(p, even, c, lane, vcmphiq_u32(vdupq_n_u32((uint32_t)left), lane), out);          /* 2i < left */
        store_mve(p, odd, c + 1, lane, vcmphiq_u32(vdupq_n_u32((uint32_t)left - 1), lane), out); /* 2i + 1 < left */
    }
}

/* A channel's taps for the planes, tap t along a line of filter row r across the lines at k[4 r + t], with
 * what the assembly loop of plane_outputs_mve reads beside them in k[3], k[7] and k[11]. */
typedef int32_t mve_taps[12];

/* One channel's requantization as vectors, read once for all its planes' outputs. */
typedef struct {
    int32x4_t bias, multiplier, left, right, lo, hi;
    uint32x4_t out_lanes; /* the bytes between the four outputs of a step */
    int32_t output_offset;
} mve_quant;

/* Four outputs of a line from its three plane rows r0..r2 (stride 1 along it, or with `step2` 2), taps k (in
 * mve_taps):
 * requantized (with `right` the shorter form of a right shift), clamped, stored where `keep` says. */
static inline __attribute__((always_inline)) void step_mve(const int16_t *r0, const int16_t *r1,
                                                           const int16_t *r2, const int32_t k[12],
                                                           const mve_quant *q, int8_t *o, mve_pred16_t keep,
                                                           int step2, int right)
{
    const uint32x4_t in_lanes = vidupq_n_u32(0, 2); /* stride 2: inputs 0, 2, 4, 6 of the step */
#define TC_DW_LANES(at) (step2 ? vldrhq_gather_shifted_offset_s32((at), in_lanes) : vldrhq_s32(at))
    int32x4_t acc = q->bias;
    acc = vmlaq_n_s32(acc, TC_DW_LANES(r0), k[0]);
    acc = vmlaq_n_s32(acc, TC_DW_LANES(r0 + 1), k[1]);
    acc = vmlaq_n_s32(acc, TC_DW_LANES(r0 + 2), k[2]);
    acc = vmlaq_n_s32(acc, TC_DW_LANES(r1), k[4]);
    acc = vmlaq_n_s32(acc, TC_DW_LANES(r1 + 1), k[5]);
    acc = vmlaq_n_s32(acc, TC_DW_LANES(r1 + 2), k[6]);
    acc = vmlaq_n_s32(acc, TC_DW_LANES(r2), k[8]);
    acc = vmlaq_n_s32(acc, TC_DW_LANES(r2 + 1), k[9]);
    acc = vmlaq_n_s32(acc, TC_DW_LANES(r2 + 2), k[10]);
#undef TC_DW_LANES
    acc = right ? tc_mve_requantize_right(acc, q->multiplier, q->right)
                : tc_mve_requantize(acc, q->multiplier, q->left, q->right);
    acc = vminq_s32(vmaxq_s32(vaddq_n_s32(acc, q->output_offset), q->lo), q->hi);
    vstrbq_scatter_offset_p_s32(o, q->out_lanes, acc, keep);
}

/* One channel's plane on Helium (above): `lines` lines, four outputs per step in the int32 lanes, `stride`
 * bytes between neighbours along a line and `line_stride` between lines, the taps k (mve_taps). With
 * `step2` stride 2 along the lines; with `right` a right shift (the shorter requantization). Stride 1 with a
 * right shift, the common case, runs every step of a line in assembly, a filter row's three taps and one of
 * the bias, the output step and the output offset by one LDM: 36 instructions for 36 MACs (GCC 12 cannot
 * give the loop LR for LE there). The last step of a line stores only the outputs that exist (VCTP). */
static inline __attribute__((always_inline)) void plane_outputs_mve(const tc_depthwise_conv2d_params *p,
                                                                    const planes *g, int32_t lines,
                                                                    const int16_t *plane, int32_t *k,
                                                                    int32_t ch, int8_t *out, int32_t stride,
                                                                    int32_t line_stride, int step2, int right)
{
    const int32_t qi = p->requant.per_channel ? ch : 0, shift = tc_requant_shift(&p->requant, qi);
    const mve_quant q = {
        vdupq_n_s32(tc_channel_bias(p->bias, &p->requant, ch)),
        vdupq_n_s32(tc_requant_multiplier(&p->requant, qi)),
        vdupq_n_s32(shift > 0 ? shift : 0), vdupq_n_s32(shift < 0 ? shift : 0),
        vdupq_n_s32(p->act.min), vdupq_n_s32(p->act.max),
        vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)stride), p->output_offset,
    };
    const int32_t line_pitch = g->line_step * g->pitch, length = g->length, step = step2 ? 8 : 4;
    const int in_asm = !step2 && right; /* every step of a line in assembly, the last one predicated */
    k[3] = vgetq_lane_s32(q.bias, 0), k[7] = 4 * stride, k[11] = q.output_offset;
    for (int32_t line = 0; line < lines; line++, plane += line_pitch, out += line_stride) {
        const int16_t *r0 = plane, *r1 = plane + g->pitch, *r2 = plane + 2 * g->pitch;
        int8_t *o = out;
        if (in_asm) {
            int32x4_t acc, x;
            const int32_t *kp = k;
            int32_t left = length;
            __asm__ volatile(
                "1:\n\t"
                "vctp.32 %[left]\n\t" /* the lanes of the outputs that exist */
                "ldm %[k]!, {r4, r5, r6, r8}\n\t" /* taps 0-2 and the bias */
                "vdup.32 %q[acc], r8\n\t"
                "vldrh.s32 %q[x], [%[r0], #2]\n\t"
                "vmla.s32 %q[acc], %q[x], r5\n\t"
                "vldrh.s32 %q[x], [%[r0], #4]\n\t"
                "vmla.s32 %q[acc], %q[x], r6\n\t"
                "vldrh.s32 %q[x], [%[r0]], #8\n\t"
                "vmla.s32 %q[acc], %q[x], r4\n\t"
                "ldm %[k]!, {r4, r5, r6, r9}\n\t" /* taps 3-5 and the output step */
                "vldrh.s32 %q[x], [%[r1], #2]\n\t"
                "vmla.s32 %q[acc], %q[x], r5\n\t"
                "vldrh.s32 %q[x], [%[r1], #4]\n\t"
                "vmla.s32 %q[acc], %q[x], r6\n\t"
                "vldrh.s32 %q[x], [%[r1]], #8\n\t"
                "vmla.s32 %q[acc], %q[x], r4\n\t"
                "ldm %[k], {r4, r5, r6, r8}\n\t" /* taps 6-8 and the output offset */
                "sub %[k], %[k], #32\n\t"
                "vldrh.s32 %q[x], [%[r2], #2]\n\t"
                "vmla.s32 %q[acc], %q[x], r5\n\t"
                "vldrh.s32 %q[x], [%[r2], #4]\n\t"
                "vmla.s32 %q[acc], %q[x], r6\n\t"
                "vldrh.s32 %q[x], [%[r2]], #8\n\t"
                "vmla.s32 %q[acc], %q[x], r4\n\t"
                /* tc_mve_requantize_right, the offset, the clamp */
                "vqrdmulh.s32 %q[acc], %q[acc], %q[mul]\n\t"
                "vshr.s32 %q[x], %q[acc], #31\n\t"
                "vqadd.s32 %q[acc], %q[acc], %q[x]\n\t"
                "vrshl.s32 %q[acc], %q[acc], %q[shr]\n\t"
                "vadd.i32 %q[acc], %q[acc], r8\n\t"
                "vmax.s32 %q[acc], %q[acc], %q[lo]\n\t"
                "vmin.s32 %q[acc], %q[acc], %q[hi]\n\t"
                "vpst\n\t"
                "vstrbt.32 %q[acc], [%[o], %q[lanes]]\n\t"
                "add %[o], %[o], r9\n\t"
                "subs %[left], %[left], #4\n\t"
                "bgt 1b\n"
                : [acc] "=&w"(acc), [x] "=&w"(x), [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [o] "+r"(o),
                  [k] "+r"(kp), [left] "+r"(left)
                : [mul] "w"(q.multiplier), [shr] "w"(q.right), [lo] "w"(q.lo), [hi] "w"(q.hi),
                  [lanes] "w"(q.out_lanes)
                : "r4", "r5", "r6", "r8", "r9", "cc", "memory"); /* and P0, which nothing else here holds */
        }
        for (int32_t s = 0; !in_asm && s < length;
             s += 4, r0 += step, r1 += step, r2 += step, o += 4 * stride) {
            step_mve(r0, r1, r2, k, &q, o, vctp32q((uint32_t)(length - s)), step2, right);
        }
    }
}

/* plane_outputs_mve for each stride along the lines and form of requantization, each with its own loop. */
#define TC_DW_PLANE_OUTPUTS_MVE(name, step2, right)                                                              \
    __attribute__((noinline)) static void name(const tc_depthwise_conv2d_params *p, const planes *g,            \
                                               int32_t lines, const int16_t *plane, int32_t *k,                 \
                                               int32_t ch, int8_t *out, int32_t stride, int32_t line_stride)    \
    {                                                                                                            \
        plane_outputs_mve(p, g, lines, plane, k, ch, out, stride, line_stride, step2, right);                   \
    }
TC_DW_PLANE_OUTPUTS_MVE(plane_outputs_mve_1, 0, 0)
TC_DW_PLANE_OUTPUTS_MVE(plane_outputs_mve_2, 1, 0)
TC_DW_PLANE_OUTPUTS_MVE(plane_outputs_mve_1_right, 0, 1)
TC_DW_PLANE_OUTPUTS_MVE(plane_outputs_mve_2_right, 1, 1)
#undef TC_DW_PLANE_OUTPUTS_MVE

typedef void (*plane_outputs_mve_fn)(const tc_depthwise_conv2d_params *p, const planes *g, int32_t lines,
                                     const int16_t *plane, int32_t *k, int32_t ch, int8_t *out,
                                     int32_t stride, int32_t line_stride);

/* The planes' path on Helium: four channels staged at a time, a band of lines after another. */
static void depthwise_planes_mve(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const plane_pass pass = planes_begin(p);
    const planes g = pass.g;
    const int32_t channels = p->input.c, plane_size = pass.plane_size;
    const int32_t stride = pass.stride, line_stride = pass.line_stride;
    for (int32_t b = 0; b < p->input.n; b++) {
        const int8_t *image = input + b * p->input.h * p->input.w * channels;
        int8_t *out = output + b * p->output.h * p->output.w * channels;
        for (int32_t c = 0; c < channels; c += 4) {
            mve_taps k[4];
            plane_outputs_mve_fn f[4];
            for (int32_t i = 0; i < 4; i++) {
                for (int32_t r = 0; r < 3; r++) { /* filter rows across the lines, taps along them */
                    for (int32_t t = 0; t < 3; t++) {
                        k[i][4 * r + t] =
                            g.along_x ? plane_tap(p, 0, r, t, c + i) : plane_tap(p, 0, t, r, c + i);
                    }
                }
                const int right = tc_requant_shift(&p->requant, p->requant.per_channel ? c + i : 0) < 0;
                f[i] = g.step == 1 ? (right ? plane_outputs_mve_1_right : plane_outputs_mve_1)
                                   : (right ? plane_outputs_mve_2_right : plane_outputs_mve_2);
            }
            for (int32_t first = 0; first < g.lines; first += g.band) {
                const int32_t lines = tc_min_i32(g.band, g.lines - first);
                stage_band(p, &g, image, c, first * g.line_step, (lines - 1) * g.line_step + 3, p->scratch);
                for (int32_t i = 0; i < 4; i++) {
                    f[i](p, &g, lines, p->scratch + i * plane_size, k[i], c + i,
                         out + first * line_stride + c + i, stride, line_stride);
                }
            }
        }
    }
}
#endif

/* One output position's out_c outputs. */
typedef void (*position_fn)(const tc_depthwise_conv2d_params *p, const window *v, int8_t *out);

/* `position` at every output position. */
static void each_position(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output,
                          position_fn position)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c, out_c = p->output.c;
    for (int32_t b = 0; b < p->input.n; b++) {
        window v = {.image = input + b * in_h * in_w * in_c};
        for (int32_t oy = 0; oy < p->output.h; oy++) {
            v.y0 = oy * p->stride_h - p->pad_top;
            tc_inside_taps(v.y0, p->dilation_h, p->filter.h, in_h, &v.ky0, &v.ky1);
            for (int32_t ox = 0; ox < p->output.w; ox++, output += out_c) {
                v.x0 = ox * p->stride_w - p->pad_left;
                tc_inside_taps(v.x0, p->dilation_w, p->filter.w, in_w, &v.kx0, &v.kx1);
                position(p, &v, output);
            }
        }
    }
}

/* Whether the planes' path can write the output over its own input: with every line in one band it stages
 * four channels' whole planes before it writes those four channels' outputs, and an output byte is its own
 * channel's (ops/scratch.py writes_over_input gives the generator the same rule). */
static int planes_over_input(const tc_depthwise_conv2d_params *p)
{
#if TC_DSP || TC_MVE
    return planes_apply(p) && p->input.n == 1 && planes_of(p).band >= planes_of(p).lines;
#else
    (void)p;
    return 0;
#endif
}

/* The output over its own input (input == output: tinycompress/codegen/rows.py OverOwnInput, which the
 * generator chooses where the planes' path takes the whole planes at once), in a build of the same project
 * without that path (TC_PORTABLE, the host):
 * one channel at a time, its input plane first copied to the scratch, so that the channel's outputs
 * overwrite only its own bytes, already read. Only the rows and columns the outputs read are copied:
 * the scratch, four channels' int16 planes of as many, holds them as one int8 plane. Depth multiplier 1,
 * batch 1; the arithmetic is position_portable's. */
static void over_input_portable(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->input.c;
    const int32_t in_h = tc_min_i32(p->input.h, (p->output.h - 1) * p->stride_h - p->pad_top +
                                                    (p->filter.h - 1) * p->dilation_h + 1);
    const int32_t in_w = tc_min_i32(p->input.w, (p->output.w - 1) * p->stride_w - p->pad_left +
                                                    (p->filter.w - 1) * p->dilation_w + 1);
    int8_t *const plane = (int8_t *)p->scratch;
    for (int32_t c = 0; c < channels; c++) {
        for (int32_t y = 0; y < in_h; y++) {
            for (int32_t x = 0; x < in_w; x++) {
                plane[y * in_w + x] = input[(y * p->input.w + x) * channels + c];
            }
        }
        int8_t *out = output + c;
        for (int32_t oy = 0; oy < p->output.h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1, kx0, kx1;
            tc_inside_taps(y0, p->dilation_h, p->filter.h, in_h, &ky0, &ky1);
            for (int32_t ox = 0; ox < p->output.w; ox++, out += channels) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                tc_inside_taps(x0, p->dilation_w, p->filter.w, in_w, &kx0, &kx1);
                int32_t acc = 0;
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    const int8_t *in = plane + (y0 + ky * p->dilation_h) * in_w + x0;
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        acc += (int32_t)p->weights[(ky * p->filter.w + kx) * channels + c] *
                               (in[kx * p->dilation_w] + p->input_offset);
                    }
                }
                *out = output_value(p, acc, c);
            }
        }
    }
}

/* The portable path's window on the stack (taps x channels of a block) and its largest block. */
#define DW_COL_BYTES 128
#define DW_BLOCK 8

/* acc + sum a[t s] b[t s] over t < n: one index for both arrays, stepping s, unrolled by two. */
__attribute__((noinline)) static int32_t dot_strided(const int8_t *a, const int8_t *b, int32_t n, int32_t s,
                                                     int32_t acc)
{
    int32_t i = 0;
    const int32_t end = n * s;
    if (n & 1) {
        acc += a[0] * b[0];
        i = s;
    }
    while (i < end) {
        acc += a[i] * b[i];
        i += s;
        TC_OPAQUE(i);
        acc += a[i] * b[i];
        i += s;
    }
    return acc;
}

/* Output channels [oc0, oc0 + nb) of the window at (y0, x0) into col, tap after tap, nb bytes a tap: output
 * channel oc reads input channel oc / mult; a tap outside the image is the input's zero point
 * (-input_offset, in [-128, 127]), so that it adds nothing once the offset is folded in. With all the
 * channels (depth multiplier 1) a kernel row inside the image without dilation is one run of k_w in_c
 * bytes. */
static void gather_channels(const tc_depthwise_conv2d_params *p, const int8_t *image, int32_t y0, int32_t x0,
                            int32_t oc0, int32_t nb, int8_t *col)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c, mult = p->depth_multiplier;
    const int32_t k_w = p->filter.w;
    const int8_t zero = (int8_t)-p->input_offset;
    const int whole_rows = nb == in_c && mult == 1 && p->dilation_w == 1 && x0 >= 0 && x0 + k_w <= in_w;
    for (int32_t ky = 0; ky < p->filter.h; ky++) {
        const int32_t y = y0 + ky * p->dilation_h;
        if (whole_rows && y >= 0 && y < in_h) {
            tc_copy_run(col, image + (y * in_w + x0) * in_c, k_w * in_c);
            col += k_w * in_c;
            continue;
        }
        for (int32_t kx = 0; kx < k_w; kx++, col += nb) {
            const int32_t x = x0 + kx * p->dilation_w;
            if (y < 0 || y >= in_h || x < 0 || x >= in_w) {
                tc_fill_run(col, zero, nb);
                continue;
            }
            const int8_t *src = image + (y * in_w + x) * in_c;
            if (mult == 1) {
                tc_copy_run(col, src + oc0, nb);
                continue;
            }
            for (int32_t j = 0, ic = oc0 / mult, m = oc0 % mult; j < nb; j++) {
                col[j] = src[ic];
                if (++m == mult) {
                    m = 0;
                    ic++;
                }
            }
        }
    }
}

/* Blocks of up to DW_BLOCK output channels (DW_COL_BYTES over the taps): the block's weights copied once
 * to the stack in the window's layout, each output position's window gathered once (gather_channels), each
 * channel one strided dot product; sum w (in + offset) = offset sum w + sum w in, the first term in each
 * channel's accumulator start. Over windows of more than DW_COL_BYTES taps, position_portable. */
static tc_status depthwise_portable(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t taps = p->filter.h * p->filter.w, out_c = p->output.c;
    if (taps > DW_COL_BYTES) {
        each_position(p, input, output, position_portable);
        return TC_OK;
    }
    const int32_t block = DW_COL_BYTES / taps < DW_BLOCK ? DW_COL_BYTES / taps : DW_BLOCK;
    int8_t col[DW_COL_BYTES] __attribute__((aligned(4))), weights[DW_COL_BYTES];
    int32_t start[DW_BLOCK];
    tc_channel_requant requant[DW_BLOCK];
    for (int32_t oc0 = 0; oc0 < out_c; oc0 += block) {
        const int32_t nb = out_c - oc0 < block ? out_c - oc0 : block;
        for (int32_t j = 0; j < nb; j++) {
            int32_t sum = 0;
            for (int32_t t = 0; t < taps; t++) {
                weights[t * nb + j] = p->weights[t * out_c + oc0 + j];
                sum += weights[t * nb + j];
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
                    gather_channels(p, image, y0, x0, oc0, nb, col);
                    for (int32_t j = 0; j < nb; j++) {
                        const int32_t acc = dot_strided(weights + j, col + j, taps, nb, start[j]);
                        out[j] = tc_channel_requant_apply(&requant[j], acc);
                    }
                }
            }
        }
    }
    return TC_OK;
}

tc_status tc_depthwise_conv2d_s8(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    if (p->output.c != p->input.c * p->depth_multiplier) {
        return TC_ERROR_ARGUMENT;
    }
    if (input == output && !planes_over_input(p)) {
        if (TC_DSP || TC_MVE || !p->scratch || p->depth_multiplier != 1 || p->input.n != 1) {
            return TC_ERROR_ARGUMENT; /* not a layer the generator runs over its own input */
        }
        over_input_portable(p, input, output);
        return TC_OK;
    }
    position_fn position = 0; /* an optimized path's, else depthwise_portable */
#if TC_DSP
    if (p->depth_multiplier == 1 && (p->input.c & 3) == 0) {
        position = position_dsp;
    }
#endif
#if TC_MVE
    if (planes_apply(p)) {
        depthwise_planes_mve(p, input, output);
        return TC_OK;
    }
    if (p->depth_multiplier == 1) {
        position = position_mve;
    }
#endif
#if TC_DSP && !TC_MVE
    if (planes_apply(p)) {
        depthwise_planes(p, input, output, 0);
        return TC_OK;
    }
#endif
    if (!position) {
        return depthwise_portable(p, input, output);
    }
    each_position(p, input, output, position);
    return TC_OK;
}

/* ---- INT4 weights: tc_depthwise_conv2d_s4 ---- */

/* One position of the portable paths of tc_depthwise_conv2d_s4 and tc_depthwise_conv2d_p4, which differ only
 * in how a weight is read: weight (tap, channel oc) is `weight` (tc_palette.h) of the tap's row of channels,
 * a constant in each caller. */
static inline __attribute__((always_inline)) void position_w4(const tc_depthwise_conv2d_params *p,
                                                              const window *v, int8_t *out,
                                                              tc_w4_decoder weight)
{
    const int32_t in_w = p->input.w, in_c = p->input.c, out_c = p->output.c, mult = p->depth_multiplier;
    const int32_t row_bytes = 4 * tc_s4_words(out_c);
    for (int32_t oc = 0; oc < out_c; oc++) {
        const int32_t ic = oc / mult; /* input channel ic feeds outputs ic * mult ... + mult - 1 */
        int32_t acc = 0;
        for (int32_t ky = v->ky0; ky < v->ky1; ky++) {
            for (int32_t kx = v->kx0; kx < v->kx1; kx++) {
                const int32_t y = v->y0 + ky * p->dilation_h, x = v->x0 + kx * p->dilation_w;
                const int8_t *row = p->weights + (ky * p->filter.w + kx) * row_bytes;
                acc += weight(row, p->palette, oc) *
                       (v->image[(y * in_w + x) * in_c + ic] + p->input_offset);
            }
        }
        out[oc] = output_value(p, acc, oc);
    }
}

static void position_s4_portable(const tc_depthwise_conv2d_params *p, const window *v, int8_t *out)
{
    position_w4(p, v, out, tc_s4_weight);
}

#if TC_DSP && !TC_MVE
/* Four channels of one tap from 16 times their weights in bytes (tc_int4.h): input and weights widened in
 * SMLABB/SMLATT order, as TC_DW_TAP. */
#define TC_DW_S4_TAP(x, k16, a0, a1, a2, a3)                                                                      \
    do {                                                                                                          \
        const int32_t x02 = __sxtab16(offset, (x)), x13 = tc_sxtab16_ror8(offset, (x));                           \
        const int32_t k02 = __sxtb16(k16), k13 = tc_sxtb16_ror8(k16);                                             \
        a0 = __smlabb(x02, k02, a0);                                                                              \
        a2 = __smlatt(x02, k02, a2);                                                                              \
        a1 = __smlabb(x13, k13, a1);                                                                              \
        a3 = __smlatt(x13, k13, a3);                                                                              \
    } while (0)

/* Output channel c from 16 times its sum: with `quick`, the fast requantization the kernel put in the scratch. */
static inline int8_t output_s4(const tc_depthwise_conv2d_params *p, int32_t acc16, int32_t c, int quick)
{
    if (!quick) {
        return output_value(p, acc16 >> 4, c);
    }
    const int32_t bias = tc_channel_bias(p->bias, &p->requant, c);
    const int32_t v = tc_dsp_requantize_s8((acc16 >> 4) + bias, (const tc_dsp_quant *)p->scratch + c);
    return (int8_t)tc_clamp_i32(v, p->act.min, p->act.max);
}

/* Depth multiplier 1, channels a multiple of four: four channels per pass, as position_dsp, their weights the
 * high nibbles of a tap's word (channels 8j..8j+3) or its low ones (8j+4..8j+7), at 16 times their value. */
static inline __attribute__((always_inline)) void position_s4_dsp(const tc_depthwise_conv2d_params *p,
                                                                  const window *v, int8_t *out, int quick)
{
    const int32_t channels = p->input.c, row_bytes = 4 * tc_s4_words(channels), in_w = p->input.w;
    const int32_t x_step = p->dilation_w * channels, taps = v->kx1 - v->kx0, rows = v->ky1 - v->ky0;
    const int32_t offset = tc_pack_s16x2(p->input_offset, p->input_offset);
    const int8_t *in_base = v->image + ((v->y0 + v->ky0 * p->dilation_h) * in_w + v->x0 + v->kx0 * p->dilation_w) *
                                           channels;
    const int8_t *w_base = p->weights + (v->ky0 * p->filter.w + v->kx0) * row_bytes;
    const int32_t in_row_step = p->dilation_h * in_w * channels - taps * x_step;
    const int32_t w_row_step = (p->filter.w - taps) * row_bytes;
    for (int32_t c = 0; c < channels; c += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        const int8_t *in = in_base + c, *w = w_base + (c >> 3) * 4;
        const int32_t shift = (c & 4) ? 4 : 0; /* the low nibbles, moved up */
        for (int32_t r = rows; r > 0; r--, in += in_row_step, w += w_row_step) {
            for (int32_t n = taps; n > 0; n--, in += x_step, w += row_bytes) {
                const int32_t k = (int32_t)((((uint32_t)tc_read_s8x4(w) ^ TC_S4_SIGN) << shift) & TC_S4_HIGH);
                TC_DW_S4_TAP(tc_read_s8x4(in), k, a0, a1, a2, a3);
            }
        }
        out[c] = output_s4(p, a0, c, quick);
        out[c + 1] = output_s4(p, a1, c + 1, quick);
        out[c + 2] = output_s4(p, a2, c + 2, quick);
        out[c + 3] = output_s4(p, a3, c + 3, quick);
    }
}

static void position_s4_quick(const tc_depthwise_conv2d_params *p, const window *v, int8_t *out)
{
    position_s4_dsp(p, v, out, 1);
}

static void position_s4_general(const tc_depthwise_conv2d_params *p, const window *v, int8_t *out)
{
    position_s4_dsp(p, v, out, 0);
}

/* Every channel's fast requantization in the scratch, where all of them have one (1), else 0. */
static int quick_table_s4(const tc_depthwise_conv2d_params *p)
{
    tc_dsp_quant *table = (tc_dsp_quant *)p->scratch;
    const int32_t step = p->requant.per_channel;
    for (int32_t c = 0, i = 0; c < p->output.c; c++, i += step) {
        const int32_t multiplier = tc_requant_multiplier(&p->requant, i), shift = tc_requant_shift(&p->requant, i);
        if (!tc_dsp_quant_fits(multiplier, shift)) {
            return 0;
        }
        table[c] = tc_dsp_quant_make(multiplier, shift, p->output_offset);
    }
    return 1;
}
#endif

tc_status tc_depthwise_conv2d_s4(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    if (p->output.c != p->input.c * p->depth_multiplier) {
        return TC_ERROR_ARGUMENT;
    }
    position_fn position = position_s4_portable;
#if TC_DSP && !TC_MVE
    /* The generator (ops/scratch.py) gives a 3x3 layer of stride 1 or 2 its planes where they fit, else
     * nothing, and any other layer of depth multiplier 1 and channels a multiple of four its requantization
     * table. */
    if (planes_apply(p)) {
        depthwise_planes(p, input, output, 1);
        return TC_OK;
    }
    if (p->depth_multiplier == 1 && (p->input.c & 3) == 0) {
        position = p->scratch && quick_table_s4(p) ? position_s4_quick : position_s4_general;
    }
#endif
    each_position(p, input, output, position);
    return TC_OK;
}

/* ---- Clustered weights: tc_depthwise_conv2d_p4 (tc_palette.h), portable, or on DSP cores without
 * Helium four channels per pass over every position (depth multiplier 1, channels a multiple of four) ---- */

static void position_p4(const tc_depthwise_conv2d_params *p, const window *v, int8_t *out)
{
    position_w4(p, v, out, tc_p4_value);
}

#if TC_DSP && !TC_MVE
/* Depth multiplier 1, channels a multiple of four: blocks of up to TC_P4_CHANNELS channels over every
 * position, the block's taps decoded once per layer into the scratch (ops/scratch.py), four channels of a
 * tap as the SMLABB/SMLATT pairs (w0, w2), (w1, w3); then position_dsp's arithmetic, four channels at a
 * time, each position's window found once per block. */
#define TC_P4_CHANNELS 16

static void depthwise_p4_dsp(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_h = p->input.h, in_w = p->input.w, channels = p->input.c, k_w = p->filter.w;
    const int32_t taps = p->filter.h * k_w, row_bytes = 4 * tc_s4_words(channels);
    const int32_t offset = tc_pack_s16x2(p->input_offset, p->input_offset);
    const outputs4 o = {p->bias, p->requant.multiplier, p->requant.shift, p->requant.per_channel,
                        p->output_offset, p->act.min, p->act.max};
    tc_alias_i32 *k = (tc_alias_i32 *)p->scratch; /* [quad][tap][2] */
    for (int32_t first = 0; first < channels; first += TC_P4_CHANNELS) {
        const int32_t quads = tc_min_i32(TC_P4_CHANNELS, channels - first) / 4;
        for (int32_t g = 0; g < quads; g++) {
            for (int32_t t = 0; t < taps; t++) {
                const int8_t *row = p->weights + t * row_bytes;
                const int32_t c = first + 4 * g;
                k[2 * (g * taps + t)] = tc_pack_s16x2(tc_p4_value(row, p->palette, c),
                                                      tc_p4_value(row, p->palette, c + 2));
                k[2 * (g * taps + t) + 1] = tc_pack_s16x2(tc_p4_value(row, p->palette, c + 1),
                                                          tc_p4_value(row, p->palette, c + 3));
            }
        }
        int8_t *out = output + first;
        for (int32_t b = 0; b < p->input.n; b++) {
            const int8_t *image = input + b * in_h * in_w * channels + first;
            for (int32_t oy = 0; oy < p->output.h; oy++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                int32_t ky0, ky1;
                tc_inside_taps(y0, p->dilation_h, p->filter.h, in_h, &ky0, &ky1);
                for (int32_t ox = 0; ox < p->output.w; ox++, out += channels) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    int32_t kx0, kx1;
                    tc_inside_taps(x0, p->dilation_w, k_w, in_w, &kx0, &kx1);
                    for (int32_t g = 0; g < quads; g++) {
                        const int32_t c = first + 4 * g;
                        const tc_alias_i32 *kg = k + 2 * g * taps;
                        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                        if (o.bias) {
                            a0 = o.bias[c], a1 = o.bias[c + 1], a2 = o.bias[c + 2], a3 = o.bias[c + 3];
                        }
                        for (int32_t ky = ky0; ky < ky1; ky++) {
                            const int8_t *in =
                                image + ((y0 + ky * p->dilation_h) * in_w + x0) * channels + 4 * g;
                            for (int32_t kx = kx0; kx < kx1; kx++) {
                                const int32_t x = tc_read_s8x4(in + kx * p->dilation_w * channels);
                                const int32_t x02 = __sxtab16(offset, x), x13 = tc_sxtab16_ror8(offset, x);
                                const int32_t tap = 2 * (ky * k_w + kx), k02 = kg[tap], k13 = kg[tap + 1];
                                a0 = __smlabb(x02, k02, a0);
                                a2 = __smlatt(x02, k02, a2);
                                a1 = __smlabb(x13, k13, a1);
                                a3 = __smlatt(x13, k13, a3);
                            }
                        }
                        out[4 * g] = output4(&o, a0, c);
                        out[4 * g + 1] = output4(&o, a1, c + 1);
                        out[4 * g + 2] = output4(&o, a2, c + 2);
                        out[4 * g + 3] = output4(&o, a3, c + 3);
                    }
                }
            }
        }
    }
}
#endif

tc_status tc_depthwise_conv2d_p4(const tc_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    if (p->output.c != p->input.c * p->depth_multiplier) {
        return TC_ERROR_ARGUMENT;
    }
#if TC_DSP && !TC_MVE
    if (p->scratch && p->depth_multiplier == 1 && (p->input.c & 3) == 0) {
        depthwise_p4_dsp(p, input, output);
        return TC_OK;
    }
#endif
    each_position(p, input, output, position_p4);
    return TC_OK;
}
