/* What benchmarks/elementwise.py generates for harness.c: one case per row of its table. */
#ifndef BENCH_CASES_H
#define BENCH_CASES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs one kernel on the case's inputs (constants in flash), writing its output to `out`; returns the
 * kernel's status (tc_status: 0 is TC_OK). */
typedef int32_t (*bench_fn)(void *out);

typedef struct {
    uint32_t output_bytes;
    bench_fn ours;
    bench_fn tflm; /* TFLite Micro's reference kernel, or NULL in a build without TFLite Micro */
} bench_case;

extern const bench_case bench_cases[];
extern const uint32_t bench_case_count;

/* Does nothing, in a file of its own: the ticks of the call itself, subtracted from every measurement. */
int32_t bench_empty(void *out);

#ifdef __cplusplus
}
#endif

#endif /* BENCH_CASES_H */
