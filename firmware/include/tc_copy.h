/*
 * tinycompress runtime: the odometer of the data-movement kernels (tc_strided_copy_s8.c, tc_pad_s8.c).
 * Both walk the input or output in runs along the last axis; between runs the outer index (axes 0 ..
 * last - 1) advances as an odometer does, and the run's start moves by one step per wheel turned: no
 * multiplication per run. Axes and steps are as in tc_kernels.h's TC_COPY_MAX_RANK structs.
 */
#ifndef TC_COPY_H
#define TC_COPY_H

#include <stdint.h>

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

#endif /* TC_COPY_H */
