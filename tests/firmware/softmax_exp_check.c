/* exp() as TFLite Micro's int8 softmax evaluates it for an input d below its row's largest: the difference
 * scaled into 5 integer bits, then gemmlowp's exp_on_negative_values (tc_softmax_fixedpoint.h). Prints one
 * value per d = 0 .. count - 1, for test_softmax.py to compare with the generator's table. */
#include <stdio.h>
#include <stdlib.h>

#include "tc_softmax_fixedpoint.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        return 2;
    }
    const int32_t multiplier = (int32_t)atol(argv[1]), shift = (int32_t)atol(argv[2]);
    const int32_t count = (int32_t)atol(argv[3]);
    for (int32_t d = 0; d < count; d++) {
        printf("%ld\n", (long)tc_exp_on_negative_values_q5(tc_requantize(-d, multiplier, shift)));
    }
    return 0;
}
