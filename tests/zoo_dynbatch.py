"""Dynamic-batch exports (tinycompress/frontend/fold.py): small Keras models converted with a `None` batch, as users
get them, so the file carries int32 shape arithmetic (SHAPE, STRIDED_SLICE, PACK, GATHER, REDUCE_PROD,
CONCATENATION) in front of its RESHAPEs and -1 batches in its shape signatures.

- dyn_*: full int8 (int8 input and output): an MLP with Flatten, a CNN with Reshape, Flatten and SOFTMAX,
  a Conv1D stack with pooling (its halves are EXPAND_DIMS and a 1xN CONV_2D), GlobalAveragePooling2D.
- dynf_*: the same models with float32 input and output (QUANTIZE first, DEQUANTIZE last).
- dyn_seq_dense: a Dense on a sequence, whose Tensordot reshape only REDUCE_PROD can size and whose
  flatbuffer declares placeholder shapes (1x1): TFLite Micro cannot run it (it has no REDUCE_PROD kernel),
  tinycompress can (test_dynbatch.py checks it against TFLite Micro on the file with its shapes folded).
- op_conv1d_kws: a Conv1D keyword spotter with a fixed batch (issue 15, item 4: its layer names
  conv1d_1 and conv1d_1_2 collided in C).
"""
from __future__ import annotations

from modelzoo import _bias, _op_model


def _dynamic(float_io: bool):
    def export(model, calibration):
        from zooexport import dynamic_batch_tflite
        return dynamic_batch_tflite(model, calibration, float_io=float_io)
    return export


def _mlp(L, x):
    h = L.Dense(16, activation="relu", **_bias())(L.Flatten()(x))
    return L.Softmax()(L.Dense(10, **_bias())(h))


def _cnn(L, x):
    h = L.Conv2D(4, 3, activation="relu", **_bias())(x)
    h = L.Flatten()(L.Reshape((8, 8))(h))
    return L.Softmax()(L.Dense(6, **_bias())(h))


def _conv1d(L, x):
    """A keyword-spotter-like Conv1D stack: two convolutions, max pooling, average over time, Dense."""
    h = L.Conv1D(8, 3, activation="relu", **_bias())(x)
    h = L.MaxPooling1D(2)(L.Conv1D(8, 3, activation="relu", **_bias())(h))
    return L.Dense(4, **_bias())(L.GlobalAveragePooling1D()(h))


def _kws(L, x):
    """49 frames of 10 MFCCs: strided Conv1D, two more, max and average pooling over time, Dense."""
    h = L.Conv1D(16, 5, strides=2, activation="relu", **_bias())(x)
    h = L.Conv1D(16, 3, activation="relu", **_bias())(h)
    h = L.MaxPooling1D(2)(h)
    h = L.Conv1D(24, 3, padding="same", activation="relu", **_bias())(h)
    return L.Softmax()(L.Dense(12, **_bias())(L.GlobalAveragePooling1D()(h)))


def _gap(L, x):
    h = L.Conv2D(6, 3, padding="same", activation="relu", **_bias())(x)
    return L.Dense(5, **_bias())(L.GlobalAveragePooling2D()(h))


def _seq_dense(L, x):
    return L.Dense(5, **_bias())(L.Flatten()(L.Dense(6, activation="relu", **_bias())(x)))


MODELS = {"mlp": ((8, 8), _mlp), "cnn": ((6, 6, 2), _cnn), "conv1d": ((20, 3), _conv1d),
          "gap": ((7, 7, 2), _gap)}
CASES = {}
EXPORTS = {}
for _name, (_shape, _body) in MODELS.items():
    for _prefix, _float_io in (("dyn", False), ("dynf", True)):
        CASES[f"{_prefix}_{_name}"] = _op_model(_shape, _body, f"{_prefix}_{_name}")
        EXPORTS[f"{_prefix}_{_name}"] = _dynamic(_float_io)
CASES["dyn_seq_dense"] = _op_model((9, 4), _seq_dense, "dyn_seq_dense")
EXPORTS["dyn_seq_dense"] = _dynamic(False)
CASES["op_conv1d_kws"] = _op_model((49, 10), _kws, "op_conv1d_kws")
