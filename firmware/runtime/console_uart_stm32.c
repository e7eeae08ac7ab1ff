/*
 * tinycompress runtime: the console on an STM32 U(S)ART, transmit only, 8N1.
 *
 * The start-up code (clock_stm32*.c) has set the board's top clock before the
 * console starts, and tc_console_config.h, generated from the board file, has
 * the baud-rate divisor for the UART's clock at that point; it also names the
 * UART, its transmit pin and the clock enables.
 */
#include "tc_console_config.h"
#include "tc_platform.h"

#define REG(address) (*(volatile uint32_t *)(address))

/* GPIO: the same registers on every STM32 family. */
#define GPIO_MODER(port) REG((port) + 0x00u)
#define GPIO_AFR(port, pin) REG((port) + 0x20u + 4u * ((pin) / 8u))
#define GPIO_MODE_ALTERNATE 2u

#if TC_UART_V1_REGISTERS /* F1, F2, F4: status and data share one block */
#define UART_STATUS REG(TC_UART_BASE + 0x00u)
#define UART_DATA REG(TC_UART_BASE + 0x04u)
#define UART_BRR REG(TC_UART_BASE + 0x08u)
#define UART_CR1 REG(TC_UART_BASE + 0x0Cu)
#define CR1_ENABLE (1u << 13)
#else /* F7, H7, L4, U5 and later */
#define UART_CR1 REG(TC_UART_BASE + 0x00u)
#define UART_BRR REG(TC_UART_BASE + 0x0Cu)
#define UART_STATUS REG(TC_UART_BASE + 0x1Cu)
#define UART_DATA REG(TC_UART_BASE + 0x28u)
#define CR1_ENABLE (1u << 0)
#endif
#define CR1_TRANSMIT (1u << 3)
#define STATUS_TX_EMPTY (1u << 7)
#define STATUS_TX_COMPLETE (1u << 6)

static int console_ready;

static void console_init(void)
{
    for (uint32_t i = 0; i < TC_CONSOLE_ENABLE_COUNT; i++) {
        REG(tc_console_enables[i].address) |= tc_console_enables[i].bits;
        (void)REG(tc_console_enables[i].address); /* read back: the clock runs once the write is done */
    }
    const uint32_t mode_shift = 2u * TC_TX_PIN, af_shift = 4u * (TC_TX_PIN % 8u);
    GPIO_AFR(TC_TX_PORT, TC_TX_PIN) = (GPIO_AFR(TC_TX_PORT, TC_TX_PIN) & ~(0xFu << af_shift)) |
                                      ((uint32_t)TC_TX_AF << af_shift);
    GPIO_MODER(TC_TX_PORT) = (GPIO_MODER(TC_TX_PORT) & ~(3u << mode_shift)) | (GPIO_MODE_ALTERNATE << mode_shift);
    UART_BRR = TC_UART_BRR;
    UART_CR1 = CR1_ENABLE | CR1_TRANSMIT;
    console_ready = 1;
}

void tc_console_write(const char *text, uint32_t length)
{
    if (!console_ready) {
        console_init();
    }
    while (length--) {
        while (!(UART_STATUS & STATUS_TX_EMPTY)) {
        }
        UART_DATA = (uint8_t)*text++;
    }
}

void tc_platform_exit(int32_t status)
{
    (void)status; /* the console has said everything; there is no one to return to */
    if (console_ready) {
        while (!(UART_STATUS & STATUS_TX_COMPLETE)) {
        }
    }
    for (;;) {
    }
}
