"""The benchmark commands run end to end and report exact, measured figures."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import TESTS, needs_emulator

pytestmark = needs_emulator
sys.path.insert(0, str(TESTS.parent / "benchmarks"))

import elementwise  # noqa: E402

from tinycompress.ops.fixedpoint import requantize  # noqa: E402
from tinycompress.ops import unary  # noqa: E402


@pytest.mark.slow
def test_benchmark_runs_optimized_and_portable_kernels(zoo, tmp_path):
    zoo("digits_cnn")
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(TESTS.parent / "benchmarks" / "run.py"),
                           "--models", "digits_cnn", "--cores", "M0", "M4", "--json", str(out)],
                          capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "TINYCOMPRESS_CMSIS_NN"},
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {(r["core"], r["kernels"]): r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {("M0", "optimized"), ("M0", "portable"), ("M4", "optimized"), ("M4", "portable")}
    assert all(r["fits"] and r["bit_exact"] for r in rows.values())
    # The DSP kernels run only where the core has them: on the M4 they are faster, on the M0 identical.
    assert rows[("M4", "optimized")]["instructions"] < rows[("M4", "portable")]["instructions"] / 1.5
    assert rows[("M0", "optimized")]["instructions"] == rows[("M0", "portable")]["instructions"]
    assert rows[("M4", "optimized")]["arena"] <= rows[("M4", "optimized")]["tflm_arena"]["total"]
    assert "digits_cnn" in proc.stdout and "instr/MAC" in proc.stdout


def test_elementwise_benchmark_measures_our_kernels_and_their_outputs():
    """Our side of benchmarks/elementwise.py on the M4 (TFLite Micro's side needs a checkout): the bytes the
    firmware wrote are the kernels' results on the inputs the benchmark fed, and the instructions per
    element are the kernels' own, the call's cost subtracted (the table kernel: four per element)."""
    cases = [c for c in elementwise.CASES if c.name in ("ADD", "LOGISTIC", "RELU6")]
    built = [elementwise.lower_case(c, i) for i, c in enumerate(cases)]
    rows = {r["op"]: r for r in elementwise.run_core("M4", built, tflm=None)}
    for b in built:
        graph, row = b.graph, rows[b.case.name]
        assert row["elements"] == 1024 and "tflm" not in row
        if b.call.function == "tc_lut_s8":
            expected = unary.table(graph.layers[0], graph)[b.inputs[0].astype(np.int64) + 128]
        else:   # ADD as TFLite Micro computes it, from the parameters the lowering gave the kernel
            p = b.call.params
            scaled = [requantize((b.inputs[k].astype(np.int64) + p[f"input{k + 1}_offset"]) << 20,
                                 p[f"input{k + 1}_multiplier"], p[f"input{k + 1}_shift"]) for k in (0, 1)]
            out = requantize(scaled[0] + scaled[1], p["output_multiplier"], p["output_shift"])
            out += p["output_offset"]
            expected = np.clip(out, p["act"]["min"], p["act"]["max"])
        assert (row["output"] == expected).all(), b.case.name
    assert 3.9 <= rows["LOGISTIC"]["ours"] <= 4.2 and rows["RELU6"]["ours"] == rows["LOGISTIC"]["ours"]
    assert 10 < rows["ADD"]["ours"] < 40


def test_elementwise_benchmark_without_tflite_micro_says_what_it_needs(monkeypatch, capsys):
    monkeypatch.delenv("TINYCOMPRESS_TFLM", raising=False)
    assert elementwise.main(["--cores", "M4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TINYCOMPRESS_TFLM=" in err and "--ours-only" in err
    monkeypatch.setenv("TINYCOMPRESS_TFLM", str(TESTS))
    assert elementwise.main(["--cores", "M4"]) == 1
    assert "not a TFLite Micro checkout" in capsys.readouterr().err


def test_elementwise_cases_give_tflite_micro_every_parameter():
    """Each case lowers through our own lowering, and its TFLite Micro call is complete: every {field}
    of the C++ has a value, and the inputs, constants and shapes it names are declared."""
    built = [elementwise.lower_case(c, i) for i, c in enumerate(elementwise.CASES)]
    source = elementwise.tflm_source(built)
    assert not re.search(r"\{[A-Za-z_]\w*\}", source)
    for i, b in enumerate(built):
        assert f"int32_t bench_{i}_tflm(void *out_)" in source and b.call.function.startswith("tc_")
        assert b.output.size == 1024
