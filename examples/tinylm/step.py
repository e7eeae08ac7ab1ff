"""tinylm's key/value-cached form: a step model on tinylm.keras's weights (issue 17, part 6).

    python examples/tinylm/step.py   # float equivalence, int8 generation, perplexity; tinylm_step.tflite

The step model computes one position of the full model: it reads one token, its position and the keys
and values of the earlier positions, and gives the logits at that position and the new key and value rows
that the caller stores into its caches for the next step. So a generated token costs one position's work.

Inputs (in this order):
    token       (1, 1) int32, the token at the position
    position    (1, CONTEXT) float, the position's one-hot
    cache_0_k0, cache_1_v0, cache_2_k1, cache_3_v1 (1, HEADS, CONTEXT, HEAD) float, each layer's cached
                keys and values: rows 0 .. position-1 filled, the others zero (named so that they sort in
                the outputs' order: `tinycompress generate --cache` pairs caches and rows so)
Outputs: logits (1, VOCAB), then each layer's new key and value rows (1, HEADS, 1, HEAD) (k0, v0, k1, v1).

No dynamic indexing: the one-hot selects the position bias (a projection of the one-hot), places the new
row into the cache (cache + one-hot column * row: the cache's row at the position is zero) and gives the
causal mask (keep = one-hot @ tril, masked = one-hot @ (1 - tril) * MASKED), so attention over the cache
is the full model's `scores * keep + masked` on the position's row. Every op is one the full model has.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent)]

from train import CONTEXT, FEED_FORWARD, HEADS, LAYERS, MASKED, VOCAB, WIDTH, normalize  # noqa: E402

HEAD = WIDTH // HEADS
CACHE_NAMES = [f"{kind}{i}" for i in range(LAYERS) for kind in "kv"]   # k0, v0, k1, v1
# the cache inputs' names sort as the outputs' order (`tinycompress generate --cache` pairs them so)
CACHE_INPUTS = [f"cache_{i}_{name}" for i, name in enumerate(CACHE_NAMES)]


def build_step(keras, full, lookup: bool = False):
    """The step model on the full model's weights. With `lookup`, the token embedding is a plain gather
    (what tinycompress's converter makes of an Embedding: one GATHER, see frontend/quantize.py)."""
    L, ops = keras.layers, keras.ops
    weights = {layer.name: layer.get_weights() for layer in full.layers if layer.get_weights()}
    token = keras.Input((1,), batch_size=1, dtype="int32", name="token")
    position = keras.Input((CONTEXT,), batch_size=1, name="position")
    caches = [keras.Input((HEADS, CONTEXT, HEAD), batch_size=1, name=name) for name in CACHE_INPUTS]
    table = weights["embedding"][0]
    if lookup:
        import tensorflow as tf

        class TokenLookup(L.Layer):
            def build(self, _):
                self.table = self.add_weight(shape=table.shape, initializer="zeros", name="embeddings")

            def call(self, ids):
                return tf.gather(self.table, ids)
        embed = TokenLookup(name="embedding")
    else:
        embed = L.Embedding(VOCAB, WIDTH, name="embedding")
    h = ops.reshape(embed(token), (-1, WIDTH))
    kernel, bias = weights["position"]                      # EinsumDense: (WIDTH, WIDTH), (CONTEXT, WIDTH)
    h = L.Add(name="position_add")([L.Dense(WIDTH, use_bias=False, name="position_kernel")(h),
                                L.Dense(WIDTH, use_bias=False, name="position_bias")(position)])
    tril = np.tril(np.ones((CONTEXT, CONTEXT), np.float32))
    keep = ops.reshape(L.Dense(CONTEXT, use_bias=False, name="keep")(position), (-1, 1, 1, CONTEXT))
    masked = ops.reshape(L.Dense(CONTEXT, use_bias=False, name="masked")(position), (-1, 1, 1, CONTEXT))
    column = ops.reshape(position, (-1, 1, CONTEXT, 1))
    new_rows = []
    for i in range(LAYERS):
        a = normalize(ops, h)
        q, k, v = (ops.reshape(L.Dense(WIDTH, name=f"{n}{i}")(a), (-1, HEADS, 1, HEAD)) for n in "qkv")
        new_rows += [k, v]
        keys = ops.add(caches[2 * i], ops.multiply(column, k))
        values = ops.add(caches[2 * i + 1], ops.multiply(column, v))
        scores = ops.matmul(q, ops.transpose(keys, (0, 1, 3, 2)))              # (1, HEADS, 1, CONTEXT)
        scores = ops.add(ops.multiply(scores, keep), masked)
        attention = L.Softmax(name=f"softmax{i}")(scores)
        o = ops.reshape(ops.matmul(attention, values), (-1, WIDTH))           # heads in order, as the full
        h = L.Add(name=f"res{i}a")([h, L.Dense(WIDTH, name=f"o{i}")(o)])
        f = L.Dense(FEED_FORWARD, activation="relu", name=f"ff{i}")(normalize(ops, h))
        h = L.Add(name=f"res{i}f")([h, L.Dense(WIDTH, name=f"ffo{i}")(f)])
    logits = L.Dense(VOCAB, name="logits")(normalize(ops, h))
    model = keras.Model([token, position] + caches, [logits] + new_rows, name="tinylm_step")
    for layer in model.layers:
        name = layer.name
        if name == "embedding":
            layer.set_weights([table])
        elif name == "position_kernel":
            layer.set_weights([kernel])
        elif name == "position_bias":
            layer.set_weights([bias])
        elif name == "keep":
            layer.set_weights([tril])
        elif name == "masked":
            layer.set_weights([(1 - tril) * np.float32(MASKED)])
        elif name in weights and layer.weights:
            layer.set_weights(weights[name])
    return model


def full_keys_values(keras, full, x: np.ndarray) -> list[np.ndarray]:
    """The full model's keys and values for windows x (N, CONTEXT): (N, HEADS, CONTEXT, HEAD) per cache."""
    probe = keras.Model(full.inputs, [full.get_layer(name).output for name in CACHE_NAMES])
    outs = probe.predict(x, batch_size=50, verbose=0)
    return [np.asarray(o).reshape(len(x), CONTEXT, HEADS, HEAD).transpose(0, 2, 1, 3) for o in outs]


def step_inputs(x: np.ndarray, kv: list[np.ndarray], window: int, position: int) -> list[np.ndarray]:
    """The float step model's inputs for one window at one position, caches from the full model's K/V."""
    onehot = np.zeros((1, CONTEXT), np.float32)
    onehot[0, position] = 1
    caches = []
    for c in kv:
        cache = np.zeros((1, HEADS, CONTEXT, HEAD), np.float32)
        cache[0, :, :position] = c[window, :, :position]
        caches.append(cache)
    return [x[window:window + 1, position:position + 1].astype(np.int32), onehot] + caches


def convert_int8(keras, full, calibration: np.ndarray, samples: int = 300, seed: int = 7) -> bytes:
    """Full int8 (int32 token, int8 everything else), calibrated on `samples` (window, position) pairs of the
    calibration windows, caches from the float full model's keys and values."""
    from tinycompress.frontend.quantize import keras_to_int8_tflite_from
    model = build_step(keras, full, lookup=True)
    model.get_layer("embedding").table.assign(full.get_layer("embedding").get_weights()[0])
    kv = full_keys_values(keras, full, calibration)
    rng = np.random.default_rng(seed)
    pairs = [(int(w), int(p)) for w, p in zip(rng.integers(0, len(calibration), samples),
                                               rng.integers(0, CONTEXT, samples))]

    def representative():
        names = [t.name.split(":")[0] for t in model.inputs]
        for w, p in pairs:   # by name: the converter's signature orders the inputs its own way
            yield dict(zip(names, step_inputs(calibration, kv, w, p)))
    return keras_to_int8_tflite_from(model, representative)


class Int8Step:
    """The int8 step model in the TFLite Micro interpreter, with the caches kept as int8 between steps:
    each new row is requantized from its output's scale to its cache input's (a 256-entry table)."""

    def __init__(self, tflite: bytes):
        from tflite_micro.python.tflite_micro import runtime
        self.interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=8 << 20)
        self.order, self.out_order = io_order(tflite)
        self.ins = [self.interpreter.get_input_details(i) for i in self.order]
        self.outs = [self.interpreter.get_output_details(i) for i in self.out_order]
        self.tables = requantize_tables(tflite)
        self.reset()

    def reset(self):
        self.caches = [np.full((1, HEADS, CONTEXT, HEAD), quant(self.ins[2 + c])[1], np.int8)
                       for c in range(2 * LAYERS)]

    def step(self, token: int, position: int) -> np.ndarray:
        """int8 logits (VOCAB,) at `position`; the caches take the new rows."""
        scale, zero = quant(self.ins[1])
        onehot = np.full((1, CONTEXT), zero, np.int8)
        onehot[0, position] = np.clip(round(1 / scale) + zero, -128, 127)
        feeds = [np.array([[token]], np.int32), onehot] + self.caches
        for k, feed in enumerate(feeds):
            self.interpreter.set_input(feed, self.order[k])
        self.interpreter.invoke()
        outs = [np.asarray(self.interpreter.get_output(i)) for i in self.out_order]
        logits, rows = outs[0].reshape(-1), outs[1:]
        for c in range(2 * LAYERS):
            row = rows[c].reshape(HEADS, HEAD).astype(np.int64)
            self.caches[c][0, :, position] = self.tables[c][row + 128]
        return logits


