/*
 * tinycompress runtime: the serial harness, for a board with nothing but a
 * console (a real board's UART or USB serial; semihosting in the emulator).
 *
 * Runs the test inputs built into flash (test_inputs.c) and prints, between a
 * "tinycompress begin" and a "tinycompress end" line, the lines of tc_report.h
 * with each inference's output bytes in hex, so a host can check them against
 * the reference interpreter. With TC_TEST_ADAPTER (test_inputs.h), it first selects that adapter slot and
 * prints "adapter INDEX + 1" and "adapter_refused -STATUS", as harness.c does.
 */
#include <string.h>

#include "tc_harness_model.h"
#include "tc_platform.h"
#include "tc_report.h"
#include "test_inputs.h"

static void write_to_console(void *context, const char *text, uint32_t length)
{
    (void)context;
    tc_console_write(text, length);
}

int tc_serial_harness(void)
{
    tc_measure_init();
    tc_text out = {.length = 0, .sink = write_to_console, .context = 0};
    tc_text_put(&out, "tinycompress begin\n");
    tc_report_header(&out, TC_TEST_INPUT_COUNT);
#if defined(TC_MODEL_ADAPTERS) && defined(TC_TEST_ADAPTER)
    const tc_status selected = tc_model_select_adapter(TC_TEST_ADAPTER);
    tc_text_field(&out, "adapter", (uint64_t)(tc_model_adapter() + 1));
    tc_text_field(&out, "adapter_refused", (uint64_t)(-(int32_t)selected));
#endif
    for (uint32_t i = 0; i < TC_TEST_INPUT_COUNT; i++) {
        memcpy(tc_model_input, tc_test_inputs[i], TC_MODEL_INPUT_BYTES);
        uint64_t ticks;
        if (tc_measure_invoke(&ticks) != TC_OK) {
            tc_text_put(&out, "error a kernel rejected its parameters\n");
            tc_text_flush(&out);
            return 1;
        }
        tc_text_put(&out, "output ");
        tc_text_number(&out, i);
        tc_text_put(&out, " ");
        tc_text_hex(&out, tc_model_output, TC_MODEL_OUTPUT_BYTES);
        tc_text_put(&out, "\n");
        tc_report_run(&out, i, ticks);
    }
    tc_report_stack(&out);
    tc_text_put(&out, "tinycompress end\n");
    tc_text_flush(&out);
    return 0;
}

#if !defined(ARDUINO) /* the Arduino core owns main() and calls setup() instead */
int main(void)
{
    return tc_serial_harness();
}
#endif
