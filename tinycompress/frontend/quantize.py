"""Stage 2, quantize: turn a float model into a full-int8 .tflite with TFLiteConverter.

TensorFlow is imported only here and only when a Keras or float model is
given: compiling an int8 .tflite never needs it.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..errors import EXIT_TOOL_MISSING, TinyCompressError, pip_hint

CALIBRATION_SAMPLES = 300  # enough for stable ranges, quick to convert


def _tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        # Once tflite_micro's absl is loaded, TensorFlow logs at import whatever the level: silence it.
        with _quiet():
            import tensorflow as tf
    except ImportError:
        raise TinyCompressError("TensorFlow is needed to quantize Keras or float models; install it with: "
                                + pip_hint("tensorflow-cpu", "keras"), EXIT_TOOL_MISSING) from None
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


def load_calibration(path: Path, io=None) -> np.ndarray:
    """Calibration samples 'x' (float32 features or integer token ids), checked against the model's input
    (a data.ModelIO: graph_io() or keras_io()) when given."""
    from .load import open_npz
    data = open_npz(path, "calibration")
    if "x" not in data:
        raise TinyCompressError(f"{path} has no calibration samples under 'x' "
                                f"(it has {', '.join(data.files) or 'nothing'})")
    if io is not None:
        from .data import check_samples
        return check_samples(data["x"], io, f"{path}: 'x'")
    x = np.asarray(data["x"])
    return x if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)


def keras_io(model):
    """What a Keras model reads and writes (data.ModelIO): token ids when it looks them up in an Embedding."""
    import keras
    from .data import ModelIO
    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    shape = (1,) + tuple(model.inputs[0].shape[1:])
    return ModelIO(shape, bool(embeddings), min((e.input_dim for e in embeddings), default=None),
                   (1,) + tuple(model.outputs[0].shape[1:]))


def _for_conversion(model):
    """The model rebuilt for TFLiteConverter, when it needs it, on the same weights and layer names:
    - on a batch-1 input: a dynamic batch converts to SHAPE/STRIDED_SLICE/PACK ops;
    - with a plain tf.gather for each Embedding: Keras 3's Embedding converts with a LESS/ADD/SELECT
      prelude for negative ids that TFLite Micro cannot run, a gather converts to one GATHER."""
    import keras
    tf = _tensorflow()
    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    shape = model.inputs[0].shape
    if shape[0] == 1 and not embeddings:
        return model
    for layer in embeddings:
        if layer.mask_zero:
            raise TinyCompressError(f"layer {layer.name}: Embedding(mask_zero=True) is not supported; pool over "
                                    "all tokens (padding included) or build the model without the mask")

    class TokenLookup(keras.layers.Layer):
        def __init__(self, table_shape, **kwargs):
            super().__init__(**kwargs)
            self.table_shape = tuple(table_shape)

        def build(self, _):
            self.embeddings = self.add_weight(shape=self.table_shape, initializer="zeros", name="embeddings")

        def call(self, ids):
            return tf.gather(self.embeddings, tf.cast(ids, "int32"))

    lookups = {}

    def clone(layer):   # every other layer is reused as it is, weights and all
        if not isinstance(layer, keras.layers.Embedding):
            return layer
        lookups[layer.name] = TokenLookup((layer.input_dim, layer.output_dim), name=layer.name)
        return lookups[layer.name]

    # token ids are int32, even where the Keras model declared its input float (the Embedding casts)
    dtype = "int32" if embeddings else model.inputs[0].dtype
    fixed = keras.Input(shape=tuple(shape[1:]), batch_size=1, dtype=dtype)
    rebuilt = keras.models.clone_model(model, input_tensors=fixed, clone_function=clone)
    for layer in embeddings:
        lookups[layer.name].embeddings.assign(layer.embeddings)
    return rebuilt


def _representative(calibration: np.ndarray, input_shape):
    samples = calibration[:CALIBRATION_SAMPLES]
    samples = samples.astype(np.int32 if np.issubdtype(samples.dtype, np.integer) else np.float32)

    def generator():
        for sample in samples:
            yield [sample.reshape(input_shape)]
    return generator


def keras_to_int8_tflite(model, calibration: np.ndarray) -> bytes:
    """Full int8: int8 input (or int32 token ids) and output, per-channel int8 weights, int32 biases.
    TensorFlow converts in a child process (see _in_child): a crash there is one line, not a dead CLI."""
    with tempfile.TemporaryDirectory(prefix="tinycompress-convert-") as tmp:
        model.save(Path(tmp) / "model.keras")
        tflite = _in_child(Path(tmp), "keras", calibration, f"the Keras model {model.name}")
    if tflite is None:   # the saved model needs Python code the child cannot import (a Lambda's function)
        return _convert_keras(model, calibration)
    return tflite


def float_tflite_to_int8(tflite: bytes, calibration: np.ndarray) -> bytes:
    """Quantize a float .tflite with TensorFlow's post-training calibrator (in a child process)."""
    with tempfile.TemporaryDirectory(prefix="tinycompress-convert-") as tmp:
        (Path(tmp) / "model.tflite").write_bytes(tflite)
        return _in_child(Path(tmp), "float", calibration, "the float .tflite model")


