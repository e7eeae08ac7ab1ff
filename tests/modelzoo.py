"""Every test model, built from this script with fixed seeds and cached as .tflite + .npz.

Usage: python tests/modelzoo.py [--out DIR] [--force] [NAME ...]

Each model is a Keras model (batch size 1) trained briefly so its weights look
real, converted by tinycompress.frontend.quantize to full int8, and stored with at least
100 test inputs (`x` float32, `x_int8`) and, for classifiers, labels (`y`).
The networks also keep their float `.keras` model and training set
(`<name>_train.npz`) for factorization sweeps.

The build is deterministic: the same bytes in every file on every run, whatever was built
before in the process (each model starts from a cleared Keras session and the same seeds), with
TensorFlow on one thread and deterministic ops, and zip members (.npz, .keras) stamped with a
fixed date. A cached model is reused only when its `<name>.key` holds cache_key(): a hash of
this script, the files it builds with and the versions of the packages that shape the bytes.
`build()` builds in a fresh Python process, where TensorFlow's threads can still be set.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / ".models"
TEST_INPUTS = 120
SEED = 7
# What a model's bytes depend on besides its name: the key of the cache.
SOURCES = [Path(__file__).resolve(), ROOT / "tinycompress" / "frontend" / "quantize.py", ROOT / "examples" / "digits" / "train.py"]
PACKAGES = ["tensorflow-cpu", "keras", "numpy", "tflite-micro", "scikit-learn"]
# TensorFlow reads these when it starts: one thread each, deterministic kernels.
DETERMINISTIC_ENV = {"TF_DETERMINISTIC_OPS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                     "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def cache_key(name: str | None = None) -> str:
    """The cache key of `name`: SOURCES and PACKAGES, and the zoo_*.py module that defines it, if one does,
    with its KEY_SOURCES (an edit there rebuilds that module's models, not the whole zoo)."""
    digest = hashlib.sha256()
    for path in SOURCES + MODULE_OF.get(name, []):
        digest.update(path.read_bytes())
    for package in PACKAGES:
        digest.update(f"{package}=={_version(package)}\n".encode())
    return digest.hexdigest()[:16]


def _deterministic_tensorflow():
    """Before any TensorFlow op runs: one thread for training and conversion, deterministic ops."""
    os.environ.update(DETERMINISTIC_ENV)
    from tinycompress.frontend.quantize import _tensorflow
    tf = _tensorflow()   # quiet TensorFlow's import
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()


def _keras():
    """Keras with a cleared session (layer names restart at dense, dense_1, ...) and every seed set."""
    import keras
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)   # Python's random, NumPy's and TensorFlow's
    return keras


def _digits(image: bool):
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x = x.reshape(-1, 8, 8, 1) if image else x
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(x))
    x, y = x[order], digits.target[order].astype(np.int64)
    return x[:-TEST_INPUTS], y[:-TEST_INPUTS], x[-TEST_INPUTS:], y[-TEST_INPUTS:]


def _digits_example():
    spec = importlib.util.spec_from_file_location("digits_example", ROOT / "examples" / "digits" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train(model, x, y, epochs: int, loss: str):
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)


# ---- networks -------------------------------------------------------------------------------------

def digits_mlp():
    keras = _keras()
    L = keras.layers
    x, y, tx, ty = _digits(image=False)
    inp = keras.Input((64,), batch_size=1)
    h = L.Dense(32, activation="relu")(inp)
    h = L.Dense(16, activation="relu")(h)
    out = L.Softmax()(L.Dense(10)(h))
    model = keras.Model(inp, out, name="digits_mlp")
    _train(model, x, y, 40, "sparse_categorical_crossentropy")
    return model, x, y, tx, ty


def digits_cnn():
    keras = _keras()
    x, y, tx, ty = _digits(image=True)
    model = _digits_example().build_model(keras)  # the bundled demo's architecture
    _train(model, x, y, 30, "sparse_categorical_crossentropy")
    return model, x, y, tx, ty


