/*
 * tinycompress runtime: tc_platform_print for a console that only writes
 * bytes (the UART consoles).
 */
#include <string.h>

#include "tc_platform.h"

void tc_platform_print(const char *text)
{
    tc_console_write(text, (uint32_t)strlen(text));
    tc_console_write("\n", 1);
}
