"""The quantize stage: Keras and float TFLite models become full-int8 models the pipeline runs."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_emulator
from test_cli import assert_one_line_error, tc

from tinycompress.errors import EXIT_ERROR, TinyCompressError
from tinycompress.frontend.load import read_tflite
from tinycompress.frontend.quantize import keras_to_int8_tflite, load_calibration


@pytest.fixture(scope="module")
def dynamic_batch_model():
    import keras
    keras.utils.set_random_seed(1)
    inp = keras.Input((16,))  # batch None: must be rebuilt with batch 1 before conversion
    out = keras.layers.Dense(4, activation="relu")(keras.layers.Dense(8)(inp))
    return keras.Model(inp, out)


@pytest.mark.slow
def test_dynamic_batch_converts_to_plain_int8(dynamic_batch_model):
    calibration = np.random.default_rng(0).uniform(-1, 1, (64, 16)).astype(np.float32)
    graph = read_tflite(keras_to_int8_tflite(dynamic_batch_model, calibration))
    assert graph.input_tensor().dtype == "int8" and graph.output_tensor().dtype == "int8"
    assert graph.input_tensor().shape == (1, 16)
    assert [layer.op for layer in graph.layers] == ["FULLY_CONNECTED", "FULLY_CONNECTED"]


def test_calibration_without_x_names_the_keys(tmp_path):
    bad = tmp_path / "calib.npz"
    np.savez(bad, samples=np.zeros((4, 16), np.float32))
    with pytest.raises(TinyCompressError, match="no calibration samples under 'x' .*samples"):
        load_calibration(bad)


def test_keras_model_needs_calibration(dynamic_batch_model, tmp_path):
    path = tmp_path / "model.keras"
    dynamic_batch_model.save(path)
    assert_one_line_error(tc("compile", path, "-o", tmp_path / "out"), EXIT_ERROR, "--calibration")


@pytest.mark.slow
@needs_emulator
def test_keras_model_runs_bit_exact(dynamic_batch_model, tmp_path):
    path, calib = tmp_path / "model.keras", tmp_path / "calib.npz"
    dynamic_batch_model.save(path)
    np.savez(calib, x=np.random.default_rng(0).uniform(-1, 1, (100, 16)).astype(np.float32))
    proc = tc("run", path, "--calibration", calib, "--data", calib, "--verify")
    assert proc.returncode == 0, proc.stderr
    assert "100/100 outputs identical" in proc.stdout


@pytest.mark.slow
@needs_emulator
def test_float_tflite_with_calibration_runs_bit_exact(zoo, tmp_path):
    model, _ = zoo("float_mlp")
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(0).uniform(-1, 1, (100, 16)).astype(np.float32))
    proc = tc("run", model, "--calibration", calib, "--data", calib, "--verify")
    assert proc.returncode == 0, proc.stderr
    assert "100/100 outputs identical" in proc.stdout
