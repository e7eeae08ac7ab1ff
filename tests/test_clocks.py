"""The start-up clock of every bare real board: the constants tc_clock_config.h and tc_console_config.h
give firmware/runtime/clock_*.c, checked against the board file and against the parts' documented
limits, which this file states again on its own (it does not read tinycompress/target/clocks.py's)."""
from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest

from tinycompress.codegen.emit import _environment
from tinycompress.resources import data_dir
from tinycompress.errors import TinyCompressError
from tinycompress.target.boards import list_boards, validate_board
from tinycompress.target.clocks import clock_sources, clock_values, uart_divisor

MHZ = 1_000_000
BAUD = 115200
BARE = [b for b in list_boards() if not b.emulated and b.console["driver"].startswith("uart-")]
STM32 = [b for b in BARE if b.clock["family"].startswith("stm32")]

# Each family's documented limits: the PLL's M, N and system-clock divider ranges, the VCO input and
# output (Hz), the flash (the highest HCLK for 0, 1, 2 ... wait states) and the buses.
LIMITS = {
    # RM0090 6.3.2 RCC_PLLCFGR, 3.5.1 Table 10 (2.7-3.6 V), 6.3.3 RCC_CFGR (APB1 42, APB2 84 MHz)
    "stm32f4": dict(m=range(2, 64), n=range(50, 433), p={2, 4, 6, 8}, vco_in=(1, 2), vco=(100, 432),
                    flash=[30 * (i + 1) for i in range(8)], ahb=168, apb=(42, 84)),
    # RM0385 5.3.2 RCC_PLLCFGR, 3.3.2 Table 5 (2.7-3.6 V), 5.3.3 RCC_CFGR (APB1 54, APB2 108 MHz)
    "stm32f7": dict(m=range(2, 64), n=range(50, 433), p={2, 4, 6, 8}, vco_in=(1, 2), vco=(100, 432),
                    flash=[30 * (i + 1) for i in range(10)], ahb=216, apb=(54, 108)),
    # RM0433 8.7.11-13, DS12110 (wide VCO), 4.3.8 Table 17 (VOS0: AXI clock), 8.7.7-9 (AXI 240, APB 120)
    "stm32h7": dict(m=range(1, 64), n=range(4, 513), p=set(range(2, 129, 2)), vco_in=(1, 16),
                    vco=(192, 960), flash=[70, 140, 185, 210, 240], ahb=240, apb=(120, 120)),
    # RM0432 6.4.4 RCC_PLLCFGR, 3.3.3 Table 12 (range 1 boost), DS12023 (HCLK and APB 120 MHz)
    "stm32l4": dict(m=range(1, 17), n=range(8, 128), p={2, 4, 6, 8}, vco_in=(2.66, 16), vco=(64, 344),
                    flash=[20 * (i + 1) for i in range(16)], ahb=120, apb=(120, 120)),
    # RM0456 11.8.31/34 RCC_PLL1CFGR/PLL1DIVR, 7.3.3 Table 54 (range 1), DS13737 (160 MHz)
    "stm32u5": dict(m=range(1, 17), n=range(4, 513), p={1, *range(2, 129, 2)}, vco_in=(4, 16),
                    vco=(128, 544), flash=[32 * (i + 1) for i in range(16)], ahb=160, apb=(160, 160)),
}
TOP_CLOCK = {"stm32f4": 168, "stm32f7": 216, "stm32h7": 480, "stm32l4": 120, "stm32u5": 160, "nrf52": 64}
HSI_HZ = {"stm32f4": 16 * MHZ, "stm32f7": 16 * MHZ, "stm32h7": 64 * MHZ, "stm32l4": 16 * MHZ,
          "stm32u5": 16 * MHZ}
# Voltage: above these the part needs scale 1 with over-drive (F7, RM0385 4.1.4), range 1 boost
# (L4+, RM0432 5.1.8), the EPOD booster (U5, RM0456 10.5.4); the handwritten thresholds must match.
VOLTAGE_THRESHOLDS = {"clock_stm32f7.c": ("OVERDRIVE_ABOVE_HZ", 180 * MHZ),
                      "clock_stm32l4.c": ("BOOST_ABOVE_HZ", 80 * MHZ),
                      "clock_stm32u5.c": ("BOOST_ABOVE_HZ", 55 * MHZ)}


def defines(text: str) -> dict[str, int]:
    """#define NAME 123u, 0x1Fu or (1u << 14): the plain constants of a C file, as integers."""
    found = {}
    for m in re.finditer(r"^#define (\w+) (?:(0x[0-9A-F]+|\d+)u?\b|\((\d+)u << (\d+)\))", text, re.M):
        found[m[1]] = int(m[2], 0) if m[2] else int(m[3]) << int(m[4])
    return found


def clock_header(board) -> str:
    return _environment().get_template("tc_clock_config.h.j2").render(banner="", board=board,
                                                                      **clock_values(board))


def console_header(board) -> str:
    return _environment().get_template("tc_console_config.h.j2").render(
        banner="", board=board, baud=BAUD, console=board.console, brr=uart_divisor(board))


