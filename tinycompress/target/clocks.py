"""The clock a bare real board's start-up code sets: PLL factors, flash wait states, bus dividers and
voltage scaling, derived from the board file's `clock_hz` (the core clock) and `[clock]` table (the
family, the oscillator the PLL runs from and its frequency). tc_clock_config.h carries them into
firmware/runtime/clock_<family>.c, which writes them in the order its reference manual gives.

The limits below are the parts' documented ones (each family's reference manual, cited per entry);
tests/test_clocks.py checks the header against its own copy of them.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import TinyCompressError

MHZ = 1_000_000
CLOCK_FLAGS = ("-DTC_CLOCK_INIT",)   # startup.c calls tc_clock_init() (only where a clock_*.c is linked)
SERIAL_BAUD = 115200


@dataclass(frozen=True)
class Family:
    """One family's PLL and bus limits. Frequencies in Hz; ranges inclusive."""
    source: str                      # the C file: firmware/runtime/clock_<name>.c
    vco_in: tuple[int, int]          # the PLL's input after the M divider
    vco_out: tuple[int, int]
    m: tuple[int, int]
    n: tuple[int, int]
    p: tuple[int, ...]               # the divider that feeds the system clock (P on F4/F7/H7, R on L4/U5)
    hz_per_wait_state: int           # flash: one more wait state per this much HCLK (0: a table, below)
    ahb_max: int
    apb_max: tuple[int, int]         # APB1, APB2 (H7: every APB)
    oscillators: dict[str, tuple[int, int]]   # what may feed the PLL, with its frequency range


