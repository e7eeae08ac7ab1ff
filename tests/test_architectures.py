"""The zoo's real architectures (tests/zoo_arch.py), in each of the four forms users export them, through the
command line as a user runs them: `tinycompress run MODEL.tflite --board B --data X.npz --verify`, every
output identical to the TFLite Micro interpreter's (issue 15's first "done when").

Run one architecture or one form with -k, on the test ids `<arch>-<flavour>-<board>`:
    pytest tests/test_architectures.py -k resnet8                          # every form, every board
    pytest tests/test_architectures.py -k "unet and float_dyn"             # one form
    pytest tests/test_architectures.py -k "gru and int8 and not dyn"       # int8 I/O, fixed batch
    pytest tests/test_architectures.py -k "mps3-an547"                     # one board
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import firmware_vs_tflm, needs_emulator

import modelzoo
import zoo_arch
from tinycompress.errors import EXIT_BUDGET

try:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
except ImportError:  # pragma: no cover
    schema = None

ROOT = Path(__file__).resolve().parent.parent
ARCHS = list(zoo_arch.ARCHS)
FLAVOURS = list(zoo_arch.FLAVOURS)
CNNS = ["resnet8", "mobilenetv2", "mobilenetv3", "kws_conv1d", "unet"]
OTHER_CORES = ["microbit", "mps2-an500", "mps3-an547"]   # M0, M7, M55 (the M4 is mps2-an386)
# What does not fit the micro:bit (256 KiB flash, 16 KiB SRAM), and the budget the refusal names: ResNet-8's
# 32x32x16 activations (16 KiB each), MobileNetV2's 96x96x3 input (27 KiB; its 458 KiB of weights would
# not fit the flash either), the U-Net's 32x32x16 concatenation.
TOO_BIG_FOR_MICROBIT = {"resnet8": "SRAM", "mobilenetv2": "SRAM", "unet": "SRAM"}
# Cheap enough for the fast tier (dense layers: a quick zoo build, a second or two in QEMU): the rest is slow.
FAST_ARCHS = ["sigmoid_head", "tanh_leaky"]
FAST = {(arch, "mps2-an386") for arch in FAST_ARCHS}
# Operators each architecture's file must hold, in all four forms: what makes it the architecture.
SIGNATURE_OPS = {
    "resnet8": {"CONV_2D", "ADD", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"},
    # (the converter folds ZeroPadding2D's PAD into the stride-2 depthwise convolutions: no PAD)
    "mobilenetv2": {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"},
    "mobilenetv3": {"CONV_2D", "DEPTHWISE_CONV_2D", "HARD_SWISH", "MEAN", "MUL", "ADD", "SOFTMAX"},
    "kws_conv1d": {"CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"},
    "unet": {"CONV_2D", "MAX_POOL_2D", "TRANSPOSE_CONV", "CONCATENATION", "LOGISTIC"},
    "sigmoid_head": {"FULLY_CONNECTED", "LOGISTIC"},
    "tanh_leaky": {"FULLY_CONNECTED", "TANH", "LEAKY_RELU", "SOFTMAX"},
    "gru": {"FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL", "ADD", "SUB", "SOFTMAX"},
}


def arch_name(arch: str, flavour: str) -> str:
    return f"arch_{arch}_{flavour}"


def _param(arch, flavour, board=None):
    fast = (arch, board) in FAST
    return pytest.param(arch, flavour, *([board] if board else []),
                        id="-".join([arch, flavour] + ([board] if board else [])),
                        marks=() if fast else pytest.mark.slow)


# TFLite Micro itself cannot run these files: a GRU on a None batch starts from FILL(dims computed by SHAPE
# and PACK, 0), and its FILL needs constant dims ("TFLM failed to allocate tensors"). We fold the dims for
# batch 1 and run them; the test checks them against TFLite Micro on the file with its shape arithmetic
# folded.
TFLM_REFUSES = {("gru", "int8_dyn"), ("gru", "float_dyn")}
RUNS = ([_param(a, f, "mps2-an386") for a in ARCHS for f in FLAVOURS if (a, f) not in TFLM_REFUSES]
        + [_param(a, f, b) for b in OTHER_CORES for a in CNNS for f in FLAVOURS
           if not (b == "microbit" and a in TOO_BIG_FOR_MICROBIT)])


def tc(*args):
    return subprocess.run([sys.executable, "-m", "tinycompress", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


# ---- the files: what a user's export holds -------------------------------------------------------------

def _flatbuffer(path: Path):
    return schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)


def _ops(model) -> list[str]:
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return [names[codes[op.opcodeIndex]] for op in model.subgraphs[0].operators]


def _dtype(tensor) -> str:
    return {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}[tensor.type]


@pytest.mark.parametrize("arch", [pytest.param(a, marks=() if a in FAST_ARCHS else pytest.mark.slow)
                                  for a in ARCHS])
def test_each_form_holds_what_a_users_export_holds(zoo, arch):
    weights = {}
    for flavour in FLAVOURS:
        model = _flatbuffer(zoo(arch_name(arch, flavour))[0])
        graph = model.subgraphs[0]
        ops = _ops(model)
        assert SIGNATURE_OPS[arch] <= set(ops), (flavour, sorted(SIGNATURE_OPS[arch] - set(ops)))
        inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
        io = "FLOAT32" if flavour.startswith("float") else "INT8"
        assert (_dtype(inp), _dtype(out)) == (io, io), flavour
        if io == "FLOAT32":   # int8 inside: QUANTIZE at the input, DEQUANTIZE at the output
            first = next(op for op in graph.operators if graph.inputs[0] in op.inputs)
            last = next(op for op in graph.operators if graph.outputs[0] in op.outputs)
            assert ops[graph.operators.index(first)] == "QUANTIZE"
            assert ops[graph.operators.index(last)] == "DEQUANTIZE"
        # full int8: no float tensor but the graph's own input and output
        floats = [t.name for i, t in enumerate(graph.tensors)
                  if _dtype(t) == "FLOAT32" and i not in (graph.inputs[0], graph.outputs[0])]
        assert not floats, (flavour, floats[:5])
        signature = inp.shapeSignature if inp.shapeSignature is not None else inp.shape
        assert int(signature[0]) == (-1 if flavour.endswith("_dyn") else 1), flavour
        # the same network in every form: the same int8 weights
        weights[flavour] = Counter(bytes(model.buffers[t.buffer].data) for t in graph.tensors
                                   if _dtype(t) == "INT8" and model.buffers[t.buffer].data is not None)
    assert weights["float"] == weights["int8"] and weights["float_dyn"] == weights["int8_dyn"]
    if arch != "gru":   # on a None batch the converter lays out the GRU's first step (zero state) otherwise
        assert weights["int8_dyn"] == weights["int8"]


@pytest.mark.parametrize("arch", ARCHS)
def test_the_zoo_builds_an_architecture_as_one_family(arch):
    names = [arch_name(arch, flavour) for flavour in FLAVOURS]
    assert all(modelzoo.family(n) == names for n in names)
    assert all(modelzoo.TASKS[n] == "op" for n in names)


@pytest.mark.slow
def test_a_form_built_alone_is_the_form_built_with_its_family(zoo, tmp_path):
    """The four forms share weights computed once per process: built alone (weights computed by itself),
    a form's files are the bytes of the cached build with its family."""
    target = arch_name("sigmoid_head", "float_dyn")
    cached = zoo(target)[0]
    env = {**modelzoo.DETERMINISTIC_ENV, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(ROOT / "tests" / "modelzoo.py"), "--out", str(tmp_path), target],
                   check=True, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    for suffix in (".tflite", ".npz"):
        rebuilt = (tmp_path / f"{target}{suffix}").read_bytes()
        assert rebuilt == cached.with_suffix(suffix).read_bytes(), suffix


