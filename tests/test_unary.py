"""The element-wise activations' tables against the TFLite Micro interpreter, on every int8 input.

A 1x256 model gets the inputs -128..127 in one inference; the table the compiler puts in flash must
give TFLite Micro's 256 outputs exactly. Calibration ranges pick the quantization: zero points at
-128 and 127 (all-positive and all-negative ranges), tiny and large input scales.
"""
from __future__ import annotations

import numpy as np
import pytest

import modelzoo
from conftest import needs_emulator, zoo_graph
from tinycompress.target.boards import load_board
from tinycompress.target.build import build
from tinycompress.target.emulate import run_firmware
from tinycompress.pipeline import compile_model
from tinycompress.errors import TinyCompressError
from tinycompress.frontend.load import read_tflite
from tinycompress.ops import lower_layer
from tinycompress.ops.unary import table
from tinycompress.frontend.quantize import keras_to_int8_tflite
from tinycompress.frontend.reference import tflm_outputs

pytestmark = pytest.mark.slow

ACTIVATIONS = {
    "LOGISTIC": lambda L: L.Activation("sigmoid"),
    "TANH": lambda L: L.Activation("tanh"),
    "HARD_SWISH": lambda L: L.Activation("hard_swish"),
    "LEAKY_RELU": lambda L: L.LeakyReLU(0.3),
    "RELU": lambda L: L.ReLU(),
    "RELU6": lambda L: L.ReLU(max_value=6),
}
# (low, high) of the calibration data: the input's scale and zero point follow from it
RANGES = {"symmetric": (-1.0, 1.0), "zp_-128": (0.0, 3.0), "zp_127": (-5.0, 0.0),
          "tiny_scale": (-1e-3, 2e-3), "large_scale": (-300.0, 200.0), "wide_past_saturation": (-40.0, 40.0)}
EVERY_INPUT = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def _convert(layer, low: float, high: float, shape=(256,)) -> bytes:
    keras = modelzoo._keras()
    inp = keras.Input(shape, batch_size=1)
    model = keras.Model(inp, layer(keras.layers)(inp))
    calibration = np.random.default_rng(modelzoo.SEED).uniform(low, high, (64,) + shape).astype(np.float32)
    calibration[0, :2] = low, high   # the range's ends, exactly
    return keras_to_int8_tflite(model, calibration)


@pytest.mark.parametrize("op", ACTIVATIONS)
@pytest.mark.parametrize("calibration", RANGES)
def test_table_is_tflite_micro_on_every_input(op, calibration):
    tflite = _convert(ACTIVATIONS[op], *RANGES[calibration])
    graph = read_tflite(tflite)
    assert [layer.op for layer in graph.layers] == [op]
    expected = tflm_outputs(tflite, EVERY_INPUT)[0]
    got = table(graph.layers[0], graph)
    wrong = np.flatnonzero(got != expected)
    assert wrong.size == 0, (f"{wrong.size} of 256 differ, first at input {wrong[0] - 128}: "
                             f"table {got[wrong[0]]}, TFLite Micro {expected[wrong[0]]}")


def _tflite_interpreter_outputs(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    import warnings

    import tensorflow as tf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "tf.lite.Interpreter is deprecated"
        interpreter = tf.lite.Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], inputs)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize("calibration", ["symmetric", "zp_-128", "zp_127", "large_scale"])
def test_relu_n1_to_1_table_is_tflite_on_every_input(calibration):
    """TFLite Micro cannot run RELU_N1_TO_1 (it has no kernel for it): TFLite's interpreter is the reference.
    A clip to [-1, 1] after a RESHAPE (nothing to fuse into) converts to it."""
    keras = modelzoo._keras()
    tflite = _convert(lambda L: L.Lambda(lambda x: keras.ops.clip(x, -1.0, 1.0)), *RANGES[calibration])
    graph = read_tflite(tflite)
    assert [layer.op for layer in graph.layers] == ["RELU_N1_TO_1"]
    expected = _tflite_interpreter_outputs(tflite, EVERY_INPUT)[0]
    got = table(graph.layers[0], graph)
    assert np.array_equal(got, expected), np.flatnonzero(got != expected)


