"""`tinycompress validate`: the serial harness read back from a port and compared with TFLite Micro.

CI has no boards: the emulated stand-in's upload runs QEMU with its console on a pseudo-terminal, read
through pyserial exactly as a board's port; a board of the test's own replays that real output (or a
corrupted copy) on another pseudo-terminal, for the real-board path, the failing cases and port errors.
"""
from __future__ import annotations

import json
import os
import select
import threading
import time
from importlib.util import find_spec

import numpy as np
import pytest
from conftest import build_stand_in, needs_emulator
from test_cli import assert_one_line_error, tc
from test_runtime import LOOP_ITERATIONS, MODEL_C

from tinycompress.codegen import emit
from tinycompress.errors import EXIT_ERROR, EXIT_MISMATCH, EXIT_USAGE
from tinycompress.frontend.reference import tflm_outputs
from tinycompress.target.boards import load_board
from tinycompress.target.emulate import run_firmware

pytestmark = needs_emulator
COUNT = 6
REAL = "nucleo-l4r5zi"     # a real M4 board, whose stand-in is mps2-an386


class FakeBoard:
    """A pseudo-terminal standing for a board's port: once a reader opens it, `text` is written to it."""

    def __init__(self, text: bytes):
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        os.close(slave)       # the master sees POLLHUP until the reader opens the port
        self.done, self.written = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(text,), daemon=True)
        self.thread.start()

    def _serve(self, text: bytes) -> None:
        poll = select.poll()
        poll.register(self.master, select.POLLHUP)
        while any(e & select.POLLHUP for _, e in poll.poll(0)):
            if self.done.wait(0.02):
                return        # the reader stopped before opening the port
        time.sleep(0.3)       # past pyserial's flush of the input at open
        os.write(self.master, text)
        self.written.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(timeout=5)
        os.close(self.master)


@pytest.fixture(scope="module")
def validated(zoo, tmp_path_factory):
    """`validate` on the emulated stand-in: its upload runs QEMU behind a pseudo-terminal."""
    model, data = zoo("digits_cnn")
    out = tmp_path_factory.mktemp("validate") / "digits-an386"
    proc = tc("validate", model, "--board", "mps2-an386", "--data", data, "--count", str(COUNT), "-o", out,
              "--json", "-")
    return model, data, out, proc


def test_validate_reads_the_stand_in_through_a_pty_and_matches_tflite_micro(validated):
    model, data, out, proc = validated
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["port"].startswith("/dev/pts/")
    assert (result["inferences"], result["matching"], result["wrong"]) == (COUNT, COUNT, [])
    # The emulator has no cycle counter: instructions, and no milliseconds made up from them.
    assert result["unit"] == "instructions" and result["measured"]["ms"] is None
    assert len(result["measured"]["total"]) == COUNT and min(result["measured"]["total"]) > 0
    assert f"{COUNT} of {COUNT} outputs match" in proc.stderr and "QEMU has no cycle counter" in proc.stderr
    # The emulator's cycle estimate sits beside the measurement where this build has one (run's timing model).
    estimate = result["estimate"]
    assert (estimate is not None) == (find_spec("tinycompress.analysis.cycles") is not None)
    if estimate is not None:
        assert estimate["ms"] == pytest.approx(estimate["total"] * 1000 / estimate["clock_hz"], rel=1e-4)
        assert f"estimated per inference (emulator timing model): {estimate['total']:,} cycles" in proc.stderr

    # What came through the terminal is the firmware's own output: compare it with TFLite Micro here too.
    from tinycompress.frontend.load import read_tflite_file
    inp = read_tflite_file(model).input_tensor()
    x = np.load(data)["x"][:COUNT].reshape(COUNT, -1)
    q = np.clip(np.round(x / inp.scale[0]) + inp.zero_point[0], -128, 127).astype(np.int8)
    lines = (out / "validate.log").read_text().splitlines()
    rows = [np.frombuffer(bytes.fromhex(p.split()[2]), np.int8) for p in lines if p.startswith("output ")]
    assert np.array_equal(np.array(rows), tflm_outputs(model.read_bytes(), q))
    runs = [[int(v) for v in p.split()[2:]] for p in lines if p.startswith("run ")]
    board = load_board("mps2-an386")
    assert np.rint(board.instructions(np.array([r[0] for r in runs]))).tolist() == result["measured"]["total"]


