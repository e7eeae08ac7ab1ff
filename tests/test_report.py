"""The report of `tinycompress run`: JSON fields, sizes from the ELF, and the mismatch exit code."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import needs_emulator
from test_cli import tc

from tinycompress.frontend import reference
from tinycompress.target.boards import load_board
from tinycompress.errors import EXIT_MISMATCH
from tinycompress.pipeline import VerificationError, run_model

pytestmark = needs_emulator
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits"


def test_demo_report(tmp_path):
    report_path, project = tmp_path / "report.json", tmp_path / "project"
    proc = tc("run", EXAMPLE / "digits_cnn.tflite", "--data", EXAMPLE / "digits_test.npz", "--verify",
              "--json", report_path, "-o", project)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())
    assert report["version"] == 1 and report["board"] == "mps2-an386"
    assert report["verification"] == {"inferences": 360, "matching": 360}
    assert report["accuracy"] > 0.9
    # Flash and SRAM are the ELF's, as arm-none-eabi-size counts them.
    text, data, bss = map(int, subprocess.run(["arm-none-eabi-size", str(project / "firmware.elf")],
                                              capture_output=True, text=True, check=True)
                          .stdout.splitlines()[1].split()[:3])
    assert report["flash"]["total"] == text + data
    assert report["sram"]["total"] == data + bss
    flash = report["flash"]
    assert flash["weights"] + flash["code"] + flash["other"] == flash["total"]
    sram = report["sram"]
    assert 0 < sram["stack_peak"] < sram["stack_reserved"]
    assert sram["arena"] == report["arena"]["planned"] < report["arena"]["unshared"]
    layers = report["layers"]
    assert [l["op"] for l in layers][:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    assert sum(l["macs"] for l in layers) == report["macs"]
    assert sum(l["instructions"] for l in layers) <= report["instructions"]
    assert all(l["instructions"] > 0 for l in layers)
    # The table shows the same figures.
    assert f"{report['instructions']:,.0f} per inference" in proc.stdout


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_any_differing_byte_fails_verification(monkeypatch):
    real = reference.tflm_outputs

    def off_by_one(tflite, inputs):
        expected = real(tflite, inputs)
        expected[3, 0] ^= 1
        return expected

    monkeypatch.setattr(reference, "tflm_outputs", off_by_one)
    with pytest.raises(VerificationError) as err:
        run_model(EXAMPLE / "digits_cnn.tflite", load_board("mps2-an386"), data=EXAMPLE / "digits_test.npz",
                  verify=True)
    assert err.value.exit_code == EXIT_MISMATCH
    assert "1 of 360 outputs differ" in str(err.value) and "input 3" in str(err.value)
