/*
 * tinycompress runtime: the console on an nRF52's UART0, transmit only, 8N1.
 *
 * The legacy (non-DMA) UART takes bytes from any memory, flash included.
 * tc_console_config.h, generated from the board file, names the UART, the
 * GPIO port and the transmit pin.
 */
#include "tc_console_config.h"
#include "tc_platform.h"

#define REG(address) (*(volatile uint32_t *)(address))

#define UART_TASKS_STARTTX REG(TC_UART_BASE + 0x008u)
#define UART_EVENTS_TXDRDY REG(TC_UART_BASE + 0x11Cu)
#define UART_ENABLE REG(TC_UART_BASE + 0x500u)
#define UART_PSEL_TXD REG(TC_UART_BASE + 0x50Cu)
#define UART_TXD REG(TC_UART_BASE + 0x51Cu)
#define UART_BAUDRATE REG(TC_UART_BASE + 0x524u)
#define GPIO_OUTSET REG(TC_GPIO_BASE + 0x508u)
#define GPIO_DIRSET REG(TC_GPIO_BASE + 0x518u)

#define UART_ENABLE_UART 4u
#define UART_BAUD_115200 0x01D7E000u /* the datasheet's value for 115200 baud */

static int console_ready;

static void console_init(void)
{
    GPIO_OUTSET = 1u << TC_TX_PIN; /* idle high before the UART takes the pin */
    GPIO_DIRSET = 1u << TC_TX_PIN;
    UART_PSEL_TXD = TC_TX_PIN;
    UART_BAUDRATE = UART_BAUD_115200;
    UART_ENABLE = UART_ENABLE_UART;
    UART_TASKS_STARTTX = 1;
    console_ready = 1;
}

void tc_console_write(const char *text, uint32_t length)
{
    if (!console_ready) {
        console_init();
    }
    while (length--) {
        UART_EVENTS_TXDRDY = 0;
        UART_TXD = (uint8_t)*text++;
        while (!UART_EVENTS_TXDRDY) {
        }
    }
}

void tc_platform_exit(int32_t status)
{
    (void)status; /* the console has said everything; there is no one to return to */
    for (;;) {
    }
}
