/* PAD and PADV2: fill the output with the pad value (PAD: the output zero point; PADV2: its constant, which
 * TFLite Micro requires to share the output's quantization, so its bytes are copied as they are), then copy
 * the input's contiguous runs to their places inside. The generator merged the axes that carry no padding
 * into the runs, so a 2-D zero padding of NHWC copies one W x C row per input row. The runs' places follow
 * tc_copy.h's odometer. */
#include <string.h>

#include "tc_copy.h"
#include "tc_kernels.h"

tc_status tc_pad_s8(const tc_pad_params *p, const int8_t *input, int8_t *output)
{
    const int32_t last = p->rank - 1;
    if (last < 0 || last >= TC_COPY_MAX_RANK) {
        return TC_ERROR_ARGUMENT;
    }
    memset(output, p->pad_value, (size_t)p->output_size);
    const int32_t run = p->count[last];
    int32_t index[TC_COPY_MAX_RANK] = {0};
    int32_t at = p->offset;   /* output element of the current input run's first element */
    do {
        memcpy(output + at, input, (size_t)run);
        input += run;
    } while (tc_copy_next(index, p->count, p->step, last, &at));
    return TC_OK;
}
