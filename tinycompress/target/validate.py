"""On-target validation: read the serial harness's lines from a port and check them against TFLite Micro.

The firmware is the `flash` project's serial harness (firmware/runtime/harness_serial.c). The port is
opened first, then the board is flashed (or, for an emulated board, QEMU is started with its console
relayed to a new pseudo-terminal, read through that terminal exactly as a board's serial port is), so
nothing the firmware prints is lost. What the harness measures depends on the target:

- a real board with a DWT (M3, M4, M7, M33, M55): core clock cycles from DWT_CYCCNT; the M0/M0+: SysTick
  at the core clock (firmware/runtime/timer_cycles.c); milliseconds are cycles / the board's clock_hz;
- an Arduino-framework board: microseconds from micros();
- an emulated board: instructions (QEMU 7.2 does not model the DWT, and SysTick under -icount counts
  instructions), so no cycle or millisecond figure is made up for it.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .boards import Board
from .emulate import PROFILE_FIELDS, parse_profile
from .flash import SERIAL_BAUD
from .toolchain import require
from ..errors import EXIT_TOOL_MISSING, TinyCompressError, pip_hint

BEGIN, END = "tinycompress begin", "tinycompress end"
LINE_WORDS = set(PROFILE_FIELDS) | {"output", "run", "adapter_name"}


@dataclass
class Measured:
    """What the serial harness printed: outputs by index and the run lines' ticks."""
    outputs: dict[int, bytes]
    ticks: np.ndarray                  # (N, 1 + layers): total, then per layer
    unit: str                          # cycles, instructions or microseconds
    clock_hz: int
    lines: list[str] = field(default_factory=list)

    def milliseconds(self) -> np.ndarray | None:
        if self.unit == "cycles":
            return self.ticks * 1000.0 / self.clock_hz
        if self.unit == "microseconds":
            return self.ticks / 1000.0
        return None


def tick_unit(board: Board) -> str:
    if board.emulated:
        return "instructions"
    return "microseconds" if board.console["driver"] == "arduino" else "cycles"


def expected_outputs(directory: Path) -> dict[int, bytes]:
    """The TFLite Micro interpreter's outputs that `flash` wrote beside the project."""
    text = (directory / "platformio" / "expected_outputs.txt").read_text()
    return {int(p[1]): bytes.fromhex(p[2]) for p in (line.split() for line in text.splitlines())}


class EmulatedPort:
    """An emulated board's serial port: a pseudo-terminal whose other end receives the semihosting console
    of the firmware running in QEMU. Its "upload" (start) runs QEMU; the terminal stays open until close(),
    like a board's port after its firmware has finished."""

    def __init__(self, board: Board, elf: Path):
        self.board, self.elf = board, elf
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        command = [require("qemu-system-arm"), "-M", self.board.qemu_machine, "-nographic", "-monitor",
                   "none", "-serial", "none", "-chardev", "stdio,id=console,signal=off",
                   "-semihosting-config", "enable=on,target=native,chardev=console",
                   "-icount", "shift=6,align=off,sleep=off", "-kernel", str(self.elf)]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.relay = threading.Thread(target=self._relay, daemon=True)
        self.relay.start()

    def _relay(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):
            try:
                os.write(self.master, chunk)
            except OSError:
                return

    def stopped(self) -> str | None:
        """Why nothing more will come: QEMU has exited and all it printed is in the terminal."""
        if self.proc is None or self.relay.is_alive() or self.proc.poll() is None:
            return None
        return f"the firmware exited with code {self.proc.returncode} in QEMU ({self.board.qemu_machine})"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


