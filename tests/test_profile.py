"""`tinycompress profile`: every rank variant built, emulated and measured, end to end."""
from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest
from conftest import needs_emulator
from test_cli import assert_one_line_error, tc

from tinycompress.errors import EXIT_BUDGET

pytestmark = [needs_emulator, pytest.mark.slow]   # every profile converts Keras models


@pytest.fixture(scope="module")
def network(zoo):
    def get(name):
        tflite, data = zoo(name)
        return tflite.with_suffix(".keras"), data, tflite.with_name(f"{name}_train.npz")
    return get


def elf_size(elf):
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = map(int, out.splitlines()[1].split()[:3])
    return text + data, data + bss


def test_autoencoder_sweep(network, tmp_path):
    model, data, train = network("ad_autoencoder")
    out = tmp_path / "profile"
    proc = tc("profile", model, "--ranks", "4,8,16,32,full", "--data", data, "--calibration", train,
              "-o", out, "--junit", tmp_path / "junit.xml")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "profile.json").read_text())
    variants = report["variants"]
    assert [v["variant"] for v in variants] == ["4", "8", "16", "32", "full"]
    flash = [v["flash"]["total"] for v in variants]
    assert flash == sorted(flash) and len(set(flash)) == 5   # flash falls as the rank falls
    for v in variants:
        assert v["bit_exact"] and v["metric"] == "mse"
        assert v["instructions"] > 0 and len(v["layers"]) > 0
        # The table's flash and SRAM are the ELF's own sections.
        assert (v["flash"]["total"], v["sram"]["total"]) == elf_size(f"{v['project']}/firmware.elf")
        assert (out / f"rank-{v['variant']}" / "model.tflite").is_file()
    assert variants[-1]["compression"] == 1.0 and variants[0]["compression"] > 5
    assert (out / "profile.csv").read_text().count("\n") == 6
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("tests") == "5" and suite.get("failures") == "0"
    # The 128x8 and 8x128 bottleneck layers do not shrink at rank 8 and above, and the table says so.
    assert re.search(r"rank 8: rank on 8 layers \(rank 8 \(svd\)\); kept as they are: "
                     r"dense\w* \(rank 8 is not smaller than 128x8\), "
                     r"dense\w* \(rank 8 is not smaller than 8x128\)", proc.stdout)
    steps = {s["layer"]: s for s in variants[1]["steps"]}
    assert len(steps) == 10 and all(s["method"] == "rank" for s in steps.values())
    assert all(s["bytes_after"] < s["bytes_before"] for s in steps.values() if s["detail"] != "kept")
    assert all(v["larger_than_uncompressed"] == 0 for v in variants)


def test_digits_mlp_rank_16_keeps_accuracy(network, tmp_path):
    model, data, train = network("digits_mlp")
    proc = tc("profile", model, "--ranks", "16,full", "--data", data, "--train", train, "--epochs", "3",
              "--json", "-")
    assert proc.returncode == 0, proc.stderr
    full, rank16 = sorted(json.loads(proc.stdout)["variants"], key=lambda v: v["variant"] != "full")
    assert full["metric"] == "accuracy" and full["firmware"] > 0.9
    assert rank16["firmware"] >= full["firmware"] - 0.01        # within 1 point, on the firmware's outputs
    assert rank16["flash"]["weights"] < full["flash"]["weights"]
    assert rank16["bit_exact"] and full["bit_exact"]


def test_unreachable_budget_names_the_best_figure(network, tmp_path):
    model, data, train = network("digits_mlp")
    proc = tc("profile", model, "--ranks", "4,8", "--data", data, "--max-flash", "1KiB",
              "--junit", tmp_path / "junit.xml")
    assert_one_line_error(proc, EXIT_BUDGET, "no variant meets the budgets", "--max-flash 1,024 bytes",
                          "best reachable", "rank 4")
    assert ET.parse(tmp_path / "junit.xml").getroot().get("failures") == "2"


def test_profile_needs_the_keras_model(zoo, tmp_path):
    tflite, data = zoo("digits_mlp")
    assert_one_line_error(tc("profile", tflite, "--data", data), 1, "Keras")


def test_auto_ranks_meet_a_flash_budget(network, tmp_path):
    model, data, train = network("ad_autoencoder")
    proc = tc("profile", model, "--ranks", "auto", "--data", data, "--calibration", train,
              "--max-flash", "100KiB", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    (auto,) = json.loads(proc.stdout)["variants"]
    assert auto["variant"] == "auto" and auto["bit_exact"]
    assert auto["flash"]["total"] <= 100 * 1024 and not auto["budget_failures"]
    ranks = {s["layer"]: s["detail"] for s in auto["steps"] if s["detail"] != "kept"}
    assert ranks and len(set(ranks.values())) > 1   # per-layer ranks, not one global rank
    assert {s["method"] for s in auto["steps"]} == {"rank"} and auto["plan"].startswith("rank:")


def test_auto_ranks_without_a_budget_and_when_none_is_reachable(network):
    """No budget: the smallest plan within 1 point of the uncompressed model's accuracy."""
    model, data, train = network("digits_mlp")
    proc = tc("profile", model, "--ranks", "full,auto", "--data", data, "--json", "-")
    assert proc.returncode == 0, proc.stderr
    full, auto = json.loads(proc.stdout)["variants"]
    assert auto["firmware"] >= full["firmware"] - 0.01 and auto["flash"]["total"] < full["flash"]["total"]
    proc = tc("profile", model, "--ranks", "auto", "--data", data, "--max-flash", "2KiB")
    assert_one_line_error(proc, EXIT_BUDGET, "--max-flash cannot be met", "best reached", "bytes")
