/*
 * tinycompress runtime: the STM32U575/585 at its top clock, 160 MHz, from PLL1.
 *
 * RM0456 rev 4 (STM32U5 Series):
 *   10.5.4 "Dynamic voltage scaling management" and 10.10.4 PWR_VOSR: range 1 (VOS = 11), wait for
 *   VOSRDY; above 55 MHz the EPOD booster (BOOSTEN), whose clock is PLL1's source divided by
 *   PLL1MBOOST (4-16 MHz), so PLL1's source is chosen first; wait for BOOSTRDY (the PWR clock:
 *   11.8.26 RCC_AHB3ENR PWREN);
 *   11.8.1 RCC_CR: HSI16 on, wait for HSIRDY;
 *   7.3.3 "Read access latency", Table 54 (range 1: 32 MHz per wait state, 4 at 160 MHz), 7.9.1
 *   FLASH_ACR: LATENCY and PRFTEN, read back before the clock rises;
 *   11.8.31 RCC_PLL1CFGR: PLL1SRC, PLL1RGE, PLL1M, PLL1MBOOST, PLL1REN;
 *   11.8.34 RCC_PLL1DIVR: f = source / PLL1M * PLL1N / PLL1R;
 *   11.8.6 RCC_CFGR1 SW = PLL1: going above 80 MHz, the AHB prescaler divides by 2 across the
 *   switch and for 1 us after it (as STM32CubeU5's HAL_RCC_ClockConfig does);
 *   8.4 ICACHE_CR EN: the instruction cache in front of the flash (2-way, the reset choice).
 */
#include "clock_stm32.h"
#include "tc_platform.h"

#define RCC_BASE 0x46020C00u
#define RCC_CR REG(RCC_BASE + 0x00u)
#define RCC_CFGR1 REG(RCC_BASE + 0x1Cu)
#define RCC_CFGR2 REG(RCC_BASE + 0x20u)
#define RCC_PLL1CFGR REG(RCC_BASE + 0x28u)
#define RCC_PLL1DIVR REG(RCC_BASE + 0x34u)
#define RCC_AHB3ENR REG(RCC_BASE + 0x94u)
#define PWR_VOSR REG(0x46020800u + 0x0Cu)
#define FLASH_ACR REG(0x40022000u)
#define ICACHE_CR REG(0x40030400u)

#define CR_HSION (1u << 8)
#define CR_HSIRDY (1u << 10)
#define CR_PLL1ON (1u << 24)
#define CR_PLL1RDY (1u << 25)
#define AHB3ENR_PWREN (1u << 2)
#define VOSR_BOOSTRDY (1u << 14)
#define VOSR_VOSRDY (1u << 15)
#define VOSR_VOS_RANGE1 (3u << 16)
#define VOSR_BOOSTEN (1u << 18)
#define BOOST_ABOVE_HZ 55000000u
#define PLL1CFGR_SRC_HSI16 2u
#define PLL1CFGR_RGE(r) FIELD(r, 2, 2)          /* 0: 4-8 MHz, 3: 8-16 MHz */
#define PLL1CFGR_M(m) FIELD((m) - 1u, 8, 4)
#define PLL1CFGR_MBOOST_1 FIELD(0u, 12, 4)      /* the booster's clock: the source / 1 */
#define PLL1CFGR_REN (1u << 18)
#define PLL1DIVR_N(n) FIELD((n) - 1u, 0, 9)
#define PLL1DIVR_R(r) FIELD((r) - 1u, 24, 7)
#define PLL1DIVR_R_N_MASK (PLL1DIVR_N(0x200u) | PLL1DIVR_R(0x80u))
#define VCO_INPUT_HZ (TC_CLOCK_SOURCE_HZ / TC_PLL_M)
#define PLL_RANGE (VCO_INPUT_HZ > 8000000u ? 3u : 0u)
#define CFGR1_SW_MASK 3u
#define CFGR1_SW_PLL1 3u
#define CFGR1_SWS_MASK (3u << 2)
#define CFGR1_SWS_PLL1 (3u << 2)
#define CFGR2_HPRE_MASK 0xFu
#define CFGR2_HPRE(d) FIELD(HPRE_CODE(d), 0, 4)
#define CFGR2_PPRE(d1, d2) (FIELD(PPRE_CODE(d1), 4, 3) | FIELD(PPRE_CODE(d2), 8, 3))
#define CFGR2_PPRE_MASK CFGR2_PPRE(16u, 16u)
#define ACR_LATENCY(ws) FIELD(ws, 0, 4)
#define ACR_PRFTEN (1u << 8)
#define ICACHE_CR_EN (1u << 0)
#define ONE_US_AT_MOST_CYCLES (TC_CORE_CLOCK_HZ / 1000000u)
#define STEP_ABOVE_HZ 80000000u

uint32_t tc_core_clock_hz(void)
{
    return TC_CORE_CLOCK_HZ;
}

void tc_clock_init(void)
{
#if TC_CLOCK_FROM_HSE
#error "clock_stm32u5.c: only HSI16 feeds PLL1 here"
#endif
    RCC_CR |= CR_HSION;
    WAIT_SET(RCC_CR, CR_HSIRDY);
    RCC_PLL1CFGR = PLL1CFGR_SRC_HSI16 | PLL1CFGR_RGE(PLL_RANGE) | PLL1CFGR_M(TC_PLL_M) | PLL1CFGR_MBOOST_1;

    RCC_AHB3ENR |= AHB3ENR_PWREN;
    (void)RCC_AHB3ENR;
    PWR_VOSR |= VOSR_VOS_RANGE1;
    WAIT_SET(PWR_VOSR, VOSR_VOSRDY);
    if (TC_CORE_CLOCK_HZ > BOOST_ABOVE_HZ) {
        PWR_VOSR |= VOSR_BOOSTEN;
        WAIT_SET(PWR_VOSR, VOSR_BOOSTRDY);
    }

    flash_access_set(&FLASH_ACR, ACR_LATENCY(TC_FLASH_WAIT_STATES) | ACR_PRFTEN);
    RCC_PLL1DIVR = (RCC_PLL1DIVR & ~PLL1DIVR_R_N_MASK) | PLL1DIVR_N(TC_PLL_N) | PLL1DIVR_R(TC_PLL_P);
    RCC_PLL1CFGR |= PLL1CFGR_REN;
    RCC_CR |= CR_PLL1ON;
    WAIT_SET(RCC_CR, CR_PLL1RDY);

    RCC_CFGR2 = (RCC_CFGR2 & ~(CFGR2_HPRE_MASK | CFGR2_PPRE_MASK)) | CFGR2_PPRE(TC_APB1_DIV, TC_APB2_DIV) |
                CFGR2_HPRE(TC_CORE_CLOCK_HZ > STEP_ABOVE_HZ ? 2u : TC_AHB_DIV);
    RCC_CFGR1 = (RCC_CFGR1 & ~CFGR1_SW_MASK) | CFGR1_SW_PLL1;
    while ((RCC_CFGR1 & CFGR1_SWS_MASK) != CFGR1_SWS_PLL1) {
    }
    clock_delay(ONE_US_AT_MOST_CYCLES);
    RCC_CFGR2 = (RCC_CFGR2 & ~CFGR2_HPRE_MASK) | CFGR2_HPRE(TC_AHB_DIV);
    ICACHE_CR |= ICACHE_CR_EN;
}
