"""Boards: one TOML data file each in boards/, loaded into a small dataclass."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

from .errors import TinyCompressError
from .resources import data_dir

DEFAULT_BOARD = "mps2-an386"
DSP_CORES = {"cortex-m4", "cortex-m7", "cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85"}  # SMLAD and friends
MVE_CORES = {"cortex-m55", "cortex-m85"}                                                         # Helium
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


def list_boards() -> list[Board]:
    boards = [_from_toml(tomllib.loads(p.read_text())) for p in sorted(data_dir("boards").glob("*.toml"))]
    return sorted(boards, key=lambda b: (b.name != DEFAULT_BOARD, not b.emulated, b.name))


def load_board(name: str) -> Board:
    path = data_dir("boards") / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(b.name for b in list_boards())
        raise TinyCompressError(f"unknown board {name}; known boards: {known}")
    return _from_toml(tomllib.loads(path.read_text()))


def require_emulated(board: Board, command: str) -> Board:
    if not board.emulated:
        raise TinyCompressError(f"{board.name} is a real board and `tinycompress {command}` runs in the emulator: "
                                f"use --board {board.emulated_by} (the same core), or `tinycompress flash` "
                                f"to build and upload for {board.name}")
    return board
