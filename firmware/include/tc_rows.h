/*
 * tinycompress runtime: the copies of a layer run by bands of rows over its own input
 * (tinycompress/codegen/rows.py): the rows of the temporary that are safe, to their place in the output,
 * and the rows still pending, to the temporary's start. Either goes forward with `to` at or below `from`
 * or apart from it, so a forward copy is exact even where the two overlap.
 */
#ifndef TC_ROWS_H
#define TC_ROWS_H

#include <stdint.h>

static inline void tc_rows_copy(int8_t *to, const int8_t *from, int32_t bytes)
{
    if ((((uintptr_t)to | (uintptr_t)from) & 3) == 0) {
        uint32_t *t = (uint32_t *)(void *)to;
        const uint32_t *f = (const uint32_t *)(const void *)from;
        for (; bytes >= 16; bytes -= 16, t += 4, f += 4) {
            const uint32_t a = f[0], b = f[1], c = f[2], d = f[3];
            t[0] = a;
            t[1] = b;
            t[2] = c;
            t[3] = d;
        }
        for (; bytes >= 4; bytes -= 4) {
            *t++ = *f++;
        }
        to = (int8_t *)t;
        from = (const int8_t *)f;
    }
    while (bytes-- > 0) {
        *to++ = *from++;
    }
}

#endif /* TC_ROWS_H */