def test_every_bare_board_sets_its_clock_and_framework_boards_leave_it_to_the_core():
    for board in list_boards():
        if board.emulated or board.console["driver"] == "arduino":
            assert not clock_sources(board), board.name
        else:
            assert board in BARE and clock_sources(board) == [f"clock_{board.clock['family']}.c"]
            assert board.clock_hz == TOP_CLOCK[board.clock["family"]] * MHZ, board.name
    assert {b.clock["family"] for b in BARE} == set(TOP_CLOCK)


@pytest.mark.parametrize("board", STM32, ids=lambda b: b.name)
def test_pll_wait_states_and_buses_meet_the_part_limits(board):
    d, lim = defines(clock_header(board)), LIMITS[board.clock["family"]]
    source = d["TC_CLOCK_SOURCE_HZ"]
    assert source == board.clock["source_hz"] and d["TC_CORE_CLOCK_HZ"] == board.clock_hz
    if board.clock["source"] == "hsi":
        assert source == HSI_HZ[board.clock["family"]] and d["TC_CLOCK_FROM_HSE"] == 0
    else:
        assert d["TC_CLOCK_FROM_HSE"] == 1
        assert d["TC_CLOCK_HSE_BYPASS"] == (board.clock["source"] == "hse-bypass")
    m, n, p = d["TC_PLL_M"], d["TC_PLL_N"], d["TC_PLL_P"]
    assert m in lim["m"] and n in lim["n"] and p in lim["p"]
    assert source % m == 0 and source // m * n == board.clock_hz * p     # exactly the board's clock
    assert lim["vco_in"][0] * MHZ <= source / m <= lim["vco_in"][1] * MHZ
    assert lim["vco"][0] * MHZ <= source / m * n <= lim["vco"][1] * MHZ
    if "TC_PLL_Q" in d:                                                 # F4/F7: USB and SDIO <= 48 MHz
        assert source // m * n / d["TC_PLL_Q"] <= 48 * MHZ and 2 <= d["TC_PLL_Q"] <= 15

    dividers = [d["TC_AHB_DIV"], d["TC_APB1_DIV"], d["TC_APB2_DIV"]]
    assert all(x & (x - 1) == 0 for x in dividers)                      # the prescalers' powers of two
    hclk = board.clock_hz // d["TC_AHB_DIV"]
    assert hclk <= lim["ahb"] * MHZ
    assert hclk // d["TC_APB1_DIV"] <= lim["apb"][0] * MHZ and hclk // d["TC_APB2_DIV"] <= lim["apb"][1] * MHZ
    ws = d["TC_FLASH_WAIT_STATES"]
    assert hclk <= lim["flash"][ws] * MHZ                               # enough wait states ...
    assert ws == 0 or hclk > lim["flash"][ws - 1] * MHZ                 # ... and no more than needed

    if "TC_PLL_N_REV_Y" in d:                                           # H7 rev Y: 400 MHz in VOS1
        n_y = d["TC_PLL_N_REV_Y"]
        assert source // m * n_y // p == d["TC_CORE_CLOCK_HZ_REV_Y"] == 400 * MHZ
        assert n_y in lim["n"] and lim["vco"][0] * MHZ <= source // m * n_y <= lim["vco"][1] * MHZ


@pytest.mark.parametrize("board", STM32, ids=lambda b: b.name)
def test_the_uart_divisor_follows_the_clock(board):
    clock = defines(clock_header(board))
    brr = defines(console_header(board))["TC_UART_BRR"]
    hclk = board.clock_hz // clock["TC_AHB_DIV"]
    bus = board.console["uart_clock"]
    uart_hz = {"apb1": hclk // clock["TC_APB1_DIV"], "apb2": hclk // clock["TC_APB2_DIV"],
               "hsi": HSI_HZ[board.clock["family"]]}[bus]
    lpuart = board.console["registers"] == "lpuart"
    baud = (256 if lpuart else 1) * uart_hz / brr
    assert abs(baud - BAUD) / BAUD < 0.005
    assert (0x300 <= brr <= 0xFFFFF) if lpuart else (16 <= brr <= 0xFFFF)   # RM0432 52.4.7, 45.8.4


def test_voltage_thresholds_in_the_clock_sequences_are_the_documented_ones():
    runtime = data_dir("firmware") / "runtime"
    for name, (macro, value) in VOLTAGE_THRESHOLDS.items():
        assert defines((runtime / name).read_text())[macro] == value, name
    # The F4 needs scale 1 above 144 MHz (RM0090 5.1.3): VOS (bit 14) is set unconditionally.
    assert defines((runtime / "clock_stm32f4.c").read_text())["PWR_CR_VOS_SCALE1"] == 1 << 14


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("board", BARE, ids=lambda b: b.name)
def test_each_clock_sequence_compiles_cleanly_with_its_header(board, tmp_path):
    (tmp_path / "tc_clock_config.h").write_text(clock_header(board))
    runtime = data_dir("firmware") / "runtime"
    obj = tmp_path / "clock.o"
    subprocess.run(["arm-none-eabi-gcc", *board.cflags, "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror",
                    f"-I{tmp_path}", f"-I{runtime}", "-c", str(runtime / clock_sources(board)[0]), "-o",
                    str(obj)], check=True)
    symbols = subprocess.run(["arm-none-eabi-nm", str(obj)], capture_output=True, text=True,
                             check=True).stdout
    assert re.search(r" T tc_clock_init$", symbols, re.M) and re.search(r" T tc_core_clock_hz$", symbols,
                                                                            re.M)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