# ---- the runs ---------------------------------------------------------------------------------------------

@needs_emulator
@pytest.mark.parametrize("arch,flavour,board", RUNS)
def test_run_verify_is_bit_exact(zoo, arch, flavour, board):
    model, data = zoo(arch_name(arch, flavour))
    proc = tc("run", model, "--board", board, "--data", data, "--verify", "--json", "-")
    assert proc.returncode == 0, proc.stderr.strip()[-2000:]
    report = json.loads(proc.stdout)
    count = len(np.load(data)["x"])
    assert report["verification"]["inferences"] == count
    assert report["verification"]["matching"] == count


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("arch,flavour", [_param(a, f) for a in TOO_BIG_FOR_MICROBIT
                                          for f in ("int8", "float")])
def test_too_big_for_the_microbit_is_refused_naming_the_budget(zoo, arch, flavour):
    model, data = zoo(arch_name(arch, flavour))
    proc = tc("run", model, "--board", "microbit", "--data", data, "--verify")
    assert proc.returncode == EXIT_BUDGET, proc.stderr.strip()[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    budget = TOO_BIG_FOR_MICROBIT[arch]
    assert "does not fit microbit" in lines[0] and f"bytes of {budget}" in lines[0]
    assert "but the board has" in lines[0]


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("arch,flavour", sorted(TFLM_REFUSES))
def test_a_file_tflite_micro_refuses_runs_and_verify_says_why(zoo, tmp_path, arch, flavour):
    from test_dynbatch import _folded_file
    from tinycompress.frontend.load import read_tflite
    model, data = zoo(arch_name(arch, flavour))
    proc = tc("run", model, "--board", "mps2-an386", "--data", data, "--verify")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "TFLite Micro interpreter refused" in lines[0], proc.stderr
    proc = tc("run", model, "--board", "mps2-an386", "--data", data)   # we run it
    assert proc.returncode == 0, proc.stderr.strip()[-2000:]
    if flavour == "int8_dyn":   # bit-exact with TFLite Micro on the same file, its shape arithmetic folded
        firmware_vs_tflm(model, "mps2-an386", data, tmp_path, _folded_file(read_tflite(model.read_bytes())),
                         min_inputs=len(np.load(data)["x"]))
