/* The folded requantization against gemmlowp's two roundings, step by step: edge values of the
 * accumulator times every multiplier class and shift, then random triples; the same for its 32-bit form
 * (tc_requantize_narrow, what cores without a long multiply run), and that form's 16x16-product high
 * multiply (tc_mul_high_narrow) against the 64-bit one on edges and random operands. The same values check
 * the algebra of the DSP cores' five-instruction form (tc_dsp_requantize_s8 in tc_dsp.h: SMMLAR,
 * ADD, QADD, ASR, SSAT), emulated here bit for bit, against the reference plus offset, saturated.
 * Then ADD's rescaling of an input (tc_rescale_apply, its DSP form, tc_rescale_half) against the
 * reference on every int8 input and offset. Prints the first disagreement and exits 1, or "agree" and 0. */
#include <stdarg.h>
#include <stdio.h>

#include "tc_fixedpoint.h"
#ifdef __arm__
#include "tc_platform.h"
#endif

#ifndef RANDOM_TRIPLES /* these three smaller where the check runs in QEMU */
#define RANDOM_TRIPLES 20000000
#endif
#ifndef RANDOM_RESCALES
#define RANDOM_RESCALES 3000
#endif
#ifndef RESCALE_OFFSET_STEP
#define RESCALE_OFFSET_STEP 1
#endif

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint32_t next(void) /* xorshift64* */
{
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (uint32_t)((state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* printf on the host; in QEMU the format alone, through the board's console (printf's code needs a heap) */
static void say(const char *format, ...)
{
#ifdef __arm__
    tc_platform_print(format);
#else
    va_list args;
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
#endif
}

/* tc_dsp_quant_make and tc_dsp_requantize_s8, instruction by instruction, in portable C. */
static int32_t dsp_form(int32_t x, int32_t multiplier, int32_t shift, int32_t offset)
{
    const int32_t n = -shift, multiplier2 = (int32_t)((uint32_t)multiplier << 1);
    const int32_t rounding = (int32_t)((1u << (n - 1)) + ((uint32_t)offset << n));
    /* SMMLAR y, x, m2, x: bits 63..32 of (x << 32) + x * m2 + 2^31 */
    const int64_t wide = (int64_t)((uint64_t)(int64_t)x << 32) + (int64_t)x * multiplier2 + (1LL << 31);
    int32_t y = (int32_t)(wide >> 32);
    y += y >> 31;
    const int64_t sum = (int64_t)y + rounding; /* QADD */
    const int32_t saturated = sum > INT32_MAX ? INT32_MAX : sum < INT32_MIN ? INT32_MIN : (int32_t)sum;
    return tc_clamp_i32(saturated >> n, TC_INT8_MIN, TC_INT8_MAX); /* SSAT #8 */
}

static int check(int32_t x, int32_t multiplier, int32_t shift)
{
    if (multiplier >= (1 << 30) && shift <= -1 && shift >= -23) { /* tc_dsp_quant_fits */
        for (int32_t offset = -128; offset <= 127; offset += 85) {
            const int32_t want = tc_clamp_i32(tc_requantize_reference(x, multiplier, shift) + offset,
                                              TC_INT8_MIN, TC_INT8_MAX);
            if (dsp_form(x, multiplier, shift, offset) != want) {
                say("DSP form: x=%ld multiplier=%ld shift=%ld offset=%ld: %ld, want %ld\n", (long)x,
                       (long)multiplier, (long)shift, (long)offset,
                       (long)dsp_form(x, multiplier, shift, offset), (long)want);
                return 1;
            }
        }
    }
    const int32_t want = tc_requantize_reference(x, multiplier, shift);
    const int32_t got = tc_requantize_wide(x, multiplier, shift);
    const int32_t narrow = tc_requantize_narrow(x, multiplier, shift);
    if (got != want || narrow != want || tc_requantize(x, multiplier, shift) != want) {
        say("x=%ld multiplier=%ld shift=%ld: %ld (32-bit form %ld), want %ld\n", (long)x, (long)multiplier,
               (long)shift, (long)got, (long)narrow, (long)want);
        return 1;
    }
    return 0;
}

/* tc_mul_high_narrow against the 64-bit value, where that fits an int32 (its contract). */
static int check_high(int32_t x, uint32_t m, int32_t a_hi, uint32_t a_mid)
{
    const int64_t v = (int64_t)x * (int64_t)m + (int64_t)a_mid * 65536;
    const int64_t want = (v - (((v % 4294967296LL) + 4294967296LL) % 4294967296LL)) / 4294967296LL + a_hi;
    if (want < INT32_MIN || want > INT32_MAX) {
        return 0;
    }
    const int32_t got = tc_mul_high_narrow(x, m & 0xFFFFu, m >> 16, a_hi, a_mid);
    if (got != want) {
        say("high x=%ld m=%lu a_hi=%ld a_mid=%lu: %ld, want %ld\n", (long)x, (unsigned long)m, (long)a_hi,
            (unsigned long)a_mid, (long)got, (long)want);
        return 1;
    }
    return 0;
}

/* tc_rescale_apply_dsp (tc_dsp.h) in portable C: SMMLAR y, x, 2M - 2^32, x, then the rounding divide. */
static int32_t rescale_dsp_form(const tc_rescale *r, int32_t q)
{
    const int32_t x = (q + r->offset) * (1 << TC_RESCALE_LEFT_SHIFT);
    const int64_t wide = (int64_t)((uint64_t)(int64_t)x << 32) + (int64_t)x * r->multiplier2 + (1LL << 31);
    return tc_rescale_divide(r, (int32_t)(wide >> 32));
}

/* Every int8 input with every offset in [-128, 128] (or one in 7, for the random parameters). */
static int check_rescale(int32_t multiplier, int32_t shift, int32_t offset_step)
{
    if (!tc_rescale_fits(0, TC_RESCALE_LEFT_SHIFT, multiplier, shift)) {
        return 0;
    }
    for (int32_t offset = -128; offset <= 128; offset += offset_step) {
        const tc_rescale r = tc_rescale_make(offset, multiplier, shift);
        for (int32_t q = -128; q <= 127; q++) {
            const int32_t x = (q + offset) * (1 << TC_RESCALE_LEFT_SHIFT);
            const int32_t want = tc_requantize_reference(x, multiplier, shift);
            const int32_t got = tc_rescale_apply(&r, q);
            const int32_t dsp = multiplier >= (1 << 30) ? rescale_dsp_form(&r, q) : want;
            const int32_t half = tc_rescale_is_half(multiplier, shift) ? tc_rescale_half(q, offset) : want;
            if (got != want || dsp != want || half != want) {
                say("rescale q=%ld offset=%ld multiplier=%ld shift=%ld: %ld (DSP %ld, half %ld), "
                       "want %ld\n",
                       (long)q, (long)offset, (long)multiplier, (long)shift, (long)got, (long)dsp, (long)half,
                       (long)want);
                return 1;
            }
        }
    }
    return 0;
}

int main(void)
{
    const int32_t edges[] = {INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -65537, -32768, -257,
                             -129, -128, -3, -2, -1, 0, 1, 2, 3, 127, 128, 255, 32767, 65536,
                             1 << 30, INT32_MAX - 1, INT32_MAX};
    const int32_t multipliers[] = {0, 1 << 30, (1 << 30) + 1, 1518500250, INT32_MAX - 1, INT32_MAX};
    const int n_edges = sizeof edges / sizeof edges[0], n_mult = sizeof multipliers / sizeof multipliers[0];
    const uint32_t m_edges[] = {0, 1, 0xFFFFu, 0x10000u, 0x40000000u, 0x7FFFFFFFu, 0x80000000u, 0xFFFEFFFFu,
                                0xFFFFFFFFu};
    const uint32_t a_mids[] = {0, 1, 1u << 14, 1u << 15, 3u << 14, 0xFFFFu};
    const int32_t a_his[] = {0, 1, -1, 1 << 29, -(1 << 29)};
    for (int i = 0; i < n_edges; i++) {
        for (int j = 0; j < 9; j++) {
            for (int k = 0; k < 6; k++) {
                for (int h = 0; h < 5; h++) {
                    for (int32_t d = -2; d <= 2; d++) { /* around each edge, wrapping */
                        const int32_t x = (int32_t)((uint32_t)edges[i] + (uint32_t)d);
                        if (check_high(x, m_edges[j] + (uint32_t)d, a_his[h], a_mids[k])) {
                            return 1;
                        }
                    }
                }
            }
        }
    }
    for (long i = 0; i < RANDOM_TRIPLES; i++) {
        const int32_t x = (int32_t)next() >> (next() % 32);
        const uint32_t m = next() >> (next() % 32), a_mid = next() & 0xFFFFu;
        if (check_high(x, m, (int32_t)next() >> (1 + next() % 31), a_mid)) {
            return 1;
        }
    }
    for (int32_t shift = -31; shift <= 7; shift++) { /* a left shift: the reference, or the 32-bit form */
        for (int i = 0; i < n_edges; i++) {
            for (int j = 0; j < n_mult; j++) {
                for (int32_t d = -2; d <= 2; d++) { /* around each edge (wrapping is fine: still an int32) */
                    if (check((int32_t)((uint32_t)edges[i] + (uint32_t)d), multipliers[j], shift)) {
                        return 1;
                    }
                }
            }
        }
    }
    for (long i = 0; i < RANDOM_TRIPLES; i++) {
        const int32_t magnitude = (int32_t)(next() % 32); /* accumulators of every size */
        const int32_t x = (int32_t)next() >> magnitude;
        const int32_t multiplier = (int32_t)((1u << 30) | (next() >> 2));
        const int32_t shift = (int32_t)(next() % 40) - 31;
        if (check(x, multiplier, shift)) {
            return 1;
        }
    }
    const int32_t rescale_multipliers[] = {0, 1, 65535, 65536, 1 << 30, (1 << 30) + 1, 1518500250,
                                           INT32_MAX - 1, INT32_MAX};
    for (int32_t shift = -25; shift <= 0; shift++) {
        for (int j = 0; j < (int)(sizeof rescale_multipliers / sizeof rescale_multipliers[0]); j++) {
            if (check_rescale(rescale_multipliers[j], shift, RESCALE_OFFSET_STEP)) {
                return 1;
            }
        }
    }
    for (long i = 0; i < RANDOM_RESCALES; i++) {
        if (check_rescale((int32_t)(next() >> 1), -(int32_t)(1 + next() % 24), 7)) {
            return 1;
        }
    }
    say("agree\n");
    return 0;
}