@needs_emulator
@pytest.mark.parametrize("calibration", ["symmetric", "zp_-128", "zp_127", "tiny_scale", "large_scale"])
def test_prelu_in_qemu_on_every_input_and_alpha(calibration, tmp_path):
    """PRELU's arithmetic runs in C: a [256, 3] input holding each int8 value in a row meets each of three
    alphas (one per channel, shared over the rows); the M4 firmware's output must be TFLite Micro's."""
    def layer(L):
        def alpha(shape, dtype=None):
            return np.array([[0.25, -0.7, 0.03]], "float32")
        return lambda x: L.PReLU(alpha_initializer=alpha, shared_axes=[1])(L.Reshape((256, 3))(x))
    tflite = _convert(lambda L: layer(L), *RANGES[calibration], shape=(768,))
    model = tmp_path / "prelu.tflite"
    model.write_bytes(tflite)
    board = load_board("mps2-an386")
    project = compile_model(model, board, tmp_path / "project")
    assert [call.function for call in project.calls][-1] == "tc_prelu_s8"
    inputs = np.repeat(EVERY_INPUT.reshape(256, 1), 3, axis=1).reshape(1, 768)
    result = run_firmware(build(project), board, inputs, 768)
    expected = tflm_outputs(tflite, inputs)
    assert np.array_equal(result.outputs, expected), np.flatnonzero(result.outputs != expected)


def test_logistic_output_zero_point_other_than_minus_128_is_refused(zoo):
    """TFLite Micro's LOGISTIC requires an output zero point of -128; so do we, in one line."""
    graph, layer = zoo_graph(zoo, "op_logistic")
    graph.tensors[layer.outputs[0]].zero_point = np.array([-100])
    with pytest.raises(TinyCompressError, match=r"LOGISTIC.*zero point of -100 \(TFLite requires -128\)"):
        lower_layer(layer, graph)


def test_hard_swish_with_an_output_scale_too_small_is_refused(zoo):
    """An output scale below the input's / 128 needs a left shift that TFLite Micro's HARD_SWISH refuses."""
    graph, layer = zoo_graph(zoo, "op_hard_swish")
    inp = graph.tensors[layer.inputs[0]]
    graph.tensors[layer.outputs[0]].scale = np.array([inp.scale[0] / 1000], np.float32)
    with pytest.raises(TinyCompressError, match="HARD_SWISH.*output scale"):
        lower_layer(layer, graph)


def test_prelu_alpha_not_on_the_last_axes_is_refused():
    """PReLU(shared_axes=[2]) gives alpha [H, 1, C]: not a repeating block of the output, named and
    refused."""
    tflite = _convert(lambda L: lambda x: L.PReLU(alpha_initializer="random_uniform", shared_axes=[2])(
        L.Reshape((4, 4, 3))(x)), -1.0, 1.0, shape=(48,))
    graph = read_tflite(tflite)
    layer = graph.layers[-1]
    assert layer.op == "PRELU"
    with pytest.raises(TinyCompressError, match=r"PRELU.*alpha of shape \[4, 1, 3\].*last axes"):
        lower_layer(layer, graph)


@needs_emulator
def test_relu_n1_to_1_runs_and_verify_says_tflite_micro_lacks_it(tmp_path):
    """The firmware runs it as TFLite does; --verify ends in one line naming the kernel TFLite Micro lacks."""
    from test_cli import EXIT_ERROR, assert_one_line_error, tc
    keras = modelzoo._keras()
    tflite = _convert(lambda L: L.Lambda(lambda x: keras.ops.clip(x, -1.0, 1.0)), -2.0, 2.0)
    model, data = tmp_path / "clip.tflite", tmp_path / "clip.npz"
    model.write_bytes(tflite)
    np.savez(data, x=np.random.default_rng(modelzoo.SEED).uniform(-2, 2, (4, 256)).astype(np.float32))
    args = ("run", model, "--board", "mps2-an386", "--data", data)
    assert tc(*args, "-o", tmp_path / "plain").returncode == 0
    assert_one_line_error(tc(*args, "-o", tmp_path / "verified", "--verify"), EXIT_ERROR,
                          "TFLite Micro interpreter has no RELU_N1_TO_1 kernel", "run without --verify")


@needs_emulator
@pytest.mark.parametrize("board_name", ["mps2-an386", "microbit", "mps3-an547"])
def test_table_kernel_in_qemu_on_every_input(board_name, tmp_path):
    """tc_lut_s8's paths (four per word on the M4, four bytes a step on the M0, sixteen a gather on the M55,
    and the tails: 259 elements) give TFLite Micro's TANH for every input."""
    tflite = _convert(lambda L: L.Activation("tanh"), *RANGES["zp_127"], shape=(259,))
    model = tmp_path / "tanh.tflite"
    model.write_bytes(tflite)
    board = load_board(board_name)
    project = compile_model(model, board, tmp_path / "project")
    assert [call.function for call in project.calls] == ["tc_lut_s8"]
    inputs = np.concatenate([EVERY_INPUT[0], [-128, 0, 127]]).astype(np.int8).reshape(1, 259)
    result = run_firmware(build(project), board, inputs, 259)
    assert np.array_equal(result.outputs, tflm_outputs(tflite, inputs))
