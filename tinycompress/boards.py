"""Boards: one TOML data file each in boards/, loaded into a small dataclass."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass

from .errors import TinyCompressError
from .resources import data_dir

DEFAULT_BOARD = "mps2-an386"
NS_PER_INSTRUCTION = 64  # QEMU -icount shift=6: every instruction is 2^6 ns of virtual time


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    fpu: str
    emulated: bool
    qemu_machine: str
    clock_hz: int            # what SysTick counts in QEMU
    stack_size: int
    cflags: tuple[str, ...]
    flash_origin: int
    flash_size: int
    ram_origin: int
    ram_size: int

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
    return sorted(boards, key=lambda b: (b.name != DEFAULT_BOARD, b.name))


def load_board(name: str) -> Board:
    path = data_dir("boards") / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(b.name for b in list_boards())
        raise TinyCompressError(f"unknown board {name}; known boards: {known}")
    return _from_toml(tomllib.loads(path.read_text()))
