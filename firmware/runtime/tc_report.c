/*
 * tinycompress runtime: measuring inferences and writing the results as text.
 */
#include "tc_report.h"

#include <string.h>

#include "tc_harness_model.h"
#include "tc_platform.h"
#include "tc_profile.h"

/* 64-bit ticks throughout: 2^32 ticks are only 4.3 G instructions. */
static uint64_t timer_overhead;         /* ticks of one empty start/stop pair */
static uint64_t layer_mark;             /* when the current layer started */
static uint32_t hook_ticks;             /* ticks spent inside the hooks this inference (a few per layer) */
static uint64_t layer_ticks[TC_MODEL_LAYER_COUNT];
static uint32_t stack_before_paint;     /* the run's peak stack before tc_measure_invoke last repainted it */
static uint32_t stack_inference;        /* the deepest any inference went below its caller's stack pointer */

/* Called by the generated tc_model_invoke() when built with TC_PROFILE. */
void tc_profile_begin(void)
{
    hook_ticks = 0;
    layer_mark = tc_timer_ticks();
}

void tc_profile_layer(int32_t index)
{
    const uint64_t end = tc_timer_ticks();
    layer_ticks[index] = end - layer_mark - timer_overhead;
    layer_mark = tc_timer_ticks();
    hook_ticks += (uint32_t)(layer_mark - end);
}

void tc_measure_init(void)
{
    tc_timer_start();
    const uint64_t t0 = tc_timer_ticks();
    timer_overhead = tc_timer_ticks() - t0;
}

static uint32_t max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }

tc_status tc_measure_invoke(uint64_t *ticks)
{
    /* Repainting erases the marks of what ran before: keep their peak first. The stack pointer is the same
       at both calls (no call here passes arguments on the stack), so `mark` is the inference's top. */
    stack_before_paint = max_u32(stack_before_paint, tc_stack_peak());
    const uint32_t *const mark = tc_stack_paint();
    const uint64_t start = tc_timer_ticks();
    const tc_status status = tc_model_invoke();
    *ticks = tc_timer_ticks() - start - timer_overhead - hook_ticks;
    stack_inference = max_u32(stack_inference, tc_stack_used_below(mark));
    return status;
}

void tc_text_flush(tc_text *out)
{
    if (out->length) {
        out->sink(out->context, out->text, out->length);
    }
    out->length = 0;
}

void tc_text_put(tc_text *out, const char *text)
{
    for (uint32_t n = (uint32_t)strlen(text); n;) {
        if (out->length == TC_TEXT_BYTES) {
            tc_text_flush(out);
        }
        const uint32_t room = TC_TEXT_BYTES - out->length;
        const uint32_t chunk = n < room ? n : room;
        memcpy(out->text + out->length, text, chunk);
        out->length += chunk;
        text += chunk;
        n -= chunk;
    }
}

void tc_text_number(tc_text *out, uint64_t value)
{
    char digits[21]; /* 18446744073709551615 and the terminator */
    char *p = digits + sizeof digits - 1;
    /* Divided by 10 sixteen bits at a time: Cortex-M has no 64-bit divide, and this needs no libgcc. */
    uint16_t parts[4] = {(uint16_t)(value >> 48), (uint16_t)(value >> 32), (uint16_t)(value >> 16),
                         (uint16_t)value};
    *p = '\0';
    do {
        uint32_t rest = 0;
        for (int i = 0; i < 4; i++) {
            const uint32_t part = (rest << 16) | parts[i];
            parts[i] = (uint16_t)(part / 10);
            rest = part % 10;
        }
        *--p = (char)('0' + rest);
    } while (parts[0] | parts[1] | parts[2] | parts[3]);
    tc_text_put(out, p);
}

void tc_text_field(tc_text *out, const char *name, uint64_t value)
{
    tc_text_put(out, name);
    tc_text_put(out, " ");
    tc_text_number(out, value);
    tc_text_put(out, "\n");
}

void tc_text_hex(tc_text *out, const int8_t *bytes, uint32_t count)
{
    static const char digits[] = "0123456789abcdef";
    char pair[3] = {0, 0, 0};
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t b = (uint8_t)bytes[i];
        pair[0] = digits[b >> 4];
        pair[1] = digits[b & 0xF];
        tc_text_put(out, pair);
    }
}

void tc_report_header(tc_text *out, uint32_t inferences)
{
    tc_text_field(out, "inferences", inferences);
    tc_text_field(out, "layers", TC_MODEL_LAYER_COUNT);
    tc_text_field(out, "overhead", timer_overhead);
}

void tc_report_run(tc_text *out, uint32_t index, uint64_t ticks)
{
    tc_text_put(out, "run ");
    tc_text_number(out, index);
    tc_text_put(out, " ");
    tc_text_number(out, ticks);
    for (int32_t l = 0; l < TC_MODEL_LAYER_COUNT; l++) {
        tc_text_put(out, " ");
        tc_text_number(out, layer_ticks[l]);
    }
    tc_text_put(out, "\n");
}

void tc_report_stack(tc_text *out)
{
    tc_text_field(out, "stack_peak", max_u32(stack_before_paint, tc_stack_peak()));
    tc_text_field(out, "stack_size", tc_stack_size());
    tc_text_field(out, "stack_inference", stack_inference);
}