def quant(details) -> tuple[float, int]:
    q = details["quantization_parameters"]
    return float(q["scales"][0]), int(q["zero_points"][0])


INPUT_NAMES = ["token", "position"] + CACHE_INPUTS


def io_order(tflite: bytes) -> tuple[list[int], list[int]]:
    """The interpreter's input index of token, position, cache_k0, cache_v0, cache_k1, cache_v1 and its
    output index of logits, k0, v0, k1, v1: the converter orders them its own way, their names tell
    ('serving_default_NAME:0' and 'StatefulPartitionedCall_1:KERAS_INDEX')."""
    from tinycompress.frontend.load import read_tflite
    graph = read_tflite(tflite)
    names = [graph.tensors[i].name for i in graph.inputs]
    inputs = [names.index(f"serving_default_{n}:0") for n in INPUT_NAMES]
    keras_index = [int(graph.tensors[i].name.rsplit(":", 1)[1]) for i in graph.outputs]
    return inputs, [keras_index.index(k) for k in range(1 + 2 * LAYERS)]


def requantize_tables(tflite: bytes) -> list[np.ndarray]:
    """Per cache, table[q + 128]: the cache input's int8 of the new row's int8 output value q."""
    from tflite_micro.python.tflite_micro import runtime
    interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=8 << 20)
    inputs, outputs = io_order(tflite)
    tables = []
    for c in range(2 * LAYERS):
        so, zo = quant(interpreter.get_output_details(outputs[1 + c]))
        sc, zc = quant(interpreter.get_input_details(inputs[2 + c]))
        q = np.arange(-128, 128, dtype=np.float64)
        real = (q - zo) * so
        tables.append(np.clip(np.floor(real / sc + 0.5) + zc, -128, 127).astype(np.int8))
    return tables


