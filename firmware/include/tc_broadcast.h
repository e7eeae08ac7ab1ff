/*
 * tinycompress runtime: the index walk of the binary element-wise kernels (ADD, SUB, MUL,
 * SQUARED_DIFFERENCE, MAXIMUM, MINIMUM) over two inputs broadcast by NumPy's rules.
 *
 * The compiler (tinycompress/ops/elementwise.py) drops the output's axes of length 1 and merges
 * neighbouring axes wherever both inputs step through them alike, so any pair of shapes up to 5-D
 * becomes at most TC_BROADCAST_RANK axes, padded in front with length-1 axes. Along the last axis
 * each input advances by 1 or repeats (stride 0): that axis is a row, and a kernel's row function
 * sees only the two steps. The common cases reach a row function once or once per row:
 *   same shapes          one row of every element, both steps 1;
 *   a scalar             one row, the scalar's step 0;
 *   a per-channel vector rows of C, the vector restarting at each row;
 *   (H, W, 1) vs (H, W, C)  rows of C, the per-pixel value's step 0.
 * Only the row pointers are computed per row; nothing per element.
 */
#ifndef TC_BROADCAST_H
#define TC_BROADCAST_H

#include <stdint.h>

#define TC_BROADCAST_RANK 5

typedef struct {
    int32_t shape[TC_BROADCAST_RANK];    /* collapsed output shape, outermost first; the last axis is a row */
    int32_t strides1[TC_BROADCAST_RANK]; /* element strides of input 1 per axis, 0 where it repeats; the
                                          * last is 1 or 0 */
    int32_t strides2[TC_BROADCAST_RANK];
} tc_broadcast;

/* One row: n outputs from x (step x_step, 0 or 1) and y (step y_step). `p` is the kernel's parameters. */
typedef void (*tc_broadcast_row)(const void *p, const int8_t *x, int32_t x_step, const int8_t *y, int32_t y_step,
                                 int8_t *out, int32_t n);

/* Calls `row` for every row of the output, in order. Static inline with a constant `row`: the compiler
 * calls (or inlines) the kernel's row function directly. */
static inline void tc_broadcast_walk(const tc_broadcast *b, const int8_t *x, const int8_t *y, int8_t *out,
                                     tc_broadcast_row row, const void *p)
{
    const int32_t *s = b->shape, *s1 = b->strides1, *s2 = b->strides2;
    const int32_t n = s[4];
    for (int32_t i0 = 0; i0 < s[0]; i0++) {
        for (int32_t i1 = 0; i1 < s[1]; i1++) {
            for (int32_t i2 = 0; i2 < s[2]; i2++) {
                const int8_t *x2 = x + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *y2 = y + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                for (int32_t i3 = 0; i3 < s[3]; i3++) {
                    row(p, x2 + i3 * s1[3], s1[4], y2 + i3 * s2[3], s2[4], out, n);
                    out += n;
                }
            }
        }
    }
}

#endif /* TC_BROADCAST_H */
