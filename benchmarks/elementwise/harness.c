/*
 * Element-wise benchmark harness (benchmarks/elementwise.py generates the cases): each case's kernel
 * from tinycompress and, where built with TFLite Micro, TFLite Micro's reference kernel on the same
 * inputs. Both are called through the same function pointer as an empty function, whose ticks are
 * subtracted, so what remains is the kernel alone (its setup and its loop over the elements). Under
 * QEMU's -icount the ticks count instructions exactly; each measurement is the least of two runs (a
 * SysTick wrap inside one adds its handler).
 *
 * Writes through semihosting: ticks.bin, per case four uint64 (empty call, ours, TFLite Micro's or 0, and
 * our kernel's status, 0 for TC_OK),
 * and ours.bin / tflm.bin, every case's output bytes one after the other. Exit status 0, or 1 when a
 * file cannot be written.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cases.h"
#include "tc_platform.h"

static uint8_t out_ours[BENCH_MAX_OUTPUT_BYTES] __attribute__((aligned(16)));
static uint8_t out_tflm[BENCH_MAX_OUTPUT_BYTES] __attribute__((aligned(16)));

static uint64_t measure(bench_fn fn, void *out, int32_t *status)
{
    uint64_t best = UINT64_MAX;
    for (int run = 0; run < 2; run++) {
        const uint64_t t0 = tc_timer_ticks();
        const int32_t s = fn(out);
        const uint64_t t = tc_timer_ticks() - t0;
        best = t < best ? t : best;
        *status |= s;
    }
    return best;
}

static int put(int32_t file, const void *data, uint32_t size)
{
    return file >= 0 && tc_platform_write(file, data, size) == (int32_t)size;
}

int main(void)
{
    tc_timer_start();
    const int32_t ticks = tc_platform_open("ticks.bin", "wb");
    const int32_t ours = tc_platform_open("ours.bin", "wb");
    const int32_t tflm = tc_platform_open("tflm.bin", "wb");
    int ok = 1;
    for (uint32_t i = 0; i < bench_case_count; i++) {
        const bench_case *c = &bench_cases[i];
        memset(out_ours, 0x55, c->output_bytes);   /* a kernel that writes nothing shows as a difference */
        memset(out_tflm, 0xAA, c->output_bytes);
        int32_t status = 0, ignored = 0;
        uint64_t row[4];
        row[0] = measure(bench_empty, out_ours, &ignored);
        row[1] = measure(c->ours, out_ours, &status);
        row[2] = c->tflm ? measure(c->tflm, out_tflm, &ignored) : 0;
        row[3] = (uint64_t)(uint32_t)status;
        ok &= put(ticks, row, sizeof row);
        ok &= put(ours, out_ours, c->output_bytes);
        ok &= put(tflm, out_tflm, c->output_bytes);
    }
    tc_platform_close(ticks);
    tc_platform_close(ours);
    tc_platform_close(tflm);
    if (!ok) {
        tc_platform_print("elementwise benchmark: could not write its results through semihosting");
    }
    return ok ? 0 : 1;
}

/* TFLite Micro's TFLITE_CHECK aborts; newlib's abort would pull in signals and a heap. */
void abort(void)
{
    tc_platform_print("elementwise benchmark: TFLite Micro's kernel aborted");
    tc_platform_exit(4);
}
