"""Zoo cases of TRANSPOSE_CONV, RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR (tests/test_spatial.py).

Keras's Conv2DTranspose converts to TRANSPOSE_CONV (its ReLU fused), UpSampling2D(interpolation=
"bilinear") to RESIZE_BILINEAR with half_pixel_centers. Keras 3's nearest UpSampling2D becomes RESHAPE and
TILE, which TFLite Micro lacks; tf.image.resize's nearest gives RESIZE_NEAREST_NEIGHBOR. tf.image.resize
and TF1's resize ops in a Lambda give the other coordinate conventions (align_corners, neither),
non-integer scale factors and downscaling.
"""
from __future__ import annotations

from modelzoo import _bias, _op_model


def _resize(size, method, align_corners=False, half_pixel_centers=None):
    """A resize to `size` by the TFLite op for `method` ("nearest" or "bilinear"), in a Lambda: TF1's
    ops take align_corners and half_pixel_centers; TF2's tf.image.resize uses half-pixel centers."""
    def layer(L, x):
        import tensorflow as tf
        if half_pixel_centers is None:
            fn = lambda t: tf.image.resize(t, size, method=method)  # noqa: E731
        else:
            op = tf.compat.v1.image.resize_nearest_neighbor if method == "nearest" else \
                tf.compat.v1.image.resize_bilinear
            fn = lambda t: op(t, size, align_corners=align_corners,  # noqa: E731
                              half_pixel_centers=half_pixel_centers)
        return L.Lambda(fn)(L.Conv2D(4, 1, **_bias())(x))   # a conv in front: the input's zero point varies
    return layer


def _tconv(filters, kernel, padding, activation=None, bias=True, strides=2):
    def layer(L, x):
        extra = _bias() if bias else {"use_bias": False}
        return L.Conv2DTranspose(filters, kernel, strides=strides, padding=padding, activation=activation,
                                 **extra)(x)
    return layer


CASES = {name: _op_model(shape, body, name) for name, (shape, body) in {
    "op_tconv_3x3_s2_same_relu": ((5, 5, 3), _tconv(4, 3, "same", "relu")),
    "op_tconv_2x2_s2_valid": ((4, 3, 6), _tconv(5, 2, "valid")),
    "op_tconv_3x3_s2_valid_nobias": ((4, 5, 3), _tconv(4, 3, "valid", bias=False)),
    # depth 20: Helium's 16 lanes and a tail, the DSP path's words of four and a tail
    "op_tconv_3x3_s2_same_deep": ((3, 4, 20), _tconv(6, 3, "same")),
    "op_tconv_4x3_s1x2_same": ((4, 4, 8), _tconv(3, (4, 3), "same", "relu", strides=(1, 2))),
    # after a ReLU: the input zero point at -128; RELU6 fused
    "op_tconv_2x2_s2_same_zp_min": ((4, 4, 3), lambda L, x: _tconv(5, 2, "same", "relu6")(
        L, L.Conv2D(4, 1, activation="relu", **_bias())(x))),
    "op_resize_nearest_x2": ((5, 4, 3), _resize((10, 8), "nearest")),
    "op_upsample_bilinear": ((5, 4, 3), lambda L, x: L.UpSampling2D((2, 3), interpolation="bilinear")(
        L.Conv2D(6, 1, **_bias())(x))),
    "op_resize_nearest_align": ((5, 4, 3), _resize((9, 7), "nearest", True, False)),
    "op_resize_nearest_legacy": ((5, 4, 3), _resize((7, 11), "nearest", False, False)),
    "op_resize_nearest_half_down": ((9, 10, 3), _resize((4, 6), "nearest")),
    "op_resize_nearest_half_up": ((5, 4, 3), _resize((7, 9), "nearest")),
    "op_resize_bilinear_align": ((5, 4, 3), _resize((9, 7), "bilinear", True, False)),
    "op_resize_bilinear_legacy": ((5, 4, 3), _resize((7, 11), "bilinear", False, False)),
    "op_resize_bilinear_half_up": ((5, 4, 3), _resize((7, 9), "bilinear")),
    "op_resize_bilinear_half_down": ((9, 10, 3), _resize((4, 6), "bilinear")),
}.items()}
