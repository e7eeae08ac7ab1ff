"""Zoo cases of clustered weights (tests/test_cluster.py): each model converted to full int8, then its weights
replaced by a K-entry palette's values by the `cluster:K` step (tinycompress/compress/cluster.py); the .tflite
stored is that clustered model, which TFLite Micro verifies the firmware against.

Depths and row counts cover both paths of each kernel: depths with and without whole groups of four and words
of eight, rows beyond a multiple of the decoded block's four, input channels no multiple of four (the int8
staging), passes of six output positions and fewer.
"""
from __future__ import annotations

from modelzoo import _bias, _op_model

K = {"cluster_fc": 16, "cluster_conv": 5, "cluster_dw": 3}
# the clustering shapes these models' bytes
KEY_SOURCES = ["tinycompress/compress/cluster.py"]


def _export(name):
    def export(model, calibration) -> bytes:
        from tinycompress.compress.cluster import ClusterMethod
        from tinycompress.compress.plan import Context
        from tinycompress.frontend.load import read_tflite
        from tinycompress.frontend.quantize import _convert_keras
        graph = read_tflite(_convert_keras(model, calibration))
        return ClusterMethod("cluster", str(K[name])).apply_graph(graph, Context())[0].source
    return export


def _fc(L, x):   # depths 13, 21, 10; rows 21, 10, 6
    return L.Dense(6, **_bias())(L.Dense(10, activation="relu", **_bias())(L.Dense(21, **_bias())(x)))


def _conv(L, x):
    # 3x3 /2 SAME over 3 channels (depth 27, 20 positions), 1x1 to 8, 3x3 VALID over 8 (depth 72, six
    # positions, five rows), 2x2 VALID to 7 (two positions: one column at a time)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", **_bias())(x)
    x = L.Conv2D(8, 1, **_bias())(x)
    x = L.Conv2D(5, 3, activation="relu6", **_bias())(x)
    return L.Conv2D(7, 2, **_bias())(x)


def _dw(L, x):    # multiplier 1 over 8 channels, SAME /2; multiplier 2 over 3 channels
    x = L.DepthwiseConv2D(3, padding="same", activation="relu", **_bias())(L.Conv2D(8, 1, **_bias())(x))
    x = L.DepthwiseConv2D(3, strides=2, padding="same", **_bias())(x)
    return L.DepthwiseConv2D((3, 2), depth_multiplier=2, **_bias())(L.Conv2D(3, 1, **_bias())(x))


CASES = {name: _op_model(shape, body, name) for name, (shape, body) in {
    "cluster_fc": ((13,), _fc),
    "cluster_conv": ((10, 8, 3), _conv),
    "cluster_dw": ((9, 9, 3), _dw),
}.items()}
EXPORTS = {name: _export(name) for name in CASES}
