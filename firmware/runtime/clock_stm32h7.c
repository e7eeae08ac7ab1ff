/*
 * tinycompress runtime: the STM32H742/743/753/750 at its top clock, 480 MHz (rev V), from PLL1.
 *
 * RM0433 rev 7 (STM32H742, H743/753, H750):
 *   6.4 / 6.8.4 PWR_CR3: the supply, LDO on (the H743 has no SMPS), written once after reset; then
 *   wait for ACTVOSRDY (6.8.2 PWR_CSR1);
 *   6.6.2 "Voltage scaling", 6.8.6 PWR_D3CR: VOS1, wait for VOSRDY; VOS0 is VOS1 plus the over-drive,
 *   ODEN in SYSCFG_PWRCR (12.3, the SYSCFG registers; the SYSCFG clock in 8.7.44 RCC_APB4ENR), wait again;
 *   8.7.2 RCC_CR: HSE on (HSEBYP for the ST-LINK's clock), wait for HSERDY;
 *   8.7.11 RCC_PLLCKSELR: PLLSRC = HSE, DIVM1; 8.7.12 RCC_PLLCFGR: PLL1RGE for the input range, the
 *   wide VCO, only DIVP1's output on; 8.7.13 RCC_PLL1DIVR: DIVN1 - 1, DIVP1 - 1;
 *   4.3.8 "FLASH read access latency", Table 17, and 4.9.1 FLASH_ACR: LATENCY, WRHIGHFREQ;
 *   8.7.7-8.7.9 RCC_D1CFGR/D2CFGR/D3CFGR: AXI/AHB = CPU / 2 <= 240 MHz, every APB <= 120 MHz;
 *   8.7.6 RCC_CFGR: SW = PLL1, wait for SWS;
 *   8.7.21 RCC_D2CCIP2R: USART3's kernel clock from HSI (64 MHz), so the console's divisor does not
 *   depend on which clock the part reaches.
 * The revision: DBGMCU_IDC REV_ID (62.5.8): rev V (0x2003) reaches 480 MHz in VOS0; rev Y (0x1003)
 * stops at 400 MHz in VOS1 (DS12110 "Ordering information"; ES0392), so it gets DIVN1 for 400 MHz and
 * no over-drive. tc_core_clock_hz() tells which.
 * Then the Cortex-M7's L1 instruction and data caches (clock_stm32.h).
 */
#include "clock_stm32.h"
#include "tc_platform.h"

#define RCC_BASE 0x58024400u
#define RCC_CR REG(RCC_BASE + 0x000u)
#define RCC_CFGR REG(RCC_BASE + 0x010u)
#define RCC_D1CFGR REG(RCC_BASE + 0x018u)
#define RCC_D2CFGR REG(RCC_BASE + 0x01Cu)
#define RCC_D3CFGR REG(RCC_BASE + 0x020u)
#define RCC_PLLCKSELR REG(RCC_BASE + 0x028u)
#define RCC_PLLCFGR REG(RCC_BASE + 0x02Cu)
#define RCC_PLL1DIVR REG(RCC_BASE + 0x030u)
#define RCC_D2CCIP2R REG(RCC_BASE + 0x054u)
#define RCC_APB4ENR REG(RCC_BASE + 0x0F4u)
#define PWR_BASE 0x58024800u
#define PWR_CSR1 REG(PWR_BASE + 0x04u)
#define PWR_CR3 REG(PWR_BASE + 0x0Cu)
#define PWR_D3CR REG(PWR_BASE + 0x18u)
#define SYSCFG_PWRCR REG(0x58000400u + 0x2Cu)
#define FLASH_ACR REG(0x52002000u)
#define DBGMCU_IDC REG(0x5C001000u)

#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLL1ON (1u << 24)
#define CR_PLL1RDY (1u << 25)
#define CR3_BYPASS (1u << 0)
#define CR3_LDOEN (1u << 1)
#define CSR1_ACTVOSRDY (1u << 13)
#define D3CR_VOS_MASK (3u << 14)
#define D3CR_VOS1 (3u << 14)
#define D3CR_VOSRDY (1u << 13)
#define PWRCR_ODEN (1u << 0)
#define APB4ENR_SYSCFGEN (1u << 1)
#define PLLCKSELR_SRC_MASK 3u
#define PLLCKSELR_SRC_HSE 2u
#define PLLCKSELR_DIVM1(m) FIELD(m, 4, 6)
#define PLLCKSELR_DIVM1_MASK FIELD(0x3Fu, 4, 6)
#define PLLCFGR_PLL1_MASK (0xFu | (7u << 16))   /* PLL1FRACEN, VCOSEL, RGE; DIVP1EN, DIVQ1EN, DIVR1EN */
#define PLLCFGR_RGE(r) FIELD(r, 2, 2)            /* 0: 1-2 MHz, 1: 2-4, 2: 4-8, 3: 8-16 */
#define PLLCFGR_DIVP1EN (1u << 16)
#define PLL1DIVR_N(n) FIELD((n) - 1u, 0, 9)
#define PLL1DIVR_P(p) FIELD((p) - 1u, 9, 7)
#define PLL1DIVR_NP_MASK (PLL1DIVR_N(0x200u) | PLL1DIVR_P(0x80u))
#define VCO_INPUT_HZ (TC_CLOCK_SOURCE_HZ / TC_PLL_M)
#define PLL_RANGE (VCO_INPUT_HZ > 8000000u ? 3u : VCO_INPUT_HZ > 4000000u ? 2u : \
                   VCO_INPUT_HZ > 2000000u ? 1u : 0u)
