"""Zoo cases of the data-movement operators (tinycompress/ops/shape.py): CONCATENATION, PAD/PADV2, TRANSPOSE,
SLICE, STRIDED_SLICE, SPLIT, SPLIT_V, PACK, UNPACK, EXPAND_DIMS, SQUEEZE, each between small Conv/Dense layers
so the converter keeps them int8. tf.* calls go through Lambda layers."""
from __future__ import annotations

from modelzoo import _bias, _op_model


def _tf():
    import tensorflow as tf
    return tf


def _lam(fn):
    """A Lambda layer running `fn(tf, x)`."""
    import keras
    return keras.layers.Lambda(lambda x: fn(_tf(), x))


def _concat_channels(L, x):
    # ReLU output (zero point -128) beside a linear one: the converter gives both the output's quantization
    a = L.Conv2D(3, 1, activation="relu", **_bias())(x)
    b = L.Conv2D(5, 3, padding="same", **_bias())(x)
    return L.Concatenate(axis=-1)([a, L.Rescaling(4.0)(b)])


def _concat_rows(L, x):
    a = L.Conv2D(4, 1, **_bias())(x)
    b = L.Conv2D(4, (2, 1), **_bias())(x)                  # one row fewer
    c = L.Conv2D(4, 1, activation="relu6", **_bias())(x)
    return L.Concatenate(axis=1)([a, b, c])


def _concat_cols(L, x):
    a = L.Conv2D(4, 1, **_bias())(x)
    b = L.Conv2D(4, (1, 3), **_bias())(x)
    return L.Conv2D(3, 1, **_bias())(L.Concatenate(axis=2)([b, L.Rescaling(0.05)(a)]))


def _zero_pad(L, x):
    y = L.Conv2D(4, 1, activation="relu", **_bias())(x)   # zero point -128: the pad byte
    return L.Conv2D(3, 3, **_bias())(L.ZeroPadding2D(((1, 2), (0, 3)))(y))


def _pad_constant(L, x):
    y = L.Conv2D(4, 1, **_bias())(x)
    return L.Conv2D(3, 1, **_bias())(
        _lam(lambda tf, t: tf.pad(t, [[0, 0], [2, 1], [0, 2], [1, 0]], constant_values=0.75))(y))


def _permute(L, x):
    y = L.Conv2D(4, 1, **_bias())(x)
    return L.Conv2D(3, 1, **_bias())(L.Permute((2, 1, 3))(y))


def _transpose_perm(L, x):
    y = L.Conv2D(6, 1, **_bias())(x)
    return L.Dense(5, **_bias())(_lam(lambda tf, t: tf.transpose(t, [0, 3, 1, 2]))(y))


def _split_join(L, x):
    y = L.Conv2D(6, 1, **_bias())(x)
    parts = _lam(lambda tf, t: tf.split(t, 3, axis=-1))(y)
    a = L.Conv2D(2, 1, **_bias())(parts[2])
    return L.Concatenate(axis=-1)([a, parts[0], parts[1]])


def _split_v_rows(L, x):
    y = L.Conv2D(3, 1, **_bias())(x)
    a, b, c = _lam(lambda tf, t: tf.split(t, [1, 3, -1], axis=1))(y)
    return L.Concatenate(axis=1)([L.Conv2D(3, 1, **_bias())(c), a, b])


def _unstack_stack(L, x):
    y = L.Dense(6, **_bias())(x)                           # 4x6
    rows = _lam(lambda tf, t: tf.unstack(t, axis=1))(y)
    z = _lam(lambda tf, ts: tf.stack(ts[::-1], axis=2))(rows)  # 6x4, rows reversed
    return L.Dense(3, **_bias())(z)


def _strided_masks(L, x):
    y = L.Conv2D(5, 1, **_bias())(x)                       # 1x7x6x5
    z = _lam(lambda tf, t: tf.strided_slice(t, [0, 1, -1, 0], [1, 6, 0, 4], [1, 2, -2, 1],
                                            begin_mask=0b0001, end_mask=0b1001))(y)
    return L.Conv2D(3, 1, **_bias())(z)


def _strided_shrink(L, x):
    y = L.Conv2D(5, 1, **_bias())(x)                       # 1x6x6x5
    z = _lam(lambda tf, t: t[:, ::-1, 2, 1:])(y)           # shrink W, reverse H
    return L.Dense(3, **_bias())(z)


def _slice(L, x):
    y = L.Conv2D(5, 1, **_bias())(x)                       # 1x6x7x5
    return L.Conv2D(3, 1, **_bias())(_lam(lambda tf, t: tf.slice(t, [0, 1, 2, 1], [1, 3, -1, 3]))(y))


def _expand_squeeze(L, x):
    y = L.Dense(8, **_bias())(x)                           # 5x8
    z = _lam(lambda tf, t: tf.expand_dims(t, 2))(y)        # 5x1x8
    z = L.Conv2D(4, 1, **_bias())(z)
    return L.Dense(3, **_bias())(_lam(lambda tf, t: tf.squeeze(t, [2]))(z))


CASES = {
    "op_concat_channels": _op_model((5, 6, 3), _concat_channels, "op_concat_channels"),
    "op_concat_rows": _op_model((5, 4, 3), _concat_rows, "op_concat_rows"),
    "op_concat_cols": _op_model((4, 6, 3), _concat_cols, "op_concat_cols"),
    "op_zero_pad2d": _op_model((5, 4, 3), _zero_pad, "op_zero_pad2d"),
    "op_pad_constant": _op_model((4, 5, 3), _pad_constant, "op_pad_constant"),
    "op_permute": _op_model((5, 3, 4), _permute, "op_permute"),
    "op_transpose_perm": _op_model((3, 4, 2), _transpose_perm, "op_transpose_perm"),
    "op_split_join": _op_model((4, 5, 3), _split_join, "op_split_join"),
    "op_split_v_rows": _op_model((7, 3, 2), _split_v_rows, "op_split_v_rows"),
    "op_unstack_stack": _op_model((4, 7), _unstack_stack, "op_unstack_stack"),
    "op_strided_masks": _op_model((7, 6, 2), _strided_masks, "op_strided_masks"),
    "op_strided_shrink": _op_model((6, 6, 3), _strided_shrink, "op_strided_shrink"),
    "op_slice": _op_model((6, 7, 2), _slice, "op_slice"),
    "op_expand_squeeze": _op_model((5, 6), _expand_squeeze, "op_expand_squeeze"),
}
