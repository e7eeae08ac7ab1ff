/*
 * The float helpers of a generated float-I/O model, checked in the emulator (tests/test_float_io.py).
 * For each input of input_float.bin (TC_MODEL_INPUT_ELEMENTS floats) it writes
 *   quantized.bin    tc_model_input after tc_model_input_float: our QUANTIZE;
 *   loop.bin         TFLite Micro's reference loop, as this core's compiler and C library run it:
 *                    (int32_t)roundf(x / scale) + zero_point, clamped (the int32 cast saturating or not);
 *   output_float.bin tc_model_run_float's float outputs: our DEQUANTIZE after the inference.
 */
#include <math.h>

#include "model.h"
#include "tc_platform.h"

static float features[TC_MODEL_INPUT_ELEMENTS];
static float values[TC_MODEL_OUTPUT_ELEMENTS];
static int8_t loop[TC_MODEL_INPUT_ELEMENTS];

static void fail(const char *message)
{
    tc_platform_print(message);
    tc_platform_exit(1);
}

int main(void)
{
    const int32_t input = tc_platform_open("input_float.bin", "rb");
    const int32_t quantized = tc_platform_open("quantized.bin", "wb");
    const int32_t reference = tc_platform_open("loop.bin", "wb");
    const int32_t output = tc_platform_open("output_float.bin", "wb");
    if (input < 0 || quantized < 0 || reference < 0 || output < 0) {
        fail("float_io_check: cannot open its files");
    }
    const int32_t count = tc_platform_file_length(input) / (int32_t)sizeof features;
    for (int32_t n = 0; n < count; n++) {
        if (tc_platform_read(input, features, sizeof features) != (int32_t)sizeof features) {
            fail("float_io_check: short read");
        }
        tc_model_input_float(features);
        for (int32_t i = 0; i < TC_MODEL_INPUT_ELEMENTS; i++) {
            int32_t q = (int32_t)roundf(features[i] / TC_MODEL_INPUT_SCALE) + TC_MODEL_INPUT_ZERO_POINT;
            q = q < -128 ? -128 : q;
            loop[i] = (int8_t)(q > 127 ? 127 : q);
        }
        if (tc_platform_write(quantized, tc_model_input, TC_MODEL_INPUT_BYTES) < 0 ||
            tc_platform_write(reference, loop, sizeof loop) < 0) {
            fail("float_io_check: cannot write");
        }
        if (tc_model_run_float(features, values) != TC_OK) {
            fail("float_io_check: the inference failed");
        }
        if (tc_platform_write(output, values, sizeof values) < 0) {
            fail("float_io_check: cannot write");
        }
    }
    tc_platform_close(input);
    tc_platform_close(quantized);
    tc_platform_close(reference);
    tc_platform_close(output);
    return 0;
}
