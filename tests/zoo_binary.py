"""Zoo cases of the binary element-wise operators (tinycompress/ops/elementwise.py): ADD, SUB, MUL,
SQUARED_DIFFERENCE, MAXIMUM and MINIMUM, same shapes and broadcast ((1, C) vs (H, W, C), (H, 1, C),
(H, W, 1), scalars, 5-D), constant operands on either side, fused activations, tails that are not a
multiple of 4 or 16 elements. tests/test_firmware_vs_tflm.py runs each in QEMU against TFLite Micro."""
from __future__ import annotations

import numpy as np

from modelzoo import _bias, _op_model


def _k():
    import keras
    return keras


def _const(*shape, low=-1.0, high=1.0, seed=7):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def _two(L, x, c1=4, c2=4):
    """Two operands computed from the input (1x1 convolutions with biases)."""
    return L.Conv2D(c1, 1, **_bias())(x), L.Conv2D(c2, 1, **_bias())(x)


def _lambda(L, fn, *xs):
    return L.Lambda(lambda t: fn(*t) if isinstance(t, (list, tuple)) else fn(t))(list(xs) if len(xs) > 1 else xs[0])


def _sqdiff(a, b):
    import tensorflow as tf
    return tf.math.squared_difference(a, b)


SPECS = {
    # same shapes, 5x5x4 = 100 elements: the four-lane paths and a tail
    "op_mul_same": ((5, 5, 3), lambda L, x: L.Multiply()(_two(L, x))),
    "op_sub_same_relu": ((5, 5, 3), lambda L, x: L.ReLU()(L.Subtract()(_two(L, x, 5, 5)))),
    "op_add_same_relu6": ((4, 3, 3), lambda L, x: L.ReLU(6.0)(L.Add()(_two(L, x, 7, 7)))),
    "op_maximum_same": ((5, 5, 3), lambda L, x: L.Maximum()(_two(L, x, 7, 7))),
    "op_minimum_same": ((6, 6, 3), lambda L, x: L.Minimum()(_two(L, x, 9, 9))),
    "op_squared_difference_same": ((5, 5, 3), lambda L, x: _lambda(L, _sqdiff, *_two(L, x, 5, 5))),
    # a per-pixel value (H, W, 1) against (H, W, C), and (H, 1, C) against (H, W, C)
    "op_mul_hw1": ((5, 4, 3), lambda L, x: _lambda(L, lambda a, b: a * b, *_two(L, x, 1, 6))),
    "op_sub_h1c": ((4, 6, 3), lambda L, x: _lambda(
        L, lambda a, b: a - b, L.AveragePooling2D((1, 6))(L.Conv2D(5, 1, **_bias())(x)),
        L.Conv2D(5, 1, **_bias())(x))),
    "op_maximum_h1c": ((4, 6, 3), lambda L, x: _lambda(
        L, lambda a, b: _k().ops.maximum(a, b), L.Conv2D(5, 1, **_bias())(x),
        L.AveragePooling2D((1, 6))(L.Conv2D(5, 1, **_bias())(x)))),
    # a run-time scalar per batch row: (1, 1) against (1, 13)
    "op_mul_scalar": ((13,), lambda L, x: _lambda(L, lambda a, b: a * b, L.Dense(1, **_bias())(x),
                                                    L.Dense(13, **_bias())(x))),
    "op_squared_difference_hw1": ((5, 4, 3), lambda L, x: _lambda(L, _sqdiff, *_two(L, x, 6, 1))),
    # constants in flash: a per-channel vector (1, C), a scalar, a constant first operand, (H, 1, C)
    # (a constant operation right after a convolution folds into its weights: these take the input itself)
    "op_add_const_vector": ((5, 5, 3), lambda L, x: _lambda(L, lambda a: a + _const(1, 3), x)),
    "op_mul_const_scalar_relu": ((7, 3, 3), lambda L, x: L.ReLU()(_lambda(L, lambda a: a * 0.37, x))),
    "op_sub_const_first": ((5, 5, 3), lambda L, x: _lambda(
        L, lambda a: _const(5, 1, 6, seed=3) - a, L.Conv2D(6, 1, **_bias())(x))),
    "op_mul_const_vector": ((6, 6, 17), lambda L, x: _lambda(
        L, lambda a: a * _const(1, 1, 17, low=0.2, high=2.0), x)),
    "op_minimum_const": ((5, 5, 3), lambda L, x: _lambda(
        L, lambda a: _k().ops.minimum(a, _const(1, 5, seed=5)), L.Conv2D(5, 1, **_bias())(x))),
    "op_squared_difference_const": ((5, 5, 3), lambda L, x: _lambda(
        L, lambda a: _sqdiff(a, _const(1, 1, 5, seed=9)), L.Conv2D(5, 1, **_bias())(x))),
    # 5-D: [1, 2, 3, 2, 4] against [2, 1, 2, 1] (the input itself, reshaped)
    "op_add_5d": ((48,), lambda L, x: _lambda(
        L, lambda a: a + _const(2, 1, 2, 1, seed=11), L.Reshape((2, 3, 2, 4))(L.Dense(48, **_bias())(x)))),
}

CASES = {name: _op_model(shape, body, name) for name, (shape, body) in SPECS.items()}
