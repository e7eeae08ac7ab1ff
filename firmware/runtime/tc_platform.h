/*
 * tinycompress runtime: what the harness needs from the platform.
 *
 * The file functions serve harness.c: semihosting on the emulated Cortex-M
 * (files live in QEMU's working directory) and stdio for a native host build.
 * The console serves every harness: semihosting's console in the emulator, a
 * UART on a bare-metal board, USB serial under the Arduino framework.
 */
#ifndef TC_PLATFORM_H
#define TC_PLATFORM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Open a file in the host's working directory; mode "rb" or "wb". Returns a handle >= 0 or -1. */
int32_t tc_platform_open(const char *name, const char *mode);
/* Bytes actually read or written, or -1. */
int32_t tc_platform_read(int32_t handle, void *buffer, uint32_t size);
int32_t tc_platform_write(int32_t handle, const void *buffer, uint32_t size);
int32_t tc_platform_file_length(int32_t handle);
void tc_platform_close(int32_t handle);
/* Write text on the console, as it is (no newline added). */
void tc_console_write(const char *text, uint32_t length);
/* Print a line on the console. */
void tc_platform_print(const char *text);
/* End the program; the status becomes the emulator's exit code. */
void tc_platform_exit(int32_t status) __attribute__((noreturn));

/* A free-running 64-bit tick counter (the CPU clock on Cortex-M; 0 on the host). */
void tc_timer_start(void);
uint64_t tc_timer_ticks(void);

/* Bare real boards (firmware/runtime/clock_*.c): set the board's top clock at reset, and the core
   clock in Hz it reached (TC_CORE_CLOCK_HZ of tc_clock_config.h, or less on an older part revision). */
void tc_clock_init(void);
uint32_t tc_core_clock_hz(void);

/* Peak stack use in bytes, from the pattern painted at reset (0 where not measured). */
uint32_t tc_stack_peak(void);
uint32_t tc_stack_size(void);
/* Paint the free stack below the caller's stack pointer and return that pointer (NULL where not measured);
   tc_stack_used_below(it) is then the deepest the stack has gone below it since, in bytes. */
uint32_t *tc_stack_paint(void);
uint32_t tc_stack_used_below(const uint32_t *mark);

#ifdef __cplusplus
}
#endif

#endif /* TC_PLATFORM_H */
