"""Language models: perplexity from the firmware's logits (beside host float and host int8), rank steps on
the Dense layers of every transformer block (on [1, T, C] inputs), and compressed token embeddings, on the
zoo's tiny causal LM (tests/zoo_lm.py) and, slow, on examples/tinylm."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_emulator
from test_cli import ROOT

from tinycompress.analysis.sweep import Budgets, perplexity, plan_variants, run_sweep
from tinycompress.errors import TinyCompressError
from tinycompress.frontend.load import read_tflite
from tinycompress.frontend.reference import tflm_outputs

TINYLM = ROOT / "examples" / "tinylm"


def reference_perplexity(logits: np.ndarray, targets: np.ndarray) -> float:
    """The definition written out plainly: exp(-mean log p(next token)) over every position of every window,
    p the softmax of the logits."""
    logits = np.asarray(logits, np.float64).reshape(targets.shape + (-1,))
    p = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    return float(np.exp(-np.log(np.take_along_axis(p, targets[..., None], axis=-1)).mean()))


def interpreter_logits(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """TFLite Micro's logits for token windows x, dequantized: (N, T, V)."""
    out = read_tflite(tflite).output_tensor()
    q = tflm_outputs(tflite, np.ascontiguousarray(x, "<i4").view(np.int8).reshape(len(x), -1))
    return (float(out.scale[0]) * (q.astype(np.float64) - int(out.zero_point[0]))).reshape(
        (len(x),) + tuple(out.shape[1:]))


@pytest.fixture(scope="module")
def tiny_lm(zoo):
    tflite, npz = zoo("tiny_lm")
    with np.load(npz) as data:
        x, y = data["x"], data["y"]
    return tflite, npz, tflite.with_suffix(".keras"), x, y


def test_perplexity_is_the_cross_entropy_of_every_position(tiny_lm):
    tflite, npz, _, x, y = tiny_lm
    logits = interpreter_logits(tflite.read_bytes(), x)
    expected = reference_perplexity(logits, y)
    assert perplexity(logits, y) == pytest.approx(expected, rel=1e-12)
    assert perplexity(logits.reshape(len(x), -1), y) == pytest.approx(expected, rel=1e-12)   # as scored
    assert 1 < expected < 16          # it learned something of the chain: below the uniform 16
    uniform = np.zeros(logits.shape)
    assert perplexity(uniform, y) == pytest.approx(16)


def test_a_language_model_is_scored_on_perplexity(tiny_lm):
    """The .tflite path (no float model): windows in, logits at every position, next tokens as 'y'."""
    from tinycompress.analysis.sweep import _load, load_evaluation
    tflite, npz, _, x, y = tiny_lm
    evaluation = load_evaluation(npz)
    _load(tflite, None, evaluation)
    assert evaluation.language_model and evaluation.metric == "perplexity"
    logits = interpreter_logits(tflite.read_bytes(), x)
    assert evaluation.score(logits) == pytest.approx(reference_perplexity(logits, y), rel=1e-12)
    assert not evaluation.better(evaluation.score(logits) + 1, evaluation.score(logits))   # lower is better


def test_next_tokens_are_checked_against_the_model(tiny_lm, tmp_path):
    from tinycompress.analysis.sweep import _load, load_evaluation
    tflite, _, _, x, y = tiny_lm
    for bad, fragment in ((y[:, :-1], r"needs the next token at each: \(120, 8\)"),
                          (y + 16, "the model has 16 outputs per position")):
        np.savez(tmp_path / "bad.npz", x=x, next=bad)
        with pytest.raises(TinyCompressError, match=fragment) as error:
            _load(tflite, None, load_evaluation(tmp_path / "bad.npz"))
        assert "\n" not in str(error.value)


