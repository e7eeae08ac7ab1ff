/* MINIMUM of two int8 tensors, broadcast (tc_broadcast.h), on the raw values: TFLite Micro compares the
 * stored int8 values and ignores the quantization (the converter gives both inputs and the output the
 * same one). The row, with its DSP (SSUB8 + SEL) and Helium paths, and the entry point are tc_minmax.h's.
 * May run in place. */
#include "tc_kernels.h"
#include "tc_minmax.h"

TC_MINMAX_KERNEL(minimum, 0)
