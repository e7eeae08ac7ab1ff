"""The benchmark command runs end to end and reports exact, measured figures."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import TESTS, needs_emulator

pytestmark = [needs_emulator, pytest.mark.slow]

def test_benchmark_runs_optimized_and_portable_kernels(zoo, tmp_path):
    zoo("digits_cnn")
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(TESTS.parent / "benchmarks" / "run.py"), "--models", "digits_cnn",
                           "--cores", "M0", "M4", "--json", str(out)], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "TINYCOMPRESS_CMSIS_NN"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {(r["core"], r["kernels"]): r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {("M0", "optimized"), ("M0", "portable"), ("M4", "optimized"), ("M4", "portable")}
    assert all(r["fits"] and r["bit_exact"] for r in rows.values())
    # The DSP kernels run only where the core has them: on the M4 they are faster, on the M0 identical.
    assert rows[("M4", "optimized")]["instructions"] < rows[("M4", "portable")]["instructions"] / 1.5
    assert rows[("M0", "optimized")]["instructions"] == rows[("M0", "portable")]["instructions"]
    assert rows[("M4", "optimized")]["arena"] <= rows[("M4", "optimized")]["tflm_arena"]["total"]
    assert "digits_cnn" in proc.stdout and "instr/MAC" in proc.stdout
