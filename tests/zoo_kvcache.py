"""A tiny key/value-cached step model for `tinycompress generate --cache` (tests/test_kvcache.py).

kv_step: context 8, vocabulary 16, width 8, two heads of 4, one attention block with a ReLU feed-forward,
seeded random weights (no training: the tests are about the firmware against TFLite Micro, not the text).
The structure of examples/tinylm/step.py: inputs token (1, 1) int32, position one-hot (1, 8), caches
cache_0_k, cache_1_v (1, 2, 8, 4); outputs logits (1, 16), then the new key and value rows (1, 2, 1, 4).
Calibrated on random tokens, positions and caches. Building and converting takes a few seconds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CASES: dict = {}   # the zoo's cases take one input; kv_step is built by test_kvcache.py's fixture

from modelzoo import SEED, _deterministic_tensorflow, _keras  # noqa: E402

CONTEXT, VOCAB, WIDTH, HEADS = 8, 16, 8, 2
HEAD = WIDTH // HEADS
CACHES = ["cache_0_k", "cache_1_v"]


def build_step(keras):
    L, ops = keras.layers, keras.ops
    token = keras.Input((1,), batch_size=1, dtype="int32", name="token")
    position = keras.Input((CONTEXT,), batch_size=1, name="position")
    caches = [keras.Input((HEADS, CONTEXT, HEAD), batch_size=1, name=n) for n in CACHES]
    import tensorflow as tf

    class TokenLookup(L.Layer):    # a plain GATHER (a Keras Embedding converts to more: step.py)
        def build(self, _):
            self.table = self.add_weight(shape=(VOCAB, WIDTH), initializer="random_normal",
                                         name="embeddings")

        def call(self, ids):
            return tf.gather(self.table, ids)
    h = ops.reshape(TokenLookup(name="embedding")(token), (-1, WIDTH))
    h = L.Add()([h, L.Dense(WIDTH, use_bias=False, name="position_bias")(position)])
    tril = np.tril(np.ones((CONTEXT, CONTEXT), np.float32))
    keep_layer = L.Dense(CONTEXT, use_bias=False, name="keep")
    masked_layer = L.Dense(CONTEXT, use_bias=False, name="masked")
    keep = ops.reshape(keep_layer(position), (-1, 1, 1, CONTEXT))
    masked = ops.reshape(masked_layer(position), (-1, 1, 1, CONTEXT))
    column = ops.reshape(position, (-1, 1, CONTEXT, 1))
    q, k, v = (ops.reshape(L.Dense(WIDTH, name=n)(h), (-1, HEADS, 1, HEAD)) for n in "qkv")
    keys = ops.add(caches[0], ops.multiply(column, k))
    values = ops.add(caches[1], ops.multiply(column, v))
    scores = ops.add(ops.multiply(ops.matmul(q, ops.transpose(keys, (0, 1, 3, 2))), keep), masked)
    o = ops.reshape(ops.matmul(L.Softmax()(scores), values), (-1, WIDTH))
    h = L.Add()([h, L.Dense(WIDTH, name="o")(o)])
    h = L.Add()([h, L.Dense(WIDTH, name="ffo")(L.Dense(2 * WIDTH, activation="relu", name="ff")(h))])
    model = keras.Model([token, position] + caches, [L.Dense(VOCAB, name="logits")(h), k, v],
                        name="kv_step")
    keep_layer.set_weights([tril])
    masked_layer.set_weights([(1 - tril) * np.float32(-64.0)])
    return model


def convert(path: Path) -> bytes:
    """The int8 step model, written to `path` (and returned)."""
    from tinycompress.frontend.quantize import keras_to_int8_tflite_from
    _deterministic_tensorflow()
    keras = _keras()
    model = build_step(keras)
    rng = np.random.default_rng(SEED)

    def representative():
        for _ in range(100):
            p = int(rng.integers(0, CONTEXT))
            onehot = np.zeros((1, CONTEXT), np.float32)
            onehot[0, p] = 1
            caches = []
            for _ in CACHES:
                cache = np.zeros((1, HEADS, CONTEXT, HEAD), np.float32)
                cache[0, :, :p] = rng.normal(0, 1, (HEADS, p, HEAD))
                caches.append(cache)
            yield dict(zip(["token", "position"] + CACHES,
                           [np.array([[rng.integers(0, VOCAB)]], np.int32), onehot] + caches))
    tflite = keras_to_int8_tflite_from(model, representative)
    path.write_bytes(tflite)
    return tflite
