/*
 * tinycompress runtime: a 64-bit count of core clock cycles, for the real boards' serial harness.
 *
 * Cores with a DWT cycle counter (M3, M4, M7, M33, M55) count with DWT_CYCCNT; the M0 and M0+
 * (ARMv6-M, and ARMv8-M Baseline) have no DWT counter and count with SysTick at the core clock, as
 * timer_systick.c does. The emulated boards keep timer_systick.c: under QEMU 7.2 the DWT is not
 * modelled (its registers read as zero), while SysTick under -icount counts instructions exactly.
 *
 * The registers, from the ARMv7-M Architecture Reference Manual (DDI 0403E, C1.6.5 "Debug Exception and
 * Monitor Control Register", C1.8.7 "Control register, DWT_CTRL", C1.8.8 "Cycle Count register,
 * DWT_CYCCNT") and the ARMv8-M Architecture Reference Manual (DDI 0553, same names and addresses):
 *   DEMCR     0xE000EDFC  bit 24 TRCENA: enables the DWT (and ITM); the DWT does not count without it
 *   DWT_CTRL  0xE0001000  bit 0 CYCCNTENA: CYCCNT counts core clock cycles; bit 25 NOCYCCNT: reads 1
 *                          where CYCCNT is not implemented
 *   DWT_CYCCNT 0xE0001004 32 bits, counts up, wraps to 0
 * The Cortex-M7 implements the CoreSight software lock on its DWT (Cortex-M7 TRM, DDI 0489, "DWT
 * Programmers' model": DWT_LAR 0xE0001FB0, DWT_LSR 0xE0001FB4): while DWT_LSR.SLK (bit 1) reads 1,
 * software writes to the DWT are ignored until 0xC5ACCE55 is written to DWT_LAR (CoreSight Architecture
 * Specification, IHI 0029, "Lock Access Register"). DWT_LSR.SLI (bit 0) reads 0 where no lock is
 * implemented (M3, M4, M33, M55), and then DWT_LAR is left alone.
 *
 * CYCCNT wraps every 2^32 cycles (8.9 s at 480 MHz): SysTick interrupts every 2^24 cycles, and its
 * handler samples CYCCNT and counts the wraps it sees, so the count is 64 bits long whatever the gaps
 * between reads.
 */
#include "tc_platform.h"
#include "tc_systick.h"

#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
#define TC_HAS_DWT 0
#else
#define TC_HAS_DWT 1
#define DEMCR (*(volatile uint32_t *)0xE000EDFC)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0)
#define DWT_LSR (*(volatile uint32_t *)0xE0001FB4)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CTRL_NOCYCCNT (1u << 25)
#define DWT_LSR_SLI (1u << 0)
#define DWT_LSR_SLK (1u << 1)
#define DWT_LAR_KEY 0xC5ACCE55u
#endif

static volatile uint32_t wraps;      /* SysTick: its wraps; DWT: the wraps of CYCCNT seen so far */
#if TC_HAS_DWT
static volatile uint32_t last_count; /* CYCCNT at the last sample */
static uint32_t use_dwt;             /* CYCCNT counts (0 under QEMU: SysTick then) */
#endif

void SysTick_Handler(void)
{
#if TC_HAS_DWT
    if (use_dwt) {
        const uint32_t now = DWT_CYCCNT;
        if (now < last_count) {
            wraps++;
        }
        last_count = now;
        return;
    }
#endif
    wraps++;
}

#if TC_HAS_DWT
/* Start CYCCNT from 0; 1 if it counts (0 where the core or an emulator has no cycle counter). */
static uint32_t dwt_start(void)
{
    DEMCR |= DEMCR_TRCENA;
    if ((DWT_LSR & (DWT_LSR_SLI | DWT_LSR_SLK)) == (DWT_LSR_SLI | DWT_LSR_SLK)) {
        DWT_LAR = DWT_LAR_KEY;
    }
    if (DWT_CTRL & DWT_CTRL_NOCYCCNT) {
        return 0;
    }
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    for (volatile uint32_t i = 0; i < 4; i++) {
    }
    return DWT_CYCCNT != 0;
}
#endif

void tc_timer_start(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYST_PERIOD - 1;
    SYST_CVR = 0;
    wraps = 0;
#if TC_HAS_DWT
    use_dwt = dwt_start();
    last_count = use_dwt ? DWT_CYCCNT : 0;
#endif
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU;
}

uint64_t tc_timer_ticks(void)
{
    uint32_t high, low;
#if TC_HAS_DWT
    if (use_dwt) {
        uint32_t mark;
        do { /* the handler samples at most once per 2^24 cycles: one wrap at most since `mark` */
            high = wraps;
            mark = last_count;
            low = DWT_CYCCNT;
        } while (high != wraps || mark != last_count);
        return ((uint64_t)(high + (low < mark)) << 32) | low;
    }
#endif
    do { /* re-read if the counter wrapped between the two reads */
        high = wraps;
        low = SYST_CVR;
    } while (high != wraps);
    return (uint64_t)high * SYST_PERIOD + (SYST_PERIOD - 1 - low);
}
