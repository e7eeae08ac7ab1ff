"""The model verifier (tinycompress/frontend/verify.py): each invalid model is refused in one line naming the
tensor or layer, before anything is lowered; sizes are checked against the board before anything reaches C; a
crash of the TFLite Micro interpreter is one line. Mutants are zoo models with field edits
(tests/fuzzing.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fuzzing
from conftest import needs_emulator
from tinycompress.target.boards import load_board
from tinycompress.frontend.load import read_tflite_file
from tinycompress.errors import EXIT_BUDGET, TinyCompressError
from tinycompress.pipeline import compile_model, load_model, run_model
from tinycompress.frontend.reference import tflm_arena, tflm_outputs
from tinycompress.frontend.verify import MAX_FILE_BYTES

# op_fc_relu: tensor 0 input [1, 23], 1 bias [13], 2 weights [13, 23], 3 output [1, 13]; one operator.
FC = "op_fc_relu"


def mutant(zoo, tmp_path: Path, model: str, *edits) -> Path:
    """The zoo model with `edits` ((path, value) field edits or whole edit dicts) applied, as a file."""
    source = zoo(model)[0].read_bytes()
    recipe = {"edits": [e if isinstance(e, dict) else fuzzing._field(list(e[0]), e[1]) for e in edits]}
    path = tmp_path / f"{model}_mutant.tflite"
    path.write_bytes(fuzzing.apply_recipe(recipe, source))
    return path


def refused(path: Path, *fragments: str) -> str:
    with pytest.raises(TinyCompressError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and "internal error" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def tensor(i, *rest):
    return ("subgraphs", 0, "tensors", i, *rest)


def operator(k, *rest):
    return ("subgraphs", 0, "operators", k, *rest)


def test_every_zoo_model_passes_the_verifier(zoo):
    from modelzoo import NAMES
    for name in NAMES:
        if name != "vww_mobilenet":   # the one model the suite does not build (benchmarks only)
            read_tflite_file(zoo(name)[0])


def test_out_of_range_zero_point(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, FC, (tensor(0, "quantization", "zeroPoint", 0), 300)),
            "zero point 300", "-128..127")


def test_nonzero_weight_zero_point(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, FC, (tensor(2, "quantization", "zeroPoint", 0), 3)),
            "layer fully_connected (FULLY_CONNECTED)", "zero point of 3")


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_scale_not_finite_and_positive(zoo, tmp_path, scale):
    refused(mutant(zoo, tmp_path, FC, (tensor(3, "quantization", "scale", 0), scale)), f"scale {scale}")


def test_per_channel_scale_count(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, "op_conv_3x3_same", (tensor(2, "quantization", "quantizedDimension"), 1)),
            "has 7 per-channel scales for 3 channels (dimension 1)")


def test_softmax_input_scale_too_small(zoo, tmp_path):
    """TFLite Micro aborts in QuantizeMultiplierGreaterThanOne; the fixed-point helper asserted."""
    graph = load_model(zoo("op_softmax")[0])
    softmax = next(layer for layer in graph.layers if layer.op == "SOFTMAX")
    refused(mutant(zoo, tmp_path, "op_softmax",
                   (tensor(softmax.inputs[0], "quantization", "scale", 0), 1e-8)),
            "(SOFTMAX): the input scale 1e-08 is too small")


def test_add_output_scale_too_small(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, "op_add_residual", (tensor(7, "quantization", "scale", 0), 1e-30)),
            "(ADD): the output scale 1e-30 is too small")


def test_rescaling_past_2_to_the_30(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, FC, (tensor(0, "quantization", "scale", 0), 1e30)),
            "(FULLY_CONNECTED): the scales give a rescaling factor of", "below 2^30")


def test_depthwise_without_bias(zoo, tmp_path):
    """TFLite Micro segfaults on it, so there is no reference to check against."""
    refused(mutant(zoo, tmp_path, "op_dw_3x3_same", (operator(0, "inputs", 2), -1)),
            "(DEPTHWISE_CONV_2D) has no bias")


def test_shuffled_weights_format(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, FC, (operator(0, "builtinOptions", "weightsFormat"), 1)),
            "weights_format 1 (shuffled weights) is not supported")


def test_invalid_quantized_bias_type(zoo, tmp_path):
    """Found by the fuzzer: TFLite Micro fails to allocate tensors for it."""
    refused(mutant(zoo, tmp_path, FC, (operator(0, "builtinOptions", "quantizedBiasType"), -1)),
            "quantized_bias_type -1 does not match")


def test_negative_stride(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, "op_conv_3x3_same", (operator(0, "builtinOptions", "strideH"), -1)),
            "(CONV_2D): stride_h is -1; strides must be >= 1")


def test_zero_pool_size(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, "op_maxpool_2x2", (operator(0, "builtinOptions", "filterWidth"), 0)),
            "(MAX_POOL_2D): filter_width is 0")


def test_missing_options(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, "op_conv_3x3_same", (operator(0, "builtinOptions"), "<None>")),
            "(CONV_2D) carries no options instead of Conv2DOptions")


def test_inconsistent_shapes(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, "op_conv_3x3_same", (tensor(3, "shape", 1), 5)),
            "(CONV_2D): the output", "is declared 1x5x", "but the layer computes 1x")


def test_add_output_of_another_shape(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, "op_add_residual", (tensor(7, "shape", 3), 3)),
            "layer add (ADD): the output", "declared 1x8x8x3 but the layer computes 1x8x8x5")


def test_cycle(zoo, tmp_path):
    graph = load_model(zoo("op_add_residual")[0])
    last = len(graph.layers) - 1
    # the first layer reads the last one's output: a cycle
    refused(mutant(zoo, tmp_path, "op_add_residual",
                   (operator(0, "inputs", 0), graph.layers[last].outputs[0])),
            "before any layer computes it")


def test_graph_output_that_is_a_constant(zoo, tmp_path):
    """Found by the fuzzer: the output was the weights of a convolution; TFLite Micro returned them."""
    refused(mutant(zoo, tmp_path, "op_add_residual", (("subgraphs", 0, "outputs", 0), 2)),
            "graph output", "is not computed by any layer")


def test_out_of_order_layers(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, "digits_mlp", {"kind": "swap", "a": 0, "b": 1}),
            "before any layer computes it")


@pytest.mark.parametrize("path, value, what", [
    (operator(0, "inputs", 1), 99, "an input of operator 0"),
    (operator(0, "inputs", 0), -2, "an input of operator 0"),
    (operator(0, "outputs", 0), -1, "an output of operator 0"),
    (operator(0, "opcodeIndex"), 5, "opcode"),
    (operator(0, "opcodeIndex"), 2 ** 32 - 1, "opcode"),    # uint32 fields: -1 reads as 2^32 - 1
    (tensor(2, "buffer"), 50, "tensor 2's buffer"),
    (tensor(2, "buffer"), 2 ** 32 - 1, "tensor 2's buffer"),
    (("subgraphs", 0, "inputs", 0), 7, "a graph input"),
    (("subgraphs", 0, "outputs", 0), -1, "a graph output"),
])
def test_index_out_of_range(zoo, tmp_path, path, value, what):
    refused(mutant(zoo, tmp_path, FC, (path, value)), what, f"index {value}")


def test_buffer_of_the_wrong_size(zoo, tmp_path):
    graph = load_model(zoo(FC)[0])
    buffer = fuzzing.load_model_tree(graph.source).subgraphs[0].tensors[2].buffer
    refused(mutant(zoo, tmp_path, FC, (("buffers", buffer, "data"), list(range(200)))),
            "has 200 bytes of data", "needs 299")


def test_dimension_below_one(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, FC, (tensor(2, "shape", 0), -1)), "every dimension must be >= 1")


def test_shape_product_past_the_limit(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, FC, (tensor(0, "shape", 0), 2 ** 30), (tensor(0, "shape", 1), 2 ** 30)),
            "tensors are limited to")


def test_tensors_together_past_the_limit(zoo, tmp_path):
    """Each tensor below 2^31 bytes, together above: an input and an output of 2^30 bytes each."""
    refused(mutant(zoo, tmp_path, "op_fc_relu", (tensor(0, "shape", 1), 2 ** 30),
                   (tensor(3, "shape", 1), 2 ** 30)),
            "tensors take", "bytes together")


def test_input_of_1x1048576(zoo, tmp_path):
    """The issue's HardFault: the kernel wrote 45,590 rows into an output declared for one."""
    refused(mutant(zoo, tmp_path, FC, (tensor(0, "shape", 1), 1048576)),
            "1x1048576 does not split into rows of 23")


