"""Float-I/O models (tinycompress/frontend/floatio.py): compiled as the int8 models they are, their float
helpers bit-exact with TFLite Micro's QUANTIZE and DEQUANTIZE, and int8 QUANTIZE/DEQUANTIZE inside the
graph."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from conftest import TESTS, needs_emulator
from test_cli import assert_one_line_error, tc

from tinycompress.target.boards import load_board
from tinycompress.codegen.emit import TARGET_SOURCES
from tinycompress.target.emulate import qemu_command
from tinycompress.frontend.floatio import dequantize, is_float_model, quantize
from tinycompress.frontend.load import read_tflite, read_tflite_file
from tinycompress.pipeline import compile_model, load_model
from tinycompress.frontend.reference import tflm_outputs

FLOAT_IO = ["op_floatio_mlp", "op_floatio_cnn_softmax", "op_floatio_2d_output"]


def test_float_io_models_load_as_int8(zoo):
    model, _ = zoo("op_floatio_cnn_softmax")
    raw = read_tflite_file(model)
    assert raw.layers[0].op == "QUANTIZE" and raw.layers[-1].op == "DEQUANTIZE"
    assert raw.input_tensor().dtype == raw.output_tensor().dtype == "float32"
    graph = load_model(model)
    assert [l.op for l in graph.layers] == [l.op for l in raw.layers[1:-1]]
    assert graph.float_io.input and graph.float_io.output and graph.float_io.source == raw.source
    assert graph.input_tensor().dtype == graph.output_tensor().dtype == "int8"
    inner = read_tflite(graph.source)    # the file without its float ends: what the int8 tools run
    assert [l.op for l in inner.layers] == [l.op for l in graph.layers]
    assert inner.input_tensor().dtype == inner.output_tensor().dtype == "int8"
    assert not is_float_model(raw)


def test_a_float_model_still_goes_to_the_calibrator(zoo):
    model, _ = zoo("float_mlp")
    assert is_float_model(read_tflite_file(model))
    proc = tc("compile", model, "-o", TESTS / ".models" / "never")
    assert_one_line_error(proc, 1, "float model", "--calibration")


def test_float_tensors_inside_the_graph_are_refused(zoo, tmp_path):
    """The MLP's first FULLY_CONNECTED made to read the float input itself: refused, naming the layer."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    model, _ = zoo("op_floatio_mlp")
    m = schema.ModelT.InitFromPackedBuf(bytearray(model.read_bytes()), 0)
    sub = m.subgraphs[0]
    quant = sub.operators.pop(0)
    sub.operators[0].inputs[0] = quant.inputs[0]
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "mixed.tflite"
    path.write_bytes(bytes(builder.Output()))
    proc = tc("compile", path, "-o", tmp_path / "project")
    assert_one_line_error(proc, 1, "(FULLY_CONNECTED) reads the float32 tensor serving_default",
                          "only at the model's input (QUANTIZE) and output (DEQUANTIZE)")


def test_requantizations_are_tables(zoo):
    """Each inserted requantization lowers to one 256-byte table; the zoo's cases run it against TFLite
    Micro (test_firmware_vs_tflm)."""
    from tinycompress.ops import lower_layer
    for name, op in (("op_requantize_up", "QUANTIZE"), ("op_dequantize_quantize", "DEQUANTIZE")):
        graph = load_model(zoo(name)[0])
        assert [l.op for l in graph.layers] == ["FULLY_CONNECTED", op, "FULLY_CONNECTED"]
        call = lower_layer(graph.layers[1], graph)
        assert call.function == "tc_lut_s8" and call.arrays[0].values.size == 256
        assert len(set(call.arrays[0].values.tolist())) > 64   # a real rescaling, not a copy


