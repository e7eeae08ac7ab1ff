"""The firmware's folded requantization equals gemmlowp's two roundings (host C, edges and random)."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import TESTS

from tinycompress.resources import data_dir


@pytest.mark.skipif(not shutil.which("gcc"), reason="host gcc missing")
def test_folded_requantization_equals_the_two_roundings(tmp_path):
    exe = tmp_path / "requantize_check"
    subprocess.run(["gcc", "-O2", "-std=c11", "-Wall", "-Werror", f"-I{data_dir('firmware') / 'include'}",
                    str(TESTS / "firmware" / "requantize_check.c"), "-o", str(exe)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "agree", proc.stdout
