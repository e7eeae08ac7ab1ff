"""Boards: one TOML data file each in boards/ (or a user's own, --board-file), checked against one schema
and loaded into a small dataclass."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TinyCompressError
from ..escape import one_line
from ..resources import data_dir

DEFAULT_BOARD = "mps2-an386"
DSP_CORES = {"cortex-m4", "cortex-m7", "cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85"}  # SMLAD...
MVE_CORES = {"cortex-m55", "cortex-m85"}                                                         # Helium
MAX_BOARD_FILE = 64 * 1024  # bytes
NS_PER_INSTRUCTION = 64  # QEMU -icount shift=6: every instruction is 2^6 ns of virtual time


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    fpu: str
    emulated: bool
    clock_hz: int            # what SysTick counts in QEMU; a real board's top clock
    stack_size: int
    cflags: tuple[str, ...]
    flash_origin: int
    flash_size: int
    ram_origin: int
    ram_size: int
    qemu_machine: str = ""   # emulated boards only
    emulated_by: str = ""    # real boards: the emulated board with the same core
    # PlatformIO: platform, board, framework ("" for a bare build) and upload_protocol.
    platformio: dict = field(default_factory=dict)
    # The serial harness's console: driver (semihosting, uart-stm32, uart-nrf52, arduino) and its registers.
    console: dict = field(default_factory=lambda: {"driver": "semihosting"})
    # Bare real boards: the clock the start-up code sets (target/clocks.py): family, source, source_hz.
    clock: dict = field(default_factory=dict)
    # The cycle estimate's memory timing (analysis/cycles.py): flash_wait_states at clock_hz,
    # instruction_cache (an I-cache or ART hides them), multiply_cycles (M0/M0+ MULS: 1 or 32).
    timing: dict = field(default_factory=dict)

    @property
    def dsp(self) -> bool:
        return self.core in DSP_CORES

    @property
    def mve(self) -> bool:
        return self.core in MVE_CORES

    @property
    def kind(self) -> str:
        return "emulated" if self.emulated else "real"

    def instructions(self, ticks):
        """SysTick ticks to instructions (works on numpy arrays too)."""
        return ticks * 1e9 / (self.clock_hz * NS_PER_INSTRUCTION)


def _from_toml(data: dict) -> Board:
    flash, ram = data.pop("flash"), data.pop("ram")
    data["cflags"] = tuple(data["cflags"])
    return Board(**data, flash_origin=flash["origin"], flash_size=flash["size"],
                 ram_origin=ram["origin"], ram_size=ram["size"])


# The schema every board file is checked against, the catalog's and a user's own (--board-file).
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
CORES = {"cortex-m0", "cortex-m0plus", "cortex-m1", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m23",
         "cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85"}
FPUS = {"none", "auto", "fpv4-sp-d16", "fpv5-sp-d16", "fpv5-d16"}
QEMU_MACHINES = {"mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps2-an511", "mps2-an521",
                 "mps3-an524", "mps3-an547", "microbit", "lm3s6965evb", "lm3s811evb", "netduino2",
                 "netduinoplus2", "olimex-stm32-h405", "stm32vldiscovery"}
CFLAG_PATTERNS = [  # every compiler flag a board may give, whole; nothing else reaches the compiler
    re.compile(r"-mcpu=(?P<cpu>[a-z0-9-]+)"), re.compile(r"-mthumb"),
    re.compile(r"-mfloat-abi=(soft|softfp|hard)"), re.compile(r"-mfpu=(?P<fpu>[a-z0-9-]+)"),
    re.compile(r"-D[A-Za-z_][A-Za-z0-9_]{0,62}(=[A-Za-z0-9_.+-]{0,63})?")]
CFLAGS_ALLOWED = ("-mcpu=<the board's core>, -mthumb, -mfloat-abi=soft|softfp|hard, -mfpu=<a known FPU>, "
                  "-DNAME or -DNAME=VALUE (letters, digits, _ . + -)")
U32 = (0, 0xFFFFFFFF)
PIO_FIELD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DESCRIPTION = re.compile(r"[ -~]{1,160}")      # printable ASCII, one line
TOP_KEYS = {"name", "description", "core", "fpu", "emulated", "clock_hz", "stack_size", "cflags", "flash",
            "ram", "qemu_machine", "emulated_by", "platformio", "console", "clock", "timing"}
TIMING_KEYS = {"flash_wait_states", "instruction_cache", "multiply_cycles"}
# The serial console drivers (emit.CONSOLE_SOURCES has their sources) and each one's registers.
CONSOLE_KEYS = {"uart-stm32": {"uart", "registers", "uart_clock", "tx_port", "tx_pin", "tx_af", "enable"},
                "uart-nrf52": {"uart", "gpio", "tx_pin"}, "semihosting": set(), "arduino": set()}


class _Check:
    """Typed reads of one board file; every refusal names the file, the key and what is allowed."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, allowed: str, value=None):
        found = "" if value is None else f", not {one_line(repr(value))[:80]}"
        raise TinyCompressError(f"board file {self.source}: {key} must be {allowed}{found}")

    def keys(self, table, where: str, required: set, allowed: set) -> dict:
        if not isinstance(table, dict):
            self.fail(where or "the file", "a table", table)
        prefix = f"{where}." if where else ""
        unknown = sorted(set(table) - allowed)
        if unknown:
            self.fail(prefix + str(unknown[0]), f"absent (known keys: {', '.join(sorted(allowed))})")
        missing = sorted(required - set(table))
        if missing:
            self.fail(prefix + missing[0], "given (it is required)")
        return table

    def integer(self, table: dict, key: str, where: str, low: int, high: int) -> int:
        value = table[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.fail(f"{where}{key}", f"an integer from {low:#x} to {high:#x}", value)
        return value

    def text(self, table: dict, key: str, where: str, pattern: re.Pattern, allowed: str) -> str:
        value = table[key]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.fail(f"{where}{key}", allowed, value)
        return value

    def choice(self, table: dict, key: str, where: str, choices) -> str:
        value = table[key]
        if not isinstance(value, str) or value not in choices:
            self.fail(f"{where}{key}", "one of " + ", ".join(sorted(choices)), value)
        return value


def validate_board(data: dict, source: str) -> Board:
    """A board file's table, checked against the schema, as a Board."""
    c = _Check(source)
    emulated = data.get("emulated")
    if not isinstance(emulated, bool):
        c.fail("emulated", "true or false", emulated)
    required = {"name", "description", "core", "fpu", "emulated", "clock_hz", "stack_size", "cflags", "flash",
                "ram"}
    c.keys(data, "", required | ({"qemu_machine"} if emulated else {"platformio", "console"}),
           TOP_KEYS - ({"emulated_by", "platformio"} if emulated else {"qemu_machine"}))
    c.text(data, "name", "", NAME, "a name of lowercase letters, digits and ._- (up to 40, starting with a "
                                   "letter or digit)")
    c.text(data, "description", "", DESCRIPTION, "one line of printable ASCII, up to 160 characters")
    core = c.choice(data, "core", "", CORES)
    c.choice(data, "fpu", "", FPUS)
    c.integer(data, "clock_hz", "", 32_768, 2_000_000_000)
    for region in ("flash", "ram"):
        table = c.keys(data[region], region, {"origin", "size"}, {"origin", "size"})
        origin = c.integer(table, "origin", f"{region}.", *U32)
        c.integer(table, "size", f"{region}.", 1024, U32[1] + 1 - origin)
    stack = c.integer(data, "stack_size", "", 256, data["ram"]["size"])
    if stack % 8:
        c.fail("stack_size", "a multiple of 8", stack)
    cflags = data["cflags"]
    if not isinstance(cflags, list) or not 1 <= len(cflags) <= 16:
        c.fail("cflags", "a list of 1 to 16 flags: " + CFLAGS_ALLOWED, cflags)
    for flag in cflags:
        match = next((m for p in CFLAG_PATTERNS if isinstance(flag, str) and (m := p.fullmatch(flag))), None)
        if match is None or match.groupdict().get("cpu") not in (None, core) \
                or match.groupdict().get("fpu") not in (None, *(FPUS - {"none"})):
            c.fail("cflags", f"flags from: {CFLAGS_ALLOWED}", flag)
    if emulated:
        c.choice(data, "qemu_machine", "", QEMU_MACHINES)
    else:
        _check_platformio(c, data)
    if "console" in data:
        _check_console(c, data["console"])
    if "clock" in data or str(data.get("console", {}).get("driver", "")).startswith("uart-"):
        _check_clock(c, data)
    if "timing" in data:
        _check_timing(c, data["timing"])
        if "clock" in data and "flash_wait_states" in data["timing"]:
            c.fail("timing.flash_wait_states", "absent: a board with [clock] has those its start-up sets",
                   data["timing"]["flash_wait_states"])
    return _from_toml(dict(data))


def _check_platformio(c: _Check, data: dict) -> None:
    pio = c.keys(data["platformio"], "platformio", {"platform", "board", "upload_protocol"},
                 {"platform", "board", "framework", "upload_protocol"})
    for key in ("platform", "board", "upload_protocol"):
        c.text(pio, key, "platformio.", PIO_FIELD, "letters, digits and ._- (up to 64)")
    if pio.get("framework", ""):
        c.text(pio, "framework", "platformio.", PIO_FIELD, "empty (a bare build) or letters, digits and ._-")
    by = data.get("emulated_by")
    if by is not None and not (isinstance(by, str) and by in _catalog() and load_board(by).emulated):
        c.fail("emulated_by", "an emulated board of the catalog", by)


def _check_timing(c: _Check, timing: dict) -> None:
    c.keys(timing, "timing", set(), TIMING_KEYS)
    if "flash_wait_states" in timing:
        c.integer(timing, "flash_wait_states", "timing.", 0, 15)
    if "multiply_cycles" in timing and timing["multiply_cycles"] not in (1, 32):
        c.fail("timing.multiply_cycles", "1 or 32", timing["multiply_cycles"])
    if not isinstance(timing.get("instruction_cache", False), bool):
        c.fail("timing.instruction_cache", "true or false", timing["instruction_cache"])


def _check_console(c: _Check, console: dict) -> None:
    driver = console.get("driver") if isinstance(console, dict) else None
    if not isinstance(driver, str) or driver not in CONSOLE_KEYS:
        c.fail("console.driver", "one of " + ", ".join(CONSOLE_KEYS), driver)
    c.keys(console, "console", CONSOLE_KEYS[driver] | {"driver"}, CONSOLE_KEYS[driver] | {"driver"})
    for key in ("uart", "gpio", "tx_port"):
        if key in console:
            c.integer(console, key, "console.", *U32)
    for key, high in (("tx_pin", 31), ("tx_af", 15)):
        if key in console:
            c.integer(console, key, "console.", 0, high)
    if "registers" in console:
        c.choice(console, "registers", "console.", {"v1", "v2", "lpuart"})
    if "uart_clock" in console:
        c.choice(console, "uart_clock", "console.", {"apb1", "apb2", "hsi"})
    steps = console.get("enable", [[0, 0, "-"]])
    if not isinstance(steps, list) or not 1 <= len(steps) <= 16 or not all(
            isinstance(s, list) and len(s) == 3 and isinstance(s[2], str) and DESCRIPTION.fullmatch(s[2])
            and all(isinstance(v, int) and not isinstance(v, bool) and U32[0] <= v <= U32[1] for v in s[:2])
            for s in steps):
        c.fail("console.enable", "a list of 1 to 16 [register, bits, \"what\"] (32-bit integers, "
                                 "one line of printable ASCII)", steps)


def _check_clock(c: _Check, data: dict) -> None:
    """A bare board's [clock]: the family of its start-up code and the oscillator the PLL runs from."""
    from .clocks import FAMILIES, FAMILY_NAMES, clock_plan
    if "clock" not in data:
        c.fail("clock", "given for a bare board (family, source, source_hz)")
    keys = {"family", "source", "source_hz"}
    table = c.keys(data["clock"], "clock", keys, keys)
    family = c.choice(table, "family", "clock.", set(FAMILY_NAMES))
    c.choice(table, "source", "clock.",
             set(FAMILIES[family].oscillators) if family in FAMILIES else {"hfxo"})
    c.integer(table, "source_hz", "clock.", 1_000_000, 64_000_000)
    try:
        clock_plan(_from_toml(dict(data)))
    except TinyCompressError as exc:
        c.fail("clock_hz", f"reachable by the part's PLL ({exc})")


def _catalog() -> dict[str, Path]:
    """Catalog board name -> its file in boards/."""
    return {p.stem: p for p in sorted(data_dir("boards").glob("*.toml"))}


def _read_board(path: Path, source: str) -> Board:
    try:
        if path.stat().st_size > MAX_BOARD_FILE:
            raise TinyCompressError(f"board file {source} is larger than {MAX_BOARD_FILE} bytes; is it a "
                                    "board file?")
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TinyCompressError(f"cannot read board file {source}: {one_line(str(exc))}") from None
    return validate_board(data, source)


def list_boards() -> list[Board]:
    boards = [_read_board(path, path.name) for path in _catalog().values()]
    return sorted(boards, key=lambda b: (b.name != DEFAULT_BOARD, not b.emulated, b.name))


def load_board(name: str) -> Board:
    """A board of the catalog (boards/*.toml), by name only: never a path."""
    catalog = _catalog()
    if name not in catalog:
        hint = (" (--board takes a name from the catalog; give a board file of your own with --board-file "
                "FILE.toml)"
                if re.search(r"[/\\]|\.\.|\.toml$", name) else "")
        raise TinyCompressError(f"unknown board {one_line(name)}{hint}; known boards: {', '.join(catalog)}")
    board = _read_board(catalog[name], catalog[name].name)
    if board.name != name:
        raise TinyCompressError(f"board file {catalog[name].name} names its board {board.name}; rename one "
                                "of them")
    return board


def load_board_file(path: Path) -> Board:
    """A user's own board file (--board-file FILE.toml), checked against the same schema as the catalog."""
    return _read_board(Path(path), one_line(str(path)))


def require_emulated(board: Board, command: str) -> Board:
    if not board.emulated:
        raise TinyCompressError(f"{board.name} is a real board and `tinycompress {command}` runs in the "
                                f"emulator: use --board {board.emulated_by} (the same core), or "
                                f"`tinycompress flash` to build and upload for {board.name}")
    return board
