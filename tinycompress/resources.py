"""Where the data that ships with tinycompress lives: firmware/, templates/, boards/."""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory `name`: beside the package in a checkout, inside it in a wheel."""
    for candidate in (_PACKAGE.parent / name, _PACKAGE / "data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tinycompress is installed without its {name}/ directory")
