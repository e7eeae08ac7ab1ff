"""The data-movement operators (tinycompress/ops/shape.py) against TFLite Micro and their refusals.

The zoo cases (tests/zoo_shapeops.py) run on the M4 in test_firmware_vs_tflm.py; here the kernels' paths
run on the M0 and the M55 too, STRIDED_SLICE's index rules are checked against numpy's slicing on many
begin/end/stride and mask combinations, and bad constant operands (an axis or a slice out of range) end in
one line.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import needs_emulator
from tinycompress.target.boards import load_board
from tinycompress.target.build import build
from tinycompress.target.emulate import run_firmware
from tinycompress.errors import TinyCompressError
from tinycompress.ir import Graph, Layer, Tensor
from tinycompress.frontend.load import constant_bytes_location, read_tflite
from tinycompress.ops import lower_layer
from tinycompress.ops.shape import merge_axes, strided_ranges
from tinycompress.pipeline import compile_model, load_inputs
from tinycompress.frontend.reference import tflm_outputs
from tinycompress.frontend.verify import verify_graph

# one case per kernel and path: block copies, pad, strided copy (memcpy runs, negative and transposing steps)
QEMU_CASES = ["op_concat_channels", "op_zero_pad2d", "op_pad_constant", "op_permute", "op_strided_masks",
              "op_slice", "op_split_v_rows", "op_unstack_stack"]


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("board_name", ["microbit", "mps3-an547"])
@pytest.mark.parametrize("name", QEMU_CASES)
def test_bit_exact_with_tflite_micro_on_m0_and_m55(zoo, tmp_path, name, board_name):
    model, data = zoo(name)
    board = load_board(board_name)
    project = compile_model(model, board, tmp_path / "project")
    inputs, _ = load_inputs(data, project.graph, count=0)
    inputs = inputs[:40]
    result = run_firmware(build(project), board, inputs, project.graph.output_tensor().nbytes)
    expected = tflm_outputs(project.graph.source, inputs)
    assert np.array_equal(result.outputs, expected), np.flatnonzero(~(expected == result.outputs).all(axis=1))


def _tensor(index, shape, dtype="int8", data=None):
    t = Tensor(index, f"t{index}", tuple(shape), dtype,
               data=None if data is None else np.asarray(data, dtype))
    if dtype == "int8":
        t.scale, t.zero_point = np.array([0.1], np.float32), np.array([3])
    return t


def _strided_graph(shape, begin, end, strides, **masks):
    rank = (len(shape),)
    tensors = [_tensor(0, shape), _tensor(1, rank, "int32", begin), _tensor(2, rank, "int32", end),
               _tensor(3, rank, "int32", strides), _tensor(4, (1,))]
    layer = Layer("ss", "STRIDED_SLICE", [0, 1, 2, 3], [4], dict(masks))
    return Graph("g", tensors, [layer], [0], [4]), layer


def _numpy_slice(x, begin, end, strides, begin_mask=0, end_mask=0, shrink_axis_mask=0):
    index = []
    for axis, (b, e, s) in enumerate(zip(begin, end, strides)):
        if shrink_axis_mask >> axis & 1:
            index.append(b)
        else:
            index.append(slice(None if begin_mask >> axis & 1 else b, None if end_mask >> axis & 1 else e, s))
    return x[tuple(index)]


def _run_strided(graph, layer, x):
    """tc_strided_copy_s8's loop in numpy, on the call's parameters."""
    p = lower_layer(layer, graph).params
    flat, out = x.reshape(-1), []
    for idx in itertools.product(*(range(c) for c in p["count"][:p["rank"]])):
        out.append(flat[p["offset"] + sum(i * s for i, s in zip(idx, p["step"]))])
    return np.array(out)


@pytest.mark.parametrize("begin,end,strides,masks", [
    ([0, 1, -1, 0], [1, 6, 0, 4], [1, 2, -2, 1], {"begin_mask": 1, "end_mask": 9}),
    ([0, -2, 0, 1], [1, -7, 5, -1], [1, -1, 2, 1], {}),
    ([0, 9, -9, 0], [1, -9, 9, 3], [1, -3, 3, 2], {}),                        # indices past the ends, clamped
    ([0, 3, 2, 0], [1, 0, 0, 0], [1, 1, 1, -1], {"shrink_axis_mask": 2, "end_mask": 12}),
    ([0, 0, 5, 2], [0, 0, 0, 0], [1, 1, -1, 1], {"shrink_axis_mask": 9, "begin_mask": 6, "end_mask": 6}),
    ([0, 1, 1, 1], [1, 5, 5, 4], [1, 1, 1, 1], {}),
])
def test_strided_slice_follows_tensorflow_slicing(begin, end, strides, masks):
    """Masks, negative strides and out-of-range indices: the shape rule and the copy's parameters give what
    TensorFlow's slicing gives (numpy's, for the same begin/end/stride)."""
    shape = (1, 7, 6, 5)
    x = np.arange(np.prod(shape)).astype(np.int16).reshape(shape)
    graph, layer = _strided_graph(shape, begin, end, strides, **masks)
    expected = _numpy_slice(x, begin, end, strides, **masks)
    ranges = strided_ranges(layer, graph, [graph.tensors[0]], "layer ss")
    assert tuple(c for _, _, c, shrunk in ranges if not shrunk) == expected.shape
    graph.tensors[4] = _tensor(4, expected.shape)
    assert np.array_equal(_run_strided(graph, layer, x), expected.reshape(-1))


def test_merge_axes_keeps_contiguous_runs_whole():
    # a slice of whole rows: one run; a transpose: nothing merges
    assert merge_axes([1, 3, 6, 5], [210, 30, 5, 1]) == ([90], [1])
    assert merge_axes([4, 3], [1, 4]) == ([4, 3], [1, 4])


def _graph_of(zoo, name):
    model, _ = zoo(name)
    return read_tflite(model.read_bytes())


def _layer(graph, op):
    return next(layer for layer in graph.layers if layer.op == op)


def test_concatenation_axis_out_of_range_is_refused(zoo):
    graph = _graph_of(zoo, "op_concat_rows")
    _layer(graph, "CONCATENATION").options["axis"] = 4
    with pytest.raises(TinyCompressError, match=r"CONCATENATION\): axis 4 is out of range for a 4-D tensor"):
        verify_graph(graph)


def test_concatenation_of_differing_quantization_is_refused(zoo):
    """TFLite Micro refuses int8 inputs quantized unlike the output; so do we."""
    graph = _graph_of(zoo, "op_concat_channels")
    layer = _layer(graph, "CONCATENATION")
    graph.tensors[layer.inputs[1]].scale = np.array([0.5], np.float32)
    with pytest.raises(TinyCompressError, match="CONCATENATION.*quantized unlike its output"):
        lower_layer(layer, graph)


def test_transpose_with_a_bad_permutation_is_refused(zoo):
    graph = _graph_of(zoo, "op_permute")
    layer = _layer(graph, "TRANSPOSE")
    graph.tensors[layer.inputs[1]].data = np.array([0, 2, 2, 1], np.int32)
    with pytest.raises(TinyCompressError, match=r"TRANSPOSE\): the permutation \[0, 2, 2, 1\] is not"):
        verify_graph(graph)


def test_split_that_does_not_divide_the_axis_is_refused(zoo):
    graph = _graph_of(zoo, "op_split_join")
    layer = _layer(graph, "SPLIT")
    graph.tensors[layer.inputs[0]].data = np.array([2], np.int32)    # 5 columns into 3
    with pytest.raises(TinyCompressError, match=r"SPLIT\): axis 2 of extent 5 does not split into 3"):
        verify_graph(graph)


def test_shrunk_axis_out_of_range_is_refused():
    graph, layer = _strided_graph((1, 7, 6, 5), [0, 7, 0, 0], [1, 8, 6, 5], [1, 1, 1, 1], shrink_axis_mask=2)
    with pytest.raises(TinyCompressError, match="axis 1 is shrunk to index 7, out of range for its extent 7"):
        strided_ranges(layer, graph, [graph.tensors[0]], "layer ss (STRIDED_SLICE)")


def test_expand_dims_and_squeeze_alias_their_input():
    tensors = [_tensor(0, (5, 8)), _tensor(1, (1,), "int32", [-2]), _tensor(2, (5, 1, 8)), _tensor(3, (5, 8))]
    layers = [Layer("e", "EXPAND_DIMS", [0, 1], [2]), Layer("s", "SQUEEZE", [2], [3], {"squeeze_dims": [1]})]
    graph = Graph("g", tensors, layers, [0], [3])
    verify_graph(graph)
    calls = [lower_layer(layer, graph) for layer in layers]
    assert all(c.function == "tc_reshape_s8" and c.in_place for c in calls)
    tensors[1].data = np.array([3], np.int32)
    with pytest.raises(TinyCompressError, match=r"EXPAND_DIMS\): axis 3 is out of range for a 3-D tensor"):
        verify_graph(graph)
    tensors[1].data = np.array([1], np.int32)
    layers[1].options["squeeze_dims"] = [0]
    with pytest.raises(TinyCompressError, match="squeeze axis 0 of the 5x1x8 input has extent 5, not 1"):
        verify_graph(graph)


def test_out_of_range_slice_in_the_file_is_one_line(zoo, tmp_path):
    """A SLICE whose begin + size passes the axis's end (the file's constant patched): one line, exit
    non-zero."""
    from test_cli import EXIT_ERROR, assert_one_line_error, tc
    model, _ = zoo("op_slice")
    data = bytearray(model.read_bytes())
    graph = read_tflite(bytes(data))
    begin = _layer(graph, "SLICE").inputs[1]
    offset, size = constant_bytes_location(bytes(data), begin)
    data[offset:offset + size] = np.array([0, 4, 2, 1], "<i4").tobytes()     # rows 4..6 of 6
    bad = tmp_path / "bad_slice.tflite"
    bad.write_bytes(bytes(data))
    assert_one_line_error(tc("compile", bad, "--board", "mps2-an386", "-o", tmp_path / "out"), EXIT_ERROR,
                          "SLICE", "the slice 4..7 of axis 1 is out of range for its extent 6")


@pytest.fixture(scope="module")
def long_transpose(tmp_path_factory):
    """Dense -> TRANSPOSE (20x3 -> 3x20) -> Dense: output runs of 20 at a step of 3, sixteen per Helium
    gather and a tail of four."""
    import modelzoo
    from tinycompress.frontend.quantize import keras_to_int8_tflite
    keras = modelzoo._keras()
    inp = keras.Input((20, 4), batch_size=1)
    x = keras.layers.Dense(3, bias_initializer="random_normal")(inp)
    out = keras.layers.Dense(5, bias_initializer="random_normal")(keras.layers.Permute((2, 1))(x))
    rng = np.random.default_rng(modelzoo.SEED)
    tflite = keras_to_int8_tflite(keras.Model(inp, out), rng.uniform(-1, 1, (64, 20, 4)).astype(np.float32))
    path = tmp_path_factory.mktemp("transpose") / "transpose.tflite"
    path.write_bytes(tflite)
    return path


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("board_name", ["mps2-an386", "microbit", "mps3-an547"])
def test_transpose_of_long_runs_in_qemu(long_transpose, board_name, tmp_path):
    board = load_board(board_name)
    project = compile_model(long_transpose, board, tmp_path / "project")
    assert "tc_strided_copy_s8" in [c.function for c in project.calls]
    copy = next(c for c in project.calls if c.function == "tc_strided_copy_s8")
    assert copy.params["count"][:2] == (3, 20) and copy.params["step"][:2] == (1, 3)
    inputs = np.random.default_rng(1).integers(-128, 128, (8, 80)).astype(np.int8)
    result = run_firmware(build(project), board, inputs, project.graph.output_tensor().nbytes)
    assert np.array_equal(result.outputs, tflm_outputs(project.graph.source, inputs))
