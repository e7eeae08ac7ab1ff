/*
 * tinycompress runtime: the odometer of the data-movement kernels (tc_strided_copy_s8.c, tc_pad_s8.c).
 * Both walk the input or output in runs along the last axis; between runs the outer index (axes 0 ..
 * last - 1) advances as an odometer does, and the run's start moves by one step per wheel turned: no
 * multiplication per run. Axes and steps are as in tc_kernels.h's TC_COPY_MAX_RANK structs. Also the short
 * copies of the convolutions' portable paths.
 */
#ifndef TC_COPY_H
#define TC_COPY_H

#include <stdint.h>

#include "tc_fixedpoint.h"
#include "tc_kernels.h"

/* The next outer index after `index` (axes 0 .. last - 1 counting to count[axis]), with `*at` moved by
 * step[axis] for each axis that turns: 1, or 0 once every index has been visited (index back at zero). */
static inline int tc_copy_next(int32_t *index, const int32_t *count, const int32_t *step, int32_t last,
                               int32_t *at)
{
    for (int32_t axis = last - 1; axis >= 0; axis--) {
        *at += step[axis];
        if (++index[axis] < count[axis]) {
            return 1;
        }
        *at -= step[axis] * count[axis];
        index[axis] = 0;
    }
    return 0;
}

/* dst[i] = src[i] for i < n, words where both are word-aligned: the short runs of a convolution's window,
 * for which a library memcpy call costs more than the copy. */
static inline void tc_copy_run(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
    if ((((uintptr_t)dst | (uintptr_t)src) & 3) == 0) {
        for (; i <= n - 4; i += 4) {
            *(tc_alias_i32 *)(dst + i) = *(const tc_alias_i32 *)(src + i);
            TC_OPAQUE(i); /* a loop, not a call to memcpy */
        }
    }
    for (; i < n; i++) {
        dst[i] = src[i];
        TC_OPAQUE(i);
    }
}

/* dst[i] = value for i < n, as tc_copy_run. */
static inline void tc_fill_run(int8_t *dst, int8_t value, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        dst[i] = value;
        TC_OPAQUE(i);
    }
}

#endif /* TC_COPY_H */
