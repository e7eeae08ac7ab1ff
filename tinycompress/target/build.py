"""Stage 6, build: compile the generated project with its own Makefile."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ..codegen.emit import Project
from ..errors import EXIT_BUDGET, TinyCompressError
from ..outputs import write_file
from .toolchain import require

HOST_EXECUTABLE = "firmware_host"
TARGET_ELF = "firmware.elf"


def build(project: Project, host: bool = False, target: str | None = None, defines: str = "") -> Path:
    """Run make in the project; return the ELF (or the host executable, or another make target).
    `defines` go to every compile, e.g. -DTC_PORTABLE for the portable kernels on any core."""
    require("make")
    require("gcc" if host else "arm-none-eabi-gcc")
    target = target or (HOST_EXECUTABLE if host else TARGET_ELF)
    result = subprocess.run(["make", "-s", "-C", str(project.directory), target, f"DEFINES={defines}"],
                            capture_output=True, text=True)
    log = result.stdout + result.stderr
    write_file(project.directory / "build.log", log)
    if result.returncode != 0:
        raise TinyCompressError(_explain_failure(log, project))
    return project.directory / target


def _explain_failure(log: str, project: Project) -> str:
    board = project.board
    overflow = re.search(r"region [`']?(FLASH|RAM)'? overflowed by (\d+) bytes", log)
    if overflow:
        region, extra = overflow.group(1), int(overflow.group(2))
        size = board.flash_size if region == "FLASH" else board.ram_size
        raise TinyCompressError(
            f"the model does not fit {board.name}: it needs {size + extra} bytes of "
            f"{'flash' if region == 'FLASH' else 'SRAM'} but the board has {size}; "
            "choose a larger board or compress the model", EXIT_BUDGET)
    first_error = next((line for line in log.splitlines() if "error" in line.lower()), log.strip()[-300:])
    return f"the build failed: {first_error.strip()} (full log: {project.directory / 'build.log'})"
