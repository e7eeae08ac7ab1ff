/*
 * tinycompress runtime: reset and exception vectors for any Cortex-M.
 *
 * Reset copies .data from flash, zeroes .bss, sets a bare real board's clock
 * (TC_CLOCK_INIT: firmware/runtime/clock_*.c), paints the stack so the harness
 * can measure its peak, enables the FPU where the code uses it, and calls main.
 * tc_stack_paint() paints the free stack again before each inference, so the
 * harness also measures the inference's own peak below its caller.
 * Every fault prints one line naming itself and exits with status 3.
 */
#include <stdint.h>

#include "tc_platform.h"

/* Unlikely to be written by real code; no suffix, as tc_stack_paint's assembly reads it too. */
#define STACK_PAINT 0x5AA5C33C
#define STRING(x) #x
#define EXPANDED_STRING(x) STRING(x)
#define EXIT_FAULT 3
#define CPACR (*(volatile uint32_t *)0xE000ED88) /* coprocessor access control */
#define CPACR_CP10_CP11_FULL (0xFu << 20)

/* From firmware/linker/cortex_m.ld. */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_limit[], __stack_top[];

int main(void);
void SysTick_Handler(void);

static void fault(const char *name)
{
    tc_platform_print(name);
    tc_platform_exit(EXIT_FAULT);
}

static void NMI_Handler(void) { fault("tinycompress: NMI"); }
static void HardFault_Handler(void) { fault("tinycompress: HardFault (bad memory access or instruction)"); }
static void MemManage_Handler(void) { fault("tinycompress: MemManage fault"); }
static void BusFault_Handler(void) { fault("tinycompress: BusFault"); }
static void UsageFault_Handler(void) { fault("tinycompress: UsageFault (undefined instruction, unaligned or divide by zero)"); }
static void SecureFault_Handler(void) { fault("tinycompress: SecureFault"); }
static void Unexpected_Handler(void) { fault("tinycompress: unexpected interrupt"); }

static void paint_stack(void)
{
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    /* Leave the words Reset_Handler itself may be using untouched. */
    for (uint32_t *p = __stack_limit; p < sp - 16; p++) {
        *p = STACK_PAINT;
    }
}

uint32_t tc_stack_peak(void)
{
    const uint32_t *p = __stack_limit;
    while (p < __stack_top && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

/* Naked, so it has no frame: it paints every word below the stack pointer of its caller, which it returns.
   Thumb-1 instructions only (the M0 runs it too). */
__attribute__((naked)) uint32_t *tc_stack_paint(void)
{
    __asm__ volatile("    ldr r0, =__stack_limit\n"
                     "    ldr r1, =" EXPANDED_STRING(STACK_PAINT) "\n"
                     "    mov r2, sp\n"
                     "1:  cmp r0, r2\n"
                     "    bhs 2f\n"
                     "    stmia r0!, {r1}\n"
                     "    b 1b\n"
                     "2:  mov r0, sp\n"
                     "    bx lr\n"
                     "    .ltorg\n");
}

uint32_t tc_stack_used_below(const uint32_t *mark)
{
    const uint32_t *p = __stack_limit;
    while (p < mark && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)mark - (uintptr_t)p);
}

uint32_t tc_stack_size(void)
{
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)__stack_limit);
}

void Reset_Handler(void)
{
    for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start; dst < __bss_end;) {
        *dst++ = 0;
    }
#if defined(TC_CLOCK_INIT)
    tc_clock_init();
#endif
    paint_stack();
#if defined(__ARM_FP)
    CPACR |= CPACR_CP10_CP11_FULL;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    tc_platform_exit(main());
}

/* The architecture's 16 system exceptions; the harness uses no device interrupts. */
__attribute__((section(".vectors"), used)) static void (*const vector_table[16])(void) = {
    (void (*)(void))__stack_top,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    SecureFault_Handler,
    0, 0, 0,            /* reserved */
    Unexpected_Handler, /* SVCall */
    Unexpected_Handler, /* DebugMonitor */
    0,                  /* reserved */
    Unexpected_Handler, /* PendSV */
    SysTick_Handler,
};
