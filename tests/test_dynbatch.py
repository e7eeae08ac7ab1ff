"""Dynamic-batch exports (tinycompress/frontend/fold.py) and Keras layer names (load._name_layers).

A file converted with a `None` batch carries int32 shape arithmetic in front of its RESHAPEs; it is folded
at load for batch 1 and the firmware must equal TFLite Micro running the ORIGINAL file, bit for bit. A
shape computed from the data is refused, naming the layer; "convert with full int8" is never the message.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
from conftest import firmware_vs_tflm, needs_emulator
from test_cli import assert_one_line_error, tc

from tinycompress.frontend import verify
from tinycompress.errors import EXIT_ERROR, TinyCompressError
from tinycompress.escape import c_identifier
from tinycompress.ir import Layer, Tensor
from tinycompress.frontend.load import MAX_NAME, _name_layers, read_tflite_file
from tinycompress.pipeline import load_model

INT8 = ["dyn_mlp", "dyn_cnn", "dyn_conv1d", "dyn_gap"]
FLOAT_IO = ["dynf_mlp", "dynf_cnn", "dynf_conv1d", "dynf_gap"]   # need tinycompress/frontend/floatio.py
SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK", "GATHER", "REDUCE_PROD", "CONCATENATION", "FILL"}


def _operators(path) -> list[str]:
    """The operators the file itself holds, before any folding."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from tinycompress.frontend.load import _enum_names
    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    names = _enum_names(schema.BuiltinOperator)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return [names[codes[op.opcodeIndex]] for op in model.subgraphs[0].operators]


@pytest.mark.parametrize("name", INT8 + ["dyn_seq_dense"])
def test_shape_arithmetic_folds_for_batch_1(zoo, name):
    model, _ = zoo(name)
    held = _operators(model)
    graph = load_model(model)     # the int8 check of run: no int32 activation is left
    assert set(held) & SHAPE_OPS or name in ("dyn_gap", "dyn_conv1d")   # the converter kept some here
    assert len(graph.folded) == sum(op in SHAPE_OPS for op in held)
    assert not {layer.op for layer in graph.layers} & SHAPE_OPS
    for layer in graph.layers:
        for i in layer.inputs + layer.outputs:
            t = graph.tensor(i)
            assert t is None or t.is_constant or t.dtype == "int8", (layer.name, t.dtype)
    assert graph.input_tensor().shape[0] == 1 and graph.output_tensor().shape[0] == 1


def test_placeholder_shapes_are_computed(zoo):
    """A Dense on a sequence: its Tensordot RESHAPE is declared 1x1 with signature [-1, -1]; the folded new
    shape (9x4) sizes it, and the rule of each next layer sizes theirs."""
    model, _ = zoo("dyn_seq_dense")
    graph = read_tflite_file(model)
    shapes = [(layer.op, graph.tensors[layer.outputs[0]].shape) for layer in graph.layers]
    assert shapes == [("RESHAPE", (9, 4)), ("FULLY_CONNECTED", (9, 6)), ("RESHAPE", (1, 9, 6)),
                      ("ADD", (1, 9, 6)), ("RESHAPE", (1, 54)), ("FULLY_CONNECTED", (1, 5))]


@needs_emulator
@pytest.mark.parametrize("name", INT8)
def test_dynamic_batch_runs_bit_exact_with_tflite_micro(zoo, name, tmp_path):
    """The done criterion of issue 15: run --verify, against TFLite Micro on the original file."""
    model, data = zoo(name)
    proc = tc("run", model, "--board", "mps2-an386", "--data", data, "--verify", "-o", tmp_path / "p")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"verification\s+(\d+)/\1 outputs identical", proc.stdout), proc.stdout
    assert "full int8" not in proc.stderr


def _firmware_vs_tflm(model, data, board_name, tmp_path, reference: bytes | None = None):
    firmware_vs_tflm(model, board_name, data, tmp_path, reference, min_inputs=100)


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("board", ["microbit", "mps3-an547"])
@pytest.mark.parametrize("name", ["dyn_cnn", "dyn_conv1d"])
def test_dynamic_batch_on_m0_and_m55(zoo, tmp_path, name, board):
    model, data = zoo(name)
    _firmware_vs_tflm(model, data, board, tmp_path)


