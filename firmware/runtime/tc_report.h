/*
 * tinycompress runtime: measuring inferences and writing the results as text.
 *
 * Both harnesses write the same lines, to a file through semihosting
 * (harness.c) or to a serial console (harness_serial.c):
 *
 *   inferences N          how many inputs follow
 *   layers L              values per run line after the total
 *   overhead T            ticks of one empty measurement (already subtracted)
 *   output I HEX          the output bytes of inference I (serial harness only)
 *   run I TOTAL T0 T1 ..  ticks of inference I, in total and per layer (64-bit counts): core clock cycles on a
 *                         bare real board (timer_cycles.c), SysTick ticks under QEMU -icount (timer_systick.c)
 *   stack_peak B          peak stack use of the whole run in bytes (0 where not measured)
 *   stack_size B
 *   stack_inference B     the deepest an inference went below the harness's stack pointer (0: not measured)
 *
 * No printf: its code would count against the model's flash.
 */
#ifndef TC_REPORT_H
#define TC_REPORT_H

#include <stdint.h>

#include "tc_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TC_TEXT_BYTES 256 /* one buffered stretch of text; longer output goes out in pieces */

/* Where finished text goes: a file, a UART, semihosting's console. */
typedef void (*tc_text_sink)(void *context, const char *text, uint32_t length);

typedef struct {
    char text[TC_TEXT_BYTES];
    uint32_t length;
    tc_text_sink sink;
    void *context;
} tc_text;

void tc_text_put(tc_text *out, const char *text);
void tc_text_number(tc_text *out, uint64_t value);
void tc_text_field(tc_text *out, const char *name, uint64_t value);
void tc_text_hex(tc_text *out, const int8_t *bytes, uint32_t count);
void tc_text_flush(tc_text *out);

/* Start the timer and measure its own overhead. */
void tc_measure_init(void);
/* Run one inference; *ticks receives its duration without the hooks' own cost. */
tc_status tc_measure_invoke(uint64_t *ticks);

/* The "inferences", "layers" and "overhead" lines. */
void tc_report_header(tc_text *out, uint32_t inferences);
/* One "run" line: the total and every layer of the inference just measured. */
void tc_report_run(tc_text *out, uint32_t index, uint64_t ticks);
/* The "stack_peak", "stack_size" and "stack_inference" lines. */
void tc_report_stack(tc_text *out);

/* The serial harness (harness_serial.c): run the built-in test inputs, print every line. */
int tc_serial_harness(void);

#ifdef __cplusplus
}
#endif

#endif /* TC_REPORT_H */
