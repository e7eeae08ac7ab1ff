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
import run as bench  # noqa: E402

from tinycompress.ops.fixedpoint import requantize  # noqa: E402
from tinycompress.ops import unary  # noqa: E402


def _run_benchmark(out, *args, cmsis_nn: bool):
    env = {k: v for k, v in os.environ.items() if k != "TINYCOMPRESS_CMSIS_NN" or cmsis_nn}
    command = [sys.executable, str(TESTS.parent / "benchmarks" / "run.py"), "--json", str(out), *args]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc, {(r["model"], r["core"], r["kernels"]): r for r in json.loads(out.read_text())["results"]}


def _check_sram(row):
    """SRAM used is the arena, the inference's measured stack and the static data, each measured: the stack
    within the reservation the ELF's RAM holds, the static data at least the harness's timer state."""
    assert 0 < row["stack_peak"] < row["sram"] - row["arena"] - row["static_data"]
    assert row["static_data"] >= 16
    assert row["sram_used"] == row["arena"] + row["stack_peak"] + row["static_data"]


@pytest.mark.slow
def test_benchmark_runs_optimized_and_portable_kernels(zoo, tmp_path):
    zoo("digits_cnn")
    out = tmp_path / "results.json"
    proc, rows = _run_benchmark(out, "--models", "digits_cnn", "--cores", "M0", "M4", cmsis_nn=False)
    rows = {(core, kernels): r for (_, core, kernels), r in rows.items()}
    assert set(rows) == {("M0", "optimized"), ("M0", "portable"), ("M4", "optimized"), ("M4", "portable")}
    assert all(r["fits"] and r["bit_exact"] for r in rows.values())
    # The DSP kernels run only where the core has them: on the M4 they are faster, on the M0 identical.
    assert rows[("M4", "optimized")]["instructions"] < rows[("M4", "portable")]["instructions"] / 1.5
    assert rows[("M0", "optimized")]["instructions"] == rows[("M0", "portable")]["instructions"]
    assert rows[("M0", "optimized")]["stack_peak"] == rows[("M0", "portable")]["stack_peak"]
    assert rows[("M4", "optimized")]["arena"] <= rows[("M4", "optimized")]["tflm_arena"]["total"]
    for r in rows.values():
        _check_sram(r)
        # Without a CMSIS-NN checkout nothing stands in for CMSIS-NN's instructions or TFLite Micro's stack.
        assert r["cmsis_nn_instructions"] is r["tflm_stack"] is r["tflm_sram"] is r["sram_vs_tflm"] is None
    assert "TINYCOMPRESS_CMSIS_NN is not set" in proc.stderr
    assert "digits_cnn" in proc.stdout and "instr/MAC" in proc.stdout and "Issue 19 targets" in proc.stdout

    # Another model measured into the same file keeps digits_cnn's rows; with a checkout, beside CMSIS-NN.
    zoo("digits_mlp")
    cmsis_nn = bool(os.environ.get("TINYCOMPRESS_CMSIS_NN"))
    proc, merged = _run_benchmark(out, "--models", "digits_mlp", "--cores", "M4", "--markdown",
                                  cmsis_nn=cmsis_nn)
    assert {k: merged[("digits_cnn", *k)] for k in rows} == rows
    kinds = ["optimized", "portable"] + ["cmsis-nn"] * cmsis_nn
    assert [k for k in merged if k[0] == "digits_mlp"] == [("digits_mlp", "M4", kind) for kind in kinds]
    for kind in kinds:
        r = merged[("digits_mlp", "M4", kind)]
        assert r["fits"] and r["bit_exact"]
        _check_sram(r)
        if cmsis_nn:    # TFLite Micro's SRAM: its interpreter's arena plus CMSIS-NN's kernels' stack
            theirs = merged[("digits_mlp", "M4", "cmsis-nn")]
            assert r["tflm_stack"] == theirs["stack_peak"]
            assert r["cmsis_nn_instructions"] == theirs["instructions"]
            assert r["tflm_sram"] == r["tflm_arena"]["total"] + theirs["stack_peak"]
    ours = merged[("digits_mlp", "M4", "optimized")]
    assert proc.stdout.count("| digits_mlp |") == len(kinds) + 1     # its rows, and its line of the targets
    assert f"| {ours['sram_used']:,} / {_n(ours['tflm_sram'])} |" in proc.stdout


def _n(x) -> str:
    return "-" if x is None else f"{x:,}"


def test_benchmark_compares_each_row_with_cmsis_nn_and_tflite_micro(tmp_path, capsys, monkeypatch):
    """The ratios and the issue 19 verdicts from stored rows (--print measures nothing): ours against the
    cmsis-nn row of the same model and core, TFLite Micro's SRAM its arena plus that row's stack; a row of
    an older run without the stack, and a model with no cmsis-nn row, leave their columns empty."""
    def row(model, kernels, instructions, stack, core="M4", tflm=1000, **extra):
        sram = None if stack is None else {"stack_peak": stack, "static_data": 50, "sram_used": 400 + stack}
        return {"model": model, "core": core, "kernels": kernels, "fits": True, "bit_exact": True,
                "instructions": instructions, "instructions_per_mac": 1.0, "flash": 4096, "sram": 9000,
                "conv_fc_instructions_per_mac": 1.0, "depthwise_instructions_per_mac": None, "arena": 350,
                "tflm_arena": {"total": tflm, "head": 300, "tail": tflm - 300}, **(sram or {}), **extra}
    rows = [row("digits_mlp", "optimized", 500, 200), row("digits_mlp", "cmsis-nn", 1000, 300),
            row("digits_cnn", "optimized", 501, 260), row("digits_cnn", "cmsis-nn", 1000, None),
            row("kws_dscnn", "optimized", 10, 10), row("digits_mlp", "optimized", 900, 200, core="M0"),
            {"model": "vww_mobilenet", "core": "M4", "kernels": "optimized", "fits": False}]
    stored = tmp_path / "stored.json"
    stored.write_text(json.dumps({"results": rows}))
    monkeypatch.setattr(sys, "argv", ["run.py", "--print", "--markdown", "--json", str(stored)])
    bench.main()
    out = capsys.readouterr().out
    assert json.loads(stored.read_text())["results"] == rows      # --print writes nothing
    compared = {(r["model"], r["core"], r["kernels"]): r for r in bench.compare(rows)}
    mlp = compared[("digits_mlp", "M4", "optimized")]
    assert mlp["instructions_vs_cmsis_nn"] == 0.5 and mlp["tflm_stack"] == 300 and mlp["tflm_sram"] == 1300
    assert mlp["sram_vs_tflm"] == round(600 / 1300, 3)
    assert compared[("digits_cnn", "M4", "optimized")]["tflm_sram"] is None
    assert compared[("digits_mlp", "M0", "optimized")]["instructions_vs_cmsis_nn"] is None
    assert "| digits_mlp | 500 / 1,000 | 0.500 | met | 600 / 1,300 | 0.462 | met |" in out
    assert "| digits_cnn | 501 / 1,000 | 0.501 | not met | 660 / - | - | - |" in out
    assert "| kws_dscnn | 10 / - | - | - | 410 / - | - | - |" in out
    assert "| ad_autoencoder | not measured |" in out and "| vww_mobilenet | does not fit |" in out
    assert out.index("| kws_dscnn |") < out.index("| ad_autoencoder |") < out.index("| digits_mlp | 500")


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