def main() -> None:
    sys.path.insert(0, str(HERE.parent.parent / "tests"))
    from modelzoo import _deterministic_tensorflow
    _deterministic_tensorflow()
    import keras
    from train import cross_entropy, int8_logits
    from tinycompress.frontend.quantize import keras_to_int8_tflite
    full = keras.saving.load_model(HERE / "tinylm.keras", compile=False)
    calibration = np.load(HERE / "tinylm_calibration.npz")["x"].astype(np.int32)
    held = np.load(HERE / "tinylm_heldout.npz")
    x, targets = held["x"].astype(np.int32), held["next"].astype(np.int32)

    # float: every step's logits against the full model's at that position
    step = build_step(keras, full)
    windows = x[:4]
    kv = full_keys_values(keras, full, windows)
    expected = np.asarray(full.predict(windows, verbose=0))
    worst = 0.0
    for w in range(len(windows)):
        for p in range(CONTEXT):
            got = np.asarray(step(step_inputs(windows, kv, w, p))[0])[0]
            worst = max(worst, float(np.abs(got - expected[w, p]).max()))
    print(f"float: step logits vs full model at {len(windows)} x {CONTEXT} positions: "
          f"largest difference {worst:.2e} (logits up to {np.abs(expected).max():.1f})")

    tflite = convert_int8(keras, full, calibration)
    (HERE / "tinylm_step.tflite").write_bytes(tflite)
    int8 = Int8Step(tflite)
    full_tflite = keras_to_int8_tflite(full, calibration)

    prompt = list(b"def ")
    for name, run in (("cached", lambda seq: cached_next(int8, seq)),
                      ("full", lambda seq: full_next(full_tflite, seq))):
        seq = list(prompt)
        for _ in range(16):
            seq.append(run(seq))
        print(f"int8 greedy from 'def ', {name}: {bytes(seq)!r}")

    count = 50
    nll_full = cross_entropy(int8_logits(full_tflite, x[:count]), targets[:count])
    logits = np.zeros((count, CONTEXT, VOCAB))
    scale, zero = quant(int8.outs[0])
    for w in range(count):
        int8.reset()
        for p in range(CONTEXT):
            logits[w, p] = (int8.step(int(x[w, p]), p).astype(np.float64) - zero) * scale
    nll_step = cross_entropy(logits, targets[:count])
    print(f"int8 held-out perplexity ({count} windows x {CONTEXT}): full {np.exp(nll_full):.3f}, "
          f"cached {np.exp(nll_step):.3f}")


def cached_next(int8: Int8Step, seq: list[int]) -> int:
    int8.reset()
    for p, token in enumerate(seq):
        logits = int8.step(token, p)
    return int(np.argmax(logits))


def full_next(tflite: bytes, seq: list[int]) -> int:
    from train import int8_logits
    window = np.zeros((1, CONTEXT), np.int32)
    window[0, :len(seq)] = seq
    return int(np.argmax(int8_logits(tflite, window)[0, len(seq) - 1]))


if __name__ == "__main__":
    main()
