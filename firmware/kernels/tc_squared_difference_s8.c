/* SQUARED_DIFFERENCE of two int8 tensors, broadcast (tc_broadcast.h), as TFLite Micro's kernel:
 *   scaled_i = requantize((q_i + offset_i) << 7, multiplier_i, shift_i)   (multiplier <= 1/2: |.| <= 255 x 64)
 *   out = clamp(requantize((scaled_1 - scaled_2)^2, output multiplier, output shift) + output offset)
 * The square stays below 255^2 x 2^14 < 2^31. There is no fused activation: the clamp is int8's.
 * A row in which one input repeats rescales it once. Each element is read before it is written. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

static inline int32_t rescale(int32_t q, int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift)
{
    return tc_requantize((q + offset) * (1 << left_shift), multiplier, shift);
}

static void row(const void *params, const int8_t *x, int32_t x_step, const int8_t *y, int32_t y_step, int8_t *out,
                int32_t n)
{
    const tc_squared_difference_params *p = (const tc_squared_difference_params *)params;
    const int32_t ls = p->left_shift;
    const int32_t o1 = p->input1_offset, m1 = p->input1_multiplier, sh1 = p->input1_shift;
    const int32_t o2 = p->input2_offset, m2 = p->input2_multiplier, sh2 = p->input2_shift;
    const int32_t oo = p->output_offset, mo = p->output_multiplier, sho = p->output_shift;
    if (y_step == 0) {
        const int32_t b = rescale(*y, o2, ls, m2, sh2);
        for (int32_t i = 0; i < n; i++) {
            const int32_t d = rescale(x[i * x_step], o1, ls, m1, sh1) - b;
            out[i] = (int8_t)tc_clamp_i32(tc_requantize(d * d, mo, sho) + oo, TC_INT8_MIN, TC_INT8_MAX);
        }
    } else if (x_step == 0) {
        const int32_t a = rescale(*x, o1, ls, m1, sh1);
        for (int32_t i = 0; i < n; i++) {
            const int32_t d = a - rescale(y[i], o2, ls, m2, sh2);
            out[i] = (int8_t)tc_clamp_i32(tc_requantize(d * d, mo, sho) + oo, TC_INT8_MIN, TC_INT8_MAX);
        }
    } else {
        for (int32_t i = 0; i < n; i++) {
            const int32_t d = rescale(x[i], o1, ls, m1, sh1) - rescale(y[i], o2, ls, m2, sh2);
            out[i] = (int8_t)tc_clamp_i32(tc_requantize(d * d, mo, sho) + oo, TC_INT8_MIN, TC_INT8_MAX);
        }
    }
}

tc_status tc_squared_difference_s8(const tc_squared_difference_params *p, const int8_t *input1,
                                   const int8_t *input2, int8_t *output)
{
    tc_broadcast_walk(&p->broadcast, p->constant1 ? p->constant1 : input1, p->constant2 ? p->constant2 : input2,
                      output, row, p);
    return TC_OK;
}
