/*
 * tinycompress runtime: the measurement harness of the emulator and the host.
 *
 * Reads N inputs from input.bin, runs one inference on each, appends each
 * output to output.bin and writes profile.txt in the format of tc_report.h. A model whose file gave
 * float32 outputs also writes them, from its own tc_model_output_float, to output_float.bin.
 * A model with adapters (tinycompress adapt) first selects the adapter whose index (int32, -1 for the base)
 * adapter.bin holds, when there is one, and writes "adapter INDEX + 1", "adapter_refused CODE" (the negated
 * status of a refused slot, after which the base runs alone) and "adapter_name NAME" (the slot's own) to
 * profile.txt.
 * Exit status 0 on success, 1 on an I/O or kernel error.
 */
#include "tc_harness_model.h"
#include "tc_platform.h"
#include "tc_report.h"

static void fail(const char *message)
{
    tc_platform_print(message);
    tc_platform_exit(1);
}

static void write_to_file(void *context, const char *text, uint32_t length)
{
    if (tc_platform_write(*(const int32_t *)context, text, length) < 0) {
        fail("tinycompress: cannot write profile.txt");
    }
}

#ifdef TC_MODEL_OUTPUT_FLOAT
static float output_values[TC_MODEL_OUTPUT_ELEMENTS];
#endif

int main(void)
{
    tc_measure_init();

    const int32_t input = tc_platform_open("input.bin", "rb");
    if (input < 0) {
        fail("tinycompress: cannot open input.bin");
    }
    const int32_t count = tc_platform_file_length(input) / TC_MODEL_INPUT_BYTES;
    const int32_t output = tc_platform_open("output.bin", "wb");
    int32_t profile_file = tc_platform_open("profile.txt", "wb");
    if (output < 0 || profile_file < 0) {
        fail("tinycompress: cannot create output.bin or profile.txt");
    }
#ifdef TC_MODEL_OUTPUT_FLOAT
    const int32_t output_float = tc_platform_open("output_float.bin", "wb");
    if (output_float < 0) {
        fail("tinycompress: cannot create output_float.bin");
    }
#endif
    tc_text profile = {.length = 0, .sink = write_to_file, .context = &profile_file};
    tc_report_header(&profile, (uint32_t)count);
#ifdef TC_MODEL_ADAPTERS
    const int32_t adapter_file = tc_platform_open("adapter.bin", "rb");
    if (adapter_file >= 0) {
        int32_t adapter = -1;
        if (tc_platform_read(adapter_file, &adapter, sizeof adapter) != (int32_t)sizeof adapter) {
            fail("tinycompress: short read from adapter.bin");
        }
        tc_platform_close(adapter_file);
        const tc_status status = tc_model_select_adapter((int)adapter);
        tc_text_field(&profile, "adapter", (uint64_t)(tc_model_adapter() + 1));
        tc_text_field(&profile, "adapter_refused", (uint64_t)(-(int32_t)status));
        if (status == TC_OK && adapter >= 0) {
            tc_text_put(&profile, "adapter_name ");
            tc_text_put(&profile, tc_model_adapter_slot_name((int)adapter));
            tc_text_put(&profile, "\n");
        }
    }
#endif

    for (int32_t i = 0; i < count; i++) {
        if (tc_platform_read(input, tc_model_input, TC_MODEL_INPUT_BYTES) != TC_MODEL_INPUT_BYTES) {
            fail("tinycompress: short read from input.bin");
        }
        uint64_t ticks;
        if (tc_measure_invoke(&ticks) != TC_OK) {
            fail("tinycompress: a kernel rejected its parameters");
        }
        if (tc_platform_write(output, tc_model_output, TC_MODEL_OUTPUT_BYTES) < 0) {
            fail("tinycompress: cannot write output.bin");
        }
#ifdef TC_MODEL_OUTPUT_FLOAT
        tc_model_output_float(output_values);
        if (tc_platform_write(output_float, output_values, sizeof output_values) < 0) {
            fail("tinycompress: cannot write output_float.bin");
        }
#endif
        tc_report_run(&profile, (uint32_t)i, ticks);
    }
    tc_report_stack(&profile);
    tc_text_flush(&profile);
    tc_platform_close(input);
    tc_platform_close(output);
#ifdef TC_MODEL_OUTPUT_FLOAT
    tc_platform_close(output_float);
#endif
    tc_platform_close(profile_file);
    return 0;
}