def _replay(validated, tmp_path, text: str, *args: str):
    """`validate --board REAL --no-upload` reading a board of the test's own that prints `text`."""
    model, data, _, _ = validated
    with FakeBoard(text.encode()) as board:
        return tc("validate", model, "--board", REAL, "--port", board.path, "--no-upload", "--data", data,
                  "--count", str(COUNT), "-o", tmp_path / "real", *args)


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_a_real_board_reports_cycles_and_ms_from_its_port(validated, tmp_path):
    log = (validated[2] / "validate.log").read_text()
    proc = _replay(validated, tmp_path, "boot noise\n" + log, "--json", "-")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["matching"] == COUNT and result["unit"] == "cycles"
    clock = load_board(REAL).clock_hz
    totals = [int(line.split()[2]) for line in log.splitlines() if line.startswith("run ")]
    assert result["measured"]["total"] == totals
    assert result["measured"]["ms"] == pytest.approx([t * 1000 / clock for t in totals])
    assert f"at {clock / 1e6:g} MHz" in proc.stderr
    if result["estimate"] is not None:     # measured cycles beside the emulator's estimate at the same clock
        assert result["estimate"]["clock_hz"] == clock and "measured / estimated" in proc.stderr
    # The board's serial firmware, linked with the Debian toolchain, addresses the DWT (0xE0001000).
    assert (0xE0001000).to_bytes(4, "little") in (tmp_path / "real" / "firmware_serial.elf").read_bytes()


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_a_corrupted_output_exits_4(validated, tmp_path):
    log = (validated[2] / "validate.log").read_text().splitlines()
    at = next(i for i, line in enumerate(log) if line.startswith("output 2 "))
    head, value = log[at][:-2], int(log[at][-2:], 16)
    log[at] = head + f"{value ^ 1:02x}"          # one bit of the last byte of input 2's output
    proc = _replay(validated, tmp_path, "\n".join(log) + "\n")
    assert_one_line_error(proc, EXIT_MISMATCH, f"1 of {COUNT} outputs on /dev/pts/",
                          "differ from the TFLite Micro interpreter (first: input 2)")


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_another_models_output_exits_4(validated, zoo, tmp_path):
    other, data = zoo("digits_mlp")      # the same output size, another model
    with FakeBoard((validated[2] / "validate.log").read_bytes()) as board:
        proc = tc("validate", other, "--board", REAL, "--port", board.path, "--no-upload", "--data",
                  data, "--count", str(COUNT), "-o", tmp_path / "mlp")
    assert_one_line_error(proc, EXIT_MISMATCH, "differ from the TFLite Micro interpreter")


@pytest.mark.parametrize("text, expected", [
    ("tinycompress begin\ninferences 6\noutput 0 zz\ntinycompress end\n", "garbled output from /dev/pts/"),
    ("tinycompress begin\n\x9c\x81\xfe\x00\ntinycompress end\n", "garbled output from /dev/pts/"),
    ("tinycompress begin\nerror a kernel rejected its parameters\n", "reported: a kernel rejected"),
    ("", "timed out after 2 s reading /dev/pts/"),
])
@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_a_bad_port_is_one_line(validated, tmp_path, text, expected):
    proc = _replay(validated, tmp_path, text, "--timeout", "2")
    assert_one_line_error(proc, EXIT_ERROR, expected)


def test_an_emulator_that_exits_early_is_reported_at_once():
    from tinycompress.errors import TinyCompressError
    from tinycompress.target.validate import read_port
    with FakeBoard(b"tinycompress begin\ninferences 6\n") as board:
        why = "the firmware exited with code 3 in QEMU (mps2-an386)"
        start = time.monotonic()
        with pytest.raises(TinyCompressError, match=r"exited with code 3 in QEMU \(mps2-an386\) before its "
                                                    r"'tinycompress end' line; 1 lines read"):
            read_port(board.path, 60, stopped=lambda: why if board.written.is_set() else None)
    assert time.monotonic() - start < 10      # not the 60 s timeout


