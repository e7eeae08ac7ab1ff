"""Train tinylm: a byte-level decoder-only transformer on the running interpreter's standard library.

    python examples/tinylm/train.py   # writes tinylm.keras and the data files below
    python examples/tinylm/train.py --data-only   # the data files alone (seconds, no training)

Data files: tinylm_calibration.npz (windows of training text, for int8 calibration), tinylm_heldout.npz
(held-out windows and their next bytes, for perplexity) and tinylm_train.npz (windows of training text
and their next bytes, for fine-tuning compressed variants with `--train`).

Offline text, chosen without randomness: the standard library's top-level `*.py` files in sorted
order, train from the first ones up to TRAIN_BYTES, held-out windows from the files after them. Tokens
are bytes (vocabulary 256, nothing to learn or ship). Training is byte-reproducible: fixed seeds,
TensorFlow on one thread with deterministic ops (as tests/modelzoo.py builds the zoo), and the .keras
and .npz files written without time stamps. Another Python version has other sources, hence other
weights.

The model is built from stock Keras layers and `keras.ops` only, so `tinycompress run` loads it
without this script (see README.md for why each piece has the form it has).
"""
from __future__ import annotations

import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SEED = 7
CONTEXT = 64          # tokens per window
VOCAB = 256           # bytes
WIDTH = 64
LAYERS = 2
HEADS = 4
FEED_FORWARD = 128    # ReLU hidden width
MASKED = -64.0        # the score of every future position (see README.md)
EPSILON = 1e-3
TRAIN_BYTES = 600_000
CALIBRATION_WINDOWS = 300
HELDOUT_WINDOWS = 200
FINE_TUNE_WINDOWS = 8192     # tinylm_train.npz: windows at seeded random offsets of the training bytes
STEPS = 3000
BATCH = 32
WARMUP = 100
LEARNING_RATE = 3e-3


def stdlib_files() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return sorted(stdlib.glob("*.py"))


def corpus() -> tuple[np.ndarray, np.ndarray]:
    """Training bytes (the first files, TRAIN_BYTES of them) and the held-out bytes (the next files)."""
    train, held, size = [], [], 0
    for path in stdlib_files():
        data = path.read_bytes() + b"\n"
        (train if size < TRAIN_BYTES else held).append(data)
        size += len(data)
    train_bytes = b"".join(train)[:TRAIN_BYTES]
    return np.frombuffer(train_bytes, np.uint8), np.frombuffer(b"".join(held), np.uint8)


def windows(text: np.ndarray, count: int) -> np.ndarray:
    """`count` windows of CONTEXT + 1 bytes, evenly spaced through `text` (the last byte is the target)."""
    starts = np.linspace(0, len(text) - CONTEXT - 1, count).astype(np.int64)
    return np.stack([text[s:s + CONTEXT + 1] for s in starts]).astype(np.int32)


