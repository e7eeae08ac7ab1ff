"""The binary element-wise operators (ops/elementwise.py, their kernels
tc_{add,mul,squared_difference,maximum,minimum}_s8.c) against the TFLite Micro interpreter, in QEMU on the
M4, M0, M55 and M7: the row paths (same shapes: DSP words and Helium lanes with tails; one input repeating:
a scalar, a per-pixel value, a per-channel vector; the general walk of tc_broadcast.h up to 5-D), constants
on either side, zero points at -128 and 127, tiny and large scales. Refusals end in one line."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import modelzoo
from conftest import needs_emulator
from tinycompress.target.boards import load_board
from tinycompress.target.build import build
from tinycompress.target.emulate import run_firmware
from tinycompress.errors import TinyCompressError
from tinycompress.frontend.load import read_tflite
from tinycompress.ops import RULES, lower_layer
from tinycompress.ops.elementwise import broadcast_walk
from tinycompress.pipeline import compile_model
from tinycompress.frontend.quantize import keras_to_int8_tflite
from tinycompress.frontend.reference import tflm_outputs

BOARDS = ["mps2-an386", "microbit", "mps3-an547", "mps2-an500"]   # M4, M0, M55, M7


def _walk_in_python(walk, a, b):
    """tc_broadcast_walk's order of visits, in Python: the output as the kernel writes it."""
    s, s1, s2 = walk["shape"], walk["strides1"], walk["strides2"]
    out = []
    for index in itertools.product(*(range(n) for n in s)):
        i = sum(k * st for k, st in zip(index, s1))
        j = sum(k * st for k, st in zip(index, s2))
        out.append((a[i], b[j]))
    return out


@pytest.mark.parametrize("shapes", [
    ((1, 5, 5, 3), (3,)), ((1, 5, 5, 3), (1, 5, 5, 3)), ((4, 1, 3), (4, 6, 3)), ((5, 4, 1), (5, 4, 6)),
    ((1, 1), (1, 13)), ((), (2, 3)), ((2, 3, 2, 4), (2, 1, 2, 1)), ((2, 1, 3, 1, 5), (1, 4, 1, 6, 1)),
    ((7,), ()), ((1,), (1,))])
def test_broadcast_walk_visits_numpy_pairs(shapes):
    """The collapsed walk pairs the same elements as NumPy's broadcasting, in the output's order; the last
    axis steps by 0 or 1 only."""
    s1, s2 = shapes
    out_shape = np.broadcast_shapes(s1, s2)
    a, b = np.arange(int(np.prod(s1))).reshape(s1), 1000 + np.arange(int(np.prod(s2))).reshape(s2)
    walk = broadcast_walk(s1, s2, out_shape)
    assert len(walk["shape"]) == 5 and walk["strides1"][-1] in (0, 1) and walk["strides2"][-1] in (0, 1)
    expected = list(zip(*(np.broadcast_to(x, out_shape).reshape(-1) for x in (a, b))))
    assert _walk_in_python(walk, a.reshape(-1), b.reshape(-1)) == expected


def test_common_cases_are_one_row_or_rows_of_channels():
    assert broadcast_walk((1, 5, 5, 3), (1, 5, 5, 3), (1, 5, 5, 3))["shape"] == (1, 1, 1, 1, 75)
    vector = broadcast_walk((1, 5, 5, 3), (3,), (1, 5, 5, 3))
    assert vector["shape"][-2:] == (25, 3) and vector["strides2"][-2:] == (0, 1)
    scalar = broadcast_walk((1, 5, 5, 3), (), (1, 5, 5, 3))
    assert scalar["shape"][-1] == 75 and scalar["strides2"][-1] == 0


def _layer_graph(zoo, name, op):
    graph = read_tflite(zoo(name)[0].read_bytes())
    layer = next(layer for layer in graph.layers if layer.op == op)
    return graph, layer


def test_refusals_name_the_layer(zoo):
    """int16 tensors and ranks past 5 are refused in one message naming the layer."""
    graph, layer = _layer_graph(zoo, "op_mul_same", "MUL")
    t = [graph.tensors[i] for i in layer.inputs]
    where = f"layer {layer.name} (MUL)"
    graph.tensors[layer.inputs[1]].dtype = "int16"
    with pytest.raises(TinyCompressError, match=r"MUL.*input 2 is int16; only int8"):
        RULES["MUL"].check(layer, graph, t, where)
    graph.tensors[layer.inputs[1]].dtype = "int8"
    t[0].shape = (1, 1, 1, 5, 5, 3)
    with pytest.raises(TinyCompressError, match=r"MUL.*rank 6; at most 5"):
        RULES["MUL"].shape(layer, graph, t, where)


