"""examples/tinylm: the committed byte-level transformer keeps the issue's shape, its data files fit it, and
its firmware's logits equal TFLite Micro's on the held-out windows."""
from __future__ import annotations

import importlib.util
import json
import zipfile

import numpy as np
import pytest
from conftest import firmware_vs_tflm, needs_emulator
from test_cli import ROOT

EXAMPLE = ROOT / "examples" / "tinylm"
MODEL = EXAMPLE / "tinylm.keras"
CALIBRATION = EXAMPLE / "tinylm_calibration.npz"
HELDOUT = EXAMPLE / "tinylm_heldout.npz"
TRAIN = EXAMPLE / "tinylm_train.npz"


def _script():
    spec = importlib.util.spec_from_file_location("tinylm_train", EXAMPLE / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layers() -> dict[str, dict]:
    """The committed model's layers by name, from its config.json (no TensorFlow needed)."""
    with zipfile.ZipFile(MODEL) as archive:
        config = json.loads(archive.read("config.json"))
    return {layer["config"]["name"]: layer for layer in config["config"]["layers"]}


def test_the_script_keeps_the_issue_shape():
    t = _script()
    assert 32 <= t.CONTEXT <= 64 and t.WIDTH == 64 and t.LAYERS == 2 and 2 <= t.HEADS <= 4
    assert t.VOCAB <= 512 and t.WIDTH % t.HEADS == 0
    keep, masked = t.causal_mask()   # a position sees itself and the past, never the future
    scores = np.random.default_rng(0).normal(0, 8, (t.CONTEXT, t.CONTEXT)).astype(np.float32)
    future = np.triu_indices(t.CONTEXT, 1)
    assert ((scores * keep + masked)[future] == t.MASKED).all()
    assert np.array_equal(np.tril(scores * keep + masked), np.tril(scores))


def test_the_committed_model_is_the_script_model():
    t = _script()
    layers = _layers()
    assert layers["tokens"]["config"]["batch_shape"] == [None, t.CONTEXT]
    embedding = layers["embedding"]["config"]
    assert (embedding["input_dim"], embedding["output_dim"]) == (t.VOCAB, t.WIDTH)
    for i in range(t.LAYERS):
        for name in ("q", "k", "v", "o"):
            assert layers[f"{name}{i}"]["config"]["units"] == t.WIDTH
        assert layers[f"ff{i}"]["config"]["activation"] == "relu"
        assert layers[f"ff{i}"]["config"]["units"] == t.FEED_FORWARD
    assert layers["logits"]["config"]["units"] == t.VOCAB
    assert f"q{t.LAYERS}" not in layers
    activations = {layer["config"].get("activation") for layer in layers.values()} - {None}
    assert activations <= {"linear", "relu"}   # TFLite Micro has no GELU
    assert sum(path.stat().st_size for path in EXAMPLE.iterdir() if path.is_file()) < 3 << 19


def test_the_data_files_are_windows_of_bytes():
    t = _script()
    with np.load(CALIBRATION) as calibration, np.load(HELDOUT) as heldout:
        x, following = heldout["x"], heldout["next"]
        assert calibration["x"].shape == (t.CALIBRATION_WINDOWS, t.CONTEXT)
        assert x.shape == following.shape == (t.HELDOUT_WINDOWS, t.CONTEXT) and x.dtype == np.uint8
        assert (x[:, 1:] == following[:, :-1]).all()   # the target at each position is the next byte
    with np.load(TRAIN) as train:
        x, y = train["x"], train["y"]
        assert x.shape == y.shape == (t.FINE_TUNE_WINDOWS, t.CONTEXT) and x.dtype == y.dtype == np.uint8
        assert (x[:, 1:] == y[:, :-1]).all()
    text = bytes(t.corpus()[0])     # fine-tuning windows are training text, the held-out ones are not
    assert all(bytes(w) + bytes(n[-1:]) in text for w, n in zip(x[:50], y[:50]))


def test_the_data_files_are_the_scripts_byte_for_byte(tmp_path):
    import subprocess
    import sys
    subprocess.run([sys.executable, str(EXAMPLE / "train.py"), "--data-only", "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=120)
    for path in (CALIBRATION, HELDOUT, TRAIN):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


@needs_emulator
@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_tinylm_firmware_equals_tflite_micro_on_the_heldout_windows(board, tmp_path):
    from tinycompress.pipeline import load_model
    graph = load_model(MODEL, CALIBRATION)
    ops = {layer.op for layer in graph.layers}
    assert {"BATCH_MATMUL", "SOFTMAX", "TRANSPOSE", "MEAN", "RSQRT", "SQUARED_DIFFERENCE"} <= ops
    firmware_vs_tflm(graph, board, HELDOUT, tmp_path, min_inputs=_script().HELDOUT_WINDOWS)


@pytest.mark.slow
def test_the_int8_model_is_exactly_causal():
    """Masked scores sit where int8 SOFTMAX gives them no weight at all: no logit sees a later byte."""
    from tinycompress.pipeline import load_model
    t = _script()
    with np.load(HELDOUT) as heldout:
        x = heldout["x"][:50].astype(np.int32)
    tflite = load_model(MODEL, CALIBRATION).source
    assert [t.future_leaks(tflite, x, position) for position in (0, 20, 47)] == [0, 0, 0]


def test_the_readme_tables_are_the_benchmarks_measurements():
    """The README's profile and per-token tables are benchmarks/tinylm.py's, printed from tinylm.json: every
    variant and every generation step bit-exact, the firmware's perplexity the interpreter's, and the cache
    at least 5x fewer instructions per token at context 64 on both cores."""
    spec = importlib.util.spec_from_file_location("bench_tinylm", ROOT / "benchmarks" / "tinylm.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = json.loads(bench.RESULTS.read_text())
    readme = (EXAMPLE / "README.md").read_text()
    assert bench.profile_table(results["profile"]) in readme
    assert bench.generation_table(results["generate"]) in readme
    assert all(r["bit_exact"] and r["firmware"] == r["host_int8"] for r in results["profile"])
    assert [r["variant"] for r in results["profile"]] == results["variants"].split(",")
    rows = {(r["core"], r["form"]): r for r in results["generate"]}
    assert all(r["bit_exact"] for r in rows.values()) and {c for c, _ in rows} == {"M4", "M55"}
    for core in ("M4", "M55"):
        cached = rows[core, "cached"]
        cost = cached["instructions_per_token"] + cached["copy_instructions_per_token"]
        assert rows[core, "full window"]["instructions_per_token"] >= 5 * cost
