/* The strided copy that TRANSPOSE, SLICE and STRIDED_SLICE all lower to (tinycompress/ops/shape.py): the
 * output is written in order, element (i0, .., ik) taken from
 * input[offset + i0 * step[0] + .. + ik * step[k]].
 * The generator has dropped axes of extent 1 and merged neighbours that stay contiguous, so a plain slice
 * is a few memcpy runs and a transpose a loop of strided byte loads. No multiplication per element: the
 * odometer (tc_copy.h) adds one step per output element (steps may be negative: STRIDED_SLICE's reversed
 * axes).
 * On Helium cores, a forward step of at most 17 bytes (a transpose of narrow rows) takes sixteen elements
 * per VLDRB gather: offsets 0, step, .., 15 step all fit its unsigned byte offsets. */
#include <string.h>

#include "tc_copy.h"
#include "tc_kernels.h"
#include "tc_mve.h"

tc_status tc_strided_copy_s8(const tc_strided_copy_params *p, const int8_t *input, int8_t *output)
{
    const int32_t last = p->rank - 1;
    if (last < 0 || last >= TC_COPY_MAX_RANK) {
        return TC_ERROR_ARGUMENT;
    }
    const int32_t run = p->count[last], step = p->step[last];
    int32_t index[TC_COPY_MAX_RANK] = {0};
    int32_t at = p->offset;   /* input element of the current run's first output element */
    do {
        if (step == 1) {
            memcpy(output, input + at, (size_t)run);
        } else {
            const int8_t *src = input + at;
            int32_t i = 0;
#if TC_MVE
            if (step > 0 && step <= 17) {
                const uint8x16_t offsets = vmulq_n_u8(vidupq_n_u8(0, 1), (uint8_t)step);
                for (; i + 16 <= run; i += 16) {
                    vst1q_u8((uint8_t *)output + i, vldrbq_gather_offset_u8((const uint8_t *)src, offsets));
                    src += 16 * step;
                }
            }
#endif
            for (; i + 4 <= run; i += 4) {
                const int8_t a = src[0], b = src[step], c = src[2 * step], d = src[3 * step];
                output[i] = a;
                output[i + 1] = b;
                output[i + 2] = c;
                output[i + 3] = d;
                src += 4 * step;
            }
            for (; i < run; i++, src += step) {
                output[i] = *src;
            }
        }
        output += run;
    } while (tc_copy_next(index, p->count, p->step, last, &at));   /* the next outer index */
    return TC_OK;
}
