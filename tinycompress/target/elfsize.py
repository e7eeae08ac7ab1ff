"""Flash and RAM of an ELF, counted the way arm-none-eabi-size (Berkeley format) counts them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile


@dataclass
class ElfSizes:
    text: int                      # read-only allocated bytes: code, constants, vectors
    data: int                      # initialised RAM, stored in flash too
    bss: int                       # zeroed RAM (arena, stack reservation, statics)
    code: int                      # executable sections only
    symbols: dict[str, int]        # object sizes by name

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss


def elf_sizes(path: Path) -> ElfSizes:
    text = data = bss = code = 0
    symbols: dict[str, int] = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for section in elf.iter_sections():
            flags = section["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC:
                continue
            size = section["sh_size"]
            if section["sh_type"] == "SHT_NOBITS":
                bss += size
            elif flags & SH_FLAGS.SHF_WRITE:
                data += size
            else:
                text += size
                if flags & SH_FLAGS.SHF_EXECINSTR:
                    code += size
        symtab = elf.get_section_by_name(".symtab")
        if symtab is not None:
            for sym in symtab.iter_symbols():
                if sym["st_info"]["type"] == "STT_OBJECT":
                    symbols[sym.name] = sym["st_size"]
    return ElfSizes(text, data, bss, code, symbols)
