/* DEQUANTIZE int8 -> float32 at the model's output, as TFLite Micro's Dequantize computes it:
 *     x = (float)((double)scale * (q - zero_point))
 * The double product of the float32 scale (24 significant bits) by q - zero_point (at most 9 bits) is
 * exact, so rounding it to float is the one correctly rounded float32 product: scale * (float)(q - zp),
 * one conversion and one float multiply, no double arithmetic. */
#include "tc_kernels.h"

tc_status tc_dequantize_s8_f32(const tc_dequantize_f32_params *p, const int8_t *input, float *output)
{
    const float scale = p->scale;
    const int32_t zero_point = p->zero_point;
    const int32_t size = p->size;
    for (int32_t i = 0; i < size; i++) {
        output[i] = scale * (float)((int32_t)input[i] - zero_point);
    }
    return TC_OK;
}
