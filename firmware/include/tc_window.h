/*
 * tinycompress runtime: the taps of a sliding window that fall inside the image, shared by the
 * convolutions so that their inner loops need no bounds checks.
 */
#ifndef TC_WINDOW_H
#define TC_WINDOW_H

#include <stdint.h>

/* Which taps [first, last) of one axis read inside [0, size) from `origin`. */
static inline void tc_inside_taps(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *first,
                                  int32_t *last)
{
    int32_t f = 0, l = taps;
    while (f < taps && origin + f * dilation < 0) {
        f++;
    }
    while (l > f && origin + (l - 1) * dilation >= size) {
        l--;
    }
    *first = f;
    *last = l;
}

#endif /* TC_WINDOW_H */
