/*
 * tinycompress runtime: the SysTick registers (ARMv7-M ARM B3.3, ARMv6-M ARM B3.3), shared by the timers.
 *
 * SysTick counts down 24 bits at the CPU clock (CLKSOURCE = 1); with TICKINT, each wrap interrupts.
 */
#ifndef TC_SYSTICK_H
#define TC_SYSTICK_H

#include <stdint.h>

#define SYST_CSR (*(volatile uint32_t *)0xE000E010) /* control and status */
#define SYST_RVR (*(volatile uint32_t *)0xE000E014) /* reload value */
#define SYST_CVR (*(volatile uint32_t *)0xE000E018) /* current value */

#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define SYST_PERIOD (1u << 24)

#endif /* TC_SYSTICK_H */