def test_a_usb_port_that_goes_away_after_the_upload_is_opened_again():
    """A board on USB serial re-enumerates when it resets after the upload: reading fails until the port is
    back; the reader opens it again (the Arduino harness waits for that) and reads on."""
    import serial

    from tinycompress.target.validate import _read_lines

    class ResettingPort:
        def __init__(self):
            self.reads, self.opens = [serial.SerialException("device disconnected"),
                                      b"tinycompress begin\ninferences 1\ntinycompress end\n"], 0

        def read(self, size):
            item = self.reads.pop(0) if self.reads else b""
            if isinstance(item, Exception):
                raise item
            return item

        def close(self):
            pass

        def open(self):
            self.opens += 1

    link = ResettingPort()
    assert _read_lines(link, "/dev/ttyACM0", 10, lambda: None) == ["inferences 1"] and link.opens == 1


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_a_missing_or_busy_port_is_one_line(validated, tmp_path):
    model, data, _, _ = validated
    common = ("--board", REAL, "--no-upload", "--data", data, "--count", "2", "-o", tmp_path / "p")
    proc = tc("validate", model, "--port", tmp_path / "no-such-tty", *common)
    assert_one_line_error(proc, EXIT_ERROR, "cannot open the serial port", "no-such-tty")
    import serial
    master, slave = os.openpty()
    try:
        with serial.Serial(os.ttyname(slave), exclusive=True):      # another program holds the port
            proc = tc("validate", model, "--port", os.ttyname(slave), *common)
    finally:
        os.close(master)
        os.close(slave)
    assert_one_line_error(proc, EXIT_ERROR, "cannot open the serial port", "exclusively lock")
    proc = tc("validate", model, "--board", REAL, "--data", data, "-o", tmp_path / "q")
    assert proc.returncode == EXIT_USAGE and "give --port" in proc.stderr
    proc = tc("flash", model, "--board", "mps2-an386", "--port", "/dev/ttyACM0", "-o", tmp_path / "r")
    assert proc.returncode == EXIT_USAGE and "use `tinycompress validate`" in proc.stderr


# The real boards' timer (timer_cycles.c) in QEMU 7.2, which does not model the DWT (CYCCNT reads 0): it
# falls back to SysTick and counts what timer_systick.c counts; on the M0 it is SysTick alone.


@pytest.mark.parametrize("board_name", ["mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547", "microbit"])
def test_the_cycle_timer_counts_like_systick_where_cyccnt_is_absent(board_name, tmp_path, monkeypatch):
    x = np.arange(3 * 16, dtype=np.int8).reshape(3, 16)
    (tmp_path / "systick").mkdir()
    (tmp_path / "cycles").mkdir()
    board, elf = build_stand_in(board_name, tmp_path / "systick", MODEL_C % (LOOP_ITERATIONS, ""))
    systick = run_firmware(elf, board, x, 16)
    cycles_sources = [n.replace("timer_systick.c", "timer_cycles.c") for n in emit.TARGET_SOURCES]
    monkeypatch.setattr(emit, "TARGET_SOURCES", cycles_sources)
    board, elf = build_stand_in(board_name, tmp_path / "cycles", MODEL_C % (LOOP_ITERATIONS, ""))
    cycles = run_firmware(elf, board, x, 16)
    assert np.array_equal(cycles.outputs, systick.outputs)
    # Each layer's count agrees to the tick (SysTick's reads themselves vary by one): the loop of layer 1 is
    # 2 * LOOP_ITERATIONS instructions. The totals differ by what the hooks' own reads cost.
    assert np.all(np.abs(board.instructions(cycles.ticks[:, 2]) - 2 * LOOP_ITERATIONS) < 16), cycles.ticks
    assert np.all(np.abs(cycles.ticks[:, 1:] - systick.ticks[:, 1:]) <= 2), (cycles.ticks, systick.ticks)
    assert np.all(np.abs(cycles.ticks[:, 0] - systick.ticks[:, 0]) <= 0.01 * systick.ticks[:, 0])


@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m0plus", "cortex-m23", "cortex-m3", "cortex-m4",
                                 "cortex-m7", "cortex-m33", "cortex-m55"])
def test_the_cycle_timer_compiles_cleanly_for_every_core(cpu, tmp_path):
    """With a DWT (M3 and up): CYCCNT; without (M0, M0+, M23): SysTick alone. No warning either way."""
    import subprocess

    from tinycompress.resources import data_dir
    runtime = data_dir("firmware") / "runtime"
    obj = tmp_path / "timer.o"
    subprocess.run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-O2", "-Wall", "-Wextra", "-Werror",
                    f"-I{runtime}", "-c", str(runtime / "timer_cycles.c"), "-o", str(obj)], check=True)
    dwt = (0xE0001000).to_bytes(4, "little") in obj.read_bytes()
    assert dwt == (cpu not in ("cortex-m0", "cortex-m0plus", "cortex-m23"))
