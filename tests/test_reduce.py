"""MEAN, SUM, REDUCE_MAX, ARG_MAX, RSQRT and BATCH_MATMUL against the TFLite Micro interpreter.

The zoo's cases (tests/zoo_reduce.py) run on the M4 in test_firmware_vs_tflm.py; here every kernel path runs
on the M0 (portable), the M4 (DSP) and the M55 (Helium): the reductions' walks (last axis, strided, all),
ARG_MAX's int32 output through run --verify, RSQRT's table on every input, and BATCH_MATMUL contiguous
(adj_y), strided left-hand side (adj_x), strided right-hand side (scores @ v: scratch on DSP / Helium),
constant and broadcast right-hand sides. Refusals are one line.
"""
from __future__ import annotations

import numpy as np
import pytest

import modelzoo
from conftest import firmware_vs_tflm, needs_emulator, zoo_graph
from tinycompress.errors import TinyCompressError
from tinycompress.frontend.load import read_tflite
from tinycompress.ops.reduce import extents
from tinycompress.ops.unary import table
from tinycompress.pipeline import predicted_classes
from tinycompress.analysis.sweep import Evaluation
from tinycompress.frontend.reference import tflm_outputs

BOARDS = ["microbit", "mps2-an386", "mps3-an547"]
PATH_CASES = ["op_reduce_mean_last", "op_reduce_sum_axis1", "op_reduce_max_hw", "op_reduce_mean_all_keep",
              "op_argmax_axis1", "op_rsqrt", "op_matmul_adj_y", "op_matmul_adj_x", "op_matmul_batch_adj_y",
              "op_attention", "op_matmul_const_broadcast", "op_matmul_const_batch_t"]
EVERY_INPUT = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def test_extents_walk_any_adjacent_axes():
    assert extents((1, 6, 5, 4), [1]) == (1, 6, 20)
    assert extents((1, 6, 5, 4), [3]) == (30, 4, 1)
    assert extents((1, 6, 5, 4), [1, 2]) == (1, 30, 4)
    assert extents((1, 6, 5, 4), [0, 1, 2, 3]) == (1, 120, 1)
    assert extents((1, 6, 1, 4), [1, 3]) == (1, 24, 1)     # the size-1 axis between reduces nothing
    assert extents((1, 6, 5, 4), []) == (120, 1, 1)
    assert extents((1, 6, 5, 4), [1, 3]) is None


def test_reduce_max_with_requantization_is_refused(zoo):
    """TFLite Micro's REDUCE_MAX requires the output's quantization to be the input's: so do we, in one
    line."""
    from tinycompress.frontend.verify import verify_graph
    graph, layer = zoo_graph(zoo, "op_reduce_max_last")
    assert layer.op == "REDUCE_MAX"
    graph.tensors[layer.outputs[0]].scale = graph.tensors[layer.outputs[0]].scale * 2
    with pytest.raises(TinyCompressError, match=r"REDUCE_MAX.*requires them equal") as err:
        verify_graph(graph)
    assert "\n" not in str(err.value)


def test_arg_max_int64_output_and_non_adjacent_axes_are_refused(tmp_path):
    """tf.argmax's default int64 output (TFLite Micro has only int32) and a MEAN over axes [1, 3]."""
    import tensorflow as tf

    from test_cli import EXIT_ERROR, assert_one_line_error, tc
    for name, fn, message in [
            ("argmax64", lambda t: tf.argmax(t, axis=-1), "only int32"),
            ("mean13", lambda t: tf.reduce_mean(t, axis=[1, 3]), "must be adjacent")]:
        keras = modelzoo._keras()
        inp = keras.Input((3, 4, 5), batch_size=1)
        model = keras.Model(inp, keras.layers.Lambda(fn)(inp))
        calibration = np.random.default_rng(modelzoo.SEED).uniform(-1, 1, (32, 3, 4, 5)).astype(np.float32)
        from zoo_reduce import _export
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(_export(model, calibration))
        assert_one_line_error(tc("compile", path, "--board", "mps2-an386", "-o", tmp_path / name), EXIT_ERROR,
                              message)


@pytest.mark.slow
@pytest.mark.parametrize("low,high", [(0.01, 1.0), (0.0, 3.0), (-0.5, 8.0), (1e-3, 2e-3), (0.5, 300.0)])
def test_rsqrt_table_is_tflite_micro_on_every_input(low, high):
    """RSQRT's table against TFLite Micro on every input at or above the zero point (below it, a negative
    number, TFLite Micro stops with an error)."""
    import tensorflow as tf
    keras = modelzoo._keras()
    inp = keras.Input((256,), batch_size=1)
    model = keras.Model(inp, keras.layers.Lambda(lambda t: tf.math.rsqrt(t))(inp))
    rng = np.random.default_rng(modelzoo.SEED)
    calibration = rng.uniform(max(low, 1e-6), high, (64, 256)).astype(np.float32)
    calibration[0, :2] = max(low, 1e-6), high
    from zoo_reduce import _export
    tflite = _export(model, calibration)
    graph = read_tflite(tflite)
    assert [layer.op for layer in graph.layers] == ["RSQRT"]
    zero_point = int(graph.input_tensor().zero_point[0])
    inputs = np.maximum(EVERY_INPUT, zero_point).astype(np.int8)
    expected = tflm_outputs(tflite, inputs)[0]
    got = table(graph.layers[0], graph)[inputs[0].astype(int) + 128]
    wrong = np.flatnonzero(got != expected)
    assert wrong.size == 0, (f"{wrong.size} of 256 differ, first at input {inputs[0][wrong[0]]}: table "
                             f"{got[wrong[0]]}, TFLite Micro {expected[wrong[0]]}")


def test_int32_outputs_score_as_classes():
    """ARG_MAX's output bytes are int32 class indices for the accuracy of run and profile."""
    class Graph:   # just what predicted_classes reads
        def output_tensor(self):
            from tinycompress.ir import Tensor
            return Tensor(0, "argmax", (1,), "int32")
    outputs = np.array([[3], [0], [9]], "<i4").view(np.int8)
    assert predicted_classes(Graph(), outputs).tolist() == [3, 0, 9]
    evaluation = Evaluation(np.zeros((3, 4), np.float32), np.array([3, 1, 9]))
    assert evaluation.score(np.array([[3.0], [0.0], [9.0]])) == pytest.approx(2 / 3)


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("board_name", BOARDS)
@pytest.mark.parametrize("name", PATH_CASES)
def test_every_path_is_tflite_micro(zoo, tmp_path, name, board_name):
    model, data = zoo(name)
    project = firmware_vs_tflm(model, board_name, data, tmp_path)
    functions = {call.function for call in project.calls}
    assert functions & {"tc_reduce_s8", "tc_lut_s8", "tc_batch_matmul_s8"}
    # scores @ v: columns via scratch
    if name == "op_attention" and (project.board.dsp or project.board.mve):
        assert project.calls[-1].scratch_bytes > 0


@needs_emulator
def test_arg_max_runs_and_verifies_with_its_int32_output(zoo, tmp_path):
    """run --verify on a model whose output is ARG_MAX's int32 index; labels score against it."""
    from test_cli import tc
    model, data = zoo("op_argmax_last")
    x = np.load(data)["x"][:20]
    labelled = tmp_path / "labelled.npz"
    np.savez(labelled, x=x, y=np.argmax(x, axis=-1).reshape(-1))
    proc = tc("run", model, "--board", "mps2-an386", "--data", labelled, "--verify", "-o", tmp_path / "p")
    assert proc.returncode == 0, proc.stderr
    assert "20/20 outputs identical" in proc.stdout
