"""Crashes become messages: TensorFlow's converter in a child process, 64-bit tick counts, --timeout."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from conftest import build_stand_in, needs_emulator
from test_cli import assert_one_line_error, tc

from tinycompress.frontend import quantize
from tinycompress.target.emulate import run_firmware
from tinycompress.errors import EXIT_ERROR


@pytest.fixture(scope="module")
def keras_mlp(zoo):
    """The zoo's digits MLP as a Keras model, and its seeded calibration samples."""
    import keras
    tflite, _ = zoo("digits_mlp")
    model = keras.models.load_model(tflite.with_suffix(".keras"), compile=False)
    return tflite.with_suffix(".keras"), model, np.load(tflite.with_name("digits_mlp_train.npz"))["x"][:100]


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_conversion_in_a_child_gives_the_same_bytes(keras_mlp):
    _, model, calibration = keras_mlp
    in_process = quantize._convert_keras(model, calibration)
    assert quantize.keras_to_int8_tflite(model, calibration) == in_process


def _twice(t):
    return t * 2.0


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_a_lambda_only_this_process_can_run_still_converts():
    """A Lambda's function lives in the caller's module, which the conversion child cannot import: the
    model converts in this process instead, to the same bytes."""
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((8,), batch_size=1)
    model = keras.Model(inp, keras.layers.Dense(4)(keras.layers.Lambda(_twice)(inp)))
    calibration = np.random.default_rng(0).uniform(-1, 1, (50, 8)).astype(np.float32)
    assert quantize.keras_to_int8_tflite(model, calibration) == quantize._convert_keras(model, calibration)


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_converter_crash_is_one_line(keras_mlp, tmp_path):
    path, _, calibration = keras_mlp
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=calibration)
    env = dict(os.environ, **{quantize.CRASH_HOOK: str(int(signal.SIGSEGV))})
    proc = tc("compile", path, "--calibration", calib, "-o", tmp_path / "out", env=env)
    assert_one_line_error(proc, EXIT_ERROR, "TensorFlow's converter crashed (signal 11, SIGSEGV)",
                          f"converting the Keras model {keras_mlp[1].name}")
    assert not (tmp_path / "out").exists()


def test_float_converter_crash_is_one_line(zoo, tmp_path):
    model, _ = zoo("float_mlp")
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(0).uniform(-1, 1, (20, 16)).astype(np.float32))
    env = dict(os.environ, **{quantize.CRASH_HOOK: str(int(signal.SIGABRT))})
    proc = tc("compile", model, "--calibration", calib, "-o", tmp_path / "out", env=env)
    assert_one_line_error(proc, EXIT_ERROR, "crashed (signal 6, SIGABRT) converting the float .tflite model")


# Layer 1 moves the SysTick wrap count on by 2^8 wraps of 2^24 ticks: 2^32 ticks pass inside it, as they
# would in a layer of 4.3 G instructions. The timer also starts 2^24 ticks short of 2^32
# (-DTC_TIMER_START_WRAPS=255), so the count itself crosses 2^32 in the first inference.
JUMP = 1 << 32
WRAP_MODEL_C = """
#include "model.h"
#include "tc_profile.h"
extern volatile uint32_t tc_timer_wraps;
static int8_t buffer[16];
int8_t *const tc_model_input = buffer;
int8_t *const tc_model_output = buffer;
tc_status tc_model_invoke(void)
{
    TC_PROFILE_BEGIN();
    for (int i = 0; i < 16; i++) {
        buffer[i] = (int8_t)(buffer[i] + 1);
    }
    TC_PROFILE_LAYER(0);
    tc_timer_wraps += 256u;
    TC_PROFILE_LAYER(1);
    return TC_OK;
}
"""


@needs_emulator
def test_tick_counts_past_2_to_the_32(tmp_path):
    board, elf = build_stand_in("mps2-an386", tmp_path, WRAP_MODEL_C, ("-DTC_TIMER_START_WRAPS=255u",))
    result = run_firmware(elf, board, np.zeros((3, 16), np.int8), 16)
    total, layers = result.ticks[:, 0], result.ticks[:, 1:]
    assert np.all(layers[:, 1] >= JUMP) and np.all(layers[:, 1] < JUMP + 1000), layers
    assert np.all(layers[:, 0] < 1000), layers
    # The total equals the sum of the layers, give or take the hooks' ticks (about a hundred), not 2^32 off.
    assert np.all(np.abs(total - layers.sum(axis=1)) < 1000), (total, layers)


@needs_emulator
def test_timeout_option_is_one_line_naming_the_flag(zoo, tmp_path):
    model, data = zoo("digits_mlp")
    proc = tc("run", model, "--data", data, "--timeout", "0.001")
    assert_one_line_error(proc, EXIT_ERROR, "ran past its 0.001 s timeout", "--timeout SECONDS")
    proc = tc("run", model, "--count", "2", "--timeout", "120")
    assert proc.returncode == 0, proc.stderr
    refused = tc("run", model, "--timeout", "-1")
    assert refused.returncode == 2 and "Invalid value for '--timeout'" in refused.stderr
