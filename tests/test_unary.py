"""The element-wise activations' tables against the TFLite Micro interpreter, on every int8 input.

A 1x256 model gets the inputs -128..127 in one inference; the table the compiler puts in flash must
give TFLite Micro's 256 outputs exactly. Calibration ranges pick the quantization: zero points at
-128 and 127 (all-positive and all-negative ranges), tiny and large input scales.
"""
from __future__ import annotations

import numpy as np
import pytest

import modelzoo
from tinycompress.errors import TinyCompressError
from tinycompress.load import read_tflite
from tinycompress.ops import lower_layer
from tinycompress.ops.unary import table
from tinycompress.quantize import keras_to_int8_tflite
from tinycompress.reference import tflm_outputs

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


def _convert(layer, low: float, high: float) -> bytes:
    keras = modelzoo._keras()
    inp = keras.Input((256,), batch_size=1)
    model = keras.Model(inp, layer(keras.layers)(inp))
    calibration = np.random.default_rng(modelzoo.SEED).uniform(low, high, (64, 256)).astype(np.float32)
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
