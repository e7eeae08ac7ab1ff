"""--kernels cmsis-nn: every layer CMSIS-NN runs gives TFLite Micro's bytes, on a plain, a DSP and a
Helium core. CMSIS-NN is in no registry reachable here and its code is not ours to commit, so these
tests run with a checkout named by TINYCOMPRESS_CMSIS_NN (`git clone --branch v7.0.0
https://github.com/ARM-software/CMSIS-NN`) and are skipped without one."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import needs_emulator
from test_cli import assert_one_line_error, tc

from tinycompress.errors import EXIT_TOOL_MISSING

CHECKOUT = os.environ.get("TINYCOMPRESS_CMSIS_NN")
needs_cmsis_nn = pytest.mark.skipif(not CHECKOUT,
                                    reason="set TINYCOMPRESS_CMSIS_NN to a CMSIS-NN v7.0.0 checkout")

OPS = ["op_fc_relu", "op_fc_none", "op_conv_3x3_same", "op_conv_5x3_valid_s2", "op_conv_dilated",
       "op_dw_3x3_same", "op_dw_mult2_valid", "op_dw_s2_same", "op_maxpool_3x3_s1_same",
       "op_avgpool_3x3_s2_same", "op_softmax", "op_add_residual"]
BOARDS = ["mps2-an385", "mps2-an386", "mps3-an547"]   # portable C, DSP extension, Helium


@needs_emulator
@needs_cmsis_nn
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("case", OPS + ["kws_dscnn", "digits_cnn"])
def test_cmsis_nn_matches_tflite_micro(case, board, zoo, tmp_path):
    model, data = zoo(case)
    out = tmp_path / "project"
    proc = tc("run", model, "--board", board, "--data", data, "--verify", "--kernels", "cmsis-nn",
              "--cmsis-nn", CHECKOUT, "-o", out)
    assert proc.returncode == 0, proc.stderr
    calls = [line for line in (out / "model.c").read_text().splitlines() if "status = tc_" in line]
    assert any("tc_cmsis_" in line for line in calls)      # CMSIS-NN really ran


def test_cmsis_nn_without_a_checkout_says_how_to_get_one(zoo, tmp_path):
    model, _ = zoo("digits_mlp")
    proc = tc("compile", model, "--kernels", "cmsis-nn", "-o", tmp_path / "p")
    assert_one_line_error(proc, EXIT_TOOL_MISSING, "git clone", "CMSIS-NN", "--cmsis-nn")
    proc = tc("compile", model, "--kernels", "cmsis-nn", "--cmsis-nn", tmp_path, "-o", tmp_path / "p")
    assert_one_line_error(proc, EXIT_TOOL_MISSING, "is not a CMSIS-NN checkout")
    assert not (tmp_path / "p").exists()


def test_layers_cmsis_nn_cannot_run_keep_our_kernels(zoo, tmp_path):
    """MEAN has no CMSIS-NN function: the generated code calls ours beside CMSIS-NN's (no build needed)."""
    model, _ = zoo("op_mean")
    fake = tmp_path / "cmsis"
    (fake / "Include").mkdir(parents=True)
    (fake / "Include" / "arm_nnfunctions.h").write_text("/* headers only: this test does not build */\n")
    proc = tc("compile", model, "--kernels", "cmsis-nn", "--cmsis-nn", fake, "-o", tmp_path / "p")
    assert proc.returncode == 0
    model_c = (tmp_path / "p" / "model.c").read_text()
    assert "tc_reduce_s8(" in model_c and "tc_cmsis_scratch" in model_c
    assert Path(tmp_path / "p" / "firmware" / "kernels" / "tc_reduce_s8.c").is_file()


@needs_emulator
@needs_cmsis_nn
def test_flash_with_cmsis_nn_builds_it_through_lib_deps_offline(zoo, tmp_path):
    model, data = zoo("kws_dscnn")
    out = tmp_path / "kws-pio"
    proc = tc("flash", model, "--data", data, "--count", "6", "--kernels", "cmsis-nn", "--cmsis-nn", CHECKOUT,
              "-o", out)
    assert proc.returncode == 0, proc.stderr
    log = (out / "platformio.log").read_text()
    assert "CMSIS-NN @ 7.0.0" in log and "6 of 6 outputs match the TFLite Micro interpreter" in log


@needs_emulator
@needs_cmsis_nn
def test_real_board_project_with_cmsis_nn_configures_and_links(zoo, tmp_path):
    model, _ = zoo("digits_cnn")
    out = tmp_path / "h7"
    proc = tc("flash", model, "--board", "nucleo-h743zi", "--no-upload", "--kernels", "cmsis-nn",
              "--cmsis-nn", CHECKOUT, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "lib_deps = CMSIS-NN=symlink://platformio/cmsis-nn" in (out / "platformio.ini").read_text()
    from test_flash import pio
    config = pio("project", "config", "--lint", cwd=out)
    assert "free from linting errors" in config.stdout, config.stdout + config.stderr