def test_add_with_an_output_scale_too_small_is_refused(zoo):
    graph, layer = _layer_graph(zoo, "op_add_const_vector", "ADD")
    t = [graph.tensors[i] for i in layer.inputs]
    graph.tensors[layer.outputs[0]].scale = np.array([t[0].scale[0] / 2 ** 21], np.float32)
    with pytest.raises(TinyCompressError, match="ADD.*too small"):
        RULES["ADD"].check(layer, graph, t, f"layer {layer.name} (ADD)")


def test_sub_and_constants_lower_to_our_kernels(zoo):
    graph, layer = _layer_graph(zoo, "op_sub_const_first", "SUB")
    call = lower_layer(layer, graph)
    assert call.function == "tc_add_s8" and call.params["subtract"] == 1
    assert call.params["constant1"] != "NULL" and call.params["constant2"] == "NULL"
    assert call.inputs[0] == call.inputs[1] and len(call.arrays) == 1


PATHS = ["op_add_same_relu6", "op_mul_same", "op_sub_h1c", "op_mul_hw1", "op_mul_const_scalar_relu",
         "op_maximum_same", "op_minimum_const", "op_squared_difference_hw1", "op_add_5d", "op_mul_scalar"]


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("board_name", BOARDS[1:])
@pytest.mark.parametrize("name", PATHS)
def test_zoo_case_in_qemu_on_each_core(name, board_name, zoo, tmp_path):
    """Each row path on the M0 (portable), M55 (Helium) and M7 (DSP); tests/test_firmware_vs_tflm.py runs
    every op_ case of tests/zoo_binary.py on the M4."""
    from test_firmware_vs_tflm import build_and_run
    model, data = zoo(name)
    project, _, inputs, result = build_and_run(model, board_name, data, tmp_path)
    expected = tflm_outputs(project.graph.source, inputs)
    assert np.array_equal(result.outputs, expected), np.flatnonzero(~(expected == result.outputs).all(axis=1))


# (low, high) of the calibration data: zero points at the ends, tiny and large scales
RANGES = {"zp_-128": (0.0, 3.0), "zp_127": (-5.0, 0.0), "tiny_scale": (-1e-3, 2e-3),
          "large_scale": (-300.0, 200.0)}
OPERATIONS = {
    "ADD": lambda keras, x, c: x + c,
    "SUB": lambda keras, x, c: c - x,
    "MUL": lambda keras, x, c: x * c,
    "SQUARED_DIFFERENCE": lambda keras, x, c: __import__("tensorflow").math.squared_difference(x, c),
    "MAXIMUM": lambda keras, x, c: keras.ops.maximum(x, c),
}
SIZE = 259   # every int8 input and a tail of 3


def _every_input_model(op: str, low: float, high: float) -> bytes:
    """op(x, constant) on a [259] input calibrated over [low, high]; the constant spans the same range."""
    keras = modelzoo._keras()
    inp = keras.Input((SIZE,), batch_size=1)
    constant = np.random.default_rng(1).uniform(low, high, (SIZE,)).astype(np.float32)
    model = keras.Model(inp, keras.layers.Lambda(lambda x: OPERATIONS[op](keras, x, constant))(inp))
    calibration = np.random.default_rng(modelzoo.SEED).uniform(low, high, (64, SIZE)).astype(np.float32)
    calibration[0, :2] = low, high
    return keras_to_int8_tflite(model, calibration)


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("calibration", RANGES)
@pytest.mark.parametrize("op", OPERATIONS)
def test_every_input_against_a_constant_in_qemu(op, calibration, tmp_path):
    """Every int8 input meets a constant in flash, at the zero points' ends and tiny and large scales."""
    tflite = _every_input_model(op, *RANGES[calibration])
    graph = read_tflite(tflite)
    assert op in [layer.op for layer in graph.layers]
    model = tmp_path / "model.tflite"
    model.write_bytes(tflite)
    board = load_board("mps2-an386")
    project = compile_model(model, board, tmp_path / "project")
    inputs = np.concatenate([np.arange(-128, 128), [-128, 0, 127]]).astype(np.int8).reshape(1, SIZE)
    inputs = np.concatenate([inputs, inputs[:, ::-1]])
    expected = tflm_outputs(tflite, inputs)
    result = run_firmware(build(project), board, inputs, SIZE)
    assert np.array_equal(result.outputs, expected), np.flatnonzero(result.outputs != expected)