#define ACR_LATENCY(ws) FIELD(ws, 0, 4)
#define ACR_WRHIGHFREQ_2 (2u << 4)               /* Table 17: at AXI 185-240 MHz */
#define D1CFGR_HPRE(d) FIELD(HPRE_CODE(d), 0, 4)
#define D1CFGR_D1PPRE(d) FIELD(PPRE_CODE(d), 4, 3)
#define D2CFGR_PPRE(d1, d2) (FIELD(PPRE_CODE(d1), 4, 3) | FIELD(PPRE_CODE(d2), 8, 3))
#define D3CFGR_D3PPRE(d) FIELD(PPRE_CODE(d), 4, 3)
#define CFGR_SW_MASK 7u
#define CFGR_SW_PLL1 3u
#define CFGR_SWS_MASK (7u << 3)
#define CFGR_SWS_PLL1 (3u << 3)
#define D2CCIP2R_USART234578SEL_MASK 7u
#define D2CCIP2R_USART234578SEL_HSI 3u
#define REV_ID(idc) ((idc) >> 16)
#define REV_Y 0x1003u

static uint32_t core_clock_hz;

uint32_t tc_core_clock_hz(void)
{
    return core_clock_hz;
}

void tc_clock_init(void)
{
    const int rev_y = REV_ID(DBGMCU_IDC) == REV_Y;

    PWR_CR3 = (PWR_CR3 & ~CR3_BYPASS) | CR3_LDOEN; /* SCUEN, set at reset, locks it after this */
    WAIT_SET(PWR_CSR1, CSR1_ACTVOSRDY);
    PWR_D3CR = (PWR_D3CR & ~D3CR_VOS_MASK) | D3CR_VOS1;
    WAIT_SET(PWR_D3CR, D3CR_VOSRDY);
    if (!rev_y) {
        RCC_APB4ENR |= APB4ENR_SYSCFGEN;
        (void)RCC_APB4ENR;
        SYSCFG_PWRCR |= PWRCR_ODEN;
        WAIT_SET(PWR_D3CR, D3CR_VOSRDY);
    }

#if TC_CLOCK_FROM_HSE
    RCC_CR |= CR_HSEON | (TC_CLOCK_HSE_BYPASS ? CR_HSEBYP : 0u);
    WAIT_SET(RCC_CR, CR_HSERDY);
#define PLL_SOURCE PLLCKSELR_SRC_HSE
#else
#define PLL_SOURCE 0u /* HSI */
#endif
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~(PLLCKSELR_SRC_MASK | PLLCKSELR_DIVM1_MASK)) | PLL_SOURCE |
                    PLLCKSELR_DIVM1(TC_PLL_M);
    RCC_PLLCFGR = (RCC_PLLCFGR & ~PLLCFGR_PLL1_MASK) | PLLCFGR_RGE(PLL_RANGE) | PLLCFGR_DIVP1EN;
    RCC_PLL1DIVR = (RCC_PLL1DIVR & ~PLL1DIVR_NP_MASK) | PLL1DIVR_N(rev_y ? TC_PLL_N_REV_Y : TC_PLL_N) |
                   PLL1DIVR_P(TC_PLL_P);
    RCC_CR |= CR_PLL1ON;
    WAIT_SET(RCC_CR, CR_PLL1RDY);

    flash_access_set(&FLASH_ACR, ACR_LATENCY(TC_FLASH_WAIT_STATES) | ACR_WRHIGHFREQ_2);
    RCC_D1CFGR = D1CFGR_HPRE(TC_AHB_DIV) | D1CFGR_D1PPRE(TC_APB1_DIV);
    RCC_D2CFGR = D2CFGR_PPRE(TC_APB1_DIV, TC_APB2_DIV);
    RCC_D3CFGR = D3CFGR_D3PPRE(TC_APB1_DIV);
    RCC_CFGR = (RCC_CFGR & ~CFGR_SW_MASK) | CFGR_SW_PLL1;
    while ((RCC_CFGR & CFGR_SWS_MASK) != CFGR_SWS_PLL1) {
    }
    RCC_D2CCIP2R = (RCC_D2CCIP2R & ~D2CCIP2R_USART234578SEL_MASK) | D2CCIP2R_USART234578SEL_HSI;
    core_clock_hz = rev_y ? TC_CORE_CLOCK_HZ_REV_Y : TC_CORE_CLOCK_HZ;
    cortex_m7_caches_enable();
}
