"""Stage 8, flash: a PlatformIO project for the board, built and uploaded with `pio run -t upload`.

The project is the C project of `compile` plus a serial harness that runs test inputs built into
flash and prints its results on the console, and one PlatformIO environment per target:

- an emulated board gets a local platform inside the project that builds with the system
  arm-none-eabi toolchain; its "upload" runs the firmware in QEMU and fails unless every output
  equals the TFLite Micro interpreter's. It needs no network: the core directory is project-local
  and holds a `tool-scons` package that hands over to SCons from PyPI;
- a real board gets the registry's platform with our startup code and linker script (or the
  Arduino framework where the board's only serial port is USB), plus its emulated stand-in.

Before PlatformIO runs, the serial firmware is linked with the Debian toolchain for the board's
core and memory map (`make serial`), so a model that does not fit is refused with both numbers.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..codegen import cmsis_nn
from .boards import Board, load_board
from .clocks import CLOCK_FLAGS, clock_sources, uart_divisor
from .build import build
from .elfsize import ElfSizes, elf_sizes
from ..codegen.emit import (CONSOLE_SOURCES, SERIAL_SOURCES, Project, _environment, banner_text, c_rows,
                            runtime_paths)
from .emulate import RunResult, parse_profile
from ..errors import EXIT_MISMATCH, EXIT_TOOL_MISSING, TinyCompressError, pip_hint
from ..ops.common import ConstArray
from ..outputs import write_file
from ..analysis.report import Report, make_report

SERIAL_BAUD = 115200
CORE_DIR = ".pio-core"            # project-local PlatformIO core directory
REGISTRY = ("api.registry.platformio.org", 443)
SERIAL_ELF = "firmware_serial.elf"
PIO_TIMEOUT = 900                 # seconds; a first real-board build downloads a toolchain
QEMU_TIMEOUT = 300                # seconds for the emulated upload's run
EMULATED_PLATFORM = "symlink://platformio/platform"
INPUT_FORMS = {"int8": "quantized to the model's int8 input",      # the test inputs' bytes, as
               "int32": "int32 token ids, each as its four little-endian bytes"}   # model_inputs() gives them


@dataclass
class Environment:
    """One [env:...] of platformio.ini."""
    board: Board

    @property
    def name(self) -> str:
        return self.board.name

    @property
    def emulated(self) -> bool:
        return self.board.emulated

    @property
    def description(self) -> str:
        return self.board.description

    @property
    def platform(self) -> str:
        return EMULATED_PLATFORM if self.emulated else self.board.platformio["platform"]

    @property
    def framework(self) -> str:
        return "" if self.emulated else self.board.platformio.get("framework", "")

    @property
    def upload_protocol(self) -> str:
        return "qemu" if self.emulated else self.board.platformio["upload_protocol"]

    @property
    def cflags(self) -> tuple[str, ...]:
        return self.board.cflags + (CLOCK_FLAGS if clock_sources(self.board) else ())

    @property
    def console_sources(self) -> list[str]:   # with a bare board's clock (tc_clock_config.h from emit)
        return runtime_paths(CONSOLE_SOURCES[self.board.console["driver"]] + clock_sources(self.board))

    @property
    def pio_board(self) -> str:
        return self.board.name if self.emulated else self.board.platformio["board"]


@dataclass
class FlashResult:
    project: Project
    environment: str
    link: ElfSizes                   # the serial firmware linked with the Debian toolchain
    report: Report | None = None     # from the emulated run, when there was one
    uploaded: bool = False

    def fit_line(self) -> str:
        b = self.project.board
        return (f"{b.name}: flash {self.link.flash:,} of {b.flash_size:,} bytes "
                f"({100 * self.link.flash / b.flash_size:.1f} %), SRAM {self.link.ram:,} of {b.ram_size:,} "
                f"bytes ({100 * self.link.ram / b.ram_size:.1f} %), test inputs included")


def environments(board: Board) -> list[Environment]:
    """The board's own environment first; a real board also gets its emulated stand-in."""
    envs = [Environment(board)]
    if not board.emulated and board.emulated_by:
        envs.append(Environment(load_board(board.emulated_by)))
    return envs


