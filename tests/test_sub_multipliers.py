"""SUB's requantization parameters against the TFLite Micro interpreter, on the host: one SUB of two int8
tensors holding every pair of int8 values, our kernel (tc_add_s8, built for this machine) with the
parameters the generator derives, against TFLite Micro on the same .tflite.

SUB rescales each input to (q - zp) 2^20 x s_i / (2 max(s1, s2)) and requantizes the difference by
2 max(s1, s2) / (2^20 s_out). TFLite Micro derives the three multipliers in double; from float32
quotients instead, a multiplier's low bits move (1119516544 against 1119516497 for the scales below), and
where the product lies within that distance of a rounding tie of the last step the output moves by one.
The scales are those of sub_2 (a layer norm's x - mean) in examples/tinylm fine-tuned with
embedding:kronecker, where the firmware differed from TFLite Micro on 62 of 819,200 values."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from tinycompress.frontend.load import read_tflite
from tinycompress.ops import lower_layer
from tinycompress.resources import data_dir

pytestmark = pytest.mark.skipif(not shutil.which("gcc"), reason="gcc missing")

# (scale, zero point) of input 1, input 2 and the output
TINYLM_SUB_2 = [(0.05686139, 9), (0.005522558, 3), (0.054536447, 6)]

DRIVER = r"""
#include "tc_kernels.h"
/* v: size, left_shift, then offset, multiplier, shift of input 1, input 2 and the output, subtract */
int run_add(const int *v, const int8_t *a, const int8_t *b, int8_t *out)
{
    const tc_add_params p = {
        .broadcast = {{1, 1, 1, 1, v[0]}, {0, 0, 0, 0, 1}, {0, 0, 0, 0, 1}}, .size = v[0],
        .constant1 = 0, .constant2 = 0, .left_shift = v[1],
        .input1_offset = v[2], .input1_multiplier = v[3], .input1_shift = v[4],
        .input2_offset = v[5], .input2_multiplier = v[6], .input2_shift = v[7],
        .output_offset = v[8], .output_multiplier = v[9], .output_shift = v[10],
        .subtract = v[11], .act = {-128, 127}};
    return (int)tc_add_s8(&p, a, b, out);
}
"""


@pytest.fixture(scope="module")
def add_kernel(tmp_path_factory):
    """tc_add_s8 (its portable paths) in a shared library for this machine."""
    tmp = tmp_path_factory.mktemp("add")
    (tmp / "driver.c").write_text(DRIVER)
    firmware = data_dir("firmware")
    sources = [str(tmp / "driver.c"), str(firmware / "kernels" / "tc_add_s8.c")]
    subprocess.run(["gcc", "-O1", "-std=c11", "-shared", "-fPIC", f"-I{firmware / 'include'}", *sources,
                    "-o", str(tmp / "add.so")], check=True)
    return ctypes.CDLL(str(tmp / "add.so")).run_add


def sub_model(quant, size: int) -> bytes:
    """A .tflite of one SUB of two int8 inputs of `size` values."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def tensor(name, scale, zero_point):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), [size], schema.TensorType.INT8, 0
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [zero_point]
        return t

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.SUB
    code.version = 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.SubOptions, schema.SubOptionsT()
    graph = schema.SubGraphT()
    graph.tensors = [tensor(n, s, z) for n, (s, z) in zip(("a", "b", "out"), quant)]
    graph.inputs, graph.outputs, graph.operators = [0, 1], [2], [op]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [schema.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def tflm_sub(model: bytes, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    interpreter.set_input(a, 0)
    interpreter.set_input(b, 1)
    interpreter.invoke()
    return np.asarray(interpreter.get_output(0))


def random_quant(rng):
    """Scales within 2^4 of each other and of the output's (an int8 x - y), any zero points."""
    return [(float(np.float32(2.0 ** rng.uniform(-9, -3))), int(rng.integers(-128, 128))) for _ in range(3)]


@pytest.mark.parametrize("case", ["tinylm_sub_2"] + [f"random_{seed}" for seed in range(16)])
def test_sub_requantizes_every_pair_as_tflite_micro(case, add_kernel):
    quant = TINYLM_SUB_2 if case == "tinylm_sub_2" else random_quant(np.random.default_rng(int(case[7:])))
    values = np.arange(-128, 128)
    pairs = np.stack(np.meshgrid(values, values), -1).reshape(-1, 2).astype(np.int8)
    a, b = np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])
    model = sub_model(quant, len(pairs))
    graph = read_tflite(model, name="sub")
    p = lower_layer(graph.layers[0], graph).params
    assert p["subtract"] == 1
    fields = [len(pairs), p["left_shift"]] + [p[f"{w}_{k}"] for w in ("input1", "input2", "output")
                                              for k in ("offset", "multiplier", "shift")] + [1]
    got = np.zeros(len(pairs), np.int8)
    pointer = lambda x: x.ctypes.data_as(ctypes.c_void_p)   # noqa: E731
    assert add_kernel(pointer(np.array(fields, np.int32)), pointer(a), pointer(b), pointer(got)) == 0
    expected = tflm_sub(model, a, b)
    wrong = np.flatnonzero(got != expected)
    assert not wrong.size, f"{wrong.size} pairs differ, e.g. (a, b) = {pairs[wrong[0]].tolist()}: " \
                           f"{got[wrong[0]]} against TFLite Micro's {expected[wrong[0]]}"
