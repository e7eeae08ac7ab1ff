"""The golden reference: the TFLite Micro interpreter run on the same .tflite."""
from __future__ import annotations

import numpy as np

from .errors import EXIT_TOOL_MISSING, TinyCompressError

ARENA_BYTES = 8 * 1024 * 1024


def tflm_arena(tflite: bytes) -> dict:
    """The TFLite Micro interpreter's own arena for this model, in bytes: total, and the head (the
    planned activation tensors) and tail (persistent runtime structures) it splits into."""
    import ctypes
    import os
    import re
    import tempfile
    from tflite_micro.python.tflite_micro import runtime
    interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=ARENA_BYTES)
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
    return {part: int(m.group(1)) for part in ("total", "head", "tail")
            if (m := re.search(rf"Arena allocation {part} (\d+) bytes", text))}


def tflm_outputs(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs (N, output bytes) int8 for inputs as the firmware reads them, (N, input bytes) int8: the
    bytes of int8 features or of int32 token ids."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise TinyCompressError("tflite-micro is not installed; install it with: pip install -e .",
                                EXIT_TOOL_MISSING) from None
    interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=ARENA_BYTES)
    details = interpreter.get_input_details(0)
    dtype = np.dtype(details["dtype"]).newbyteorder("<")
    outputs = []
    for x in inputs:
        interpreter.set_input(np.ascontiguousarray(x, np.int8).view(dtype).reshape(details["shape"]), 0)
        interpreter.invoke()
        outputs.append(np.asarray(interpreter.get_output(0), np.int8).reshape(-1))
    return np.stack(outputs)
