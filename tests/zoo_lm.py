"""Zoo case of a tiny causal language model (tests/test_lm.py): examples/tinylm's form at toy size.

Token ids (1, 8) from a vocabulary of 16, an Embedding of width 8, a position bias (EinsumDense), two pre-norm
blocks of two heads (Dense Q/K/V/O on [1, 8, 8], BATCH_MATMUL, the exact causal mask as a MUL and an ADD,
SOFTMAX) and a ReLU feed-forward, and the logits of the next token at every position (1, 8, 16). Trained a
little on a seeded Markov chain, so that its perplexity is well below the vocabulary's 16. The .npz holds
the test windows under 'x' and the next token at each position under 'y'.
"""
from __future__ import annotations

import numpy as np

from modelzoo import SEED, TEST_INPUTS, _keras

TASK = "regression"    # the zoo then writes the float .keras and its _train.npz too (rank needs it)
CONTEXT, VOCAB, WIDTH, HEADS, FEED_FORWARD, BLOCKS = 8, 16, 8, 2, 16, 2
MASKED = -32.0


def vocab() -> list[str]:
    """Token strings for kronecker: a letter or two each."""
    return [chr(ord("a") + i) * (1 + i % 2) for i in range(VOCAB)]


def _normalize(ops, x):
    centred = ops.subtract(x, ops.mean(x, axis=-1, keepdims=True))
    return ops.multiply(centred, ops.rsqrt(ops.mean(ops.square(centred), axis=-1, keepdims=True) + 1e-3))


def build_model(keras):
    L, ops = keras.layers, keras.ops
    head = WIDTH // HEADS
    keep = np.tril(np.ones((CONTEXT, CONTEXT), np.float32))
    masked = (1 - keep) * np.float32(MASKED)
    tokens = keras.Input((CONTEXT,), dtype="int32", name="tokens")
    h = L.Embedding(VOCAB, WIDTH, name="embedding")(tokens)
    h = L.EinsumDense("btc,cd->btd", (CONTEXT, WIDTH), bias_axes="td", name="position")(h)

    def heads(t):
        return ops.transpose(ops.reshape(t, (-1, CONTEXT, HEADS, head)), (0, 2, 1, 3))
    for i in range(BLOCKS):
        a = _normalize(ops, h)
        q, k, v = (heads(L.Dense(WIDTH, name=f"{n}{i}")(a)) for n in "qkv")
        scores = ops.add(ops.multiply(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), keep), masked)
        o = ops.reshape(ops.transpose(ops.matmul(L.Softmax(name=f"softmax{i}")(scores), v), (0, 2, 1, 3)),
                        (-1, CONTEXT, WIDTH))
        h = L.Add(name=f"res{i}a")([h, L.Dense(WIDTH, name=f"o{i}")(o)])
        f = L.Dense(FEED_FORWARD, activation="relu", name=f"ff{i}")(_normalize(ops, h))
        h = L.Add(name=f"res{i}f")([h, L.Dense(WIDTH, name=f"ffo{i}")(f)])
    return keras.Model(tokens, L.Dense(VOCAB, name="logits")(_normalize(ops, h)), name="tiny_lm")


def _text(rng, length: int) -> np.ndarray:
    """A seeded Markov chain over the vocabulary: each token mostly followed by one of three."""
    follow = rng.integers(0, VOCAB, (VOCAB, 3))
    out = np.empty(length, np.int64)
    out[0] = 0
    for i in range(1, length):
        out[i] = follow[out[i - 1], rng.integers(0, 3)] if rng.random() < 0.9 else rng.integers(0, VOCAB)
    return out


def _windows(text: np.ndarray, count: int) -> np.ndarray:
    starts = np.linspace(0, len(text) - CONTEXT - 1, count).astype(np.int64)
    return np.stack([text[s:s + CONTEXT + 1] for s in starts]).astype(np.int32)


def tiny_lm():
    keras = _keras()
    rng = np.random.default_rng(SEED)
    text = _text(rng, 6000)
    train, test = _windows(text[:5000], 1500), _windows(text[5000:], TEST_INPUTS)
    model = build_model(keras)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train[:, :-1], train[:, 1:], epochs=4, batch_size=32, verbose=0)
    export = build_model(keras)      # without optimizer state
    export.set_weights(model.get_weights())
    return export, train[:300, :-1], train[:300, 1:], test[:, :-1], test[:, 1:].astype(np.int64)


CASES = {"tiny_lm": tiny_lm}
