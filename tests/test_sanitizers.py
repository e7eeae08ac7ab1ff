"""The sanitizer tier: the generated C of zoo models, and the kernel sweep, built for this machine with
AddressSanitizer and UndefinedBehaviorSanitizer, run over their test inputs and compared with TFLite Micro.

On the host the kernels take their portable paths (no DSP extension, no Helium); the optimized paths
are checked in QEMU by test_kernel_sweep.py, guard bytes included. ASan sees reads and writes past the
arena, the weights and the harness's buffers, UBSan signed overflow, bad shifts, misaligned and
out-of-bounds accesses: any report aborts the run (-fno-sanitize-recover=all).
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from conftest import TESTS

from tinycompress.target.boards import load_board
from tinycompress.codegen.emit import HOST_SOURCES
from tinycompress.target.emulate import run_firmware
from tinycompress.errors import TinyCompressError
from tinycompress.frontend.load import read_tflite_file
from tinycompress.pipeline import compile_model, load_inputs
from tinycompress.frontend.reference import tflm_outputs
from tinycompress.resources import data_dir

SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
OPT = f"-O1 -g {SANITIZE}"

# Every kernel the zoo reaches: the operator cases, the networks (DS-CNN's strided 10x4 convolution,
# the autoencoder's 640-wide FULLY_CONNECTED) and the token models (GATHER, MEAN, SUM as MEAN).
MODELS = ["op_fc_pairs", "op_conv_3x3_same", "op_conv_5x3_valid_s2", "op_conv_dilated", "op_dw_mult2_valid",
          "op_dw_s2_same", "op_maxpool_3x3_s1_same", "op_avgpool_3x3_s2_same", "op_softmax",
          "op_add_residual",
          "digits_cnn", "text_mean", "text_sum",
          # as in test_firmware_vs_tflm.py, slow: the zoo trains them for the slow tests only
          pytest.param("kws_dscnn", marks=pytest.mark.slow),
          pytest.param("ad_autoencoder", marks=pytest.mark.slow)]

pytestmark = pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("make")),
                                reason="gcc or make missing")


def sanitizer_options(log_dir) -> dict[str, str]:
    """Reports go to log_dir/sanitizer.<pid>, whoever captures the program's output."""
    log = f"log_path={log_dir / 'sanitizer'}"
    return {"ASAN_OPTIONS": f"detect_leaks=0:{log}", "UBSAN_OPTIONS": f"print_stacktrace=1:{log}"}


def sanitizer_reports(log_dir) -> str:
    return "\n".join("\n".join(p.read_text().splitlines()[:25]) for p in sorted(log_dir.glob("sanitizer*")))


def sanitized_host_build(directory) -> None:
    """make firmware_host with the sanitizers; the whole log on failure."""
    proc = subprocess.run(["make", "-s", "-C", str(directory), "firmware_host", f"OPT={OPT}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", MODELS)
def test_generated_c_under_sanitizers(name, zoo, tmp_path, monkeypatch):
    model, data = zoo(name)
    project = compile_model(model, load_board("mps2-an386"), tmp_path / "project")
    sanitized_host_build(project.directory)
    graph = read_tflite_file(model)
    inputs, _ = load_inputs(data, graph, 0)
    for key, value in sanitizer_options(tmp_path).items():
        monkeypatch.setenv(key, value)   # for run_firmware's child
    try:
        result = run_firmware(project.directory / "firmware_host", project.board, inputs,
                              graph.output_tensor().nbytes, host=True, timeout=120)
    except TinyCompressError as exc:
        pytest.fail(f"{name} under the sanitizers: {exc}\n{sanitizer_reports(tmp_path)}")
    assert not sanitizer_reports(tmp_path)
    expected = tflm_outputs(model.read_bytes(), inputs)
    assert len(inputs) >= 100
    np.testing.assert_array_equal(result.outputs, expected)


def test_kernel_sweep_under_sanitizers(tmp_path):
    """tests/firmware/kernel_sweep.c on the host: the portable kernels against themselves, built twice as
    in QEMU, over 300 random shapes per kernel (odd channels, padding, strides, dilations, multipliers)."""
    fw = data_dir("firmware")
    flags = ["gcc", *OPT.split(), "-std=c11", "-Wall", "-Werror", f"-I{fw / 'include'}",
             f"-I{fw / 'runtime'}"]
    objects = []
    for name in ["tc_conv2d_s8", "tc_fully_connected_s8", "tc_depthwise_conv2d_s8", "tc_max_pool2d_s8",
                 "tc_avg_pool2d_s8"]:
        source = fw / "kernels" / f"{name}.c"
        for suffix, extra in (("", []), ("_portable", ["-DTC_PORTABLE", f"-D{name}={name}_portable"])):
            obj = tmp_path / f"{name}{suffix}.o"
            subprocess.run([*flags, *extra, "-c", str(source), "-o", str(obj)], check=True)
            objects.append(str(obj))
    sweep = tmp_path / "sweep"
    subprocess.run([*flags, str(TESTS / "firmware" / "kernel_sweep.c"),
                    *(str(fw / "runtime" / n) for n in HOST_SOURCES), *objects, "-o", str(sweep)], check=True)
    proc = subprocess.run([str(sweep)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=dict(os.environ, **sanitizer_options(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr + sanitizer_reports(tmp_path)
    assert "agree" in proc.stdout + proc.stderr
