"""Zoo cases of INT4 weights (tests/test_int4.py): each model converted to full int8, then its weights
rewritten to TFLite's INT4 type by the `int4` step (tinycompress/compress/int4.py); the .tflite stored is
that rewritten model, which TFLite Micro verifies the firmware against.

Depths and channel counts cover both nibble paths of each kernel: the DSP forms (rows of eight values,
a depthwise layer's channels by eight) and what is left (odd depths, whose packing crosses rows).
"""
from __future__ import annotations

from modelzoo import _bias, _op_model

# the rewrite's scales (packable_scale) and packing shape these models' bytes
KEY_SOURCES = ["tinycompress/compress/int4.py", "tinycompress/ops/fixedpoint.py", "tinycompress/ops/nibbles.py"]


def _int4_export(model, calibration) -> bytes:
    from tinycompress.compress.int4 import Int4Method
    from tinycompress.compress.plan import Context
    from tinycompress.frontend.load import read_tflite
    from tinycompress.frontend.quantize import _convert_keras
    graph = read_tflite(_convert_keras(model, calibration))
    return Int4Method("int4", None).apply_graph(graph, Context())[0].source


def _fc(L, x):   # depth 21 (odd: the packing crosses rows), then 16 (whole words of eight)
    return L.Dense(6, **_bias())(L.Dense(16, activation="relu", **_bias())(L.Dense(21, **_bias())(x)))


def _conv(L, x):  # 3x3 /2 SAME over 3 channels (depth 27), 1x1 to 8, 3x3 VALID over 8 (depth 72)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", **_bias())(x)
    x = L.Conv2D(8, 1, **_bias())(x)
    return L.Conv2D(5, 3, activation="relu6", **_bias())(x)


def _dw(L, x):    # multiplier 1 over 8 channels (the DSP form), SAME /2; multiplier 2 over 3 channels
    x = L.DepthwiseConv2D(3, padding="same", activation="relu", **_bias())(L.Conv2D(8, 1, **_bias())(x))
    x = L.DepthwiseConv2D(3, strides=2, padding="same", **_bias())(x)
    return L.DepthwiseConv2D((3, 2), depth_multiplier=2, **_bias())(L.Conv2D(3, 1, **_bias())(x))


def _dw12(L, x):  # 12 channels (a multiple of four, not of eight): 3x3 SAME (int16 planes), 3x3 /2 VALID
    x = L.DepthwiseConv2D(3, padding="same", activation="relu", **_bias())(L.Conv2D(12, 1, **_bias())(x))
    return L.DepthwiseConv2D(3, strides=2, **_bias())(x)


CASES = {name: _op_model(shape, body, name) for name, (shape, body) in {
    "int4_fc": ((13,), _fc),
    "int4_conv": ((9, 8, 3), _conv),
    "int4_dw": ((9, 9, 3), _dw),
    "int4_dw12": ((7, 6, 3), _dw12),
}.items()}
EXPORTS = {name: _int4_export for name in CASES}
