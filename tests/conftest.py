"""Shared fixtures: the model zoo (built once, cached) and skips for missing tools."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

HAVE_EMULATOR = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make"))
needs_emulator = pytest.mark.skipif(not HAVE_EMULATOR, reason="arm-none-eabi-gcc, make or qemu-system-arm missing")


@pytest.fixture(scope="session")
def zoo():
    """A function name -> (tflite path, npz path), building each model on first use."""
    import modelzoo

    out = TESTS / ".models"

    def get(name: str) -> tuple[Path, Path]:
        tflite = modelzoo.build(name, out)
        return tflite, tflite.with_suffix(".npz")

    return get
