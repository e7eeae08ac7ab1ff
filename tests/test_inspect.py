"""`tinycompress inspect`: the graph as it will run, without compiling; every layer it cannot run, with
the reason; and `run` on such a model naming the operator, its layer and the supported operators."""
from __future__ import annotations

import json

import pytest
from test_cli import assert_one_line_error, tc

from tinycompress.target.boards import load_board
from tinycompress.errors import EXIT_BUDGET, EXIT_ERROR
from tinycompress.ops import supported_operators
from tinycompress.pipeline import compile_model


def _inspect_json(*args):
    proc = tc("inspect", *args, "--json", "-")
    return proc, (json.loads(proc.stdout) if proc.stdout.strip() else None)


@pytest.mark.parametrize("name", ["digits_cnn", "dyn_cnn", "op_conv1d_kws"])
def test_inspect_gives_what_compile_plans(zoo, tmp_path, name):
    """Every layer, its MACs and parameter bytes, and the arena are those of the compiled project."""
    model, _ = zoo(name)
    proc, report = _inspect_json(model, "--board", "mps2-an386")
    assert proc.returncode == 0, proc.stderr
    project = compile_model(model, load_board("mps2-an386"), tmp_path / "project")
    assert [x["name"] for x in report["layers"]] == [c.layer.name for c in project.calls]
    assert [x["op"] for x in report["layers"]] == [c.layer.op for c in project.calls]
    assert [x["macs"] for x in report["layers"]] == [c.macs for c in project.calls]
    assert report["macs"] == sum(c.macs for c in project.calls) > 0
    assert report["parameter_bytes"] == sum(c.weight_bytes for c in project.calls) > 0
    assert report["arena_bytes"] == project.plan.size and report["arena_board"] == "mps2-an386"
    assert report["unsupported"] == [] and report["board"]["fits"]
    graph = project.graph
    for x, call in zip(report["layers"], project.calls):
        out = graph.tensors[call.layer.outputs[0]]
        assert x["outputs"][0]["shape"] == list(out.shape)
        assert x["outputs"][0]["scale"] == pytest.approx(float(out.scale[0]))
        assert x["outputs"][0]["zero_point"] == int(out.zero_point[0])
    assert report["inputs"][0]["shape"] == list(graph.input_tensor().shape)
    assert bool(report["folded"]) == (name == "dyn_cnn")


def test_inspect_prints_a_table(zoo):
    model, _ = zoo("dyn_cnn")
    proc = tc("inspect", model)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for fragment in ("macc", "weights", "arena", "folded", "CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "1x6x6x2",
                     "zp -128"):
        assert fragment in out
    assert "board" not in out.split("\n\n")[0]     # no fit check without --board
    assert proc.stderr == ""


@pytest.mark.parametrize("name,ops", [("unsupported_gelu", ["FULLY_CONNECTED", "GELU"]),
                                      ("unsupported_tile", ["FULLY_CONNECTED", "TILE", "FULLY_CONNECTED"])])
def test_inspect_lists_what_cannot_run_and_exits_1(zoo, name, ops):
    model, _ = zoo(name)
    op = ops[1]
    proc = tc("inspect", model)
    assert_one_line_error(proc, EXIT_ERROR, f"1 of {len(ops)} layers cannot run", f"({op})")
    assert f"({op}): operator {op} (layer" in proc.stdout and "is not supported" in proc.stdout
    assert "supported operators: " in proc.stdout and "FULLY_CONNECTED" in proc.stdout
    proc, report = _inspect_json(model)
    assert proc.returncode == EXIT_ERROR
    assert [(x["op"], x["supported"]) for x in report["layers"]] == [(o, o != op) for o in ops]
    assert report["unsupported"][0]["op"] == op and "not supported" in report["unsupported"][0]["reason"]
    assert report["macs"] > 0 and report["arena_complete"] is False


@pytest.mark.parametrize("name,op", [("unsupported_gelu", "GELU"), ("unsupported_tile", "TILE")])
def test_run_names_the_operator_its_layer_and_the_supported_ones(zoo, tmp_path, name, op):
    model, _ = zoo(name)
    proc = tc("run", model, "--board", "mps2-an386", "-o", tmp_path / "out")
    assert_one_line_error(proc, EXIT_ERROR, f"operator {op} (layer ",
                          "is not supported; supported operators: ", ", ".join(supported_operators()))
    assert not (tmp_path / "out").exists()


def test_inspect_refuses_a_board_the_model_does_not_fit(zoo):
    model, _ = zoo("ad_autoencoder")
    proc = tc("inspect", model, "--board", "microbit")
    assert_one_line_error(proc, EXIT_BUDGET, "does not fit microbit", "of flash but the board has 262,144")
    assert "DOES NOT FIT" in proc.stdout
    proc, report = _inspect_json(model, "--board", "microbit")
    assert proc.returncode == EXIT_BUDGET and report["board"]["fits"] is False


def test_inspect_a_file_that_is_not_a_model(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    assert_one_line_error(tc("inspect", bad), EXIT_ERROR, "not a TFLite flatbuffer")


@pytest.mark.parametrize("name", ["dynf_cnn", "dynf_conv1d"])
def test_inspect_float_io_dynamic_batch(zoo, name):
    """Float input and output (QUANTIZE, DEQUANTIZE) around a dynamic-batch int8 model: needs the float-I/O
    support of tinycompress/frontend/floatio.py."""
    model, _ = zoo(name)
    proc, report = _inspect_json(model)
    assert proc.returncode == 0, proc.stderr
    assert report["float_io"] == {"input": True, "output": True}
    assert report["inputs"][0]["dtype"] == "int8" and report["unsupported"] == []