def test_startup_calls_the_clock_only_where_it_is_linked(tmp_path):
    """The emulated boards' start-up is the same code as before: no call, no reference."""
    runtime = data_dir("firmware") / "runtime"
    for flags in ([], ["-DTC_CLOCK_INIT"]):
        obj = tmp_path / "startup.o"
        subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O2", "-std=c11", *flags,
                        f"-I{runtime}", "-c", str(runtime / "startup.c"), "-o", str(obj)], check=True)
        symbols = subprocess.run(["arm-none-eabi-nm", str(obj)], capture_output=True, text=True).stdout
        assert ("U tc_clock_init" in symbols) == bool(flags)


BOOT_C = """
void tc_clock_init(void);
static void reset(void) { tc_clock_init(); for (;;) { } }
__attribute__((section(".vectors"), used)) static void (*const vectors[2])(void) = {
    (void (*)(void))0x20001000u, reset};
"""
BOOT_LD = "SECTIONS { . = 0x08000000; .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) } }\n"
UNIMP = re.compile(r"(\w+): unimplemented device (read|write) +\(size 4, offset (0x[0-9a-f]+)"
                   r"(?:, value (0x[0-9a-f]+))?")


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="needs qemu-system-arm and arm-none-eabi-gcc")
def test_the_f4_sequence_in_qemus_netduinoplus2_up_to_where_its_rcc_stops(tmp_path):
    """QEMU's netduinoplus2 is an STM32F405 (the F407's RCC, PWR and flash interface), but QEMU 7.2
    models neither its RCC nor its PWR: they read as zero, so the sequence waits for HSERDY forever.
    What it does show is the writes before that wait, in order; the rest is checked by the constants
    above only."""
    board = next(b for b in BARE if b.name == "disco-f407vg")
    runtime = data_dir("firmware") / "runtime"
    (tmp_path / "tc_clock_config.h").write_text(clock_header(board))
    (tmp_path / "boot.c").write_text(BOOT_C)
    (tmp_path / "boot.ld").write_text(BOOT_LD)
    elf = tmp_path / "boot.elf"
    subprocess.run(["arm-none-eabi-gcc", *board.cflags, "-O2", "-std=c11", "-nostdlib", "-nostartfiles",
                    f"-I{tmp_path}", f"-I{runtime}", str(tmp_path / "boot.c"),
                    str(runtime / "clock_stm32f4.c"), f"-T{tmp_path / 'boot.ld'}", "-o", str(elf)],
                   check=True)
    qemu = subprocess.Popen(["qemu-system-arm", "-M", "netduinoplus2", "-kernel", str(elf), "-nographic",
                             "-monitor", "none", "-serial", "none", "-d", "unimp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        log = qemu.communicate(timeout=2)[1]                      # it should not end by itself ...
    except subprocess.TimeoutExpired:
        qemu.terminate()                                          # ... but wait for HSERDY: stop it
        log = qemu.communicate()[1]
    accesses = [m.groups() for m in UNIMP.finditer(log)]
    if not any(device == "RCC" for device, *_ in accesses):
        pytest.skip("this QEMU models the STM32F4's RCC: run the sequence to its end instead")
    writes = [(device, int(offset, 16), int(value, 16)) for device, kind, offset, value in accesses
              if kind == "write"]
    assert writes == [("RCC", 0x40, 1 << 28),                  # RCC_APB1ENR: PWREN
                      ("PWR", 0x00, 1 << 14),                  # PWR_CR: VOS, scale 1
                      ("RCC", 0x00, 1 << 16)]                  # RCC_CR: HSEON (the disco's crystal)
    assert accesses[-1] == ("RCC", "read", "0x000", None)      # then polling RCC_CR for HSERDY


@pytest.mark.parametrize("old,new,key", [
    ("family = \"stm32l4\"\n", "", "clock.family"),
    ('source = "hsi"', 'source = "hse"', "clock.source"),            # clock_stm32l4.c runs from HSI16 only
    ("clock_hz = 120000000", "clock_hz = 121000000", "clock_hz"),     # no PLL setting within the limits
    ("\n[clock]", "\n[clock_old]", "clock_old"),
])
def test_a_bad_clock_table_is_refused_naming_the_key(old, new, key):
    text = (data_dir("boards") / "nucleo-l4r5zi.toml").read_text()
    assert old in text
    with pytest.raises(TinyCompressError, match=f"board file x.toml: {key}"):
        validate_board(tomllib.loads(text.replace(old, new)), "x.toml")
