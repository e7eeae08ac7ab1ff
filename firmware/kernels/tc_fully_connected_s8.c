/* FULLY_CONNECTED, int8 activations and weights, int32 bias (with the input offset folded in).
 * Portable C, and on cores with the DSP extension the matrix kernel of tc_dsp_gemm.h. */
#include "tc_dsp_gemm.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

static tc_status fully_connected_portable(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->input_depth;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in = input + b * depth;
        for (int32_t o = 0; o < p->output_depth; o++) {
            const int8_t *w = p->weights + o * depth;
            int32_t acc = p->bias[o];
            for (int32_t i = 0; i < depth; i++) {
                acc += (int32_t)w[i] * (int32_t)in[i];
            }
            const int32_t q = p->requant.per_channel ? o : 0;
            acc = tc_requantize(acc, p->requant.multiplier[q], p->requant.shift[q]);
            acc += p->output_offset;
            *output++ = (int8_t)tc_clamp_i32(acc, p->act.min, p->act.max);
        }
    }
    return TC_OK;
}

#if TC_DSP
/* One input row widened to int16 in SMLAD order (no offset: the bias holds it). */
static void widen_row(const int8_t *in, int32_t depth, int16_t *col)
{
    int32_t *dst = (int32_t *)col;
    int32_t k = 0;
    for (; k + 4 <= depth; k += 4) {
        const int32_t v = tc_read_s8x4(in + k);
        *dst++ = __sxtb16(v);
        *dst++ = tc_sxtb16_ror8(v);
    }
    for (; k < depth; k++) {
        col[tc_col_index(k, 0, 1)] = in[k];
    }
}

static tc_status fully_connected_dsp(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const tc_gemm g = {p->weights, p->bias, &p->requant, p->output_depth, p->input_depth, p->output_offset, p->act};
    for (int32_t b = 0; b < p->batches; b++) {
        widen_row(input + b * p->input_depth, p->input_depth, p->scratch);
        tc_gemm_1col(&g, p->scratch, output + b * p->output_depth);
    }
    return TC_OK;
}
#endif

tc_status tc_fully_connected_s8(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
#if TC_DSP
    if (p->scratch) {
        return fully_connected_dsp(p, input, output);
    }
#endif
    return fully_connected_portable(p, input, output);
}
