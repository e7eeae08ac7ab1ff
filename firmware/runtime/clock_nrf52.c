/*
 * tinycompress runtime: the nRF52840's clocks. The CPU always runs at 64 MHz; what start-up chooses
 * is the source of HFCLK and the cache in front of the flash.
 *
 * nRF52840 Product Specification v1.7:
 *   6.4.2 "HFCLK clock controller", 6.4.6 registers: TASKS_HFCLKSTART starts the 64 MHz crystal
 *   oscillator (HFXO, from the 32 MHz crystal), EVENTS_HFCLKSTARTED when it runs; then HFCLKSTAT
 *   shows SRC = Xtal. The internal RC (HFINT) it replaces is +-1.5 %; the UART's baud comes from HFCLK.
 *   6.10 NVMC, register ICACHECNF: CACHEEN turns the instruction cache on (off at reset).
 */
#include <stdint.h>

#include "tc_clock_config.h"
#include "tc_platform.h"

#define REG(address) (*(volatile uint32_t *)(address))
#define CLOCK_BASE 0x40000000u
#define CLOCK_TASKS_HFCLKSTART REG(CLOCK_BASE + 0x000u)
#define CLOCK_EVENTS_HFCLKSTARTED REG(CLOCK_BASE + 0x100u)
#define NVMC_ICACHECNF REG(0x4001E000u + 0x540u)
#define ICACHECNF_CACHEEN (1u << 0)

uint32_t tc_core_clock_hz(void)
{
    return TC_CORE_CLOCK_HZ;
}

void tc_clock_init(void)
{
    CLOCK_EVENTS_HFCLKSTARTED = 0;
    CLOCK_TASKS_HFCLKSTART = 1;
    while (!CLOCK_EVENTS_HFCLKSTARTED) {
    }
    NVMC_ICACHECNF |= ICACHECNF_CACHEEN;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}
