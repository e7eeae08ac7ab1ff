"""The golden reference: the TFLite Micro interpreter run on the same .tflite."""
from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile

import numpy as np

from .errors import EXIT_TOOL_MISSING, TinyCompressError

ARENA_BYTES = 8 * 1024 * 1024


@contextlib.contextmanager
def _c_stderr():
    """Capture what C code writes to stderr inside the block: the yielded list gets the text at its end."""
    captured = []
    with tempfile.TemporaryFile(mode="w+") as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            yield captured
        finally:
            ctypes.CDLL(None).fflush(None)
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            captured.append(log.read())


def _interpreter(tflite: bytes):
    """The TFLite Micro interpreter on the model; an operator it has no kernel for is named, in one line."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise TinyCompressError("tflite-micro is not installed; install it with: pip install -e .",
                                EXIT_TOOL_MISSING) from None
    try:
        with _c_stderr() as log:
            return runtime.Interpreter.from_bytes(tflite, arena_size=ARENA_BYTES)
    except RuntimeError:
        missing = re.search(r"Didn't find op for builtin opcode '(\w+)'", log[0])
        if missing is None:
            sys.stderr.write(log[0])
            raise
        raise TinyCompressError(f"the TFLite Micro interpreter has no {missing.group(1)} kernel, so there is "
                                "no reference to verify against; run without --verify") from None


def tflm_arena(tflite: bytes) -> dict:
    """The TFLite Micro interpreter's own arena for this model, in bytes: total, and the head (the
    planned activation tensors) and tail (persistent runtime structures) it splits into."""
    interpreter = _interpreter(tflite)
    with _c_stderr() as log:   # print_allocations writes to the C-level stderr
        interpreter.print_allocations()
    text = log[0]
    return {part: int(m.group(1)) for part in ("total", "head", "tail")
            if (m := re.search(rf"Arena allocation {part} (\d+) bytes", text))}


def tflm_outputs(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs (N, output bytes) int8 for inputs as the firmware reads them, (N, input bytes) int8: the
    bytes of int8 features or of int32 token ids."""
    interpreter = _interpreter(tflite)
    details = interpreter.get_input_details(0)
    dtype = np.dtype(details["dtype"]).newbyteorder("<")
    outputs = []
    for x in inputs:
        interpreter.set_input(np.ascontiguousarray(x, np.int8).view(dtype).reshape(details["shape"]), 0)
        interpreter.invoke()
        outputs.append(np.asarray(interpreter.get_output(0), np.int8).reshape(-1))
    return np.stack(outputs)