def kws_dscnn():
    """MLPerf Tiny keyword spotting DS-CNN on synthetic 49x10 MFCC-like features, 12 classes."""
    keras = _keras()
    L = keras.layers
    rng = np.random.default_rng(SEED)
    centers = rng.normal(0, 1, (12, 49, 10, 1)).astype(np.float32)
    y = rng.integers(0, 12, 700)
    x = (centers[y] + rng.normal(0, 0.8, (700, 49, 10, 1))).astype(np.float32)

    def bn_relu(h):
        return L.ReLU()(L.BatchNormalization(momentum=0.9)(h))

    inp = keras.Input((49, 10, 1), batch_size=1)
    h = bn_relu(L.Conv2D(64, (10, 4), strides=2, padding="same")(inp))
    for _ in range(4):
        h = bn_relu(L.DepthwiseConv2D(3, padding="same")(h))
        h = bn_relu(L.Conv2D(64, 1)(h))
    h = L.AveragePooling2D(pool_size=(h.shape[1], h.shape[2]))(h)
    out = L.Softmax()(L.Dense(12)(L.Flatten()(h)))
    model = keras.Model(inp, out, name="kws_dscnn")
    _train(model, x[:600], y[:600], 4, "sparse_categorical_crossentropy")
    return model, x[:600], y[:600], x[-100:], y[-100:]


def ad_autoencoder():
    """MLPerf Tiny anomaly detection autoencoder on synthetic 640-value log-mel frames."""
    keras = _keras()
    L = keras.layers
    rng = np.random.default_rng(SEED)
    basis = rng.normal(0, 1, (6, 640)).astype(np.float32)
    x = (rng.normal(0, 1, (500, 6)) @ basis / 3 + rng.normal(0, 0.1, (500, 640))).astype(np.float32)

    def block(h, units):
        return L.ReLU()(L.BatchNormalization(momentum=0.9)(L.Dense(units)(h)))

    inp = keras.Input((640,), batch_size=1)
    h = inp
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        h = block(h, units)
    model = keras.Model(inp, L.Dense(640)(h), name="ad_autoencoder")
    _train(model, x[:400], x[:400], 2, "mse")
    return model, x[:400], None, x[-100:], None


# ---- one model per operator case ----------------------------------------------------------------

