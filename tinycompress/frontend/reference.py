"""The golden reference: the TFLite Micro interpreter run on the same .tflite.

The interpreter runs in a child process (`python -m tinycompress.frontend.reference`), one per batch of
inputs, so a segfault or abort inside it becomes one line naming the stage instead of killing tinycompress.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EXIT_TOOL_MISSING, TinyCompressError, pip_hint

ARENA_BYTES = 8 * 1024 * 1024
TIMEOUT_SECONDS = 600
MISSING = 17   # the child's exit code when tflite-micro is not installed


def tflm_arena(tflite: bytes) -> dict:
    """The TFLite Micro interpreter's own arena for this model, in bytes: total, and the head (the
    planned activation tensors) and tail (persistent runtime structures) it splits into."""
    with tempfile.TemporaryDirectory(prefix="tinycompress-tflm-") as tmp:
        _run_child("arena", Path(tmp), tflite)
        return json.loads((Path(tmp) / "arena.json").read_text())


def tflm_outputs(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs (N, output bytes) int8 for inputs as the firmware reads them, (N, input bytes) int8: the
    bytes of int8 features or of int32 token ids. A float-I/O model (floatio.py) reads and writes the
    bytes of its float32 values; an int32 output (ARG_MAX) gives its bytes."""
    with tempfile.TemporaryDirectory(prefix="tinycompress-tflm-") as tmp:
        np.save(Path(tmp) / "inputs.npy", np.ascontiguousarray(inputs, np.int8))
        _run_child("outputs", Path(tmp), tflite)
        return np.load(Path(tmp) / "outputs.npy", allow_pickle=False)


def tflm_cached(tflite: bytes, spec: dict, tables: np.ndarray) -> np.ndarray:
    """A key/value-cached step model's logits (steps, V) int8, step k feeding spec['tokens'][k] at
    position k: the token and the one-hot (spec 'hot' at the position, 'cold' elsewhere) into their
    inputs, the caches (starting at each 'cache_zero') into theirs; after each step, cache i takes row i
    of the outputs at the position, through tables[i][q + 128] (tinycompress/analysis/cached.py)."""
    with tempfile.TemporaryDirectory(prefix="tinycompress-tflm-") as tmp:
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        np.save(Path(tmp) / "tables.npy", np.ascontiguousarray(tables, np.int8))
        _run_child("cached", Path(tmp), tflite)
        return np.load(Path(tmp) / "outputs.npy", allow_pickle=False)


def _run_child(task: str, work: Path, tflite: bytes) -> None:
    """Run `task` on work/model.tflite in a child interpreter; a crash or failure there is one line."""
    (work / "model.tflite").write_bytes(tflite)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    try:
        proc = subprocess.run([sys.executable, "-m", "tinycompress.frontend.reference", task, str(work)],
                              env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise TinyCompressError(f"the TFLite Micro interpreter ran past {TIMEOUT_SECONDS} s on this "
                                "model") from None
    if proc.returncode == 0:
        return
    if proc.returncode == MISSING:
        raise TinyCompressError(f"tflite-micro is not installed; install it with: {pip_hint('tflite-micro')}",
                                EXIT_TOOL_MISSING)
    if proc.returncode < 0:
        try:
            name = f"{signal.Signals(-proc.returncode).name}, "
        except ValueError:
            name = ""
        raise TinyCompressError(f"the TFLite Micro interpreter crashed ({name}signal {-proc.returncode}) on "
                                "this model; the model is invalid or hits a bug in TFLite Micro")
    missing = re.search(r"Didn't find op for builtin opcode '(\w+)'", proc.stderr)
    if missing is not None:
        raise TinyCompressError(f"the TFLite Micro interpreter has no {missing.group(1)} kernel, so there is "
                                "no reference to verify against; run without --verify")
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    raise TinyCompressError("the TFLite Micro interpreter refused this model: "
                            f"{lines[-1][:300] if lines else f'exit code {proc.returncode}'}")


def _interpreter(work: Path):
    from tflite_micro.python.tflite_micro import runtime
    return runtime.Interpreter.from_bytes((work / "model.tflite").read_bytes(), arena_size=ARENA_BYTES)


def _outputs(work: Path) -> None:
    interpreter = _interpreter(work)
    details = interpreter.get_input_details(0)
    dtype = np.dtype(details["dtype"]).newbyteorder("<")
    outputs = []
    for x in np.load(work / "inputs.npy", allow_pickle=False):
        interpreter.set_input(np.ascontiguousarray(x, np.int8).view(dtype).reshape(details["shape"]), 0)
        interpreter.invoke()
        out = np.asarray(interpreter.get_output(0))   # its bytes: int8 values, ARG_MAX's int32, or float32
        outputs.append(np.ascontiguousarray(out, out.dtype.newbyteorder("<")).view(np.int8).reshape(-1))
    np.save(work / "outputs.npy", np.stack(outputs))


def _cached(work: Path) -> None:
    interpreter = _interpreter(work)
    spec = json.loads((work / "spec.json").read_text())
    tables = np.load(work / "tables.npy", allow_pickle=False).astype(np.int64)
    shapes = [interpreter.get_input_details(c)["shape"] for c in spec["caches"]]
    caches = [np.full(shape, zero, np.int8) for shape, zero in zip(shapes, spec["cache_zero"])]
    onehot_shape = interpreter.get_input_details(spec["position"])["shape"]
    logits = []
    for position, token in enumerate(spec["tokens"]):
        onehot = np.full(onehot_shape, spec["cold"], np.int8)
        onehot[0, position] = spec["hot"]
        interpreter.set_input(np.array([[token]], np.int32), spec["token"])
        interpreter.set_input(onehot, spec["position"])
        for index, cache in zip(spec["caches"], caches):
            interpreter.set_input(cache, index)
        interpreter.invoke()
        logits.append(np.asarray(interpreter.get_output(spec["logits"])).reshape(-1).astype(np.int8))
        for i, (row_index, cache) in enumerate(zip(spec["rows"], caches)):
            row = np.asarray(interpreter.get_output(row_index)).astype(np.int64)   # [1, H, 1, D]
            cache[0, :, position, :] = tables[i][row[0, :, 0, :] + 128]
    np.save(work / "outputs.npy", np.stack(logits))


def _arena(work: Path) -> None:
    import ctypes
    interpreter = _interpreter(work)
    with tempfile.TemporaryFile(mode="w+") as log:   # print_allocations writes to the C-level stderr
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            interpreter.print_allocations()
            ctypes.CDLL(None).fflush(None)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        text = log.read()
    arena = {part: int(m.group(1)) for part in ("total", "head", "tail")
             if (m := re.search(rf"Arena allocation {part} (\d+) bytes", text))}
    (work / "arena.json").write_text(json.dumps(arena))


def main(task: str, work: str) -> int:
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        return MISSING
    try:
        {"outputs": _outputs, "arena": _arena, "cached": _cached}[task](Path(work))
    except Exception as exc:   # the interpreter's own refusals: reported by the parent in one line
        print(f"{type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
