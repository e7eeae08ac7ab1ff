"""Train a text demo whose int8 embedding table dominates flash: which stdlib package a snippet is from.

    python examples/text/train.py      # writes text_classifier.keras, vocab.txt, text_train.npz, text_test.npz

The data is the running interpreter's own standard library (offline): windows of T consecutive
tokens of source, labelled with one of 8 packages. Files, not windows, are split between train,
validation and test, so test windows come from files the model never saw; that costs accuracy
(about 0.67 here against 0.88 for a split by window, whose neighbours share identifiers) but it
is the honest number. Fixed seeds: the same files on every run with the same Python version on
the same machine (another Python has other stdlib sources, hence other windows).
"""
from __future__ import annotations

import os
import re
import sysconfig
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
SEED = 7
T = 32                    # tokens per window
V = 4096                  # vocabulary size, "<pad>" and "<unk>" included
DIM = 64                  # embedding width: V * DIM int8 bytes of flash
TRAIN_PER_CLASS = 1000    # caps, so every class has the same number of windows in each split
TEST_PER_CLASS = 175
VAL_PER_CLASS = 100       # held out by file too, for early stopping

# Class name -> stdlib packages/modules. Large, topically distinct, and with several files
# each, so that a split by file leaves source on both sides.
GROUPS = {
    "asyncio": ["asyncio"],
    "email": ["email"],
    "http+json": ["http", "json"],
    "idlelib": ["idlelib"],
    "multiprocessing": ["multiprocessing"],
    "tkinter": ["tkinter"],
    "unittest": ["unittest"],
    "xml": ["xml"],
}
SKIP_DIRS = {"test", "tests", "idle_test", "__pycache__"}  # tests would blur the topics

# Words, numbers and single punctuation characters. Identifiers are split into their words
# (at "_", which is dropped, and at camelCase humps) before lower-casing, so "BaseEventLoop" and
# "_run_once" share "event", "loop", "run" with other files: worth ~3 points on unseen files.
TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\sA-Za-z0-9_]")


def tokenize(text: str) -> list[str]:
    return [t.lower() for t in TOKEN.findall(text) if t.isprintable()]


def source_files(stdlib: Path, package: str) -> list[Path]:
    root = stdlib / package
    return sorted(p for p in root.rglob("*.py") if not SKIP_DIRS & set(p.relative_to(root).parts[:-1]))


def file_windows(path: Path) -> list[list[str]]:
    """Non-overlapping windows of T real tokens (no padding); the ragged tail is dropped."""
    tokens = tokenize(path.read_text(encoding="utf-8", errors="replace"))
    return [tokens[i:i + T] for i in range(0, len(tokens) - T + 1, T)]


def split_windows(rng: np.random.Generator):
    """Per class, shuffled files fill the test side, then the validation side, then training."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    splits = {"train": [], "val": [], "test": []}
    for label, packages in enumerate(GROUPS.values()):
        files = [f for package in packages for f in source_files(stdlib, package)]
        side = {name: [] for name in splits}
        for i in rng.permutation(len(files)):
            name = ("test" if len(side["test"]) < TEST_PER_CLASS else
                    "val" if len(side["val"]) < VAL_PER_CLASS else "train")
            side[name].extend((w, label) for w in file_windows(files[i]))
        for name in splits:
            splits[name].append(side[name])
    return splits["train"], splits["val"], splits["test"]


def balance(per_class: list[list], cap: int, rng: np.random.Generator) -> list:
    """The same number of windows from every class (at most cap), shuffled."""
    n = min(cap, *map(len, per_class))
    picked = [c[i] for c in per_class for i in rng.permutation(len(c))[:n]]
    return [picked[i] for i in rng.permutation(len(picked))]


def build_vocab(windows: list) -> list[str]:
    counts = Counter(t for w, _ in windows for t in w)
    assert len(counts) >= V - 2, f"only {len(counts)} distinct training tokens"
    # Ties broken by the token itself, so the order does not depend on hashing.
    return ["<pad>", "<unk>"] + sorted(counts, key=lambda t: (-counts[t], t))[:V - 2]


def encode(windows: list, vocab: list[str]):
    ids = {t: i for i, t in enumerate(vocab)}
    x = np.array([[ids.get(t, 1) for t in w] for w, _ in windows], dtype=np.int32)
    y = np.array([label for _, label in windows], dtype=np.int64)
    return x, y


def build_model(keras, num_classes: int):
    """Embedding, mean over the window, one hidden layer: nearly all weights are in the table."""
    L = keras.layers
    inp = keras.Input((T,), dtype="int32", name="tokens")
    h = L.Embedding(V, DIM, name="embedding")(inp)
    h = L.GlobalAveragePooling1D(name="pool")(h)
    h = L.Dense(64, activation="relu", name="hidden")(h)
    out = L.Dense(num_classes, name="logits")(h)
    return keras.Model(inp, out, name="text_classifier")


def main() -> None:
    import keras

    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    train_per_class, val_per_class, test_per_class = split_windows(rng)
    train = balance(train_per_class, TRAIN_PER_CLASS, rng)
    val = balance(val_per_class, VAL_PER_CLASS, rng)
    test = balance(test_per_class, TEST_PER_CLASS, rng)
    vocab = build_vocab(train)
    (x, y), (vx, vy), (tx, ty) = (encode(s, vocab) for s in (train, val, test))
    classes = list(GROUPS)

    model = build_model(keras, len(classes))
    model.compile(optimizer=keras.optimizers.Adam(0.003),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    start = time.perf_counter()
    # Stopping on unseen files: a slice of the training windows would keep improving long after
    # the model has started memorising file-specific identifiers.
    model.fit(x, y, epochs=40, batch_size=64, validation_data=(vx, vy), verbose=0,
              callbacks=[keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=3,
                                                       restore_best_weights=True)])
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(tx, ty, verbose=0)

    # Saved uncompiled: without Adam's two moments per weight the file is a third of the size.
    export = build_model(keras, len(classes))
    export.set_weights(model.get_weights())
    export.save(HERE / "text_classifier.keras")
    (HERE / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    np.savez_compressed(HERE / "text_train.npz", x=x.astype(np.int16), y=y.astype(np.int16))
    np.savez_compressed(HERE / "text_test.npz", x=tx, y=ty, vocab=np.array(vocab), classes=np.array(classes))

    table = model.get_layer("embedding").count_params()
    print("classes:", ", ".join(classes))
    print(f"windows of {T} tokens: {len(y)} train, {len(vy)} validation, {len(ty)} test "
          f"({len(y) // len(classes)}, {len(vy) // len(classes)}, {len(ty) // len(classes)} per class)")
    print(f"float test accuracy: {accuracy:.3f} (trained in {seconds:.0f} s)")
    print(f"int8 weights: embedding table {table} bytes, the rest {model.count_params() - table} bytes")


if __name__ == "__main__":
    main()
