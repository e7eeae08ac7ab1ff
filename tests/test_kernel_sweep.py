"""Randomized shape sweeps in QEMU: each core's optimized kernels against the portable ones."""
from __future__ import annotations

import subprocess

import jinja2
import pytest
from conftest import TESTS, needs_emulator

from tinycompress.boards import load_board
from tinycompress.emit import TARGET_SOURCES
from tinycompress.emulate import qemu_command
from tinycompress.resources import data_dir

pytestmark = needs_emulator
KERNELS = ["tc_conv2d_s8", "tc_fully_connected_s8", "tc_depthwise_conv2d_s8"]


@pytest.mark.parametrize("board_name", ["mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547"])
def test_dsp_kernels_equal_the_portable_ones(board_name, tmp_path):
    board = load_board(board_name)
    fw = data_dir("firmware")
    memory = jinja2.Template((data_dir("templates") / "memory.ld.j2").read_text())
    (tmp_path / "memory.ld").write_text(memory.render(board=board, stack_size=board.stack_size, banner=""))
    flags = [*board.cflags, "-O2", "-std=c11", "-Wall", "-Werror", f"-I{fw / 'include'}", f"-I{fw / 'runtime'}"]
    objects = []
    for name in KERNELS:   # each kernel twice: as it builds for this core, and forced portable
        source = fw / "kernels" / f"{name}.c"
        for suffix, extra in (("", []), ("_portable", ["-DTC_PORTABLE", f"-D{name}={name}_portable"])):
            obj = tmp_path / f"{name}{suffix}.o"
            subprocess.run(["arm-none-eabi-gcc", *flags, *extra, "-c", str(source), "-o", str(obj)], check=True)
            objects.append(str(obj))
    elf = tmp_path / "sweep.elf"
    runtime = [str(fw / "runtime" / n) for n in TARGET_SOURCES]
    subprocess.run(["arm-none-eabi-gcc", *flags, str(TESTS / "firmware" / "kernel_sweep.c"), *runtime, *objects,
                    "-nostartfiles", "-Wl,--gc-sections", f"-T{fw / 'linker' / 'cortex_m.ld'}", f"-L{tmp_path}",
                    f"-L{fw / 'linker'}", "--specs=nano.specs", "--specs=nosys.specs", "-o", str(elf)], check=True)
    proc = subprocess.run(qemu_command(board, elf), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "agree" in proc.stdout + proc.stderr