def write_platformio_project(project: Project, inputs: np.ndarray, expected: np.ndarray, source: str,
                             timeout: float | None = None, adapter: int | None = None) -> None:
    """Add the test inputs, the expected outputs and the PlatformIO files to an emitted C project; with
    `adapter`, the harness selects that adapter slot first."""
    directory, board = project.directory, project.board
    env = _environment()
    banner = banner_text(board)
    common = dict(banner=f"/* {banner} */", banner_text=banner, baud=SERIAL_BAUD, board=board)
    rows = [c_rows(ConstArray("input", "int8_t", x, "")) for x in inputs]
    render = {
        "test_inputs.h": ("test_inputs.h.j2", dict(count=len(inputs), input_bytes=inputs.shape[1],
                                                    adapter=None if adapter is None else int(adapter))),
        "test_inputs.c": ("test_inputs.c.j2", dict(inputs=[_indent(r) for r in rows], source=source,
                                                    form=INPUT_FORMS[project.graph.input_tensor().dtype])),
    }
    if board.console["driver"].startswith("uart-"):
        brr = uart_divisor(board) if board.console["driver"] == "uart-stm32" else 0
        render["tc_console_config.h"] = ("tc_console_config.h.j2", dict(console=board.console, brr=brr))
    envs = environments(board)
    pio = "platformio/"
    kernels = sorted({cmsis_nn.kernel_source(c) for c in project.calls + project.adapted_calls})
    render["platformio.ini"] = (pio + "platformio.ini.j2", dict(
        envs=envs, kernel_sources=kernels,
        serial_sources=runtime_paths(SERIAL_SOURCES), cmsis_nn=project.cmsis_nn is not None))
    if project.cmsis_nn is not None:
        render["platformio/cmsis-nn/library.json"] = (pio + "cmsis-nn-library.json.j2",
                                                      dict(version=cmsis_nn.VERSION.lstrip("v")))
    render["platformio/tinycompress_flags.py"] = (pio + "tinycompress_flags.py.j2", {})
    render["platformio/check_output.py"] = (pio + "check_output.py.j2", dict(timeout=timeout or QEMU_TIMEOUT))
    render["platformio/platform/platform.json"] = (pio + "platform.json.j2",
                                                   dict(version=_semver(__version__)))
    render["platformio/platform/platform.py"] = (pio + "platform.py.j2", {})
    render["platformio/platform/builder/main.py"] = (pio + "builder_main.py.j2", {})
    render[f"{CORE_DIR}/packages/tool-scons/scons.py"] = (pio + "scons.py.j2", {})
    for e in envs:
        render[f"platformio/ld/{e.name}.ld"] = ("memory.ld.j2", dict(board=e.board,
                                                                    stack_size=e.board.stack_size,
                                                                    sections=True))
        if e.emulated:
            render[f"platformio/boards/{e.name}.json"] = (pio + "board.json.j2", dict(board=e.board))
    for name, (template, values) in render.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(env.get_template(template).render(**{**common, **values}))
    (directory / "platformio" / "expected_outputs.txt").write_text(
        "".join(f"output {i} {bytes(row.astype(np.uint8)).hex()}\n" for i, row in enumerate(expected)))
    _tool_scons(directory / CORE_DIR / "packages" / "tool-scons")
    if project.cmsis_nn is not None:
        for part in ("Include", "Source"):   # the library is the user's checkout, seen through links
            (directory / "platformio" / "cmsis-nn" / part).symlink_to(project.cmsis_nn / part)


def _indent(rows: str) -> str:
    return "\n".join("    " + line for line in rows.splitlines())


def _semver(version: str) -> str:
    parts = (version.split("+")[0].split(".") + ["0", "0"])[:3]
    return ".".join(p if p.isdigit() else "0" for p in parts)


