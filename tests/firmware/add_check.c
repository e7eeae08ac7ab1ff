/* tc_add_s8 against TFLite Micro's arithmetic written out (three tc_requantize_reference calls per
 * element) on random shapes, broadcasts and parameters: the input of multiplier 1/2 first, second or
 * neither, output shifts inside and outside the DSP cores' fast form, fused clamps or none, and a left
 * shift other than 20 (the general form). Runs on the host and in QEMU (tests/test_requantize.py).
 * Prints the first disagreement and exits 1, or "agree". */
#include <stdio.h>

#include "tc_fixedpoint.h"
#include "tc_kernels.h"
#include "tc_platform.h"

#define CASES 400
#define MAX_ELEMENTS 512

static int8_t in1[MAX_ELEMENTS], in2[MAX_ELEMENTS], out[MAX_ELEMENTS];
static uint32_t state = 0x2545F491u;

static uint32_t next(void) /* xorshift32 */
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

static int32_t draw(int32_t lo, int32_t hi) { return lo + (int32_t)(next() % (uint32_t)(hi - lo + 1)); }

static int32_t reference(const tc_add_params *p, int32_t a, int32_t b)
{
    const int32_t x = tc_requantize_reference((a + p->input1_offset) * (1 << p->left_shift),
                                              p->input1_multiplier, p->input1_shift);
    const int32_t y = tc_requantize_reference((b + p->input2_offset) * (1 << p->left_shift),
                                              p->input2_multiplier, p->input2_shift);
    const int32_t q =
        tc_requantize_reference(p->subtract ? x - y : x + y, p->output_multiplier, p->output_shift) +
        p->output_offset;
    return tc_clamp_i32(q, p->act.min, p->act.max);
}

/* Dense strides of `d`, with axes where `keep` has bit i clear broadcast (stride 0, extent 1). */
static tc_dims strides(tc_dims d, int keep, int32_t *size)
{
    const int32_t e[4] = {keep & 8 ? d.n : 1, keep & 4 ? d.h : 1, keep & 2 ? d.w : 1, keep & 1 ? d.c : 1};
    tc_dims s = {e[1] * e[2] * e[3], e[2] * e[3], e[3], 1};
    s.n = e[0] > 1 ? s.n : 0, s.h = e[1] > 1 ? s.h : 0, s.w = e[2] > 1 ? s.w : 0, s.c = e[3] > 1 ? s.c : 0;
    *size = e[0] * e[1] * e[2] * e[3];
    return s;
}

static void report(const char *text)
{
#ifdef __arm__
    tc_platform_print(text);
#else
    puts(text);
#endif
}

int main(void)
{
    for (int k = 0; k < CASES; k++) {
        tc_add_params p;
        const tc_dims d = {draw(1, 2), draw(1, 5), draw(1, 6), draw(1, 9)};
        if (d.n * d.h * d.w * d.c > MAX_ELEMENTS) {
            k--;
            continue;
        }
        int32_t size1, size2;
        const int whole = k % 3 == 0; /* a third without broadcasting: the flat loop */
        const tc_dims s1 = strides(d, whole ? 15 : draw(0, 15), &size1);
        const tc_dims s2 = strides(d, whole ? 15 : draw(0, 15), &size2);
        /* the walk uncollapsed: NHWC behind one axis of length 1 (the compiler's collapse is tested in
         * Python) */
        p.broadcast = (tc_broadcast){
            {1, d.n, d.h, d.w, d.c}, {0, s1.n, s1.h, s1.w, s1.c}, {0, s2.n, s2.h, s2.w, s2.c}};
        p.size = d.n * d.h * d.w * d.c;
        p.constant1 = p.constant2 = NULL;
        p.subtract = k % 4 == 3; /* SUB: the same kernel with the sign */
        p.left_shift = k % 10 == 9 ? 18 : 20; /* not TFLite's 20: the general form */
        /* which input has the multiplier 1/2: 0 input 1, 1 input 2, 2 both, 3 neither */
        const int32_t half = draw(0, 3);
        const int32_t m1 = (int32_t)((1u << 30) | (next() >> 2)), m2 = (int32_t)((1u << 30) | (next() >> 2));
        p.input1_multiplier = half == 0 || half == 2 ? 1 << 30 : m1;
        p.input1_shift = half == 0 || half == 2 ? 0 : -draw(1, 8);
        p.input2_multiplier = half == 1 || half == 2 ? 1 << 30 : m2;
        p.input2_shift = half == 1 || half == 2 ? 0 : -draw(1, 8);
        p.input1_offset = draw(-127, 128);
        p.input2_offset = draw(-127, 128);
        p.output_offset = draw(-128, 127);
        p.output_multiplier = (int32_t)((1u << 30) | (next() >> 2));
        p.output_shift = -draw(12, 26); /* beyond 23: the general form on DSP cores */
        if (next() & 1) {
            p.act = (tc_activation){TC_INT8_MIN, TC_INT8_MAX};
        } else {
            p.act = (tc_activation){draw(-128, 0), draw(0, 127)};
        }
        for (int32_t i = 0; i < size1; i++) {
            in1[i] = (int8_t)next();
        }
        for (int32_t i = 0; i < size2; i++) {
            in2[i] = (int8_t)next();
        }
        tc_add_s8(&p, in1, in2, out);
        int32_t o = 0;
        for (int32_t n = 0; n < d.n; n++) {
            for (int32_t h = 0; h < d.h; h++) {
                for (int32_t w = 0; w < d.w; w++) {
                    for (int32_t c = 0; c < d.c; c++, o++) {
                        const int32_t a = in1[n * s1.n + h * s1.h + w * s1.w + c * s1.c];
                        const int32_t b = in2[n * s2.n + h * s2.h + w * s2.w + c * s2.c];
                        if (out[o] != reference(&p, a, b)) {
                            report("tc_add_s8 (ADD or SUB) differs from TFLite Micro's arithmetic");
                            return 1;
                        }
                    }
                }
            }
        }
    }
    report("agree");
    return 0;
}
