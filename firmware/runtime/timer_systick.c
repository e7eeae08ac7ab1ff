/*
 * tinycompress runtime: a 64-bit tick counter from SysTick.
 *
 * SysTick counts down 24 bits at the CPU clock; its interrupt adds each
 * wrap (a 32-bit count of wraps: 2^56 ticks in all). Under QEMU's -icount every instruction takes fixed virtual time, so
 * ticks are an exact, repeatable instruction count (DWT is not emulated).
 */
#include "tc_platform.h"
#include "tc_systick.h"

/* Tests build with -DTC_TIMER_START_WRAPS=N to start the count near 2^32 ticks, so that a short run
   crosses it; tc_timer_wraps is global so that a test's stand-in model can move the count on. */
#ifndef TC_TIMER_START_WRAPS
#define TC_TIMER_START_WRAPS 0u
#endif

volatile uint32_t tc_timer_wraps;

void SysTick_Handler(void)
{
    tc_timer_wraps++;
}

void tc_timer_start(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYST_PERIOD - 1;
    SYST_CVR = 0;
    tc_timer_wraps = TC_TIMER_START_WRAPS;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU;
}

uint64_t tc_timer_ticks(void)
{
    uint32_t high, low;
    do { /* re-read if the counter wrapped between the two reads */
        high = tc_timer_wraps;
        low = SYST_CVR;
    } while (high != tc_timer_wraps);
    return (uint64_t)high * SYST_PERIOD + (SYST_PERIOD - 1 - low);
}