def _tool_scons(package: Path) -> None:
    """PlatformIO runs its builds with the core package `tool-scons`; offline it cannot download one,
    so the project carries a package of that name whose scons.py starts SCons from PyPI."""
    from platformio.dependencies import get_core_dependencies
    version = get_core_dependencies()["tool-scons"].lstrip("~^=<> ")
    (package / "package.json").write_text(json.dumps(
        {"name": "tool-scons", "version": version, "description": "SCons from PyPI, for PlatformIO offline"}))
    (package / ".piopm").write_text(json.dumps(
        {"type": "tool", "name": "tool-scons", "version": version,
         "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None,
                  "uri": None}}))


def link_serial(project: Project) -> ElfSizes:
    """Link the serial firmware with the Debian toolchain: flash and SRAM fit, checked and measured."""
    return elf_sizes(build(project, target=SERIAL_ELF))


def run_platformio(directory: Path, env: Environment, upload: bool, upload_port: str | None = None) -> str:
    """`pio run -e ENV [-t upload]`; returns its log. One line on failure."""
    if not env.emulated:
        _require_registry(directory, env)
    command = [sys.executable, "-m", "platformio", "run", "-d", str(directory), "-e", env.name]
    if upload:
        command += ["-t", "upload"]
    if upload_port:
        command += ["--upload-port", upload_port]
    environ = dict(os.environ, PLATFORMIO_DISABLE_UPGRADE_CHECK="true", PLATFORMIO_NO_ANSI="true")
    environ.pop("PLATFORMIO_CORE_DIR", None)   # the project's own core directory holds tool-scons
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=PIO_TIMEOUT, env=environ)
    except FileNotFoundError:
        raise TinyCompressError(f"PlatformIO is not installed; install it with: {pip_hint('platformio')}",
                                EXIT_TOOL_MISSING) from None
    except subprocess.TimeoutExpired:
        raise TinyCompressError(f"pio run -e {env.name} ran past {PIO_TIMEOUT} s") from None
    log = proc.stdout + proc.stderr
    write_file(directory / "platformio.log", log)
    if proc.returncode != 0:
        if "No module named platformio" in log:
            raise TinyCompressError(f"PlatformIO is not installed; install it with: {pip_hint('platformio')}",
                                    EXIT_TOOL_MISSING)
        ours = [line[len("error: "):] for line in log.splitlines() if line.startswith("error: ")]
        if ours:
            code = EXIT_MISMATCH if "differ from the TFLite Micro" in ours[0] else 1
            raise TinyCompressError(f"{env.name}: {ours[0]}", code)
        first = next((line.strip() for line in log.splitlines() if "error" in line.lower()),
                     log.strip()[-200:])
        raise TinyCompressError(f"pio run -e {env.name} failed: {first} (full log: "
                                f"{directory / 'platformio.log'})")
    return log


def _require_registry(directory: Path, env: Environment) -> None:
    """A real board's platform and toolchain come from PlatformIO's registry: without them and without
    the network, stop now rather than let PlatformIO retry for a minute."""
    platform = env.board.platformio["platform"]
    if (directory / CORE_DIR / "platforms" / platform).is_dir():
        return
    try:
        socket.create_connection(REGISTRY, timeout=5).close()
    except OSError:
        raise TinyCompressError(
            f"building for {env.name} needs PlatformIO's registry ({REGISTRY[0]}) to install the {platform} "
            f"platform and its toolchain, and it is unreachable: connect to the network, or use --no-upload "
            f"(the project is written and linked with the Debian toolchain) or --board "
            f"{env.board.emulated_by} (the emulated stand-in, offline)", EXIT_TOOL_MISSING) from None


def serial_run(project: Project, log_path: Path, count: int) -> RunResult:
    """The emulated upload's serial log as a RunResult, for the usual report."""
    text = log_path.read_text()
    outputs = {int(p[1]): bytes.fromhex(p[2]) for p in (line.split() for line in text.splitlines())
               if len(p) == 3 and p[0] == "output"}
    rows = np.array([np.frombuffer(outputs[i], np.int8) for i in range(count)], np.int8)
    return RunResult(outputs=rows, **parse_profile(text))


def flash_report(project: Project, elf: Path, log_path: Path, count: int) -> Report:
    return make_report(project, elf_sizes(elf), serial_run(project, log_path, count))