FAMILIES = {
    # RM0090 rev 19, 6.3.2 RCC_PLLCFGR: 2 <= M <= 63, 50 <= N <= 432, P in 2/4/6/8; VCO input 1-2 MHz,
    # output 100-432 MHz. 3.5.1 Table 10: 30 MHz per wait state at 2.7-3.6 V. APB1 <= 42, APB2 <= 84 MHz.
    "stm32f4": Family("clock_stm32f4.c", (1 * MHZ, 2 * MHZ), (100 * MHZ, 432 * MHZ), (2, 63), (50, 432),
                      (2, 4, 6, 8), 30 * MHZ, 168 * MHZ, (42 * MHZ, 84 * MHZ),
                      {"hse": (4 * MHZ, 26 * MHZ), "hse-bypass": (1 * MHZ, 50 * MHZ),
                       "hsi": (16 * MHZ,) * 2}),
    # RM0385 rev 8, 5.3.2 RCC_PLLCFGR: the same ranges as the F4; 3.3.2 Table 5: 30 MHz per wait state at
    # 2.7-3.6 V. APB1 <= 54, APB2 <= 108 MHz. Over-drive above 180 MHz (4.1.4).
    "stm32f7": Family("clock_stm32f7.c", (1 * MHZ, 2 * MHZ), (100 * MHZ, 432 * MHZ), (2, 63), (50, 432),
                      (2, 4, 6, 8), 30 * MHZ, 216 * MHZ, (54 * MHZ, 108 * MHZ),
                      {"hse": (4 * MHZ, 26 * MHZ), "hse-bypass": (1 * MHZ, 50 * MHZ),
                       "hsi": (16 * MHZ,) * 2}),
    # RM0433 rev 7, 8.7.11-8.7.13 RCC_PLLCKSELR/PLLCFGR/PLL1DIVR: 1 <= DIVM1 <= 63, 4 <= DIVN1 <= 512,
    # DIVP1 even; input 1-16 MHz, wide VCO 192-960 MHz (DS12110 rev 8, Table 58, VOS0). 4.3.8 Table 17:
    # wait states for the AXI clock (below). AXI/AHB <= 240 MHz, APB <= 120 MHz.
    "stm32h7": Family("clock_stm32h7.c", (1 * MHZ, 16 * MHZ), (192 * MHZ, 960 * MHZ), (1, 63), (4, 512),
                      tuple(range(2, 129, 2)), 0, 240 * MHZ, (120 * MHZ, 120 * MHZ),
                      {"hse": (4 * MHZ, 48 * MHZ), "hse-bypass": (4 * MHZ, 50 * MHZ),
                       "hsi": (64 * MHZ,) * 2}),
    # RM0432 rev 9, 6.4.4 RCC_PLLCFGR: 1 <= PLLM <= 16, 8 <= PLLN <= 127, PLLR in 2/4/6/8; VCO input
    # 2.66-16 MHz, output 64-344 MHz. 3.3.3 Table 12: range 1 boost, 20 MHz per wait state.
    "stm32l4": Family("clock_stm32l4.c", (2_660_000, 16 * MHZ), (64 * MHZ, 344 * MHZ), (1, 16), (8, 127),
                      (2, 4, 6, 8), 20 * MHZ, 120 * MHZ, (120 * MHZ, 120 * MHZ),
                      {"hsi": (16 * MHZ,) * 2}),     # clock_stm32l4.c runs the PLL from HSI16 only
    # RM0456 rev 4, 11.8.31 RCC_PLL1CFGR / 11.8.34 RCC_PLL1DIVR: 1 <= PLL1M <= 16, 4 <= PLL1N <= 512,
    # 1 <= PLL1R <= 128 (R = 1 or even); input 4-16 MHz, VCO 128-544 MHz. 7.3.3 Table 54: range 1,
    # 32 MHz per wait state.
    "stm32u5": Family("clock_stm32u5.c", (4 * MHZ, 16 * MHZ), (128 * MHZ, 544 * MHZ), (1, 16), (4, 512),
                      (1, *range(2, 129, 2)), 32 * MHZ, 160 * MHZ, (160 * MHZ, 160 * MHZ),
                      {"hsi": (16 * MHZ,) * 2}),     # clock_stm32u5.c runs PLL1 from HSI16 only
}
# The nRF52840's CPU always runs at 64 MHz from HFCLK; the start-up code only starts the crystal
# oscillator (HFXO) and turns the instruction cache on (nRF52840 PS v1.7, 6.4 CLOCK, 6.10 NVMC).
NRF52_CORE_HZ = 64 * MHZ
NRF52_SOURCE = "clock_nrf52.c"
FAMILY_NAMES = (*FAMILIES, "nrf52")
H7_REV_Y_HZ = 400 * MHZ          # rev Y H743s stop at 400 MHz in VOS1 (ES0392, 2.2.x; DS12110 Table 23)
# RM0433 4.3.8 Table 17 (rev V, VOS0): the highest AXI clock in MHz for 0, 1, 2, 3 and 4 wait states
# (STM32CubeH7's 480 MHz examples program 4 at 240 MHz too). Rev Y at 400 MHz (AXI 200 MHz, VOS1)
# needs no more, so the one setting serves both.
H7_WAIT_STATES = (70, 140, 185, 210, 240)


@dataclass(frozen=True)
class ClockPlan:
    family: str
    source: str              # the PLL's oscillator: hse, hse-bypass, hsi (HSI16 on L4/U5, HSI on F4/F7)
    source_hz: int
    core_hz: int
    m: int = 0
    n: int = 0
    p: int = 0               # the system clock's divider (P on F4/F7/H7, R on L4/U5)
    q: int = 0               # F4/F7: the 48 MHz divider (USB, SDIO), left at its best fit
    wait_states: int = 0
    ahb_div: int = 1         # H7: the AXI/AHB divider (HPRE) after the core's
    apb1_div: int = 1
    apb2_div: int = 1
    fallback_n: int = 0      # H7 rev Y: DIVN1 for H7_REV_Y_HZ

    @property
    def vco_in(self) -> int:
        return self.source_hz // self.m

    @property
    def vco(self) -> int:
        return self.vco_in * self.n

    @property
    def fallback_hz(self) -> int:
        return self.vco_in * self.fallback_n // self.p

    @property
    def hclk(self) -> int:
        return self.core_hz // self.ahb_div

    def bus_hz(self, bus: str) -> int:
        """The clock of a peripheral bus (apb1, apb2) or of a fixed oscillator (hsi) that feeds a UART."""
        if bus == "hsi":
            return FAMILIES[self.family].oscillators["hsi"][0]
        return self.hclk // {"apb1": self.apb1_div, "apb2": self.apb2_div}[bus]


