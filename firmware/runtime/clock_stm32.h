/*
 * tinycompress runtime: what the STM32 clock sequences (clock_stm32*.c) share: register access, the
 * prescaler codes of the RCC, and the Cortex-M7's L1 caches (the F7 and the H7).
 *
 * tc_clock_config.h, generated from the board file by tinycompress/target/clocks.py, gives the PLL
 * factors, wait states and bus dividers; each family's file writes them in its manual's order.
 */
#ifndef TC_CLOCK_STM32_H
#define TC_CLOCK_STM32_H

#include <stdint.h>

#include "tc_clock_config.h"

#define REG(address) (*(volatile uint32_t *)(address))
#define WAIT_SET(reg, bits) while (((reg) & (bits)) != (bits)) { }
#define WAIT_CLEAR(reg, bits) while ((reg) & (bits)) { }
#define FIELD(value, shift, width) (((uint32_t)(value) & ((1u << (width)) - 1u)) << (shift))

/* The AHB prescaler (HPRE) and the APB prescalers (PPRE): 0 divides by 1, 0b1000 + k by 2^(k+1) for
   HPRE and 0b100 + k by 2^(k+1) for PPRE (RM0090 6.3.3, RM0385 5.3.3, RM0432 6.4.3, RM0456 11.8.7,
   RM0433 8.7.7). Dividers are powers of two, checked by tests/test_clocks.py. */
#define LOG2_DIV(d) ((d) >= 256u ? 8u : (d) >= 128u ? 7u : (d) >= 64u ? 6u : (d) >= 32u ? 5u : \
                     (d) >= 16u ? 4u : (d) >= 8u ? 3u : (d) >= 4u ? 2u : (d) >= 2u ? 1u : 0u)
#define HPRE_CODE(d) ((d) == 1u ? 0u : 0x8u | (LOG2_DIV(d) - 1u))
#define PPRE_CODE(d) ((d) == 1u ? 0u : 0x4u | (LOG2_DIV(d) - 1u))

/* The flash's wait states (and its caches' and prefetch bits), read back until they hold: every
   family's manual asks for that before the clock rises (RM0090 3.5.1, RM0385 3.3.2, RM0433 4.3.8,
   RM0432 3.3.3, RM0456 7.3.3). */
static inline void flash_access_set(volatile uint32_t *acr, uint32_t value)
{
    *acr = value;
    while (*acr != value) {
    }
}

/* A short wait in core cycles (at least `cycles`; each iteration takes more than one). */
static inline void clock_delay(uint32_t cycles)
{
    for (volatile uint32_t i = 0; i < cycles; i++) {
    }
}

/* Cortex-M7: the L1 instruction and data caches, invalidated and enabled as the Cortex-M7 TRM (r1p2,
   4.6 "L1 caches") and the ARMv7-M ARM (B2.2.7 "Cache maintenance operations") describe: invalidate
   every line, then set CCR.IC / CCR.DC, with the barriers between. */
#define SCB_CCR REG(0xE000ED14u)
#define SCB_CCSIDR REG(0xE000ED80u)   /* the geometry of the cache CSSELR selects */
#define SCB_CSSELR REG(0xE000ED84u)
#define SCB_ICIALLU REG(0xE000EF50u)  /* invalidate the whole instruction cache */
#define SCB_DCISW REG(0xE000EF60u)    /* invalidate one data cache line by set and way */
#define CCR_DC (1u << 16)
#define CCR_IC (1u << 17)
#define CSSELR_L1_DATA 0u
#define CCSIDR_SETS(x) (((x) >> 13) & 0x7FFFu)   /* number of sets - 1 */
#define CCSIDR_WAYS(x) (((x) >> 3) & 0x3FFu)     /* number of ways - 1 */
#define DCISW_SET_SHIFT 5u                       /* 32-byte lines */
#define DCISW_WAY_SHIFT 30u                      /* 4 ways */

static inline void barriers(void)
{
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

static inline void cortex_m7_caches_enable(void)
{
    barriers();
    SCB_ICIALLU = 0;
    barriers();
    SCB_CCR |= CCR_IC;
    barriers();

    SCB_CSSELR = CSSELR_L1_DATA;
    barriers();
    const uint32_t geometry = SCB_CCSIDR;
    for (uint32_t set = 0; set <= CCSIDR_SETS(geometry); set++) {
        for (uint32_t way = 0; way <= CCSIDR_WAYS(geometry); way++) {
            SCB_DCISW = (set << DCISW_SET_SHIFT) | (way << DCISW_WAY_SHIFT);
        }
    }
    barriers();
    SCB_CCR |= CCR_DC;
    barriers();
}

#endif /* TC_CLOCK_STM32_H */
