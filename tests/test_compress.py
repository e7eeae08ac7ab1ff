"""Low-rank factorization: the linear algebra, the rebuilt Keras models, and the errors."""
from __future__ import annotations

import numpy as np
import pytest

from tinycompress.compress.rank import (conv_plan, energy_rank, factorize, parse_rank, svd_factors, tucker2)
from tinycompress.errors import TinyCompressError

RNG = np.random.default_rng(3)


def test_svd_factors_split_the_singular_values_evenly():
    w = RNG.normal(size=(40, 24)).astype(np.float32)
    a, b, s = svd_factors(w, 24)
    assert np.allclose(a @ b, w, atol=1e-4)
    # sqrt(S) in each factor: both have the same column/row norms.
    assert np.allclose(np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=1), rtol=1e-4)
    a8, b8, _ = svd_factors(w, 8)
    assert a8.shape == (40, 8) and b8.shape == (8, 24)
    # The truncation error is exactly the dropped singular values (Eckart-Young).
    assert np.isclose(np.linalg.norm(w - a8 @ b8), np.sqrt(np.sum(s[8:] ** 2)), rtol=1e-4)


def test_energy_rank():
    s = np.array([3.0, 2.0, 1.0, 0.5])
    total = np.sum(s ** 2)
    assert energy_rank(s, 9 / total) == 1
    assert energy_rank(s, 13 / total) == 2
    assert energy_rank(s, 0.999) == 4


def test_tucker2_is_exact_at_full_rank():
    k = RNG.normal(size=(3, 3, 6, 5)).astype(np.float32)
    reduce, core, expand = tucker2(k, 6, 5)
    assert np.allclose(np.einsum("ir,hwrs,so->hwio", reduce, core, expand), k, atol=1e-4)


def test_conv_plan_prefers_tucker_on_a_tucker_structured_kernel():
    # Rank 6 in both channel modes: an SVD of rank 4 cannot hold it, while Tucker-2 at the same
    # parameter count (1,280) affords rank 8 in each mode and reconstructs it exactly.
    core = RNG.normal(size=(3, 3, 6, 6))
    k = np.einsum("ir,hwrs,os->hwio", RNG.normal(size=(32, 6)), core,
                  RNG.normal(size=(32, 6))).astype(np.float32)
    method, _, error = conv_plan(k, 4)
    assert method == "tucker2" and error < 1e-3
    method, _, _ = conv_plan(RNG.normal(size=(1, 1, 16, 16)).astype(np.float32), 4)
    assert method == "svd"  # 1x1 convolutions are plain matrices


@pytest.mark.parametrize("text,message", [("0", "at least 1"), ("x", "not a whole number"),
                                          ("dense=", "layer=rank pairs")])
def test_bad_rank_text(text, message):
    with pytest.raises(TinyCompressError, match=message):
        parse_rank(text)


@pytest.fixture(scope="module")
def small_cnn():
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3), batch_size=1)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv")(inp)
    h = keras.layers.Flatten(name="flat")(h)
    h = keras.layers.Dense(32, activation="relu", name="fc1")(h)
    return keras.Model(inp, keras.layers.Dense(4, name="fc2")(h))


def test_full_rank_factorization_keeps_the_function(small_cnn):
    x = RNG.normal(size=(5, 8, 8, 3)).astype(np.float32)
    model, decisions = factorize(small_cnn, parse_rank("conv=16,fc1=3"))
    by_layer = {d.layer: d for d in decisions}
    assert by_layer["conv"].method == "kept" and "not smaller" in by_layer["conv"].note  # 16*(27+16) > 27*16
    assert by_layer["fc1"].method == "svd" and by_layer["fc1"].params_after == 3 * (1024 + 32) + 32
    assert by_layer["fc2"].method == "kept" and by_layer["fc2"].note == ""
    assert [l.name for l in model.layers if l.name.startswith("fc1")] == ["fc1_u", "fc1_v"]
    # Energy 1.0 keeps every singular value: the same outputs.
    exact, _ = factorize(small_cnn, parse_rank(None, energy=1.0))
    assert np.allclose(exact.predict(x, verbose=0), small_cnn.predict(x, verbose=0), atol=1e-3)


def test_conv_factorization_is_a_chain_of_convolutions(small_cnn):
    model, decisions = factorize(small_cnn, parse_rank("conv=4"))
    conv = next(d for d in decisions if d.layer == "conv")
    assert conv.method in ("svd", "tucker2") and conv.params_after < conv.params_before
    assert sum(l.name.startswith("conv_") for l in model.layers) in (2, 3)


def test_factorization_errors(small_cnn):
    with pytest.raises(TinyCompressError, match="above min\\(m, n\\) = 4 of its 32x4 matrix"):
        factorize(small_cnn, parse_rank("fc2=5"))
    with pytest.raises(TinyCompressError,
                       match="no Dense or Conv2D layer named fc9; factorizable layers: conv, fc1, fc2"):
        factorize(small_cnn, parse_rank("fc9=2"))


def test_a_global_rank_above_a_layers_width_skips_that_layer(small_cnn):
    """The default --ranks reach 32, above the width of small layers: those are kept, with a note, and the
    others factorized (the sweep used to abort on the first such rank)."""
    _, decisions = factorize(small_cnn, parse_rank("8"))
    by_layer = {d.layer: d for d in decisions}
    assert by_layer["fc1"].method == "svd" and by_layer["fc1"].rank == 8
    assert by_layer["fc2"].method == "kept" and by_layer["fc2"].note == \
        "rank 8 is above min(m, n) = 4 of its 32x4 matrix"
    _, decisions = factorize(small_cnn, parse_rank("999"))
    assert all(d.method == "kept" and "is above min(m, n)" in d.note for d in decisions)


def test_branched_models_are_factorized_in_place():
    """A residual model is no chain: it is cloned with each Dense called factorized on the same input, the
    other layers copied with their weights (tests/test_lm.py does a transformer)."""
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((8,), batch_size=1)
    a = keras.layers.Dense(8, name="a")(inp)
    model = keras.Model(inp, keras.layers.Add(name="sum")([a, keras.layers.Dense(8, name="b")(inp)]))
    factorized, decisions = factorize(model, parse_rank("2,b=3"))
    assert [(d.layer, d.rank, d.method) for d in decisions] == [("a", 2, "svd"), ("b", 3, "svd")]
    x = RNG.normal(size=(3, 8)).astype(np.float32)
    weights = {l.name: l.get_weights() for l in model.layers}
    expected = sum(x @ _truncated(weights[n][0], r) + weights[n][1] for n, r in (("a", 2), ("b", 3)))
    assert np.allclose(factorized.predict(x, verbose=0), expected, atol=1e-4)


def _truncated(w: np.ndarray, rank: int) -> np.ndarray:
    u, s, vt = np.linalg.svd(w.astype(np.float64))
    return (u[:, :rank] * s[:rank]) @ vt[:rank]