def test_output_of_1x65536(zoo, tmp_path):
    """The issue's uninitialized output: the harness sent 65,536 bytes of which the layer computes 13."""
    refused(mutant(zoo, tmp_path, FC, (tensor(3, "shape", 1), 65536)),
            "is declared 1x65536 but the layer computes 1x13")


def test_a_large_consistent_input_is_refused_by_the_board_before_c(zoo, tmp_path):
    rows = 1048576 // 23
    model = mutant(zoo, tmp_path, FC, (tensor(0, "shape", 1), rows * 23), (tensor(3, "shape", 0), rows))
    out = tmp_path / "project"
    with pytest.raises(TinyCompressError) as info:
        compile_model(model, load_board("microbit"), out)
    assert info.value.exit_code == EXIT_BUDGET
    assert f"its input needs {rows * 23:,} bytes of SRAM but the board has 16,384" in str(info.value)
    assert not out.exists() and not list(tmp_path.glob(".project-*"))


@needs_emulator
def test_a_large_consistent_input_runs_correctly_in_qemu(zoo, tmp_path):
    rows = 1048576 // 23
    model = mutant(zoo, tmp_path, FC, (tensor(0, "shape", 1), rows * 23), (tensor(3, "shape", 0), rows))
    report = run_model(model, load_board("mps2-an386"), verify=True, count=1)
    assert report.verification == {"inferences": 1, "matching": 1}


