"""Finding the external tools, with the command that installs each one."""
from __future__ import annotations

import shutil

from ..errors import EXIT_TOOL_MISSING, TinyCompressError

APT = "apt-get install --no-install-recommends"
INSTALL = {
    "arm-none-eabi-gcc": f"{APT} gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "arm-none-eabi-size": f"{APT} gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "qemu-system-arm": f"{APT} qemu-system-arm",
    "make": f"{APT} make",
    "gcc": f"{APT} gcc libc6-dev",
}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise TinyCompressError(f"{tool} is not installed; install it with: {INSTALL[tool]}",
                                EXIT_TOOL_MISSING)
    return path
