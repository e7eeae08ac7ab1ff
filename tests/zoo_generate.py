"""Zoo cases of `tinycompress generate` (tests/test_generate.py): tiny language models on token ids.

gen_causal: context 8, vocabulary 16, width 16, two blocks of one-head causal attention (tinylm's mask:
scores * keep + masked) and a ReLU feed-forward, logits at every position (1, 8, 16), trained briefly
to continue the sequence t -> (3 t + 1) mod 16. gen_last: the same tokens, logits of the last position
only (1, 16). gen_bad_output: token ids in, but a (1, 8, 4, 4) output, which is no logits.
"""
from __future__ import annotations

import numpy as np

from modelzoo import SEED, TEST_INPUTS, _keras

CONTEXT, VOCAB, WIDTH = 8, 16, 16
TASK = "op"


def sequences(count: int, rng) -> np.ndarray:
    """`count` windows of CONTEXT + 1 tokens following t -> (3 t + 1) mod VOCAB from random starts."""
    x = np.zeros((count, CONTEXT + 1), np.int32)
    x[:, 0] = rng.integers(0, VOCAB, count)
    for i in range(1, CONTEXT + 1):
        x[:, i] = (3 * x[:, i - 1] + 1) % VOCAB
    return x


def _normalize(ops, x):
    centred = ops.subtract(x, ops.mean(x, axis=-1, keepdims=True))
    return ops.multiply(centred, ops.rsqrt(ops.mean(ops.square(centred), axis=-1, keepdims=True) + 1e-3))


def _causal(keras, last_only: bool):
    L, ops = keras.layers, keras.ops
    tokens = keras.Input((CONTEXT,), batch_size=1, dtype="int32", name="tokens")
    h = L.Embedding(VOCAB, WIDTH, name="embedding")(tokens)
    h = L.EinsumDense("btc,cd->btd", (CONTEXT, WIDTH), bias_axes="td", name="position")(h)
    keep = np.tril(np.ones((CONTEXT, CONTEXT), np.float32))
    masked = (1 - keep) * np.float32(-64.0)
    for i in range(2):
        a = _normalize(ops, h)
        q, k, v = (L.Dense(WIDTH, name=f"{n}{i}")(a) for n in "qkv")
        scores = ops.add(ops.multiply(ops.matmul(q, ops.transpose(k, (0, 2, 1))), keep), masked)
        h = L.Add(name=f"res{i}a")([h, L.Dense(WIDTH, name=f"o{i}")(
            ops.matmul(L.Softmax(name=f"softmax{i}")(scores), v))])
        f = L.Dense(2 * WIDTH, activation="relu", name=f"ff{i}")(_normalize(ops, h))
        h = L.Add(name=f"res{i}f")([h, L.Dense(WIDTH, name=f"ffo{i}")(f)])
    h = _normalize(ops, h)
    if last_only:
        h = L.Flatten()(h)
    return keras.Model(tokens, L.Dense(VOCAB, name="logits")(h), name="gen_last" if last_only else "gen_causal")


def _language_model(last_only: bool):
    def build():
        keras = _keras()
        rng = np.random.default_rng(SEED)
        model = _causal(keras, last_only)
        data = sequences(1024, rng)
        x, y = data[:, :-1], data[:, -1] if last_only else data[:, 1:]
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, epochs=3, batch_size=1, verbose=0)
        return model, x[:200], None, sequences(TEST_INPUTS, rng)[:, :-1], None
    return build


def _bad_output():
    keras = _keras()
    rng = np.random.default_rng(SEED)
    tokens = keras.Input((CONTEXT,), batch_size=1, dtype="int32")
    h = keras.layers.Embedding(VOCAB, WIDTH, name="embedding")(tokens)
    model = keras.Model(tokens, keras.layers.Reshape((CONTEXT, 4, 4))(h), name="gen_bad_output")
    return model, sequences(200, rng)[:, :-1], None, sequences(TEST_INPUTS, rng)[:, :-1], None


CASES = {"gen_causal": _language_model(False), "gen_last": _language_model(True), "gen_bad_output": _bad_output}
