"""Zoo cases whose largest live set lies inside a chain of sliding-window layers, which the planner runs by
patches of rows (tinycompress/codegen/patches.py; tests/test_patches.py).

A convolution before its pooling (the 32x32x16 activation between them), an inverted-residual block without
its ADD (the 24x24x48 expansion, a 3x3 depthwise window over it: halo rows kept in the line buffer), and a
VALID, stride-2 chain whose heights do not divide (rows the next layer never reads).
"""
from __future__ import annotations

from modelzoo import _bias, _op_model


def _conv_pool(L, x):
    h = L.Conv2D(16, 3, padding="same", activation="relu", **_bias())(x)
    return L.Conv2D(8, 1, **_bias())(L.MaxPooling2D(2)(h))


def _inverted(L, x):
    h = L.Conv2D(48, 1, activation="relu6", **_bias())(x)
    h = L.DepthwiseConv2D(3, padding="same", activation="relu6", **_bias())(h)
    return L.Conv2D(8, 1, **_bias())(h)


def _valid_s2(L, x):
    h = L.Conv2D(48, 3, strides=2, **_bias())(x)
    h = L.DepthwiseConv2D(3, **_bias())(h)
    return L.AveragePooling2D(2, strides=1)(L.Conv2D(6, 1, activation="relu", **_bias())(h))


CASES = {name: _op_model(shape, body, name) for name, (shape, body) in {
    "patch_conv_pool": ((32, 32, 3), _conv_pool),
    "patch_inverted": ((24, 24, 8), _inverted),
    "patch_valid_s2": ((43, 29, 4), _valid_s2),
}.items()}
