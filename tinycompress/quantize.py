"""Stage 2, quantize: turn a float model into a full-int8 .tflite with TFLiteConverter.

TensorFlow is imported only here and only when a Keras or float model is
given: compiling an int8 .tflite never needs it.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np

from .errors import EXIT_TOOL_MISSING, TinyCompressError

CALIBRATION_SAMPLES = 300  # enough for stable ranges, quick to convert


def _tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        # Once tflite_micro's absl is loaded, TensorFlow logs at import whatever the level: silence it.
        with _quiet():
            import tensorflow as tf
    except ImportError:
        raise TinyCompressError("TensorFlow is needed to quantize Keras or float models; install it with: "
                                "pip install -e '.[keras]'", EXIT_TOOL_MISSING) from None
    tf.get_logger().setLevel("ERROR")
    return tf


@contextlib.contextmanager
def _quiet():
    """The converter prints to the C-level stdout/stderr; keep the CLI's output clean."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def load_keras(path: Path):
    path = Path(path)
    if not path.is_file():
        raise TinyCompressError(f"model file {path} does not exist")
    _tensorflow()
    import keras
    try:
        with _quiet():
            return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise TinyCompressError(f"Keras cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def load_calibration(path: Path) -> np.ndarray:
    from .load import open_npz
    data = open_npz(path, "calibration")
    if "x" not in data:
        raise TinyCompressError(f"{path} has no calibration samples under 'x' "
                                f"(it has {', '.join(data.files) or 'nothing'})")
    return np.asarray(data["x"], np.float32)


def _with_batch_one(model):
    """A dynamic batch converts to SHAPE/STRIDED_SLICE/PACK ops: rebuild on a batch-1 input."""
    import keras
    shape = model.inputs[0].shape
    if shape[0] == 1:
        return model
    fixed = keras.Input(shape=tuple(shape[1:]), batch_size=1, dtype=model.inputs[0].dtype)
    return keras.Model(fixed, model(fixed))


def _representative(calibration: np.ndarray, input_shape):
    samples = calibration[:CALIBRATION_SAMPLES].astype(np.float32)

    def generator():
        for sample in samples:
            yield [sample.reshape(input_shape)]
    return generator


def keras_to_int8_tflite(model, calibration: np.ndarray) -> bytes:
    """Full int8: int8 input and output, per-channel int8 weights, int32 biases."""
    tf = _tensorflow()
    model = _with_batch_one(model)
    shape = (1,) + tuple(model.inputs[0].shape[1:])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(calibration, shape)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        with _quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "statistics for quantized inputs": the representative set gives them
            return converter.convert()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinyCompressError(f"TFLiteConverter could not quantize the model to int8: {first}") from None


def float_tflite_to_int8(tflite: bytes, calibration: np.ndarray) -> bytes:
    """Quantize a float .tflite with TensorFlow's post-training calibrator."""
    tf = _tensorflow()
    from tensorflow.lite.python.optimize import calibrator
    from .load import read_tflite
    shape = read_tflite(tflite).input_tensor().shape
    try:
        with _quiet():
            return calibrator.Calibrator(tflite).calibrate_and_quantize(
                _representative(calibration, shape), tf.int8, tf.int8, False, tf.int8)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinyCompressError(f"the float model could not be quantized to int8 ({first}); "
                                "convert it from its Keras model instead") from None