def random_windows(text: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` windows of CONTEXT + 1 bytes starting at seeded random offsets in `text`."""
    starts = np.random.default_rng(seed).integers(0, len(text) - CONTEXT - 1, count)
    return np.stack([text[s:s + CONTEXT + 1] for s in starts]).astype(np.int32)


def byte_vocab() -> np.ndarray:
    """The token strings `--embedding kronecker` encodes: byte b as the character chr(b) (two UTF-8 bytes
    from 128 on). NumPy strings drop a trailing NUL, so byte 0 reads back as '' (no features: its row is
    the projection's bias); Python source has no NUL bytes."""
    return np.array([chr(b) for b in range(VOCAB)])


def causal_mask() -> tuple[np.ndarray, np.ndarray]:
    """(keep, masked): scores * keep + masked is the score itself where a position may look (itself and
    before) and MASKED where it may not (the future)."""
    keep = np.tril(np.ones((CONTEXT, CONTEXT), np.float32))
    return keep, (1 - keep) * np.float32(MASKED)


def normalize(ops, x):
    """Layer normalization without its scale and offset: (x - mean) * rsqrt(variance + eps) over the
    width. Every norm feeds Dense layers, which absorb a scale and offset, so nothing is lost; Keras'
    LayerNormalization converts with a float NEG (-mean * inv) that int8 TFLite Micro cannot run."""
    centred = ops.subtract(x, ops.mean(x, axis=-1, keepdims=True))
    return ops.multiply(centred, ops.rsqrt(ops.mean(ops.square(centred), axis=-1, keepdims=True) + EPSILON))


def build_model(keras):
    """Tokens (1, CONTEXT) int32 -> next-byte logits (1, CONTEXT, VOCAB) at every position."""
    L, ops = keras.layers, keras.ops
    head = WIDTH // HEADS
    tokens = keras.Input((CONTEXT,), dtype="int32", name="tokens")
    h = L.Embedding(VOCAB, WIDTH, name="embedding")(tokens)
    # The position embedding: the (CONTEXT, WIDTH) bias of a projection of the token embedding
    h = L.EinsumDense("btc,cd->btd", (CONTEXT, WIDTH), bias_axes="td", name="position")(h)
    keep, masked = causal_mask()

    def heads(t):   # (1, CONTEXT, WIDTH) -> (1, HEADS, CONTEXT, head)
        return ops.transpose(ops.reshape(t, (-1, CONTEXT, HEADS, head)), (0, 2, 1, 3))
    for i in range(LAYERS):
        a = normalize(ops, h)
        q, k, v = (heads(L.Dense(WIDTH, name=f"{n}{i}")(a)) for n in "qkv")
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        scores = ops.add(ops.multiply(scores, keep), masked)
        weights = L.Softmax(name=f"softmax{i}")(scores)
        o = ops.reshape(ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3)), (-1, CONTEXT, WIDTH))
        h = L.Add(name=f"res{i}a")([h, L.Dense(WIDTH, name=f"o{i}")(o)])
        f = L.Dense(FEED_FORWARD, activation="relu", name=f"ff{i}")(normalize(ops, h))
        h = L.Add(name=f"res{i}f")([h, L.Dense(WIDTH, name=f"ffo{i}")(f)])
    return keras.Model(tokens, L.Dense(VOCAB, name="logits")(normalize(ops, h)), name="tinylm")


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood in nats of `targets` (N, CONTEXT) under `logits` (N, CONTEXT, VOCAB)."""
    logits = logits.astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(axis=-1)) + top[..., 0]
    picked = np.take_along_axis(logits, targets[..., None].astype(np.int64), axis=-1)[..., 0]
    return float((log_norm - picked).mean())


def int8_logits(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """The TFLite Micro interpreter's logits for token windows `x`, dequantized."""
    from tinycompress.frontend.load import read_tflite
    from tinycompress.frontend.reference import tflm_outputs
    out = read_tflite(tflite).output_tensor()
    ids = np.ascontiguousarray(x, "<i4").view(np.int8).reshape(len(x), -1)
    q = tflm_outputs(tflite, ids).astype(np.float64).reshape((len(x),) + tuple(out.shape[1:]))
    return (q - float(out.zero_point[0])) * float(out.scale[0])


def future_leaks(tflite: bytes, x: np.ndarray, position: int) -> int:
    """How many windows of `x` change their int8 logits at positions 0..position when every later byte is
    replaced (seeded random bytes): 0 when the int8 model is exactly causal."""
    later = x.copy()
    later[:, position + 1:] = np.random.default_rng(SEED).integers(0, VOCAB, later[:, position + 1:].shape)
    before, after = (int8_logits(tflite, w)[:, :position + 1] for w in (x, later))
    return int((before != after).any(axis=(1, 2)).sum())


def train(keras, text: np.ndarray):
    """STEPS batches of windows starting at seeded random offsets, Adam with a cosine decay."""
    data = random_windows(text, STEPS * BATCH, SEED)
    model = build_model(keras)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, STEPS - WARMUP, alpha=0.05,
                                                      warmup_target=LEARNING_RATE, warmup_steps=WARMUP)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data[:, :-1], data[:, 1:], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return model


def main() -> None:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: this directory)")
    parser.add_argument("--data-only", action="store_true", help="write the data files only, no training")
    args = parser.parse_args()
    from modelzoo import _deterministic_tensorflow, _keras_bytes, _npz_bytes
    text, held = corpus()
    calibration = windows(text, CALIBRATION_WINDOWS)[:, :-1]
    heldout = windows(held, HELDOUT_WINDOWS)
    x, targets = heldout[:, :-1], heldout[:, 1:]
    fine_tune = random_windows(text, FINE_TUNE_WINDOWS, SEED + 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tinylm_calibration.npz").write_bytes(_npz_bytes({"x": calibration.astype(np.uint8)}))
    (args.out / "tinylm_heldout.npz").write_bytes(
        _npz_bytes({"x": x.astype(np.uint8), "next": targets.astype(np.uint8), "vocab": byte_vocab()}))
    (args.out / "tinylm_train.npz").write_bytes(_npz_bytes(
        {"x": fine_tune[:, :-1].astype(np.uint8), "y": fine_tune[:, 1:].astype(np.uint8)}, deflate=True))
    if args.data_only:
        return

    _deterministic_tensorflow()
    import keras
    from tinycompress.frontend.quantize import keras_to_int8_tflite
    keras.utils.set_random_seed(SEED)
    start = time.perf_counter()
    model = train(keras, text)
    seconds = time.perf_counter() - start

    float_nll = cross_entropy(np.asarray(model.predict(x, batch_size=50, verbose=0)), targets)

    export = build_model(keras)   # uncompiled: no optimizer state in the file
    export.set_weights(model.get_weights())
    (args.out / "tinylm.keras").write_bytes(_keras_bytes(export, args.out / ".tinylm.tmp.keras"))

    tflite = keras_to_int8_tflite(export, calibration)
    int8_nll = cross_entropy(int8_logits(tflite, x), targets)
    leaks = future_leaks(tflite, x, CONTEXT // 2)
    print(f"trained {STEPS} steps of {BATCH} windows in {seconds:.0f} s; "
          f"{export.count_params():,} parameters")
    print(f"held-out perplexity per byte ({len(x)} windows x {CONTEXT}): float {np.exp(float_nll):.3f}, "
          f"int8 (TFLite Micro) {np.exp(int8_nll):.3f}")
    print(f"int8 windows whose first {CONTEXT // 2 + 1} logits change with the bytes after them: {leaks}")


if __name__ == "__main__":
    main()
