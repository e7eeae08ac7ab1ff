"""`tinycompress flash`: PlatformIO projects, uploaded offline into QEMU for the emulated boards and
configured, compiled and linked with the Debian toolchain for every real board."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import needs_emulator
from test_cli import assert_one_line_error, tc

from tinycompress.target.boards import list_boards
from tinycompress.target.elfsize import elf_sizes
from tinycompress.errors import EXIT_TOOL_MISSING
from tinycompress.target.flash import REGISTRY
from tinycompress.frontend.reference import tflm_outputs

pytestmark = needs_emulator

REAL_BOARDS = [b for b in list_boards() if not b.emulated]
PIO_ENV = dict(os.environ, PLATFORMIO_DISABLE_UPGRADE_CHECK="true")


def pio(*args, cwd):
    return subprocess.run([sys.executable, "-m", "platformio", *args], capture_output=True, text=True,
                          cwd=cwd, env=PIO_ENV, timeout=120)


def serial_outputs(log: str) -> np.ndarray:
    rows = [line.split()[2] for line in log.splitlines() if line.startswith("output ")]
    return np.array([np.frombuffer(bytes.fromhex(r), np.int8) for r in rows])


def test_flash_uploads_into_qemu_offline_and_matches_tflite_micro(zoo, tmp_path):
    model, data = zoo("digits_cnn")
    out = tmp_path / "digits-pio"
    proc = tc("flash", model, "--board", "mps2-an386", "--data", data, "--count", "24", "-o", out,
              "--json", "-")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["verification"] == {"inferences": 24, "matching": 24}
    assert report["instructions"] > 0 and report["inferences"] == 24
    assert "Running .pio/build/mps2-an386/firmware.elf in QEMU" in (out / "platformio.log").read_text()

    # The serial log is the firmware's own output: compare it with TFLite Micro here too.
    x = np.load(data)["x"][:24]
    from tinycompress.frontend.load import read_tflite_file
    graph = read_tflite_file(model)
    inp = graph.input_tensor()
    q = np.clip(np.round(x.reshape(24, -1) / inp.scale[0]) + inp.zero_point[0], -128, 127).astype(np.int8)
    expected = tflm_outputs(model.read_bytes(), q)
    assert np.array_equal(serial_outputs((out / "serial.log").read_text()), expected)

    # The flash and SRAM in the report are the PlatformIO ELF's, as arm-none-eabi-size counts them.
    sizes = elf_sizes(out / ".pio" / "build" / "mps2-an386" / "firmware.elf")
    assert report["flash"]["total"] == sizes.flash and report["sram"]["total"] == sizes.ram


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_flash_runs_a_token_model_on_its_int32_ids(zoo, tmp_path):
    """Token ids reach the board's test inputs byte for byte, and the outputs match TFLite Micro."""
    model, data = zoo("text_mean")
    out = tmp_path / "text-pio"
    proc = tc("flash", model, "--board", "mps2-an386", "--data", data, "--count", "12", "-o", out,
              "--json", "-")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verification"] == {"inferences": 12, "matching": 12}
    ids = np.load(data)["x"][:12].astype("<i4").reshape(12, -1)
    expected = tflm_outputs(model.read_bytes(), ids.view(np.int8))
    assert np.array_equal(serial_outputs((out / "serial.log").read_text()), expected)
    assert "int32 token ids" in (out / "test_inputs.c").read_text()


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_the_emulated_upload_fails_on_a_wrong_output(zoo, tmp_path):
    model, data = zoo("digits_mlp")
    out = tmp_path / "mlp-pio"
    assert tc("flash", model, "--data", data, "--count", "5", "--no-upload", "-o", out).returncode == 0
    expected = out / "platformio" / "expected_outputs.txt"
    lines = expected.read_text().splitlines()
    index, value = lines[3].rsplit(" ", 1)
    lines[3] = f"{index} {'00' if value[:2] != '00' else '01'}{value[2:]}"   # one byte off
    expected.write_text("\n".join(lines) + "\n")
    proc = pio("run", "-e", "mps2-an386", "-t", "upload", cwd=out)
    assert proc.returncode != 0
    assert ("error: 1 of 5 outputs differ from the TFLite Micro interpreter (first: input 3)"
            in proc.stdout + proc.stderr)


