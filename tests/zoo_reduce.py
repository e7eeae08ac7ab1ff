"""Zoo cases of the reductions (MEAN, SUM, REDUCE_MAX, ARG_MAX), RSQRT and BATCH_MATMUL.

Each body is TensorFlow ops in a Keras Lambda, converted to full int8 by the converter: reductions over
axes [1], [2], [-1], [1, 2] and all of them, keepdims both ways; ARG_MAX with its int32 output (exported
without an int8 output type); RSQRT on a positive input; a tiny
attention (q @ k^T as BATCH_MATMUL adj_y, SOFTMAX, @ v), adj_x, constant and broadcast right-hand sides.
op_layer_norm also needs SUB, MUL and SQUARED_DIFFERENCE (issue 15's binary operators).
"""
from __future__ import annotations

import numpy as np

from modelzoo import SEED, TEST_INPUTS, _bias, _keras, _op_model


def _tf():
    import tensorflow as tf
    return tf


def _reduce(fn: str, axis, keepdims: bool = False):
    def body(L, x):
        tf = _tf()
        return L.Lambda(lambda t: getattr(tf, fn)(t, axis=axis, keepdims=keepdims))(x)
    return body


def _ranged_model(shape, body, name, low: float, high: float):
    """As _op_model, calibrated on [low, high] (RSQRT's input is positive), tested a little past it."""
    def build():
        keras = _keras()
        inp = keras.Input(shape, batch_size=1)
        model = keras.Model(inp, body(keras.layers, inp), name=name)
        rng = np.random.default_rng(SEED)
        calib = rng.uniform(low, high, (200,) + shape).astype(np.float32)
        calib[0].reshape(-1)[:2] = low, high
        span = high - low
        test = rng.uniform(low - 0.1 * span, high + 0.1 * span, (TEST_INPUTS,) + shape).astype(np.float32)
        return model, calib, None, test, None
    return build


def _argmax(axis):
    def body(L, x):
        tf = _tf()
        return L.Lambda(lambda t: tf.argmax(t, axis=axis, output_type=tf.int32))(x)
    return body


def _export(model, calibration) -> bytes:
    """Full int8 in one process (the Lambdas keep the child converter from loading the saved model): int8
    input, and an int8 output unless the model's output is integer (ARG_MAX's int32 indices stay so)."""
    import warnings

    tf = _tf()
    from tinycompress.frontend.quantize import _quiet, _representative
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(calibration, (1,) + tuple(model.inputs[0].shape[1:]))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    if str(model.outputs[0].dtype).startswith("float"):
        converter.inference_output_type = tf.int8
    with _quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


def _matmul(transpose_a=False, transpose_b=False):
    def body(L, x):
        tf = _tf()
        return L.Lambda(lambda t: tf.matmul(t, t, transpose_a=transpose_a, transpose_b=transpose_b))(x)
    return body


def _attention(L, x):
    """One head: q, k, v projections, softmax(q @ k^T) @ v."""
    tf = _tf()
    q, k, v = (L.Dense(8, **_bias())(x) for _ in range(3))
    scores = L.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_b=True))([q, k])
    weights = L.Softmax()(scores)
    return L.Lambda(lambda t: tf.matmul(t[0], t[1]))([weights, v])


def _constant_rhs(batch: tuple[int, ...], transpose_b=False):
    """x @ a constant [*batch, 6, 5] (or its transpose): BATCH_MATMUL with the right-hand side in flash."""
    def body(L, x):
        tf = _tf()
        shape = batch + ((5, 6) if transpose_b else (6, 5))
        c = np.random.default_rng(SEED).uniform(-1, 1, shape).astype(np.float32)
        return L.Lambda(lambda t: tf.matmul(t, tf.constant(c), transpose_b=transpose_b))(x)
    return body


def _layer_norm(L, x):
    """(x - mean) * rsqrt(variance + eps) over the last axis: MEAN, SQUARED_DIFFERENCE, RSQRT, SUB, MUL."""
    tf = _tf()
    def norm(t):
        mean = tf.reduce_mean(t, axis=-1, keepdims=True)
        variance = tf.reduce_mean(tf.math.squared_difference(t, mean), axis=-1, keepdims=True)
        return (t - mean) * tf.math.rsqrt(variance + 1e-3)
    return L.Lambda(norm)(x)