def test_rank_factorizes_the_dense_layers_of_every_block(tiny_lm):
    """rank:2 with the attention projections at rank 1: each Dense on [1, 8, C] becomes two, and the model
    computes what the original computes with each kernel replaced by its truncated SVD."""
    import keras
    import zoo_lm
    from tinycompress.compress.rank import factorize, parse_rank
    from tinycompress.frontend.quantize import load_keras
    _, _, model_path, x, _ = tiny_lm
    model = load_keras(model_path)
    factorized, decisions = factorize(model, parse_rank("2,[qkvo]?=1"))
    ranks = {d.layer: d.rank for d in decisions}
    blocks = range(zoo_lm.BLOCKS)
    assert ranks == {**{f"{n}{i}": 1 for i in blocks for n in "qkvo"},
                     **{f"{n}{i}": 2 for i in blocks for n in ("ff", "ffo")}, "logits": 2}
    for name in ranks:
        u, v = factorized.get_layer(f"{name}_u"), factorized.get_layer(f"{name}_v")
        assert tuple(u.output.shape[1:]) == (zoo_lm.CONTEXT, ranks[name])
        assert tuple(v.output.shape[1:]) == tuple(model.get_layer(name).output.shape[1:])
    truncated = zoo_lm.build_model(keras)
    for layer in model.layers:
        weights = layer.get_weights()
        if layer.name in ranks:
            u_, s, vt = np.linalg.svd(weights[0].astype(np.float64), full_matrices=False)
            r = ranks[layer.name]
            weights[0] = ((u_[:, :r] * s[:r]) @ vt[:r]).astype(np.float32)
        truncated.get_layer(layer.name).set_weights(weights)
    got, expected = (m.predict(x[:16], verbose=0) for m in (factorized, truncated))
    assert np.allclose(got, expected, atol=1e-4)


@pytest.mark.slow   # a fine-tuning run
def test_rank_fine_tunes_a_language_model_on_its_next_tokens(tiny_lm):
    """--train with the next token at every position under 'y': the factorized model trains on them (cross-
    entropy at every position) and its float perplexity drops below the factorized model's untrained."""
    from tinycompress.compress.plan import parse_plan
    from tinycompress.frontend.quantize import load_keras
    from tinycompress.pipeline import Compression, apply_plan, training_data
    _, npz, model_path, x, y = tiny_lm
    model, train = load_keras(model_path), npz.with_name("tiny_lm_train.npz")
    train_x, train_y = training_data(train, model)
    assert train_y.shape == train_x.shape and train_y.dtype == np.int64
    calibration = train_x[:50]
    plain, tuned = (apply_plan(model, Compression(parse_plan("rank:2"), t, epochs=3), calibration).model
                    for t in (None, train))
    assert perplexity(tuned.predict(x, verbose=0), y) < perplexity(plain.predict(x, verbose=0), y)


def test_embedding_methods_replace_the_lm_token_table(tiny_lm):
    """The token embedding feeds the transformer (with the position bias added), not a pooling: each method
    compresses it, and the head (a separate Dense) stays; pq's 256-entry codebooks need 256 tokens."""
    import zoo_lm
    from tinycompress.compress.embeddings import compress_embeddings, parse_embedding
    from tinycompress.ops.gather import EMBEDDING, table_and_ids
    tflite, _, _, x, _ = tiny_lm
    graph = read_tflite(tflite.read_bytes())
    for method in ("row-int8", "lowrank:4", "hash:8", "kronecker"):
        compressed = compress_embeddings(graph, parse_embedding(method), zoo_lm.vocab())
        lookups = [layer for layer in compressed.layers if EMBEDDING in layer.options]
        assert [layer.options[EMBEDDING].spec.label for layer in lookups] == [method]
        table = compressed.tensors[table_and_ids(lookups[0], compressed)[0]]
        assert table.shape == (zoo_lm.VOCAB, zoo_lm.WIDTH)      # the token table, not the head's (16, 8)
        assert table.data.tobytes() == lookups[0].options[EMBEDDING].decode_table().tobytes()
        assert compressed.layers[-1].op == graph.layers[-1].op == "FULLY_CONNECTED"
        tflm_outputs(compressed.source, np.ascontiguousarray(x[:2], "<i4").view(np.int8).reshape(2, -1))
    with pytest.raises(TinyCompressError, match="256-entry codebook is larger than the vocabulary of 16"):
        compress_embeddings(graph, parse_embedding("pq:2"))


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_perplexity_budgets_are_for_language_models(tiny_lm):
    from tinycompress.target.boards import load_board
    _, npz, model_path, _, _ = tiny_lm
    with pytest.raises(TinyCompressError, match="--max-error is a budget on mse, but the profile measures "
                                                "perplexity: use --max-perplexity"):
        run_sweep(model_path, load_board("mps2-an386"), plan_variants("full"), npz,
                  budgets=Budgets(max_error=1))