def test_a_model_without_layers(zoo, tmp_path):
    refused(mutant(zoo, tmp_path, FC, (("subgraphs", 0, "operators"), [])), "has no layers")


def test_file_without_tfl3(zoo, tmp_path):
    data = bytearray(zoo(FC)[0].read_bytes())
    data[4:8] = b"TFL2"
    path = tmp_path / "bad.tflite"
    path.write_bytes(bytes(data))
    refused(path, "not a TFLite flatbuffer (no TFL3 identifier)")


def test_oversized_file_is_refused_before_it_is_read(zoo, tmp_path):
    path = tmp_path / "huge.tflite"
    with open(path, "wb") as f:   # sparse: takes no disk, and would take seconds and memory to read
        f.write(zoo(FC)[0].read_bytes())
        f.truncate(MAX_FILE_BYTES + 1)
    refused(path, f"{MAX_FILE_BYTES + 1:,} bytes", "256 MiB")


def test_a_crash_of_the_tflm_interpreter_is_one_line(zoo, tmp_path):
    """TFLite Micro follows an operator input index past the tensors and segfaults: in its child process."""
    model = mutant(zoo, tmp_path, FC, (operator(0, "inputs", 1), 99))
    with pytest.raises(TinyCompressError) as info:
        tflm_outputs(model.read_bytes(), np.zeros((1, 23), np.int8))
    assert str(info.value).startswith("the TFLite Micro interpreter crashed (SIGSEGV, signal 11) on this "
                                      "model")


def test_tflm_arena_in_the_child(zoo):
    arena = tflm_arena(zoo("digits_cnn")[0].read_bytes())
    assert arena["total"] == arena["head"] + arena["tail"] > 0