def vww_mobilenet():
    """MLPerf Tiny visual wake words: MobileNetV1 width 0.25 on 96x96x3, 2 classes, about 210 k
    parameters. Untrained (random weights, calibrated on random images): it is for speed and
    memory benchmarks, not accuracy."""
    keras = _keras()
    L = keras.layers
    rng = np.random.default_rng(SEED)
    x = rng.uniform(0, 1, (64, 96, 96, 3)).astype(np.float32)

    inp = keras.Input((96, 96, 3), batch_size=1)
    h = L.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inp)
    for filters, stride in [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 + \
            [(256, 2), (256, 1)]:
        h = L.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu6")(h)
        h = L.Conv2D(filters, 1, activation="relu6")(h)
    h = L.AveragePooling2D(pool_size=(h.shape[1], h.shape[2]))(h)
    # Logits out: with untrained weights their scale is too small for SOFTMAX's input scaling.
    model = keras.Model(inp, L.Dense(2)(L.Flatten()(h)), name="vww_mobilenet")
    return model, x[:48], None, x[48:], np.zeros(16, np.int64)


def _op_model(shape, body, name):
    """Untrained weights with random biases: each case is about the arithmetic, not accuracy."""
    def build():
        keras = _keras()
        inp = keras.Input(shape, batch_size=1)
        model = keras.Model(inp, body(keras.layers, inp), name=name)
        rng = np.random.default_rng(SEED)
        calib = rng.uniform(-1, 1, (200,) + shape).astype(np.float32)
        test = rng.uniform(-1.2, 1.2, (TEST_INPUTS,) + shape).astype(np.float32)  # past the range: saturation
        return model, calib, None, test, None
    return build


def _bias():
    return {"bias_initializer": "random_normal"}


def _residual(L, x):
    a = L.Conv2D(5, 3, padding="same", **_bias())(x)
    b = L.Conv2D(5, 1, **_bias())(x)
    return L.ReLU()(L.Add()([a, L.Rescaling(3.0)(b)]))


OPS = {
    "op_fc_relu": ((23,), lambda L, x: L.Dense(13, activation="relu", **_bias())(x)),
    "op_fc_relu6": ((23,), lambda L, x: L.Dense(13, activation="relu6", **_bias())(x)),
    "op_fc_none": ((23,), lambda L, x: L.Dense(13, **_bias())(x)),
    # depth a multiple of four: the pair form on DSP cores, with two rows after the blocks of four
    "op_fc_pairs": ((36,), lambda L, x: L.Dense(10, activation="relu6", **_bias())(x)),
    "op_conv_3x3_same": ((9, 9, 3), lambda L, x: L.Conv2D(7, 3, padding="same", activation="relu", **_bias())(x)),
    "op_conv_5x3_valid_s2": ((11, 10, 5), lambda L, x: L.Conv2D(7, (5, 3), strides=2, **_bias())(x)),
    "op_conv_3x3_same_s2": ((10, 9, 3), lambda L, x: L.Conv2D(5, 3, strides=2, padding="same",
                                                               activation="relu6", **_bias())(x)),
    "op_conv_dilated": ((12, 12, 3), lambda L, x: L.Conv2D(5, 3, dilation_rate=2, padding="same", **_bias())(x)),
    "op_dw_3x3_same": ((9, 9, 7), lambda L, x: L.DepthwiseConv2D(3, padding="same", activation="relu",
                                                                  **_bias())(x)),
    "op_dw_mult2_valid": ((8, 9, 5), lambda L, x: L.DepthwiseConv2D(3, depth_multiplier=2, **_bias())(x)),
    "op_dw_s2_same": ((11, 11, 5), lambda L, x: L.DepthwiseConv2D(3, strides=2, padding="same",
                                                                   activation="relu6", **_bias())(x)),
    "op_maxpool_2x2": ((8, 8, 5), lambda L, x: L.MaxPooling2D(2)(x)),
    "op_maxpool_3x3_s1_same": ((7, 7, 5), lambda L, x: L.MaxPooling2D(3, strides=1, padding="same")(x)),
    "op_avgpool_2x2": ((8, 8, 5), lambda L, x: L.AveragePooling2D(2)(x)),
    "op_avgpool_3x3_s2_same": ((9, 9, 7), lambda L, x: L.AveragePooling2D(3, strides=2, padding="same")(x)),
    "op_avgpool_3x3_s1_valid": ((7, 7, 5), lambda L, x: L.AveragePooling2D(3, strides=1)(x)),
    "op_reshape": ((6, 6, 3), lambda L, x: L.Dense(4, **_bias())(L.Reshape((9, 12))(L.Conv2D(3, 1)(x)))),
    "op_softmax": ((17,), lambda L, x: L.Softmax()(L.Dense(11, **_bias())(x))),
    "op_add_residual": ((8, 8, 3), _residual),
    "op_mean": ((6, 6, 3), lambda L, x: L.GlobalAveragePooling2D()(L.Conv2D(7, 3, **_bias())(x))),
    "op_mean_keepdims": ((6, 5, 3), lambda L, x: L.GlobalAveragePooling2D(keepdims=True)(
        L.Conv2D(5, 1, **_bias())(x))),
    # Element-wise activations as ops of their own (ops/unary.py, ops/prelu.py), each after a layer that does
    # not fuse it, or alone on the input.
    "op_logistic": ((17,), lambda L, x: L.Activation("sigmoid")(L.Dense(12, **_bias())(x))),
    "op_tanh": ((6, 6, 3), lambda L, x: L.Activation("tanh")(L.Conv2D(5, 1, **_bias())(x))),
    "op_hard_swish": ((7, 7, 6), lambda L, x: L.Activation("hard_swish")(L.DepthwiseConv2D(3, **_bias())(x))),
    "op_leaky_relu": ((19,), lambda L, x: L.LeakyReLU(0.1)(L.Dense(14, **_bias())(x))),
    "op_prelu": ((5, 5, 3), lambda L, x: L.PReLU(alpha_initializer="random_uniform")(
        L.Conv2D(4, 1, **_bias())(x))),
    "op_prelu_shared": ((5, 5, 3), lambda L, x: L.PReLU(alpha_initializer="random_uniform", shared_axes=[1, 2])(
        L.Conv2D(6, 3, **_bias())(x))),
    "op_relu": ((4, 4, 3), lambda L, x: L.ReLU()(x)),
    "op_relu_after_mean": ((5, 5, 6), lambda L, x: L.ReLU()(L.GlobalAveragePooling2D()(x))),
    "op_relu6": ((21,), lambda L, x: L.ReLU(max_value=6)(L.Reshape((21,))(x))),
}

# ---- token models: int32 ids into an embedding table ------------------------------------------------

TEXT_VOCAB, TEXT_TOKENS, TEXT_WIDTH = 600, 16, 32


def text_vocab() -> list[str]:
    """Distinct made-up tokens of 1 to 20 bytes, some past kronecker's 16 and some multi-byte UTF-8."""
    rng = np.random.default_rng(SEED)
    letters = list("abcdefghijklmnopqrstuvwxyz_") + ["é", "ß", "→"]
    vocab, seen = ["<pad>"], {"<pad>"}
    while len(vocab) < TEXT_VOCAB:
        token = "".join(rng.choice(letters, size=int(rng.integers(1, 21))))
        if token not in seen:
            seen.add(token)
            vocab.append(token)
    return vocab


def _text_model(body, trained: bool):
    """Ids (1, 16) into Embedding(600, 32), then `body`. Trained: 4 classes, by which quarter of the
    vocabulary most of a sequence's tokens come from. The test ids visit every row of the table."""
    def build():
        keras = _keras()
        rng = np.random.default_rng(SEED)
        inp = keras.Input((TEXT_TOKENS,), batch_size=1, dtype="int32")
        h = keras.layers.Embedding(TEXT_VOCAB, TEXT_WIDTH, name="embedding")(inp)
        model = keras.Model(inp, body(keras.layers, h), name="text")

        def sample(n):
            y = rng.integers(0, 4, n)
            own = rng.integers(0, TEXT_VOCAB // 4, (n, TEXT_TOKENS)) + (y * (TEXT_VOCAB // 4))[:, None]
            x = np.where(rng.random((n, TEXT_TOKENS)) < 0.6, own, rng.integers(0, TEXT_VOCAB, (n, TEXT_TOKENS)))
            return x.astype(np.int32), y.astype(np.int64)
        x, y = sample(2000)
        if trained:
            model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(x, y, epochs=4, batch_size=32, verbose=0)
        test = rng.permutation(np.resize(np.arange(TEXT_VOCAB), TEST_INPUTS * TEXT_TOKENS))
        test = test.reshape(TEST_INPUTS, TEXT_TOKENS).astype(np.int32)
        if trained:
            return model, x, y, *sample(TEST_INPUTS)
        return model, x, None, test, None
    return build


def _sum_tokens(t):
    import keras
    return keras.ops.sum(t, axis=1)


TEXT = {
    "text_mean": (lambda L, h: L.Dense(4, name="logits")(L.Dense(16, activation="relu", name="hidden")(
        L.GlobalAveragePooling1D(name="pool")(h))), True),
    "text_sum": (lambda L, h: L.Dense(4, name="logits")(L.Lambda(_sum_tokens, name="sum")(h)), False),
    "text_lookup": (lambda L, h: h, False),
}

# ---- models that must be refused ------------------------------------------------------------------

ERRORS = {
    "unsupported_gelu": ((16,), lambda L, x: L.Activation("gelu")(L.Dense(8)(x))),  # TFLite Micro lacks it too
    "float_mlp": ((16,), lambda L, x: L.Dense(4)(x)),
}

BUILDERS = {"digits_mlp": digits_mlp, "digits_cnn": digits_cnn, "kws_dscnn": kws_dscnn,
            "ad_autoencoder": ad_autoencoder, "vww_mobilenet": vww_mobilenet}
BUILDERS.update({name: _op_model(shape, body, name) for name, (shape, body) in OPS.items()})
BUILDERS.update({name: _op_model(shape, body, name) for name, (shape, body) in ERRORS.items()})
BUILDERS.update({name: _text_model(body, trained) for name, (body, trained) in TEXT.items()})
NAMES = list(BUILDERS)
TASKS = {"digits_mlp": "classification", "digits_cnn": "classification", "kws_dscnn": "classification",
         "ad_autoencoder": "regression", "vww_mobilenet": "benchmark"}
TASKS.update({name: "op" for name in OPS})
TASKS.update({name: "error" for name in ERRORS})
TASKS.update({name: "classification" if trained else "op" for name, (_, trained) in TEXT.items()})


# ---- zoo modules: tests/zoo_*.py, each a group of models with a cache key of its own ---------------
# A module defines CASES (name -> builder returning (model, calibration, train_y, test_x, test_y), as
# _op_model makes), and may define EXPORTS (name -> function(model, calibration) -> .tflite bytes; the
# default converts to full int8), TASK (default "op"), FAMILIES (lists of names built together; default:
# the whole module) and KEY_SOURCES (more files its models' bytes depend on, relative to the repository). It imports what it needs from this module, which imports it last.

MODULE_OF: dict[str, list[Path]] = {}
EXPORTS: dict = {}
FAMILIES: list[list[str]] = []


def _load_zoo_modules() -> None:
    """Add every tests/zoo_*.py module's models (imported, so they import this module first)."""
    for path in sorted(Path(__file__).resolve().parent.glob("zoo_*.py")):
        module = importlib.import_module(path.stem)
        BUILDERS.update(module.CASES)
        TASKS.update({name: getattr(module, "TASK", "op") for name in module.CASES})
        EXPORTS.update(getattr(module, "EXPORTS", {}))
        FAMILIES.extend(getattr(module, "FAMILIES", [list(module.CASES)]))
        sources = [path] + [ROOT / extra for extra in getattr(module, "KEY_SOURCES", [])]
        MODULE_OF.update({name: sources for name in module.CASES})
    NAMES[:] = list(BUILDERS)


def _float_tflite(model) -> bytes:
    import tensorflow as tf
    from tinycompress.frontend.quantize import _quiet
    with _quiet():
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _zip_bytes(members: dict[str, bytes], deflate: bool = False) -> bytes:
    """A zip of `members` with fixed dates and order: the same bytes for the same contents (deflated too:
    zlib gives the same stream for the same input and level)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _npz_bytes(arrays: dict, deflate: bool = False) -> bytes:
    """np.savez's layout (one .npy per array), without the time of day it stamps on every member;
    np.savez_compressed's with `deflate`."""
    members = {}
    for key, value in arrays.items():
        npy = io.BytesIO()
        np.lib.format.write_array(npy, np.asanyarray(value), allow_pickle=False)
        members[f"{key}.npy"] = npy.getvalue()
    return _zip_bytes(members, deflate)


def _renumber_shared_objects(config, numbers: dict) -> None:
    """Keras names an object shared between layers by its id(), a memory address: number them in order."""
    if isinstance(config, dict):
        if "shared_object_id" in config:
            config["shared_object_id"] = numbers.setdefault(config["shared_object_id"], len(numbers))
        children = config.values()
    else:
        children = config if isinstance(config, list) else ()
    for child in children:
        _renumber_shared_objects(child, numbers)


def _keras_bytes(model, scratch: Path) -> bytes:
    """model.save's .keras zip without what changes run to run: member dates, metadata.json's
    date_saved, config.json's memory addresses."""
    model.save(scratch)
    with zipfile.ZipFile(scratch) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    scratch.unlink()
    metadata = json.loads(members["metadata.json"])
    metadata.pop("date_saved", None)
    members["metadata.json"] = json.dumps(metadata).encode()
    config = json.loads(members["config.json"])
    _renumber_shared_objects(config, {})
    members["config.json"] = json.dumps(config).encode()
    return _zip_bytes(members)


def _write(path: Path, data: bytes) -> None:
    """All of `data` at `path` or nothing, even with another process building the same model."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def cached(name: str, out_dir: Path = DEFAULT_OUT) -> Path | None:
    """The .tflite of a complete build of `name` under the current cache_key(), or None."""
    tflite_path = Path(out_dir) / f"{name}.tflite"
    key_path = tflite_path.with_suffix(".key")
    if tflite_path.exists() and key_path.exists() and key_path.read_text().strip() == cache_key(name):
        return tflite_path
    return None


def family(name: str) -> list[str]:
    """The models built together in one process on a miss: the cheap operator, refusal and token models
    go as groups (starting TensorFlow costs more than building one), each network alone."""
    for group in (list(OPS) + list(ERRORS), list(TEXT), *FAMILIES):
        if name in group:
            return group
    return [name]


def build(name: str, out_dir: Path = DEFAULT_OUT) -> Path:
    """`name`'s .tflite in out_dir, built first (with its missing or stale family) in a fresh process."""
    out_dir = Path(out_dir)
    if name not in BUILDERS:
        raise KeyError(f"no zoo model named {name}")
    if cached(name, out_dir) is None:
        out_dir.mkdir(parents=True, exist_ok=True)
        group = family(name)
        # Test workers (pytest-xdist) asking for the same family wait for one build of it, not start their own.
        with open(out_dir / f".{group[0]}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            stale = [other for other in group if cached(other, out_dir) is None]
            if stale:
                env = dict(os.environ, **DETERMINISTIC_ENV,
                           PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
                subprocess.run([sys.executable, str(Path(__file__).resolve()), "--out", str(out_dir), *stale],
                               check=True, env=env, stdout=subprocess.DEVNULL)
    path = cached(name, out_dir)
    if path is None:
        raise RuntimeError(f"the model zoo did not build {name} into {out_dir}")
    return path


def build_here(name: str, out_dir: Path = DEFAULT_OUT) -> Path:
    """Build `name` into out_dir in this process (after _deterministic_tensorflow); the .tflite path."""
    out_dir = Path(out_dir)
    tflite_path = out_dir / f"{name}.tflite"
    from tinycompress.frontend.load import read_tflite
    from tinycompress.frontend.quantize import _convert_keras

    model, calibration, train_y, test_x, test_y = BUILDERS[name]()
    if name in EXPORTS:
        tflite = EXPORTS[name](model, calibration)
    else:
        # in this process, the conversion child's own code (the same bytes, tests/test_crashes.py): a child per
        # model would start TensorFlow again for each one
        tflite = _float_tflite(model) if name == "float_mlp" else _convert_keras(model, calibration)
    inp = read_tflite(tflite).input_tensor()
    arrays = {"x": test_x}
    if inp.dtype == "int8":
        scale, zero_point = float(inp.scale[0]), int(inp.zero_point[0])
        arrays["x_int8"] = np.clip(np.round(test_x / scale) + zero_point, -128, 127).astype(np.int8)
    if test_y is not None:
        arrays["y"] = test_y
    if name in TEXT:
        arrays["vocab"] = np.array(text_vocab())
    out_dir.mkdir(parents=True, exist_ok=True)
    # The .tflite goes first and last: a build cut short leaves no .tflite, and so no cache hit.
    tflite_path.unlink(missing_ok=True)
    _write(out_dir / f"{name}.npz", _npz_bytes(arrays))
    if TASKS[name] in ("classification", "regression"):
        # the float model, for factorization sweeps
        _write(out_dir / f"{name}.keras", _keras_bytes(model, out_dir / f".{name}.{os.getpid()}.keras"))
        train = {"x": calibration} if train_y is None else {"x": calibration, "y": train_y}
        _write(out_dir / f"{name}_train.npz", _npz_bytes(train))
    _write(tflite_path.with_suffix(".key"), f"{cache_key(name)}\n".encode())
    _write(tflite_path, tflite)
    return tflite_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="rebuild even where the cache is current")
    parser.add_argument("names", nargs="*", default=NAMES)
    args = parser.parse_args()
    _deterministic_tensorflow()
    for name in args.names:
        start = time.perf_counter()
        path = cached(name, args.out) if not args.force else None
        print(path or build_here(name, args.out), f"{time.perf_counter() - start:.1f} s", flush=True)


if __name__ != "__main__":
    _load_zoo_modules()
else:
    # Run as a script, the zoo modules import `modelzoo`: load them on that one module, not on __main__.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import modelzoo
    modelzoo.main()