def _check_profile(results, x, y) -> None:
    """Every variant bit-exact, scored on perplexity from its own firmware's logits, equal to the host
    interpreter's on the variant's .tflite, which equals the plain definition on those logits."""
    for r in results:
        assert r.metric == "perplexity" and r.bit_exact, r.variant
        assert r.firmware == r.host_int8
        with open(r.tflite, "rb") as f:
            logits = interpreter_logits(f.read(), x)
        # the profile dequantizes to float32, as the float model's logits are; the reference in float64
        assert r.host_int8 == pytest.approx(reference_perplexity(logits, y), rel=1e-6)
        assert r.host_float is not None and r.host_float > 1


@pytest.mark.slow   # a profile of every variant
@needs_emulator
def test_profile_of_the_tiny_lm_on_the_firmware(tiny_lm, tmp_path):
    import zoo_lm
    from tinycompress.target.boards import load_board
    _, npz, model_path, x, y = tiny_lm
    variants = plan_variants("full,rank:4,[qkvo]?=1,embedding:lowrank:4,rank:2+embedding:kronecker")
    results = run_sweep(model_path, load_board("mps2-an386"), variants, npz, tmp_path,
                        calibration=npz.with_name("tiny_lm_train.npz"), vocab=zoo_lm.vocab())
    _check_profile(results, x, y)
    full, attention, lowrank, combined = results
    assert [s["detail"] for s in attention.steps if s["layer"] in ("q0", "ff1")] == \
        ["rank 1 (svd)", "rank 4 (svd)"]
    assert lowrank.host_float == full.host_float      # a graph step: the float model is the same
    assert [e["method"] for e in combined.embeddings] == ["kronecker"]


@needs_emulator
@pytest.mark.slow
def test_profile_of_tinylm_ranks_and_pq(tmp_path):
    """examples/tinylm on the first 24 held-out windows: the full model, two ranks and pq:2."""
    from tinycompress.target.boards import load_board
    with np.load(TINYLM / "tinylm_heldout.npz") as data:
        x, y = data["x"][:24], data["next"][:24].astype(np.int64)
    np.savez(tmp_path / "heldout.npz", x=x, next=y)
    results = run_sweep(TINYLM / "tinylm.keras", load_board("mps2-an386"),
                        plan_variants("full,rank:16,rank:8,embedding:pq:2"), tmp_path / "heldout.npz",
                        tmp_path / "profile", calibration=TINYLM / "tinylm_calibration.npz")
    _check_profile(results, x, y)
    full, rank16, rank8, pq = results
    assert rank8.flash["weights"] < rank16.flash["weights"] < full.flash["weights"]
    assert [e["method"] for e in pq.embeddings] == ["pq:2"]


def test_a_constant_two_layers_share_is_in_flash_once(tiny_lm, tmp_path):
    """The causal mask's two constants are read by a MUL and an ADD in every block: the weights file
    defines each once, the header aliases the later layers' names, and the weight bytes count them once."""
    from tinycompress.ops.common import flash_weight_bytes, shared_arrays
    from tinycompress.pipeline import compile_model
    from tinycompress.target.boards import load_board
    tflite = tiny_lm[0]
    project = compile_model(tflite, load_board("mps2-an386"), tmp_path / "c")
    shared = shared_arrays(project.calls)
    arrays = {a.name: (c.layer.op, a) for c in project.calls for a in c.arrays}
    assert {"MUL", "ADD"} <= {arrays[n][0] for n in shared}       # the mask, and the norms' epsilons
    for name, first in shared.items():
        assert np.array_equal(arrays[name][1].values, arrays[first][1].values)
    source = (tmp_path / "c" / "model_weights.c").read_text()
    header = (tmp_path / "c" / "model_weights.h").read_text()
    for name, first in shared.items():
        assert f" {name}[" not in source and f" {first}[" in source
        assert f"#define {name} {first} " in header
    arrays = [a for c in project.calls for a in c.arrays]
    assert flash_weight_bytes(project.calls) == \
        sum(a.nbytes for a in arrays) - sum(a.nbytes for a in arrays if a.name in shared)
    assert f"Constants in flash: {flash_weight_bytes(project.calls)} bytes" in source
