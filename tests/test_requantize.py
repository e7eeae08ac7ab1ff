"""The firmware's folded requantization equals gemmlowp's two roundings (host C, edges and random), and
ADD's kernel, built on it, equals TFLite Micro's arithmetic (host and QEMU)."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import TESTS, needs_emulator

from tinycompress.target.boards import load_board
from tinycompress.codegen.emit import TARGET_SOURCES, _environment
from tinycompress.target.emulate import qemu_command
from tinycompress.resources import data_dir


@pytest.mark.skipif(not shutil.which("gcc"), reason="host gcc missing")
def test_folded_requantization_equals_the_two_roundings(tmp_path):
    exe = tmp_path / "requantize_check"
    subprocess.run(["gcc", "-O2", "-std=c11", "-Wall", "-Werror", f"-I{data_dir('firmware') / 'include'}",
                    str(TESTS / "firmware" / "requantize_check.c"), "-o", str(exe)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "agree", proc.stdout


def _qemu_elf(board, tmp_path, sources, defines=()):
    """sources built for board with the runtime, as the tests below run them."""
    fw = data_dir("firmware")
    memory = _environment().get_template("memory.ld.j2")
    (tmp_path / "memory.ld").write_text(memory.render(board=board, stack_size=board.stack_size, banner=""))
    elf = tmp_path / "check.elf"
    runtime = [str(fw / "runtime" / n) for n in TARGET_SOURCES]
    subprocess.run(["arm-none-eabi-gcc", *board.cflags, "-O2", "-std=c11", "-Wall", "-Werror", *defines,
                    f"-I{fw / 'include'}", f"-I{fw / 'runtime'}", *map(str, sources), *runtime,
                    "-nostartfiles", "-Wl,--gc-sections", f"-T{fw / 'linker' / 'cortex_m.ld'}",
                    f"-L{tmp_path}", f"-L{fw / 'linker'}", "--specs=nano.specs", "--specs=nosys.specs",
                    "-o", str(elf)], check=True)
    return elf


@needs_emulator
def test_32_bit_requantization_on_the_m0_in_qemu(tmp_path):
    """The same check built for the micro:bit (tc_requantize's 32-bit form), with fewer random values."""
    board = load_board("microbit")
    elf = _qemu_elf(board, tmp_path, [TESTS / "firmware" / "requantize_check.c"],
                    ["-DRANDOM_TRIPLES=200000", "-DRANDOM_RESCALES=2", "-DRESCALE_OFFSET_STEP=64"])
    proc = subprocess.run(qemu_command(board, elf), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "agree" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


ADD_SOURCES = [TESTS / "firmware" / "add_check.c", data_dir("firmware") / "kernels" / "tc_add_s8.c"]


@pytest.mark.skipif(not shutil.which("gcc"), reason="host gcc missing")
def test_add_kernel_equals_the_reference_arithmetic_on_the_host(tmp_path):
    exe = tmp_path / "add_check"
    fw = data_dir("firmware")
    subprocess.run(["gcc", "-O2", "-std=c11", "-Wall", "-Werror", f"-I{fw / 'include'}",
                    f"-I{fw / 'runtime'}", *map(str, ADD_SOURCES), "-o", str(exe)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "agree", proc.stdout


@needs_emulator
@pytest.mark.parametrize("board_name", ["microbit", "mps2-an386", "mps3-an547"])   # portable, DSP, Helium
def test_add_kernel_equals_the_reference_arithmetic_in_qemu(board_name, tmp_path):
    board = load_board(board_name)
    elf = _qemu_elf(board, tmp_path, ADD_SOURCES)
    proc = subprocess.run(qemu_command(board, elf), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "agree" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
