/*
 * tinycompress runtime: the measurement harness.
 *
 * Reads N inputs from input.bin, runs one inference on each, appends each
 * output to output.bin and writes profile.txt: the ticks of every inference
 * and every layer, the timer's own overhead (already subtracted) and the peak
 * stack. Exit status 0 on success, 1 on an I/O or kernel error.
 */
#include <string.h>

#include "model.h"
#include "tc_platform.h"
#include "tc_profile.h"

#define LINE_BYTES 512 /* one profile line; long models are written in pieces */

static uint32_t timer_overhead;         /* ticks of one empty start/stop pair */
static uint32_t layer_mark;             /* when the current layer started */
static uint32_t hook_ticks;             /* ticks spent inside the hooks this inference */
static uint32_t layer_ticks[TC_MODEL_LAYER_COUNT];

void tc_profile_begin(void)
{
    hook_ticks = 0;
    layer_mark = tc_timer_ticks();
}

void tc_profile_layer(int32_t index)
{
    const uint32_t end = tc_timer_ticks();
    layer_ticks[index] = end - layer_mark - timer_overhead;
    layer_mark = tc_timer_ticks();
    hook_ticks += layer_mark - end;
}

static void fail(const char *message)
{
    tc_platform_print(message);
    tc_platform_exit(1);
}

/* A small text buffer: no printf, whose code would count against the model's flash. */
typedef struct {
    char text[LINE_BYTES];
    uint32_t length;
    int32_t file;
} line_buffer;

static void flush(line_buffer *line)
{
    if (line->length && tc_platform_write(line->file, line->text, line->length) < 0) {
        fail("tinycompress: cannot write profile.txt");
    }
    line->length = 0;
}

static void put_text(line_buffer *line, const char *text)
{
    const uint32_t n = (uint32_t)strlen(text);
    if (line->length + n > LINE_BYTES) {
        flush(line);
    }
    memcpy(line->text + line->length, text, n);
    line->length += n;
}

static void put_number(line_buffer *line, uint32_t value)
{
    char digits[12];
    char *p = digits + sizeof digits - 1;
    *p = '\0';
    do {
        *--p = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    put_text(line, p);
}

static void put_field(line_buffer *line, const char *name, uint32_t value)
{
    put_text(line, name);
    put_text(line, " ");
    put_number(line, value);
    put_text(line, "\n");
}

int main(void)
{
    tc_timer_start();
    const uint32_t t0 = tc_timer_ticks();
    timer_overhead = tc_timer_ticks() - t0;

    const int32_t input = tc_platform_open("input.bin", "rb");
    if (input < 0) {
        fail("tinycompress: cannot open input.bin");
    }
    const int32_t count = tc_platform_file_length(input) / TC_MODEL_INPUT_BYTES;
    const int32_t output = tc_platform_open("output.bin", "wb");
    line_buffer profile = {.length = 0, .file = tc_platform_open("profile.txt", "wb")};
    if (output < 0 || profile.file < 0) {
        fail("tinycompress: cannot create output.bin or profile.txt");
    }
    put_field(&profile, "inferences", (uint32_t)count);
    put_field(&profile, "layers", TC_MODEL_LAYER_COUNT);
    put_field(&profile, "overhead", timer_overhead);

    for (int32_t i = 0; i < count; i++) {
        if (tc_platform_read(input, tc_model_input, TC_MODEL_INPUT_BYTES) != TC_MODEL_INPUT_BYTES) {
            fail("tinycompress: short read from input.bin");
        }
        const uint32_t start = tc_timer_ticks();
        const tc_status status = tc_model_invoke();
        const uint32_t total = tc_timer_ticks() - start - timer_overhead - hook_ticks;
        if (status != TC_OK) {
            fail("tinycompress: a kernel rejected its parameters");
        }
        if (tc_platform_write(output, tc_model_output, TC_MODEL_OUTPUT_BYTES) < 0) {
            fail("tinycompress: cannot write output.bin");
        }
        put_text(&profile, "run ");
        put_number(&profile, (uint32_t)i);
        put_text(&profile, " ");
        put_number(&profile, total);
        for (int32_t l = 0; l < TC_MODEL_LAYER_COUNT; l++) {
            put_text(&profile, " ");
            put_number(&profile, layer_ticks[l]);
        }
        put_text(&profile, "\n");
    }
    put_field(&profile, "stack_peak", tc_stack_peak());
    put_field(&profile, "stack_size", tc_stack_size());
    flush(&profile);
    tc_platform_close(input);
    tc_platform_close(output);
    tc_platform_close(profile.file);
    return 0;
}