def read_port(port: str, timeout: float, start=None, stopped=None) -> list[str]:
    """Open `port`, call `start` (the upload), and return the lines from `tinycompress begin` to
    `tinycompress end`; one clear error for a missing or busy port, a timeout or an error line.
    `stopped()`, where given, says why no more can come (an emulator that has exited), or None."""
    try:
        import serial
    except ImportError:
        raise TinyCompressError(f"validate reads the serial port with pyserial; install it with: "
                                f"{pip_hint('pyserial')}", EXIT_TOOL_MISSING) from None
    try:
        link = serial.Serial(port, SERIAL_BAUD, timeout=0.2, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TinyCompressError(f"cannot open the serial port {port}: {reason}") from None
    try:
        if start is not None:
            start()
        return _read_lines(link, port, timeout, stopped or (lambda: None))
    finally:
        link.close()


def _read_lines(link, port: str, timeout: float, stopped) -> list[str]:
    import serial
    deadline, pending, lines, begun = time.monotonic() + timeout, b"", [], False
    while True:
        if time.monotonic() > deadline:
            state = f"after {len(lines)} lines" if begun else f"no '{BEGIN}' line"
            raise TinyCompressError(f"timed out after {timeout:g} s reading {port} at {SERIAL_BAUD} baud "
                                    f"({state}): is the board running the flashed firmware? "
                                    "raise the limit with --timeout SECONDS")
        why = stopped()      # asked before the read: what it finds then was all there was to read
        try:
            chunk = link.read(4096)
        except (serial.SerialException, OSError) as e:
            if begun:
                raise TinyCompressError(f"reading {port} failed: {str(e).splitlines()[0]}") from None
            _reopen(link, deadline)    # a USB serial port goes away while its board resets after the upload
            continue
        if why and not chunk:
            raise TinyCompressError(f"{why} before its '{END}' line; {len(lines)} lines read from {port}")
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            text = raw.decode("ascii", "replace").strip()
            if text == BEGIN:
                begun, lines = True, []
            elif begun and text == END:
                return lines
            elif begun and text.startswith("error "):
                raise TinyCompressError(f"the firmware on {port} reported: {text[len('error '):]}")
            elif begun:
                lines.append(text)


def _reopen(link, deadline: float) -> None:
    """Close `link` and open its port again once it is back (the Arduino harness waits for the host to open
    it, so nothing is lost); until the deadline, when the caller reports the timeout."""
    import serial
    link.close()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            link.open()
            return
        except (serial.SerialException, OSError):
            pass


def parse_lines(lines: list[str], port: str, unit: str, clock_hz: int, output_bytes: int) -> Measured:
    """The harness's lines (firmware/runtime/tc_report.h) as outputs and ticks; garbled lines refused."""
    outputs = {}
    for text in lines:
        parts = text.split()
        try:
            if not parts or parts[0] not in LINE_WORDS:
                raise ValueError
            if parts[0] == "output":
                index, data = int(parts[1]), bytes.fromhex(parts[2])
                if len(parts) != 3 or len(data) != output_bytes or index in outputs:
                    raise ValueError
                outputs[index] = data
            elif parts[0] == "run" or parts[0] in PROFILE_FIELDS:
                [int(p) for p in parts[1:]]
                if len(parts) < 2:
                    raise ValueError
        except (ValueError, IndexError):
            raise TinyCompressError(f"garbled output from {port}: {text[:80]!r} (check the baud rate: "
                                    f"{SERIAL_BAUD})") from None
    return Measured(outputs, parse_profile("\n".join(lines))["ticks"], unit, clock_hz, lines)


@dataclass
class Validation:
    board: Board
    port: str
    measured: Measured
    expected: dict[int, bytes]
    directory: Path
    estimate: dict | None = None      # the emulator's cycle estimate, where `run` gives one

    @property
    def wrong(self) -> list[int]:
        return [i for i in sorted(self.expected) if self.measured.outputs.get(i) != self.expected[i]]

    def as_dict(self) -> dict:
        ticks, ms = self.measured.ticks, self.measured.milliseconds()
        return {"board": self.board.name, "port": self.port, "inferences": len(self.expected),
                "matching": len(self.expected) - len(self.wrong), "wrong": self.wrong,
                "unit": self.measured.unit, "clock_hz": self.board.clock_hz,
                "measured": {"total": ticks[:, 0].tolist() if ticks.size else [],
                             "layers": ticks[:, 1:].tolist() if ticks.size else [],
                             "ms": ms[:, 0].tolist() if ms is not None and ticks.size else None},
                "estimate": self.estimate}

    def lines(self) -> list[str]:
        m, n = self.measured, len(self.expected)
        out = [f"{self.board.name} on {self.port}: {n - len(self.wrong)} of {n} outputs match the TFLite "
               f"Micro interpreter bit for bit"]
        if m.ticks.size:
            per = m.ticks[:, 0]
            line = f"measured per inference: {int(np.median(per)):,} {m.unit} (median of {len(per)})"
            ms = m.milliseconds()
            if ms is not None:
                line += f", {float(np.median(ms[:, 0])):.3f} ms at {self.board.clock_hz / 1e6:g} MHz"
            if m.unit == "instructions":
                line += " (emulated: QEMU has no cycle counter, so no cycles or ms)"
            out.append(line)
        e = self.estimate
        if e is not None:
            line = (f"estimated per inference (emulator timing model): {e['total']:,} cycles, "
                    f"{e['ms']:.3f} ms at {e['clock_hz'] / 1e6:g} MHz")
            if m.unit == "cycles" and m.ticks.size:
                line += f"; measured / estimated {float(np.median(m.ticks[:, 0])) / e['total']:.3f}"
            out.append(line)
        return out


def validate_on_port(board: Board, directory: Path, port: str | None, timeout: float, upload) -> Validation:
    """Read the flashed project in `directory` back from `port` and compare it. `upload` (or None: nothing
    to upload) is called once the port is open. An emulated board without a port gets a pseudo-terminal
    with the firmware running in QEMU behind it."""
    expected = expected_outputs(directory)
    emulated, stopped = None, None
    if board.emulated and port is None:
        emulated = EmulatedPort(board, directory / ".pio" / "build" / board.name / "firmware.elf")
        port, upload, stopped = emulated.path, emulated.start, emulated.stopped
    try:
        lines = read_port(port, timeout, upload, stopped)
    finally:
        if emulated is not None:
            emulated.close()
    (directory / "validate.log").write_text("".join(f"{line}\n" for line in [BEGIN, *lines, END]))
    size = len(next(iter(expected.values()))) if expected else 0
    measured = parse_lines(lines, port, tick_unit(board), board.clock_hz, size)
    if measured.unit == "instructions":     # SysTick at clock_hz under -icount: ticks to instructions
        measured.ticks = np.rint(board.instructions(measured.ticks)).astype(np.int64)
    return Validation(board, port, measured, expected, directory)


def cycle_estimate(model: Path, board: Board, data: Path | None = None, adapters: Path | None = None,
                   **options) -> dict | None:
    """The emulator's cycle estimate of one inference at the board's clock, to show beside the measured
    figures: `run --board BOARD` with its timing model (tinycompress/analysis/cycles.py), where this
    build has one; None otherwise, and for adapters (run does not take them)."""
    try:
        from ..analysis import cycles   # noqa: F401
    except ImportError:
        return None
    if adapters is not None:
        return None
    from ..pipeline import run_model
    keep = {k: v for k, v in options.items() if k in ("calibration", "compression", "cmsis_nn")}
    report = run_model(model, board, data=data, count=1, cycles=True, **keep)
    if report.cycles is None:
        return None
    return {"total": report.cycles["total"], "per_layer": report.cycles["per_layer"],
            "ms": report.latency_ms, "clock_hz": report.cycles["clock_hz"]}