@needs_emulator
@pytest.mark.parametrize("name", FLOAT_IO)
def test_float_io_dynamic_batch_runs_bit_exact(zoo, name, tmp_path):
    """Float input and output around a dynamic-batch model: float-I/O support (floatio.py) and folding."""
    model, data = zoo(name)
    proc = tc("run", model, "--board", "mps2-an386", "--data", data, "--verify", "-o", tmp_path / "p")
    assert proc.returncode == 0, proc.stderr
    assert "full int8" not in proc.stderr


def _folded_file(graph) -> bytes:
    """The original flatbuffer as fold.py sees it: folded values as constant buffers, computed shapes
    declared, folded operators gone. Only for the test: TFLite Micro runs it as the reference where it
    cannot run the original (it has no REDUCE_PROD kernel)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    model = schema.ModelT.InitFromPackedBuf(bytearray(graph.source), 0)
    sub = model.subgraphs[0]
    for t, ours in zip(sub.tensors, graph.tensors):
        t.shape, t.shapeSignature = list(ours.shape), None
        stored = model.buffers[t.buffer].data
        if ours.is_constant and not (stored is not None and len(stored)):
            buffer = schema.BufferT()
            little = np.ascontiguousarray(ours.data).astype(ours.data.dtype.newbyteorder("<"))
            buffer.data = list(little.tobytes())
            model.buffers.append(buffer)
            t.buffer = len(model.buffers) - 1
    sub.operators = [sub.operators[layer.operator] for layer in graph.layers]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@needs_emulator
def test_a_file_tflite_micro_cannot_run(zoo, tmp_path):
    """dyn_seq_dense: TFLite Micro has no REDUCE_PROD kernel (and its RESHAPE would find 36 values for a
    declared 1x1), so --verify says there is no reference; the firmware equals TFLite Micro on the file
    with its shape arithmetic folded."""
    model, data = zoo("dyn_seq_dense")
    proc = tc("run", model, "--board", "mps2-an386", "--data", data, "--verify", "-o", tmp_path / "p")
    assert_one_line_error(proc, EXIT_ERROR, "no REDUCE_PROD kernel")
    graph = read_tflite_file(model)
    _firmware_vs_tflm(model, data, "mps2-an386", tmp_path, reference=_folded_file(graph))


def _data_shape(t):
    import tensorflow as tf
    n = tf.minimum(tf.cast(tf.argmax(t[0]), tf.int32), 0) + 16   # always 16, which the converter cannot see
    return tf.reshape(t, tf.stack([-1, n]))


@pytest.fixture(scope="module")
def data_shape_model(tmp_path_factory):
    """A RESHAPE whose new shape the data computes: ARG_MAX -> CAST -> MINIMUM -> ADD -> PACK."""
    import keras

    from tinycompress.frontend.quantize import keras_to_int8_tflite
    keras.utils.set_random_seed(0)
    L = keras.layers
    inp = keras.Input((16,), batch_size=1)
    model = keras.Model(inp, L.Dense(4)(L.Lambda(_data_shape, output_shape=(16,))(L.Dense(16)(inp))))
    calibration = np.random.default_rng(0).uniform(-1, 1, (50, 16)).astype(np.float32)
    path = tmp_path_factory.mktemp("data_shape") / "data_shape.tflite"
    path.write_bytes(keras_to_int8_tflite(model, calibration))
    return path


@pytest.mark.slow
def test_a_shape_that_depends_on_the_data_is_refused(data_shape_model, tmp_path):
    assert "ARG_MAX" in _operators(data_shape_model)
    proc = tc("run", data_shape_model, "--board", "mps2-an386", "-o", tmp_path / "p")
    assert_one_line_error(proc, EXIT_ERROR, "(ARG_MAX) computes a value that layer ",
                          "(RESHAPE) needs as a shape", "from data known only at run time")
    assert "full int8" not in proc.stderr
    proc = tc("inspect", data_shape_model)
    assert proc.returncode == EXIT_ERROR
    for op in ("ARG_MAX", "CAST", "MINIMUM", "ADD", "PACK", "RESHAPE"):
        assert f"({op}): layer " in proc.stdout
    with verify.collecting_refusals() as refusals:
        read_tflite_file(data_shape_model)
    assert {layer.op for layer, _ in refusals.values()} >= {"ARG_MAX", "CAST", "MINIMUM", "ADD", "PACK",
                                                            "RESHAPE"}


def test_an_open_dimension_besides_the_batch_is_refused(zoo, tmp_path):
    """An input of signature [-1, -1, 3] (a sequence of any length): one line naming the input."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    model, _ = zoo("dyn_conv1d")
    m = schema.ModelT.InitFromPackedBuf(bytearray(model.read_bytes()), 0)
    sub = m.subgraphs[0]
    sub.tensors[sub.inputs[0]].shapeSignature = [-1, -1, 3]
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "open.tflite"
    path.write_bytes(bytes(builder.Output()))
    with pytest.raises(TinyCompressError,
                       match=r"shape signature \[-1, -1, 3\]: a dimension other than the batch"):
        read_tflite_file(path)


