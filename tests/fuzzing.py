"""Seeded mutants of the zoo's models, and the rule each must follow: a clean refusal or a verified run.

A mutant is a RECIPE (JSON): a zoo model's name, the seed it came from and a list of edits, applied in
order. A "field" edit sets one value of the flatbuffer's object tree (schema ModelT), addressed by a path
such as ["subgraphs", 0, "tensors", 3, "shape", 1]; the tree is then packed again. A "bytes" edit
overwrites bytes of the packed file. A "swap" edit exchanges two operators. tests/test_fuzz.py runs a
few hundred mutants and replays tests/fuzz_corpus/*.json; scripts/fuzz.py runs as many as asked.
"""
from __future__ import annotations

import copy
import json
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tinycompress.target.boards import load_board
from tinycompress.errors import TinyCompressError
from tinycompress.pipeline import VerificationError, run_model

MODELS = ("op_fc_relu", "op_conv_3x3_same", "op_dw_3x3_same", "op_add_residual", "op_softmax", "op_mean",
          "op_maxpool_2x2", "op_avgpool_3x3_s2_same", "op_conv_dilated", "digits_mlp", "text_lookup")
CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
BOARD = "mps2-an386"
INPUTS = 2
# Outcomes: the two good ones, then the failures.
GOOD = ("refused", "verified", "unpackable")   # unpackable: an edit the flatbuffer cannot hold, no mutant
FAILURES = ("internal error", "wrong output", "firmware fault", "build failure", "accepted what TFLM refuses")

# Values that break things, per kind of field.
DIMS = [-1, 0, 1, 2, 3, 7, 65536, 1048576, 2 ** 31 - 1, -(2 ** 31)]
SCALES = [0.0, -1.0, float("nan"), float("inf"), 1e-30, 1e30, 1e-3, 10.0]
ZERO_POINTS = [-129, 128, 300, -1000, 1, -1, 0, 127, -128]
OPTION_VALUES = [-1, 0, 1, 2, 3, 5, 100, -(2 ** 31)]
TYPES = [0, 2, 3, 7, 9, 17, 4, 99]


def load_model_tree(data: bytes):
    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def pack(model) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def _get(obj, key):
    return obj[key] if isinstance(key, int) else getattr(obj, key)


def _set_path(tree, path: list, value) -> None:
    obj = tree
    for key in path[:-1]:
        obj = _get(obj, key)
    last = path[-1]
    if isinstance(last, int):
        obj[last] = value
    elif value == "<None>":
        setattr(obj, last, None)
    else:
        setattr(obj, last, value)


def apply_recipe(recipe: dict, source: bytes) -> bytes:
    """The mutant's bytes: field and swap edits on the object tree, then byte edits on the packed file."""
    edits = recipe["edits"]
    tree_edits = [e for e in edits if e["kind"] in ("field", "swap")]
    data = source
    if tree_edits:
        tree = load_model_tree(source)
        for e in tree_edits:
            if e["kind"] == "field":
                _set_path(tree, e["path"], e["value"])
            else:
                ops = tree.subgraphs[0].operators
                ops[e["a"]], ops[e["b"]] = ops[e["b"]], ops[e["a"]]
        data = pack(tree)
    data = bytearray(data)
    for e in edits:
        if e["kind"] == "bytes":
            offset = e["offset"] % len(data)
            data[offset:offset + len(e["values"])] = bytes(e["values"])
    return bytes(data)


def make_recipe(model: str, source: bytes, seed: int) -> dict:
    """One to three random edits of `model`, all drawn from `seed`."""
    rng = np.random.default_rng(seed)
    tree = load_model_tree(source)
    edits = [_edit(rng, tree, len(source)) for _ in range(int(rng.integers(1, 4)))]
    return {"model": model, "seed": seed, "edits": [e for e in edits if e is not None]}


def _pick(rng, values):
    return values[int(rng.integers(len(values)))]


