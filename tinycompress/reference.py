"""The golden reference: the TFLite Micro interpreter run on the same .tflite."""
from __future__ import annotations

import numpy as np

from .errors import EXIT_TOOL_MISSING, TinyCompressError

ARENA_BYTES = 8 * 1024 * 1024


def tflm_outputs(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs (N, output bytes) int8 for inputs (N, ...) int8."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise TinyCompressError("tflite-micro is not installed; install it with: pip install -e .",
                                EXIT_TOOL_MISSING) from None
    interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=ARENA_BYTES)
    shape = interpreter.get_input_details(0)["shape"]
    outputs = []
    for x in inputs:
        interpreter.set_input(np.asarray(x, np.int8).reshape(shape), 0)
        interpreter.invoke()
        outputs.append(np.asarray(interpreter.get_output(0), np.int8).reshape(-1))
    return np.stack(outputs)