@pytest.mark.slow   # a PlatformIO build per board
@pytest.mark.parametrize("board", REAL_BOARDS, ids=lambda b: b.name)
def test_real_board_project_configures_compiles_and_links(board, zoo, tmp_path):
    model, data = zoo("digits_cnn")
    out = tmp_path / board.name
    proc = tc("flash", model, "--board", board.name, "--data", data, "--no-upload", "-o", out)
    assert proc.returncode == 0, proc.stderr
    elf = out / "firmware_serial.elf"
    sizes = elf_sizes(elf)
    assert (f"{board.name}: flash {sizes.flash:,} of {board.flash_size:,} bytes" in proc.stderr
            and f"SRAM {sizes.ram:,} of {board.ram_size:,} bytes" in proc.stderr), proc.stderr

    # The ELF is laid out for the board's memory map and linked with the board's console.
    from elftools.elf.elffile import ELFFile
    with elf.open("rb") as f:
        elf_file = ELFFile(f)
        text = elf_file.get_section_by_name(".text")["sh_addr"]
        data_addr = elf_file.get_section_by_name(".bss")["sh_addr"]
        symbols = {s.name for s in elf_file.get_section_by_name(".symtab").iter_symbols()}
    assert board.flash_origin <= text < board.flash_origin + board.flash_size
    assert board.ram_origin <= data_addr < board.ram_origin + board.ram_size
    assert {"tc_console_write", "tc_test_inputs", "tc_serial_harness"} <= symbols

    config = pio("project", "config", "--lint", cwd=out)
    assert config.returncode == 0 and "free from linting errors" in config.stdout, \
        config.stdout + config.stderr
    ini = (out / "platformio.ini").read_text()
    assert f"[env:{board.name}]" in ini and f"board = {board.platformio['board']}" in ini
    assert f"[env:{board.emulated_by}]" in ini    # the emulated stand-in, runnable offline


def test_real_board_upload_without_the_registry_stops_at_once(zoo, tmp_path):
    try:
        socket.create_connection(REGISTRY, timeout=5).close()
        pytest.skip("PlatformIO's registry is reachable here")
    except OSError:
        pass
    model, _ = zoo("digits_mlp")
    proc = tc("flash", model, "--board", "nucleo-l4r5zi", "-o", tmp_path / "l4")
    assert_one_line_error(proc, EXIT_TOOL_MISSING, "PlatformIO's registry", "ststm32", "--board mps2-an386")


def test_the_stand_in_environment_of_a_real_board_runs_offline(zoo, tmp_path):
    model, data = zoo("digits_mlp")
    out = tmp_path / "u5"
    assert tc("flash", model, "--board", "nucleo-u575zi-q", "--data", data, "--count", "4", "--no-upload",
              "-o", out).returncode == 0
    proc = pio("run", "-e", "mps2-an505", "-t", "upload", cwd=out)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "4 of 4 outputs match the TFLite Micro interpreter" in proc.stdout


def test_run_on_a_real_board_runs_on_its_emulated_stand_in(zoo):
    """`run` on a real board runs on its stand-in and adds the cycle estimate at the board's clock
    (tests/test_cycles.py checks the figures)."""
    model, _ = zoo("digits_mlp")
    proc = tc("run", model, "--board", "nano33ble", "--count", "1")
    assert proc.returncode == 0, proc.stderr
    assert "cycles (estimate)" in proc.stdout and "at 64 MHz on nano33ble" in proc.stdout
    assert "mps2-an386's instruction stream" in proc.stdout


def test_boards_lists_real_boards_with_platformio_ids():
    out = tc("boards").stdout
    for board in REAL_BOARDS:
        line = next(line for line in out.splitlines() if line.startswith(board.name + " "))
        assert "real" in line and board.platformio["board"] in line and board.emulated_by in line

