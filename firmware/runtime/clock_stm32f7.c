/*
 * tinycompress runtime: the STM32F74x/75x at its top clock, 216 MHz, from the PLL in over-drive.
 *
 * RM0385 rev 8 (STM32F75xxx and STM32F74xxx):
 *   4.1.4 "Voltage regulator", "Entering Over-drive mode": with HSE (or HSI) as the system clock,
 *   configure and enable the PLL, set ODEN and wait for ODRDY, set ODSWEN and wait for ODSWRDY, then
 *   set the wait states and prescalers, wait for the PLL to lock and switch to it; above 180 MHz the
 *   over-drive is required. 4.4.1 PWR_CR1: VOS = 11 (scale 1, the reset value, written while the
 *   PLL is off); 4.4.2 PWR_CSR1: ODRDY, ODSWRDY;
 *   5.3.1 RCC_CR: HSE on (HSEBYP for an external clock), wait for HSERDY;
 *   5.3.2 RCC_PLLCFGR: f = source / M * N / P;
 *   3.3.2 "Read access latency", Table 5: 30 MHz per wait state at 2.7-3.6 V (7 at 216 MHz);
 *   3.7.1 FLASH_ACR: LATENCY, PRFTEN, ARTEN (the ART serves the ITCM interface; code at 0x08000000,
 *   as linked here, goes through the AXIM interface and the L1 caches);
 *   5.3.3 RCC_CFGR: APB1 <= 54 MHz, APB2 <= 108 MHz, SW = PLL.
 * Then the Cortex-M7's L1 instruction and data caches (clock_stm32.h).
 */
#include "clock_stm32f4f7.h"
#include "tc_platform.h"

#define PWR_CR1 REG(0x40007000u)
#define PWR_CSR1 REG(0x40007004u)
#define PWR_CR1_VOS_SCALE1 (3u << 14)
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)
#define OVERDRIVE_ABOVE_HZ 180000000u
#define ACR_LATENCY(ws) FIELD(ws, 0, 4)
#define ACR_PRFTEN (1u << 8)
#define ACR_ARTEN (1u << 9)

uint32_t tc_core_clock_hz(void)
{
    return TC_CORE_CLOCK_HZ;
}

void tc_clock_init(void)
{
    rcc_power_interface_on();
    PWR_CR1 |= PWR_CR1_VOS_SCALE1;
    rcc_pll_start();
    if (TC_CORE_CLOCK_HZ > OVERDRIVE_ABOVE_HZ) {
        PWR_CR1 |= PWR_CR1_ODEN;
        WAIT_SET(PWR_CSR1, PWR_CSR1_ODRDY);
        PWR_CR1 |= PWR_CR1_ODSWEN;
        WAIT_SET(PWR_CSR1, PWR_CSR1_ODSWRDY);
    }
    rcc_switch_to_pll(ACR_LATENCY(TC_FLASH_WAIT_STATES) | ACR_PRFTEN | ACR_ARTEN);
    cortex_m7_caches_enable();
}