SHAPE = (6, 5, 4)
CASES = {
    "op_reduce_mean_axis1": _op_model(SHAPE, _reduce("reduce_mean", [1]), "op_reduce_mean_axis1"),
    "op_reduce_mean_axis2_keep": _op_model(SHAPE, _reduce("reduce_mean", [2], True),
                                           "op_reduce_mean_axis2_keep"),
    "op_reduce_mean_last": _op_model(SHAPE, _reduce("reduce_mean", [-1]), "op_reduce_mean_last"),
    "op_reduce_mean_last_keep": _op_model((7, 9), _reduce("reduce_mean", [-1], True),
                                          "op_reduce_mean_last_keep"),
    "op_reduce_mean_hw": _op_model(SHAPE, _reduce("reduce_mean", [1, 2]), "op_reduce_mean_hw"),
    "op_reduce_mean_all": _op_model(SHAPE, _reduce("reduce_mean", None), "op_reduce_mean_all"),
    "op_reduce_mean_all_keep": _op_model(SHAPE, _reduce("reduce_mean", None, True), "op_reduce_mean_all_keep"),
    "op_reduce_sum_axis1": _op_model(SHAPE, _reduce("reduce_sum", [1]), "op_reduce_sum_axis1"),
    "op_reduce_sum_axis2_keep": _op_model(SHAPE, _reduce("reduce_sum", [2], True), "op_reduce_sum_axis2_keep"),
    "op_reduce_sum_last": _op_model(SHAPE, _reduce("reduce_sum", [-1]), "op_reduce_sum_last"),
    "op_reduce_sum_hw_keep": _op_model(SHAPE, _reduce("reduce_sum", [1, 2], True), "op_reduce_sum_hw_keep"),
    "op_reduce_sum_all": _op_model(SHAPE, _reduce("reduce_sum", None), "op_reduce_sum_all"),
    "op_reduce_max_axis1": _op_model(SHAPE, _reduce("reduce_max", [1]), "op_reduce_max_axis1"),
    "op_reduce_max_axis2_keep": _op_model(SHAPE, _reduce("reduce_max", [2], True), "op_reduce_max_axis2_keep"),
    "op_reduce_max_last": _op_model(SHAPE, _reduce("reduce_max", [-1]), "op_reduce_max_last"),
    "op_reduce_max_hw": _op_model(SHAPE, _reduce("reduce_max", [1, 2]), "op_reduce_max_hw"),
    "op_reduce_max_all_keep": _op_model(SHAPE, _reduce("reduce_max", None, True), "op_reduce_max_all_keep"),
    # zero points at the extremes: an all-positive and an all-negative input range
    "op_reduce_mean_zp_low": _ranged_model(SHAPE, _reduce("reduce_mean", [-1]), "op_reduce_mean_zp_low",
                                           0.0, 4.0),
    "op_reduce_sum_zp_high": _ranged_model(SHAPE, _reduce("reduce_sum", [1]), "op_reduce_sum_zp_high",
                                           -3.0, 0.0),
    "op_argmax_last": _op_model((10,), _argmax(-1), "op_argmax_last"),
    "op_argmax_axis1": _op_model((7, 5), _argmax(1), "op_argmax_axis1"),
    "op_rsqrt": _ranged_model((6, 5), lambda L, x: L.Lambda(lambda t: _tf().math.rsqrt(t))(x), "op_rsqrt",
                              0.05, 4.0),
    "op_matmul_adj_y": _op_model((6, 5), _matmul(transpose_b=True), "op_matmul_adj_y"),
    "op_matmul_adj_x": _op_model((6, 5), _matmul(transpose_a=True), "op_matmul_adj_x"),
    "op_matmul_batch_adj_y": _op_model((3, 4, 9), _matmul(transpose_b=True), "op_matmul_batch_adj_y"),
    # batch axes (1, 2) against the constant's (3, 1): both broadcast, to (3, 2)
    "op_matmul_const_broadcast": _op_model((2, 3, 6), _constant_rhs((3, 1)), "op_matmul_const_broadcast"),
    "op_matmul_const_batch_t": _op_model((2, 3, 6), _constant_rhs((2,), True), "op_matmul_const_batch_t"),
    "op_attention": _op_model((6, 12), _attention, "op_attention"),
    "op_layer_norm": _op_model((5, 16), _layer_norm, "op_layer_norm"),
}
EXPORTS = {name: _export for name in CASES}
