"""Models with an operator tinycompress cannot run, for `inspect` and the messages of `run`
(tests/test_inspect.py). unsupported_tile: TILE between two Dense layers (TFLite Micro has no TILE kernel
either)."""
from __future__ import annotations

from modelzoo import _bias, _op_model

TASK = "error"


def _tile(t):
    import tensorflow as tf
    return tf.tile(t, [1, 2])


CASES = {
    "unsupported_tile": _op_model((16,), lambda L, x: L.Dense(4, **_bias())(
        L.Lambda(_tile)(L.Dense(8, **_bias())(x))), "unsupported_tile"),
}
