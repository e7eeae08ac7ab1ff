/*
 * tinycompress runtime: the console and timer under the Arduino framework,
 * for boards whose only serial port is USB (Arduino Nano 33 BLE, Raspberry
 * Pi Pico). The Arduino core owns reset, main() and SysTick, so ticks here
 * are microseconds from micros() and the stack is not measured.
 */
#include <Arduino.h>

#include "tc_platform.h"
#include "tc_report.h"

#define CONSOLE_BAUD 115200 /* ignored by USB serial, kept for a UART */

extern "C" {

void tc_console_write(const char *text, uint32_t length)
{
    Serial.write(reinterpret_cast<const uint8_t *>(text), length);
}

void tc_platform_print(const char *text) { Serial.println(text); }

void tc_platform_exit(int32_t status)
{
    (void)status;
    Serial.flush();
    for (;;) {
    }
}

void tc_timer_start(void) {}
uint64_t tc_timer_ticks(void) { return micros(); }
uint32_t tc_stack_peak(void) { return 0; }
uint32_t tc_stack_size(void) { return 0; }
uint32_t *tc_stack_paint(void) { return 0; }
uint32_t tc_stack_used_below(const uint32_t *mark)
{
    (void)mark;
    return 0;
}

} /* extern "C" */

void setup()
{
    Serial.begin(CONSOLE_BAUD);
    while (!Serial) { /* wait for the host to open the port, or the first lines are lost */
    }
    tc_serial_harness();
}

void loop() {}