def _edit(rng, tree, size: int) -> dict | None:
    sub = tree.subgraphs[0]
    tensors, ops = sub.tensors, sub.operators
    kind = _pick(rng, ["shape", "type", "buffer", "scale", "zero_point", "qdim", "op_input", "op_output",
                       "opcode", "graph_io", "option", "weight_byte", "swap",
                       "raw_bytes", "drop_options", "buffer_data"])
    t = int(rng.integers(len(tensors)))
    base = ["subgraphs", 0, "tensors", t]
    if kind == "shape" and tensors[t].shape is not None and len(tensors[t].shape):
        return _field(base + ["shape", int(rng.integers(len(tensors[t].shape)))], int(_pick(rng, DIMS)))
    if kind == "type":
        return _field(base + ["type"], int(_pick(rng, TYPES)))
    if kind == "buffer":
        return _field(base + ["buffer"], int(_pick(rng, [len(tree.buffers), 2 ** 32 - 1, int(rng.integers(len(
            tree.buffers)))])))   # uint32
    q = tensors[t].quantization
    if kind == "scale" and q is not None and q.scale is not None and len(q.scale):
        return _field(base + ["quantization", "scale", int(rng.integers(len(q.scale)))],
                      float(_pick(rng, SCALES)))
    if kind == "zero_point" and q is not None and q.zeroPoint is not None and len(q.zeroPoint):
        return _field(base + ["quantization", "zeroPoint", int(rng.integers(len(q.zeroPoint)))],
                      int(_pick(rng, ZERO_POINTS)))
    if kind == "qdim" and q is not None:
        return _field(base + ["quantization", "quantizedDimension"], int(rng.integers(-1, 5)))
    k = int(rng.integers(len(ops)))
    op_base = ["subgraphs", 0, "operators", k]
    index = int(_pick(rng, [-1, -2, len(tensors), len(tensors) + 7, int(rng.integers(len(tensors)))]))
    if kind == "op_input" and ops[k].inputs is not None and len(ops[k].inputs):
        return _field(op_base + ["inputs", int(rng.integers(len(ops[k].inputs)))], index)
    if kind == "op_output":
        return _field(op_base + ["outputs", 0], index)
    if kind == "opcode":
        return _field(op_base + ["opcodeIndex"], int(_pick(rng, [len(tree.operatorCodes), 2 ** 32 - 1, int(
            rng.integers(len(tree.operatorCodes)))])))   # uint32
    if kind == "graph_io":
        return _field(["subgraphs", 0, _pick(rng, ["inputs", "outputs"]), 0], index)
    if kind == "option" and ops[k].builtinOptions is not None:
        fields = [f for f, v in vars(ops[k].builtinOptions).items() if isinstance(v, (int, float))]
        if fields:
            return _field(op_base + ["builtinOptions", _pick(rng, fields)], int(_pick(rng, OPTION_VALUES)))
    if kind == "drop_options":
        return _field(op_base + ["builtinOptions"], "<None>")
    if kind == "swap" and len(ops) > 1:
        a, b = (int(v) for v in rng.choice(len(ops), 2, replace=False))
        return {"kind": "swap", "a": a, "b": b}
    buffers = [i for i, b in enumerate(tree.buffers) if b.data is not None and len(b.data)]
    if kind == "weight_byte" and buffers:
        b = _pick(rng, buffers)
        return _field(["buffers", b, "data", int(rng.integers(len(tree.buffers[b].data)))],
                      int(rng.integers(0, 256)))
    if kind == "buffer_data" and buffers:
        b = _pick(rng, buffers)
        n = len(tree.buffers[b].data)
        return _field(["buffers", b, "data"], [int(v) for v in rng.integers(0, 256, size=max(n + int(
            _pick(rng, [-1, 1, -4, 4])), 0))])
    return {"kind": "bytes", "offset": int(rng.integers(size)),
            "values": [int(v) for v in rng.integers(0, 256, size=int(rng.integers(1, 5)))]}


def _field(path: list, value) -> dict:
    return {"kind": "field", "path": path, "value": value}


@dataclass
class Outcome:
    kind: str          # one of GOOD or FAILURES
    detail: str

    @property
    def ok(self) -> bool:
        return self.kind in GOOD


def run_mutant(data: bytes, work: Path) -> Outcome:
    """Drive the pipeline as `tinycompress run --verify` does (host build) and classify how it ended."""
    model = work / "mutant.tflite"
    model.write_bytes(data)
    try:
        run_model(model, load_board(BOARD), verify=True, host=True, count=INPUTS)
    except VerificationError as exc:
        return Outcome("wrong output", str(exc))
    except TinyCompressError as exc:
        message = str(exc)
        if not 1 <= exc.exit_code <= 5 or "internal error" in message or "\n" in message:
            return Outcome("internal error", message)
        if message.startswith("the firmware"):
            return Outcome("firmware fault", message)
        if message.startswith("the build failed"):
            return Outcome("build failure", message)
        if message.startswith("the TFLite Micro interpreter"):
            return Outcome("accepted what TFLM refuses", message)
        return Outcome("refused", message)
    except Exception as exc:
        return Outcome("internal error", "".join(traceback.format_exception(exc))[-2000:])
    return Outcome("verified", "")


def run_recipe(recipe: dict, sources: dict[str, bytes]) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="tinycompress-fuzz-") as tmp:
        try:
            data = apply_recipe(recipe, sources[recipe["model"]])
        except Exception as exc:   # a field the packer cannot write (an int too large): not a model
            return Outcome("unpackable", f"{type(exc).__name__}: {exc}")
        return run_mutant(data, Path(tmp))


def corpus() -> list[dict]:
    return [json.loads(p.read_text()) | {"file": p.name} for p in sorted(CORPUS.glob("*.json"))]


def save_to_corpus(recipe: dict, outcome: Outcome) -> Path:
    CORPUS.mkdir(exist_ok=True)
    path = CORPUS / f"{recipe['model']}-{recipe['seed']}.json"
    detail = outcome.detail.splitlines()[-1][:200] if outcome.detail else ""
    record = copy.deepcopy(recipe) | {"found": f"{outcome.kind}: {detail}"}
    path.write_text(json.dumps(record) + "\n")
    return path
