/*
 * tinycompress runtime: the RCC of the STM32F4 and F7, one register map (RM0090 6.3, RM0385 5.3):
 * HSE, the main PLL, the bus prescalers and the switch to the PLL, shared by clock_stm32f4.c and
 * clock_stm32f7.c, which call them in their manual's order.
 */
#ifndef TC_CLOCK_STM32F4F7_H
#define TC_CLOCK_STM32F4F7_H

#include "clock_stm32.h"

#define RCC_BASE 0x40023800u
#define RCC_CR REG(RCC_BASE + 0x00u)
#define RCC_PLLCFGR REG(RCC_BASE + 0x04u)
#define RCC_CFGR REG(RCC_BASE + 0x08u)
#define RCC_APB1ENR REG(RCC_BASE + 0x40u)
#define FLASH_ACR REG(0x40023C00u)

#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define APB1ENR_PWREN (1u << 28)
#define PLLCFGR_M(m) FIELD(m, 0, 6)
#define PLLCFGR_N(n) FIELD(n, 6, 9)
#define PLLCFGR_P(p) FIELD((p) / 2u - 1u, 16, 2)     /* 00: /2, 01: /4, 10: /6, 11: /8 */
#define PLLCFGR_SRC_HSE (1u << 22)
#define PLLCFGR_Q(q) FIELD(q, 24, 4)
#define PLLCFGR_FIELDS (PLLCFGR_M(0x3Fu) | PLLCFGR_N(0x1FFu) | FIELD(3u, 16, 2) | PLLCFGR_SRC_HSE | \
                        PLLCFGR_Q(0xFu))   /* the rest is reserved: kept at its reset value */
#define CFGR_SW_PLL 2u
#define CFGR_SW_MASK 3u
#define CFGR_SWS_PLL (2u << 2)
#define CFGR_SWS_MASK (3u << 2)
#define CFGR_HPRE(d) FIELD(HPRE_CODE(d), 4, 4)
#define CFGR_PPRE1(d) FIELD(PPRE_CODE(d), 10, 3)
#define CFGR_PPRE2(d) FIELD(PPRE_CODE(d), 13, 3)

static inline void rcc_power_interface_on(void)
{
    RCC_APB1ENR |= APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* read back: the clock runs once the write is done */
}

/* HSE on (HSEBYP for an external clock), then the PLL configured from it (or from HSI) and on. */
static inline void rcc_pll_start(void)
{
#if TC_CLOCK_FROM_HSE
    RCC_CR |= CR_HSEON | (TC_CLOCK_HSE_BYPASS ? CR_HSEBYP : 0u);
    WAIT_SET(RCC_CR, CR_HSERDY);
#endif
    RCC_PLLCFGR = (RCC_PLLCFGR & ~PLLCFGR_FIELDS) | PLLCFGR_M(TC_PLL_M) | PLLCFGR_N(TC_PLL_N) |
                  PLLCFGR_P(TC_PLL_P) | PLLCFGR_Q(TC_PLL_Q) | (TC_CLOCK_FROM_HSE ? PLLCFGR_SRC_HSE : 0u);
    RCC_CR |= CR_PLLON;
}

/* The wait states first (read back: RM0090 3.5.1, RM0385 3.3.2), then the prescalers, then the switch
   to the locked PLL. */
static inline void rcc_switch_to_pll(uint32_t flash_acr)
{
    flash_access_set(&FLASH_ACR, flash_acr);
    RCC_CFGR = (RCC_CFGR & CFGR_SW_MASK) | CFGR_HPRE(TC_AHB_DIV) | CFGR_PPRE1(TC_APB1_DIV) |
               CFGR_PPRE2(TC_APB2_DIV);
    WAIT_SET(RCC_CR, CR_PLLRDY);
    RCC_CFGR = (RCC_CFGR & ~CFGR_SW_MASK) | CFGR_SW_PLL;
    while ((RCC_CFGR & CFGR_SWS_MASK) != CFGR_SWS_PLL) {
    }
}

#endif /* TC_CLOCK_STM32F4F7_H */
