"""Train the bundled demo: a small CNN on scikit-learn's 8x8 digits, exported as full int8.

    python examples/digits/train.py      # writes digits_cnn.keras, digits_cnn.tflite, digits_test.npz

Fixed seeds: the same files on every run on the same machine.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
SEED = 7
TEST_SAMPLES = 360


def load_digits_images():
    """8x8x1 images in [0, 1], shuffled with a fixed seed; the last TEST_SAMPLES are held out."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order], digits.target[order].astype(np.int64)
    return (x[:-TEST_SAMPLES], y[:-TEST_SAMPLES]), (x[-TEST_SAMPLES:], y[-TEST_SAMPLES:])


def build_model(keras):
    """Conv, depthwise conv, both poolings and a dense classifier: every common int8 kernel."""
    L = keras.layers
    inp = keras.Input((8, 8, 1), batch_size=1)
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    h = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dwconv")(h)
    h = L.MaxPooling2D(2, name="maxpool")(h)
    h = L.Conv2D(16, 1, activation="relu6", name="pointwise")(h)
    h = L.AveragePooling2D(2, name="avgpool")(h)
    h = L.Flatten(name="flatten")(h)
    out = L.Softmax(name="softmax")(L.Dense(10, name="classifier")(h))
    return keras.Model(inp, out, name="digits_cnn")


def main() -> None:
    import keras

    from tinycompress.frontend.load import read_tflite
    from tinycompress.frontend.quantize import keras_to_int8_tflite

    keras.utils.set_random_seed(SEED)
    (x, y), (tx, ty) = load_digits_images()
    model = build_model(keras)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=40, batch_size=64, verbose=0)
    _, accuracy = model.evaluate(tx, ty, verbose=0)
    model.save(HERE / "digits_cnn.keras")

    tflite = keras_to_int8_tflite(model, x)
    (HERE / "digits_cnn.tflite").write_bytes(tflite)
    inp = read_tflite(tflite).input_tensor()
    scale, zero_point = float(inp.scale[0]), int(inp.zero_point[0])
    x_int8 = np.clip(np.round(tx / scale) + zero_point, -128, 127).astype(np.int8)
    np.savez_compressed(HERE / "digits_test.npz", x=tx, x_int8=x_int8, y=ty)
    print(f"float accuracy on {len(ty)} held-out digits: {accuracy:.3f}; wrote {HERE}")


if __name__ == "__main__":
    main()