def _pll(family: Family, source_hz: int, target: int) -> tuple[int, int, int]:
    """M, N, P with source / M * N / P == target exactly: the highest VCO input in range (the least
    jitter, RM0090 6.3.2), then an even P, then the lowest VCO."""
    best = None
    for m in range(family.m[0], family.m[1] + 1):
        if source_hz % m or not family.vco_in[0] <= source_hz // m <= family.vco_in[1]:
            continue
        vco_in = source_hz // m
        for p in family.p:
            if (target * p) % vco_in:
                continue
            n, vco = target * p // vco_in, target * p
            if family.n[0] <= n <= family.n[1] and family.vco_out[0] <= vco <= family.vco_out[1]:
                key = (-vco_in, p == 1, vco)     # an even P where both fit, as ST's examples
                if best is None or key < best[0]:
                    best = (key, (m, n, p))
    if best is None:
        raise TinyCompressError(f"no PLL setting gives {target} Hz from {source_hz} Hz within the part's "
                                "limits")
    return best[1]


def _divider(clock: int, limit: int) -> int:
    div = 1
    while clock // div > limit:
        div *= 2
    return div


def clock_plan(board) -> ClockPlan | None:
    """The clock a bare board's start-up sets (None for emulated or framework-built boards)."""
    table = getattr(board, "clock", None)
    if not table:
        return None
    name, source, source_hz = table["family"], table["source"], table["source_hz"]
    if name == "nrf52":
        return ClockPlan(name, source, source_hz, board.clock_hz)
    family = FAMILIES[name]
    low, high = family.oscillators[source]
    if not low <= source_hz <= high:
        raise TinyCompressError(f"board {board.name}: clock.source_hz must be {low} to {high} for {source}")
    core = board.clock_hz
    m, n, p = _pll(family, source_hz, core)
    ahb = _divider(core, family.ahb_max)
    hclk = core // ahb
    if family.hz_per_wait_state:
        wait_states = -(-hclk // family.hz_per_wait_state) - 1
    else:
        wait_states = next(i for i, top in enumerate(H7_WAIT_STATES) if hclk <= top * MHZ)
    q = next((q for q in range(2, 16) if source_hz // m * n // q <= 48 * MHZ), 15) \
        if name in ("stm32f4", "stm32f7") else 0
    fallback_n = H7_REV_Y_HZ * p // (source_hz // m) if name == "stm32h7" else 0
    return ClockPlan(name, source, source_hz, core, m, n, p, q, wait_states, ahb,
                     _divider(hclk, family.apb_max[0]), _divider(hclk, family.apb_max[1]), fallback_n)


def clock_sources(board) -> list[str]:
    """The start-up clock's C file for the board (none for emulated or framework-built boards)."""
    plan = clock_plan(board)
    if plan is None:
        return []
    return [NRF52_SOURCE if plan.family == "nrf52" else FAMILIES[plan.family].source]


def clock_values(board) -> dict:
    """What templates/tc_clock_config.h.j2 renders (nothing for a board without a start-up clock)."""
    plan = clock_plan(board)
    return dict(clock=plan, clock_source=clock_sources(board)[0]) if plan else {}


def uart_divisor(board) -> int:
    """The UART's BRR for SERIAL_BAUD at the clock the start-up code leaves it (an LPUART counts in
    1/256ths: RM0432 52.4.7)."""
    plan, console = clock_plan(board), board.console
    clock = plan.bus_hz(console["uart_clock"])
    scale = 256 if console["registers"] == "lpuart" else 1
    return (scale * clock + SERIAL_BAUD // 2) // SERIAL_BAUD
