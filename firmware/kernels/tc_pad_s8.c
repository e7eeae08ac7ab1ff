/* PAD and PADV2: fill the output with the pad value (PAD: the output zero point; PADV2: its constant, which
 * TFLite Micro requires to share the output's quantization, so its bytes are copied as they are), then copy
 * the input's contiguous runs to their places inside. The generator merged the axes that carry no padding
 * into the runs, so a 2-D zero padding of NHWC copies one W x C row per input row. */
#include <string.h>

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
    for (;;) {
        memcpy(output + at, input, (size_t)run);
        input += run;
        int32_t axis = last - 1;
        for (; axis >= 0; axis--) {
            at += p->step[axis];
            if (++index[axis] < p->count[axis]) {
                break;
            }
            at -= p->step[axis] * p->count[axis];
            index[axis] = 0;
        }
        if (axis < 0) {
            return TC_OK;
        }
    }
}
