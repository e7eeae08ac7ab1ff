/*
 * tinycompress runtime: the STM32L4R5/L4S5 (L4+) at its top clock, 120 MHz, from the PLL.
 *
 * RM0432 rev 9 (STM32L4+ Series):
 *   5.1.8 "Dynamic voltage scaling management": range 1 (PWR_CR1 VOS = 01, the reset value) in boost
 *   mode (5.4.19 PWR_CR5 R1MODE = 0) above 80 MHz; wait for VOSF = 0 (5.4.6 PWR_SR2);
 *   6.4.1 RCC_CR: HSI16 on, wait for HSIRDY;
 *   3.3.3 "Read access latency", Table 12 (range 1 boost: 20 MHz per wait state, 5 at 120 MHz), and
 *   3.7.1 FLASH_ACR: LATENCY, PRFTEN, ICEN, DCEN, read back before the clock rises;
 *   6.4.4 RCC_PLLCFGR: f = HSI16 / PLLM * PLLN / PLLR, only PLLR's output (PLLCLK) on;
 *   6.4.3 RCC_CFGR: SW = PLL, wait for SWS; APB1 and APB2 at HCLK. Going above 80 MHz in range 1
 *   boost mode, the AHB prescaler divides by 2 across the switch and for at least 1 us after it
 *   (RM0432 6.2.7 "Clock source frequency versus voltage scaling", as STM32CubeL4's
 *   HAL_RCC_ClockConfig does).
 */
#include "clock_stm32.h"
#include "tc_platform.h"

#define RCC_BASE 0x40021000u
#define RCC_CR REG(RCC_BASE + 0x00u)
#define RCC_CFGR REG(RCC_BASE + 0x08u)
#define RCC_PLLCFGR REG(RCC_BASE + 0x0Cu)
#define RCC_APB1ENR1 REG(RCC_BASE + 0x58u)
#define PWR_BASE 0x40007000u
#define PWR_CR1 REG(PWR_BASE + 0x00u)
#define PWR_SR2 REG(PWR_BASE + 0x14u)
#define PWR_CR5 REG(PWR_BASE + 0x80u)
#define FLASH_ACR REG(0x40022000u)

#define CR_HSION (1u << 8)
#define CR_HSIRDY (1u << 10)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define APB1ENR1_PWREN (1u << 28)
#define PWR_CR1_VOS_MASK (3u << 9)
#define PWR_CR1_VOS_RANGE1 (1u << 9)
#define PWR_SR2_VOSF (1u << 10)
#define PWR_CR5_R1MODE (1u << 8)                 /* 0: range 1 boost mode */
#define BOOST_ABOVE_HZ 80000000u
#define PLLCFGR_SRC_HSI16 2u
#define PLLCFGR_SRC_HSE 3u
#define PLLCFGR_M(m) FIELD((m) - 1u, 4, 4)
#define PLLCFGR_N(n) FIELD(n, 8, 7)
#define PLLCFGR_REN (1u << 24)
#define PLLCFGR_R(r) FIELD((r) / 2u - 1u, 25, 2) /* 00: /2, 01: /4, 10: /6, 11: /8 */
#define CFGR_SW_MASK 3u
#define CFGR_SW_PLL 3u
#define CFGR_SWS_MASK (3u << 2)
#define CFGR_SWS_PLL (3u << 2)
#define CFGR_HPRE(d) FIELD(HPRE_CODE(d), 4, 4)
#define CFGR_PPRE1(d) FIELD(PPRE_CODE(d), 8, 3)
#define CFGR_PPRE2(d) FIELD(PPRE_CODE(d), 11, 3)
#define ACR_LATENCY(ws) FIELD(ws, 0, 4)
#define ACR_PRFTEN (1u << 8)
#define ACR_ICEN (1u << 9)
#define ACR_DCEN (1u << 10)
#define ONE_US_AT_MOST_CYCLES (TC_CORE_CLOCK_HZ / 1000000u) /* the loop's iterations take more each */
#define HCLK_CFGR(ahb) (CFGR_HPRE(ahb) | CFGR_PPRE1(TC_APB1_DIV) | CFGR_PPRE2(TC_APB2_DIV))

uint32_t tc_core_clock_hz(void)
{
    return TC_CORE_CLOCK_HZ;
}

void tc_clock_init(void)
{
    RCC_APB1ENR1 |= APB1ENR1_PWREN;
    (void)RCC_APB1ENR1;
    PWR_CR1 = (PWR_CR1 & ~PWR_CR1_VOS_MASK) | PWR_CR1_VOS_RANGE1;
    if (TC_CORE_CLOCK_HZ > BOOST_ABOVE_HZ) {
        PWR_CR5 &= ~PWR_CR5_R1MODE;
    }
    WAIT_CLEAR(PWR_SR2, PWR_SR2_VOSF);

#if TC_CLOCK_FROM_HSE
#error "clock_stm32l4.c: only HSI16 feeds the PLL here (the NUCLEO-L4R5ZI has no HSE fitted)"
#endif
    RCC_CR |= CR_HSION;
    WAIT_SET(RCC_CR, CR_HSIRDY);
    flash_access_set(&FLASH_ACR, ACR_LATENCY(TC_FLASH_WAIT_STATES) | ACR_PRFTEN | ACR_ICEN | ACR_DCEN);
    RCC_PLLCFGR = PLLCFGR_SRC_HSI16 | PLLCFGR_M(TC_PLL_M) | PLLCFGR_N(TC_PLL_N) | PLLCFGR_R(TC_PLL_P) |
                  PLLCFGR_REN;
    RCC_CR |= CR_PLLON;
    WAIT_SET(RCC_CR, CR_PLLRDY);
    RCC_CFGR = (RCC_CFGR & CFGR_SW_MASK) | HCLK_CFGR(2u);
    RCC_CFGR = (RCC_CFGR & ~CFGR_SW_MASK) | CFGR_SW_PLL;
    while ((RCC_CFGR & CFGR_SWS_MASK) != CFGR_SWS_PLL) {
    }
    clock_delay(ONE_US_AT_MOST_CYCLES);
    RCC_CFGR = (RCC_CFGR & CFGR_SW_MASK) | HCLK_CFGR(TC_AHB_DIV);
}
