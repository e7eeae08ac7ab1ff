/*
 * tinycompress runtime: the STM32F405/407 at its top clock, 168 MHz, from the PLL.
 *
 * RM0090 rev 19 (STM32F405/415, F407/417, F427/437, F429/439):
 *   5.1.3 / 5.4.1 PWR_CR: VOS = 1 (scale 1), needed above 144 MHz, written while the PLL is off;
 *   6.2.2 / 6.3.1 RCC_CR: HSE on (HSEBYP for an external clock), wait for HSERDY;
 *   3.5.1 "Relation between CPU clock frequency and Flash memory read time", Table 10, and
 *   3.9.1 FLASH_ACR: the wait states (30 MHz each at 2.7-3.6 V) with the prefetch buffer and the
 *   instruction and data caches of the ART accelerator, read back before the clock rises;
 *   6.3.3 RCC_CFGR: APB1 <= 42 MHz, APB2 <= 84 MHz;
 *   6.3.2 RCC_PLLCFGR: f = source / M * N / P; 6.3.1 PLLON, wait for PLLRDY;
 *   6.3.3 RCC_CFGR SW = PLL, wait for SWS = PLL.
 * The factors come from tc_clock_config.h (the board file); tests/test_clocks.py checks them.
 */
#include "clock_stm32f4f7.h"
#include "tc_platform.h"

#define PWR_CR REG(0x40007000u)
#define PWR_CR_VOS_SCALE1 (1u << 14)
#define ACR_LATENCY(ws) FIELD(ws, 0, 3)
#define ACR_PRFTEN (1u << 8)
#define ACR_ICEN (1u << 9)
#define ACR_DCEN (1u << 10)

uint32_t tc_core_clock_hz(void)
{
    return TC_CORE_CLOCK_HZ;
}

void tc_clock_init(void)
{
    rcc_power_interface_on();
    PWR_CR |= PWR_CR_VOS_SCALE1;
    rcc_pll_start();
    rcc_switch_to_pll(ACR_LATENCY(TC_FLASH_WAIT_STATES) | ACR_PRFTEN | ACR_ICEN | ACR_DCEN);
}
