"""TRANSPOSE_CONV, RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR against the TFLite Micro interpreter.

tests/test_firmware_vs_tflm.py runs every zoo case (tests/zoo_spatial.py) on the M4, whose kernels take
their DSP paths. Here each kernel also runs on the M0 (portable C), the M7 (DSP) and the M55 (Helium),
the host tables are checked against TFLite's formulas directly, and what cannot run is refused in one line.
"""
from __future__ import annotations

import re

import pytest

from conftest import firmware_vs_tflm, needs_emulator
from test_verify import mutant, refused, tensor
from tinycompress.frontend.load import read_tflite
from tinycompress.ops import RULES, lower_layer
from tinycompress.ops.resize import bilinear_table, nearest_indices
from tinycompress.ops.transpose_conv import padding
from tinycompress.errors import TinyCompressError

KERNELS = {"TRANSPOSE_CONV": "tc_transpose_conv_s8", "RESIZE_NEAREST_NEIGHBOR": "tc_resize_nearest_s8",
           "RESIZE_BILINEAR": "tc_resize_bilinear_s8"}
# a case per kernel and shape of work: channels in Helium's lanes and their tails, strides, both resizes'
# up- and downscaling
BOARD_CASES = ["op_tconv_3x3_s2_same_deep", "op_tconv_4x3_s1x2_same", "op_tconv_2x2_s2_same_zp_min",
               "op_resize_nearest_half_up", "op_resize_nearest_half_down", "op_upsample_bilinear",
               "op_resize_bilinear_half_up", "op_resize_bilinear_half_down", "op_resize_bilinear_align"]
BOARDS = ["microbit", "mps2-an500", "mps3-an547"]   # M0: portable; M7: DSP; M55: Helium


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("board_name", BOARDS)
@pytest.mark.parametrize("name", BOARD_CASES)
def test_bit_exact_with_tflite_micro_on_every_core(zoo, tmp_path, name, board_name):
    model, data = zoo(name)
    project = firmware_vs_tflm(model, board_name, data, tmp_path)
    assert set(KERNELS.values()) & {call.function for call in project.calls}


def test_zoo_cases_hold_their_operators(zoo):
    import zoo_spatial
    for name in zoo_spatial.CASES:
        ops = [layer.op for layer in read_tflite(zoo(name)[0].read_bytes()).layers]
        assert set(ops) & set(KERNELS), (name, ops)


def _tensorflow_nearest(in_size: int, out_size: int, align: bool, half: bool) -> list[int]:
    """TensorFlow's own (float) nearest-neighbour resize of an image whose pixels hold their column."""
    import tensorflow as tf
    image = tf.reshape(tf.range(in_size, dtype=tf.float32), (1, 1, in_size, 1))
    out = tf.compat.v1.image.resize_nearest_neighbor(image, (1, out_size), align_corners=align,
                                                     half_pixel_centers=half)
    return [int(v) for v in out.numpy().reshape(-1)]


SIZES = [(5, 10), (5, 7), (9, 4), (4, 11), (1, 3), (3, 1), (7, 7), (1, 55), (10, 3)]
CONVENTIONS = [(False, False), (True, False), (False, True)]


@pytest.mark.slow   # starting TensorFlow
@pytest.mark.parametrize("align,half", CONVENTIONS)
def test_nearest_table_is_tensorflows_choice(align, half):
    for in_size, out_size in SIZES:
        expected = _tensorflow_nearest(in_size, out_size, align, half)
        assert nearest_indices(in_size, out_size, align, half) == expected, (in_size, out_size)


