"""The two other ways users export a Keras model, for the zoo's models: float32 input and output around
an int8 model (the converter's default), and a `None` batch (shape arithmetic in front of RESHAPE)."""
from __future__ import annotations

import warnings

import numpy as np


def _converter(model, calibration: np.ndarray, float_io: bool):
    from tinycompress.frontend.quantize import _representative, _tensorflow
    tf = _tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(calibration, (1,) + tuple(model.inputs[0].shape[1:]))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


def _convert(converter) -> bytes:
    from tinycompress.frontend.quantize import _quiet
    with _quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


def float_io_tflite(model, calibration: np.ndarray) -> bytes:
    """Full int8 inside, float32 at the input and output: QUANTIZE first, DEQUANTIZE last."""
    return _convert(_converter(model, calibration, float_io=True))


def dynamic_batch_tflite(model, calibration: np.ndarray, float_io: bool = False) -> bytes:
    """The same layers and weights on an input of batch None, converted as full int8 (or float I/O)."""
    import keras
    inputs = [keras.Input(tuple(t.shape[1:]), batch_size=None, dtype=t.dtype) for t in model.inputs]
    # the same layers, weights and all
    dynamic = keras.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0],
                                       clone_function=lambda layer: layer)
    return _convert(_converter(dynamic, calibration, float_io))
