"""Models tinycompress refuses, for `inspect` and the messages of `run` (tests/test_inspect.py,
tests/test_dynbatch.py).

- unsupported_tile: TILE between two Dense layers (TFLite Micro has no TILE kernel either).
- refused_data_shape: a RESHAPE whose new shape is computed from the data (ARG_MAX -> CAST -> MINIMUM ->
  ADD -> PACK): no batch makes it a constant, so fold.py refuses it, naming ARG_MAX.
"""
from __future__ import annotations

from modelzoo import _bias, _op_model

TASK = "error"


def _tile(t):
    import tensorflow as tf
    return tf.tile(t, [1, 2])


def _data_shape(t):
    import tensorflow as tf
    n = tf.minimum(tf.cast(tf.argmax(t[0]), tf.int32), 0) + 16   # always 16, which the converter cannot see
    return tf.reshape(t, tf.stack([-1, n]))


CASES = {
    "unsupported_tile": _op_model((16,), lambda L, x: L.Dense(4, **_bias())(
        L.Lambda(_tile)(L.Dense(8, **_bias())(x))), "unsupported_tile"),
    "refused_data_shape": _op_model((16,), lambda L, x: L.Dense(4, **_bias())(
        L.Lambda(_data_shape, output_shape=(16,))(L.Dense(16, **_bias())(x))), "refused_data_shape"),
}