def keras_to_int8_tflite_from(model, representative) -> bytes:
    """Full int8 (int8 inputs and outputs but int32 token ids) calibrated on `representative`, a
    function giving dicts of input name -> sample: for models of several inputs, such as the key/value-
    cached step models of `generate --cache` (examples/tinylm/step.py)."""
    tf = _tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _convert_keras(model, calibration: np.ndarray) -> bytes:
    tf = _tensorflow()
    model = _for_conversion(model)
    shape = (1,) + tuple(model.inputs[0].shape[1:])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(calibration, shape)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if str(model.inputs[0].dtype).startswith("float"):   # token ids stay int32
        converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        with _quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "statistics for quantized inputs": the representative set gives them
            return converter.convert()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinyCompressError(f"TFLiteConverter could not quantize the model to int8: {first}") from None


def _convert_float(tflite: bytes, calibration: np.ndarray) -> bytes:
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


# Test-only: when set in the environment, the conversion child kills itself with this signal number
# before converting (tests/test_crashes.py checks that a crash of TensorFlow becomes one line).
CRASH_HOOK = "TINYCOMPRESS_TEST_CONVERTER_SIGNAL"
CONVERT_TIMEOUT = 1800
UNLOADABLE = 3   # the child's exit code when the saved Keras model does not load there


def _in_child(work: Path, kind: str, calibration: np.ndarray, what: str) -> bytes | None:
    """Run _child(work) in a fresh Python: it reads the model and calibration.npy from `work` and writes
    model_int8.tflite, or error.txt for a TinyCompressError. A signal becomes one line naming the stage.
    None when the child cannot load the saved Keras model (it refers to code only this process has)."""
    np.save(work / "calibration.npy", np.asarray(calibration), allow_pickle=False)
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    try:
        proc = subprocess.run([sys.executable, "-m", "tinycompress.frontend.quantize", str(work), kind], env=env,
                              capture_output=True, text=True, timeout=CONVERT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise TinyCompressError(f"TensorFlow's converter ran past {CONVERT_TIMEOUT} s converting {what}") from None
    if proc.returncode < 0:
        raise TinyCompressError(f"TensorFlow's converter crashed ({_signal(-proc.returncode)}) converting {what} "
                                "to int8; try another TensorFlow version or simplify the model")
    if proc.returncode == UNLOADABLE:
        return None
    if proc.returncode != 0:
        error = work / "error.txt"
        if error.is_file():
            raise TinyCompressError(error.read_text(), int((work / "error_code.txt").read_text()))
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise TinyCompressError(f"TensorFlow's converter failed (exit {proc.returncode}) converting {what}: "
                                f"{lines[-1] if lines else 'no output'}")
    return (work / "model_int8.tflite").read_bytes()


def _signal(number: int) -> str:
    try:
        return f"signal {number}, {signal.Signals(number).name}"
    except ValueError:
        return f"signal {number}"


def _child(work: Path, kind: str) -> int:
    if os.environ.get(CRASH_HOOK):
        os.kill(os.getpid(), int(os.environ[CRASH_HOOK]))
    try:
        calibration = np.load(work / "calibration.npy", allow_pickle=False)
        if kind == "keras":
            import keras
            _tensorflow()
            try:
                with _quiet():   # our own file, written by the parent a moment ago: its lambdas may load
                    model = keras.models.load_model(work / "model.keras", compile=False, safe_mode=False)
            except Exception:
                return UNLOADABLE
            tflite = _convert_keras(model, calibration)
        else:
            tflite = _convert_float((work / "model.tflite").read_bytes(), calibration)
    except TinyCompressError as exc:
        (work / "error.txt").write_text(str(exc))
        (work / "error_code.txt").write_text(str(exc.exit_code))
        return 1
    (work / "model_int8.tflite").write_bytes(tflite)
    return 0


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1]), sys.argv[2]))