# ---- layer names: unique C identifiers whatever the model calls its layers (issue 15, item 4) ------

def _layers(*tensor_names):
    tensors = [Tensor(i, name, (1,), "int8") for i, name in enumerate(tensor_names)]
    return [Layer("", "RESHAPE", [], [i]) for i in range(len(tensors))], tensors


def test_conv1d_names_do_not_collide():
    """A Keras Conv1D is two layers named after it (RESHAPE, CONV_2D): conv1d_1 twice, then conv1d_1_2
    twice. The second conv1d_1 must not take the name conv1d_1_2."""
    layers, tensors = _layers("m/conv1d_1/a", "m/conv1d_1/b", "m/conv1d_1_2/a", "m/conv1d_1_2/b")
    _name_layers(layers, tensors)
    names = [layer.name for layer in layers]
    assert names == ["conv1d_1", "conv1d_1_3", "conv1d_1_2", "conv1d_1_2_2"]


def test_any_layer_name_becomes_a_unique_c_identifier():
    long = "x" * 200
    layers, tensors = _layers(f"m/{long}/a", f"m/{long}y/a", "m/9lives/a", "m/é è/a", "m/__/a", "m/a-b/a",
                              "m/a_b/a", "m/a.b/a", "output", "m/dense/x", "m/dense_2/x", "m/dense/y")
    _name_layers(layers, tensors)
    names = [layer.name for layer in layers]
    assert len(set(names)) == len(names), names
    for name in names:
        c_identifier(name)
        c_identifier(name + "_multiplier")   # the longest symbol a lowering makes from it
        assert len(name) <= MAX_NAME + 4
    assert names[-3:] == ["dense", "dense_2", "dense_3"]


@needs_emulator
def test_conv1d_keyword_spotter_builds_and_matches(zoo, tmp_path):
    model, data = zoo("op_conv1d_kws")
    graph = read_tflite_file(model)
    names = [layer.name for layer in graph.layers]
    assert len(set(names)) == len(names) and "CONV_2D" in {layer.op for layer in graph.layers}
    _firmware_vs_tflm(model, data, "mps2-an386", tmp_path)


@pytest.mark.slow
def test_a_gru_conversion_failure_is_one_line(tmp_path):
    """TensorFlow's converter crashes on (or refuses) a GRU's int8 calibration: one line, whatever it does."""
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((10, 4), batch_size=1)
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GRU(8)(inp)))
    model.save(tmp_path / "gru.keras")
    np.savez(tmp_path / "calib.npz",
             x=np.random.default_rng(0).uniform(-1, 1, (30, 10, 4)).astype(np.float32))
    proc = tc("compile", tmp_path / "gru.keras", "--calibration", tmp_path / "calib.npz",
              "-o", tmp_path / "out", env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert_one_line_error(proc, EXIT_ERROR)
    assert "converter" in proc.stderr or "TFLiteConverter" in proc.stderr
    assert not (tmp_path / "out").exists()
