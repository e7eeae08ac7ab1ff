/* Embedding row-int8: int8 codes with one scale per row, rescaled to the table's scale as each row is read. */
#include "tc_fixedpoint.h"
#include "tc_kernels.h"

#define ROW_SCALE_BITS 15   /* the row multiplier is Q15 */

tc_status tc_embedding_row_int8_s8(const tc_embedding_row_int8_params *p, const int32_t *ids, int8_t *output)
{
    for (int32_t t = 0; t < p->count; t++, output += p->width) {
        const int32_t id = ids[t];
        if (id < 0 || id >= p->vocab_size) {
            return TC_ERROR_ARGUMENT;
        }
        const int8_t *codes = p->codes + id * p->width;
        const int32_t multiplier = p->row_multiplier[id];
        for (int32_t j = 0; j < p->width; j++) {
            /* round half up: codes * multiplier stays far inside int32 */
            const int32_t value = (codes[j] * multiplier + (1 << (ROW_SCALE_BITS - 1))) >> ROW_SCALE_BITS;
            output[j] = (int8_t)tc_clamp_i32(value + p->zero_point, TC_INT8_MIN, TC_INT8_MAX);
        }
    }
    return TC_OK;
}