def special_floats(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(values TFLite Micro's x86 interpreter defines, values past its int32 cast): halfway points between
    steps and their neighbours, exact steps, zeros and subnormals, far out of the int8 range; then
    quotients past 2^31, infinities and NaN."""
    s = np.float32(scale)
    k = np.arange(-300, 300, dtype=np.float32)
    halves = (k + np.float32(0.5)) * s
    defined = np.concatenate([
        halves, np.nextafter(halves, np.float32(np.inf)), np.nextafter(halves, np.float32(-np.inf)), k * s,
        np.array([0.0, -0.0, 1e-45, -1e-45, 1e-38, -1e-38, 0.49999997 * s, -0.49999997 * s], np.float32),
        np.float32([1e3, -1e3, 1e5, -1e5, 2.0 ** 23, -(2.0 ** 23)]) * s,
        np.random.default_rng(0).uniform(-200, 200, 2000).astype(np.float32) * s])
    beyond = np.array([2.0 ** 31, -(2.0 ** 31), 1e12, -1e12], np.float32) * s
    beyond = np.concatenate([beyond, np.float32([3.4e38, -3.4e38, np.inf, -np.inf, np.nan, -np.nan])])
    return defined.astype(np.float32), beyond.astype(np.float32)


def rows(values: np.ndarray, width: int) -> np.ndarray:
    padded = np.resize(values, -(-values.size // width) * width)
    return padded.reshape(-1, width)


def test_host_quantize_is_tflite_micros(zoo):
    """floatio.quantize (what --data features go through) against the model's own QUANTIZE in TFLite Micro:
    the RESHAPE model's float output is the dequantized int8 of its input."""
    model, _ = zoo("op_floatio_reshape")
    graph = load_model(model)
    inp, out = graph.input_tensor(), graph.output_tensor()
    (scale, zp), (out_scale, out_zp) = [(float(t.scale[0]), int(t.zero_point[0])) for t in (inp, out)]
    assert (scale, zp) == (out_scale, out_zp)
    x = rows(special_floats(scale)[0], inp.size)
    expected = tflm_outputs(graph.float_io.source, x.view(np.int8)).view("<f4")
    ours = dequantize(quantize(x, scale, zp), scale, zp)
    assert np.array_equal(ours.view(np.uint32), expected.view(np.uint32))
    every = np.arange(-128, 128)
    # random inputs round-trip
    assert np.array_equal(quantize(dequantize(every, scale, zp), scale, zp), every)


def build_check(model, board_name: str, tmp_path):
    """The generated project linked with tests/firmware/float_io_check.c instead of the harness."""
    board = load_board(board_name)
    project = compile_model(model, board, tmp_path / "project")
    d = project.directory
    sources = [d / "model.c", d / "model_weights.c", *sorted((d / "firmware" / "kernels").glob("*.c")),
               *(d / "firmware" / "runtime" / n for n in TARGET_SOURCES),
               TESTS / "firmware" / "float_io_check.c"]
    elf = tmp_path / "check.elf"
    subprocess.run(["arm-none-eabi-gcc", *board.cflags, "-O2", "-std=c11", "-Wall", "-Werror", f"-I{d}",
                    f"-I{d / 'firmware' / 'include'}", f"-I{d / 'firmware' / 'runtime'}", *map(str, sources),
                    "-nostartfiles", "-Wl,--gc-sections", f"-T{d / 'firmware' / 'linker' / 'cortex_m.ld'}",
                    f"-L{d}", f"-L{d / 'firmware' / 'linker'}", "--specs=nano.specs", "--specs=nosys.specs",
                    "-lm", "-o", str(elf)], check=True)
    return board, project, elf


def run_check(board, elf, x: np.ndarray, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "input_float.bin").write_bytes(np.ascontiguousarray(x, "<f4").tobytes())
    proc = subprocess.run(qemu_command(board, elf), cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    def read(name, dtype):
        return np.frombuffer((work / name).read_bytes(), dtype).reshape(len(x), -1)
    return read("quantized.bin", np.int8), read("loop.bin", np.int8), read("output_float.bin", "<f4")


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("board_name", ["mps2-an386", "microbit", "mps2-an500", "mps3-an547"])
def test_float_helpers_are_bit_exact(zoo, tmp_path, board_name):
    """tc_model_input_float and tc_model_output_float on the RESHAPE model: the int8 our QUANTIZE gives is
    the host's (TFLite Micro's arithmetic) for every value, and the float outputs are TFLite Micro's, bit
    for bit, wherever its x86 build defines them; past int32 quotients, infinities and NaN, they are
    what TFLite Micro's reference loop gives on this core (saturated; NaN the zero point)."""
    model, _ = zoo("op_floatio_reshape")
    board, project, elf = build_check(model, board_name, tmp_path)
    inp = project.graph.input_tensor()
    scale, zp = float(inp.scale[0]), int(inp.zero_point[0])
    defined, beyond = special_floats(scale)
    x = np.concatenate([rows(defined, inp.size), rows(beyond, inp.size)])
    n_defined = rows(defined, inp.size).shape[0]
    quantized, loop, values = run_check(board, elf, x, tmp_path)
    host = quantize(x, scale, zp).reshape(len(x), -1)
    assert np.array_equal(quantized, host)
    expected = tflm_outputs(project.graph.float_io.source, x[:n_defined].view(np.int8)).view("<f4")
    assert np.array_equal(values[:n_defined].view(np.uint32), expected.view(np.uint32))
    assert np.array_equal(values.view(np.uint32), dequantize(host, scale, zp).view(np.uint32))
    assert np.array_equal(quantized[:n_defined], loop[:n_defined])
    if board.core != "cortex-m0":   # hardware float conversion: saturating, NaN to 0
        assert np.array_equal(quantized, loop)


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("name,board", [(n, "mps2-an386") for n in FLOAT_IO]
                         + [(n, b) for b in ("microbit", "mps3-an547") for n in FLOAT_IO[:2]])
def test_run_verify_on_float_io_models(zoo, name, board):
    """The CLI on the file as the converter wrote it: --data features quantized on the host, the float
    outputs of the firmware's own DEQUANTIZE compared bit for bit with TFLite Micro's."""
    model, data = zoo(name)
    proc = tc("run", model, "--board", board, "--data", data, "--verify")
    assert proc.returncode == 0, proc.stderr
    assert "float32 outputs identical to the TFLite Micro interpreter" in proc.stdout
    assert "120/120" in proc.stdout
