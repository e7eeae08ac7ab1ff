/* MAXIMUM of two int8 tensors, broadcast (tc_broadcast.h), on the raw values: TFLite Micro compares the
 * stored int8 values and ignores the quantization (the converter gives both inputs and the output the
 * same one). The row, with its DSP (SSUB8 + SEL) and Helium paths, is tc_minmax.h's. May run in place. */
#include "tc_kernels.h"
#include "tc_minmax.h"

static TC_MINMAX_ROW void row(const void *p, const int8_t *x, int32_t xs, const int8_t *y, int32_t ys,
                             int8_t *out, int32_t n)
{
    (void)p;
    tc_minmax_row(x, xs, y, ys, out, n, 1);
}

tc_status tc_maximum_s8(const tc_minmax_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    tc_broadcast_walk(&p->broadcast, p->constant1 ? p->constant1 : input1, p->constant2 ? p->constant2 : input2,
                      output, row, NULL);
    return TC_OK;
}