@pytest.mark.parametrize("align,half", CONVENTIONS)
def test_bilinear_table_bounds(align, half):
    """Lower and upper source inside the input, a weight in [-512, 1024), negative only where both sources
    are the first row (the kernels' int32 bound rests on it); integer upscaling lands on o / factor."""
    for in_size, out_size in SIZES:
        table = bilinear_table(in_size, out_size, align, half)
        if (in_size, out_size) == (1, 55) and not (align or half):
            assert table[-1][0] == 1   # past the input: refused by the lowering (below)
            continue
        for lower, upper, weight in table:
            assert 0 <= lower <= upper <= in_size - 1 and -512 <= weight < 1024
            assert weight >= 0 or lower == upper == 0
        if not (align or half) and out_size % in_size == 0:
            factor = out_size // in_size
            assert [t[0] for t in table] == [o // factor for o in range(out_size)]


@pytest.mark.parametrize("kind,out,kernel,stride,expected", [
    ("SAME", 10, 3, 2, 0), ("SAME", 8, 2, 2, 0), ("VALID", 9, 3, 2, 0), ("SAME", 4, 4, 1, 1),
    ("SAME", 7, 3, 2, 1)])
def test_transpose_conv_padding(kind, out, kernel, stride, expected):
    """ComputePaddingHeightWidth over the output: total = (windows - 1) stride + kernel - out, halved."""
    assert padding(kind, out, kernel, stride) == expected


def _layer(zoo, name, op):
    graph = read_tflite(zoo(name)[0].read_bytes())
    return graph, next(layer for layer in graph.layers if layer.op == op)


def _tensor_index(zoo, name, op, position):
    return _layer(zoo, name, op)[1].inputs[position]


@pytest.mark.parametrize("name,op,position,message", [
    ("op_tconv_2x2_s2_valid", "TRANSPOSE_CONV", 0, "the output shape is computed at run time"),
    ("op_upsample_bilinear", "RESIZE_BILINEAR", 1, "the output size is computed at run time"),
    ("op_resize_nearest_x2", "RESIZE_NEAREST_NEIGHBOR", 1, "the output size is computed at run time")])
def test_shape_computed_at_run_time_is_refused(zoo, name, op, position, message):
    """A dynamic output shape (the shape tensor an activation, here made one in memory): refused by the
    operator's verifier rule, naming the layer."""
    graph, layer = _layer(zoo, name, op)
    graph.tensors[layer.inputs[position]].data = None
    where = f"layer {layer.name} ({op})"
    with pytest.raises(TinyCompressError, match=re.escape(f"{where}: {message}")):
        RULES[op].shape(layer, graph, [graph.tensors[i] for i in layer.inputs], where)


def test_transpose_conv_output_not_matching_its_output_shape_is_refused(zoo, tmp_path):
    _, layer = _layer(zoo, "op_tconv_2x2_s2_valid", "TRANSPOSE_CONV")
    refused(mutant(zoo, tmp_path, "op_tconv_2x2_s2_valid", (tensor(layer.outputs[0], "shape", 3), 7)),
            "(TRANSPOSE_CONV): the output", "declared 1x8x6x7 but the layer computes 1x8x6x5")


def test_resize_with_both_align_corners_and_half_pixel_centers_is_refused(zoo, tmp_path):
    graph, layer = _layer(zoo, "op_resize_nearest_align", "RESIZE_NEAREST_NEIGHBOR")
    k = graph.layers.index(layer)
    refused(mutant(zoo, tmp_path, "op_resize_nearest_align",
                   (("subgraphs", 0, "operators", k, "builtinOptions", "halfPixelCenters"), True)),
            "align_corners and half_pixel_centers are both set")


def test_bilinear_source_outside_the_input_is_refused(zoo):
    """1 -> 55 columns without align_corners or half_pixel_centers: round(1024 / 55) = 19, and 54 x 19 =
    1026 lies past the only column; TFLite Micro would read outside the image."""
    graph, layer = _layer(zoo, "op_upsample_bilinear", "RESIZE_BILINEAR")
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    inp.shape = (1, 5, 1, inp.shape[3])
    out.shape = (1, 10, 55, out.shape[3])
    layer.options.update(align_corners=False, half_pixel_centers=False)
    with pytest.raises(TinyCompressError, match=r"RESIZE_BILINEAR.*source column 1 lies outside the input"):
        lower_layer(layer, graph)


def test_refusal_is_one_line_and_a_nonzero_exit(zoo, tmp_path):
    """From the command line: one line naming the layer, exit code EXIT_ERROR."""
    from test_cli import EXIT_ERROR, assert_one_line_error, tc
    _, layer = _layer(zoo, "op_tconv_3x3_s2_same_relu", "TRANSPOSE_CONV")
    model = mutant(zoo, tmp_path, "op_tconv_3x3_s2_same_relu", (tensor(layer.outputs[0], "shape", 3), 9))
    assert_one_line_error(tc("compile", model, "-o", tmp_path / "out"), EXIT_ERROR,
                          "(TRANSPOSE_CONV): the output",
                          "declared 1x10x10x9 but the layer computes 1x10x10x4")
