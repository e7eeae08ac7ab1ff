/*
 * tinycompress runtime: the platform on a development machine, for fast
 * differential tests of the generated C (no timing, no stack measurement).
 */
#include <stdio.h>
#include <stdlib.h>

#include "tc_platform.h"

#define MAX_FILES 8

static FILE *files[MAX_FILES];

int32_t tc_platform_open(const char *name, const char *mode)
{
    for (int32_t h = 0; h < MAX_FILES; h++) {
        if (files[h] == NULL) {
            files[h] = fopen(name, mode);
            return files[h] ? h : -1;
        }
    }
    return -1;
}

int32_t tc_platform_read(int32_t handle, void *buffer, uint32_t size)
{
    return (int32_t)fread(buffer, 1, size, files[handle]);
}

int32_t tc_platform_write(int32_t handle, const void *buffer, uint32_t size)
{
    return fwrite(buffer, 1, size, files[handle]) == size ? (int32_t)size : -1;
}

int32_t tc_platform_file_length(int32_t handle)
{
    const long here = ftell(files[handle]);
    fseek(files[handle], 0, SEEK_END);
    const long length = ftell(files[handle]);
    fseek(files[handle], here, SEEK_SET);
    return (int32_t)length;
}

void tc_platform_close(int32_t handle)
{
    fclose(files[handle]);
    files[handle] = NULL;
}

void tc_console_write(const char *text, uint32_t length) { fwrite(text, 1, length, stdout); }
void tc_platform_print(const char *text) { puts(text); }
void tc_platform_exit(int32_t status) { exit(status); }
void tc_timer_start(void) {}
uint64_t tc_timer_ticks(void) { return 0; }
uint32_t tc_stack_peak(void) { return 0; }
uint32_t tc_stack_size(void) { return 0; }
uint32_t *tc_stack_paint(void) { return 0; }
uint32_t tc_stack_used_below(const uint32_t *mark)
{
    (void)mark;
    return 0;
}
