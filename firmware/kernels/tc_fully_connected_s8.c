/* FULLY_CONNECTED, int8 activations and weights, int32 bias (with the input offset folded in).
 * Portable C; on cores with Helium the matrix kernel of tc_mve_gemm.h, each batch one column; on other
 * cores with the DSP extension the matrix kernel of tc_dsp_gemm.h. */
#include "tc_dsp_gemm.h"
#include "tc_fixedpoint.h"
#include "tc_kernels.h"
#include "tc_mve_gemm.h"

/* acc + sum a[i] * b[i], unrolled by four. Not inlined: inside the output loop the compiler spills a
 * pointer of this loop under the requantization's register pressure. */
__attribute__((noinline)) static int32_t dot_s8(const int8_t *a, const int8_t *b, int32_t n, int32_t acc)
{
    for (; n >= 4; n -= 4, a += 4, b += 4) {
        acc += (int32_t)a[0] * b[0] + (int32_t)a[1] * b[1] + (int32_t)a[2] * b[2] + (int32_t)a[3] * b[3];
    }
    for (; n > 0; n--) {
        acc += (int32_t)*a++ * *b++;
    }
    return acc;
}

static tc_status fully_connected_portable(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->input_depth;
    for (int32_t b = 0; b < p->batches; b++) {
        const int8_t *in = input + b * depth;
        for (int32_t o = 0; o < p->output_depth; o++) {
            const int8_t *w = p->weights + o * depth;
            int32_t acc = dot_s8(w, in, depth, p->bias[o]);
            const int32_t q = p->requant.per_channel ? o : 0;
            acc = tc_requantize(acc, p->requant.multiplier[q], p->requant.shift[q]);
            acc += p->output_offset;
            *output++ = (int8_t)tc_clamp_i32(acc, p->act.min, p->act.max);
        }
    }
    return TC_OK;
}

#if TC_MVE
static tc_status fully_connected_mve(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const tc_mve_gemm g = {p->weights, p->bias, &p->requant, p->output_depth, p->input_depth, 0, p->output_offset,
                           p->act};
    if (p->batches == 1 && p->output_depth >= 4) {
        tc_mve_gemv(&g, input, output);
    } else {
        tc_mve_gemm_run(&g, input, p->input_depth, p->batches, output);
    }
    return TC_OK;
}
#elif TC_DSP
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
        tc_gemm_1col(&g, 0, p->scratch, output + b * p->output_depth);
    }
    return TC_OK;
}
#endif

tc_status tc_fully_connected_s8(const tc_fully_connected_params *p, const int8_t *input, int8_t *output)
{
#if TC_MVE
    if (p->scratch) { /* the MVE path uses none of it: the pointer only selects the path */
        return fully_connected_mve(p, input, output);
    }
#elif TC_DSP
    if (p->scratch) {
        return fully_connected_dsp(p, input, output);
    }
#endif
    return fully_connected_portable(p, input, output);
}
