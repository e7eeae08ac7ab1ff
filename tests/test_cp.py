"""CP decomposition: ALS recovers a sum of rank-1 terms where Tucker-2 at the same parameters cannot, the
rebuilt convolutions keep the output, and the k x 1 / 1 x k depthwise layers run bit-exact with TFLite
Micro."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import firmware_vs_tflm, needs_emulator
from tinycompress.compress.cp import cp_als, cp_kernel, cp_params, cp_plan, relative_error, tucker_rank
from tinycompress.compress.plan import Context, parse_plan
from tinycompress.errors import TinyCompressError

RNG = np.random.default_rng(11)


def cp_friendly(shape, rank, rng):
    """A kernel that is exactly a sum of `rank` rank-1 terms."""
    return cp_kernel([rng.normal(size=(n, rank)) for n in shape]).astype(np.float32)


def tucker_friendly(shape, rank, rng):
    """A kernel of Tucker-2 rank (rank, rank) with a generic core: CP needs many more terms."""
    kh, kw, cin, cout = shape
    return np.einsum("ir,hwrs,os->hwio", rng.normal(size=(cin, rank)), rng.normal(size=(kh, kw, rank, rank)),
                     rng.normal(size=(cout, rank))).astype(np.float32)


def test_cp_beats_tucker2_on_a_sum_of_rank_one_terms():
    kernel = cp_friendly((3, 3, 16, 16), 4, RNG)
    method, factors, error, tucker_error = cp_plan(kernel, 4)
    assert method == "cp" and error < 1e-4 and tucker_error > 0.1
    # Tucker-2 rank 2 at CP rank 4's parameters: 2 x 32 + 9 x 4 <= 4 x 38 < 3 x 32 + 9 x 9
    assert tucker_rank(kernel.shape, cp_params(kernel.shape, 4)) == 2
    assert [f.shape for f in factors] == [(3, 4), (3, 4), (16, 4), (16, 4)]
    # the terms' weight spread evenly: each term's four columns have the same norm
    norms = np.array([np.linalg.norm(f, axis=0) for f in factors])
    assert np.allclose(norms, norms[0], rtol=1e-4)
    # deterministic
    assert all(np.array_equal(a, b) for a, b in zip(factors, cp_als(kernel, 4)))


def test_tucker2_is_chosen_where_it_reconstructs_better():
    kernel = tucker_friendly((3, 3, 16, 16), 3, RNG)
    method, _, error, cp_error = cp_plan(kernel, 6)     # the budget affords Tucker-2 rank 3: exact
    assert method == "tucker2" and error < 1e-4 < cp_error
    random = RNG.normal(size=(3, 3, 12, 20)).astype(np.float32)
    method, factors, error, other = cp_plan(random, 5)
    assert error <= other
    if method == "cp":
        assert np.isclose(error, relative_error(random, cp_kernel(factors)), rtol=1e-5)


def cp_model():
    """conv_a (3x3 stride 2 SAME, a sum of 3 rank-1 terms) -> conv_b (3x3 VALID, Tucker rank 3) -> dense."""
    import keras
    keras.utils.set_random_seed(2)
    L = keras.layers
    inp = keras.Input((12, 12, 4), batch_size=1)
    h = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv_a")(inp)
    h = L.Conv2D(16, 3, name="conv_b")(h)
    model = keras.Model(inp, L.Dense(3, name="fc")(L.Flatten()(h)), name="cp_model")
    rng = np.random.default_rng(4)
    model.get_layer("conv_a").set_weights([cp_friendly((3, 3, 4, 16), 3, rng), rng.normal(0, 0.1, 16)])
    model.get_layer("conv_b").set_weights([tucker_friendly((3, 3, 16, 16), 3, rng) / 3,
                                           rng.normal(0, 0.1, 16)])
    return model


def _cp(model, spec):
    return parse_plan(spec).steps[0].apply_keras(model, Context())


def test_decomposed_model_keeps_its_outputs():
    model = cp_model()
    decomposed, steps = _cp(model, "cp:conv_a=3,conv_b=6")
    names = [layer.name for layer in decomposed.layers]
    # SAME at stride 2 on 12 rows: 1 row and column of padding after, none before
    assert names[1:6] == ["conv_a_cp_in", "conv_a_cp_pad", "conv_a_cp_w", "conv_a_cp_h", "conv_a_cp_out"]
    assert names[6:9] == ["conv_b_reduce", "conv_b_core", "conv_b_expand"]
    assert decomposed.get_layer("conv_a_cp_pad").padding == ((0, 1), (0, 1))
    assert decomposed.get_layer("conv_a_cp_h").kernel.shape == (3, 1, 3, 1)
    assert decomposed.get_layer("conv_a_cp_h").strides == (2, 2)
    x = RNG.normal(size=(5, 12, 12, 4)).astype(np.float32)
    want, got = model(x).numpy(), decomposed(x).numpy()
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-3 * np.abs(want).max())
    a, b = steps
    assert a.detail.startswith("CP rank 3: error")
    assert b.detail.startswith("Tucker-2 rank 3 at the parameters")
    assert a.params_after == 3 * (4 + 3 + 3 + 16) + 16 and a.params_before == 9 * 4 * 16 + 16
    assert b.params_after == (16 + 16) * 3 + 9 * 9 + 16
    assert all(s.params_after == sum(w.size for layer in decomposed.layers if layer.name.startswith(s.layer)
                                     for w in layer.get_weights()) for s in steps)
    kept, steps = _cp(model, "cp:conv_a=30")      # 30 x 26 parameters > 3 x 3 x 4 x 16
    assert [layer.name for layer in kept.layers] == [layer.name for layer in model.layers]
    assert "not smaller" in steps[0].note and steps[0].params_after == steps[0].params_before
    for spec, message in [("cp:0", "at least 1"), ("cp:two", "'two' is not a whole number"),
                          ("cp:fc=2", "no layer fc that it applies to .it has conv_a, conv_b")]:
        with pytest.raises(TinyCompressError, match=message):
            _cp(model, spec)


@pytest.mark.slow
@pytest.mark.parametrize("padding,stride,size",
                         [("same", 1, 9), ("valid", 2, 10), ("same", 3, 10), ("valid", 1, 7)])
def test_cp_layers_keep_every_padding_and_stride(padding, stride, size):
    import keras
    inp = keras.Input((size, size, 4), batch_size=1)
    model = keras.Model(inp, keras.layers.Conv2D(8, 3, strides=stride, padding=padding, name="conv")(inp))
    model.get_layer("conv").set_weights([cp_friendly((3, 3, 4, 8), 2, RNG), RNG.normal(size=8)])
    decomposed, (step,) = _cp(model, "cp:2")
    assert step.detail.startswith("CP rank 2")
    x = RNG.normal(size=(3, size, size, 4)).astype(np.float32)
    want, got = model(x).numpy(), decomposed(x).numpy()
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-4 * np.abs(want).max())


@pytest.mark.slow
@needs_emulator
def test_cp_model_with_non_square_depthwise_layers_is_bit_exact(tmp_path):
    """The k x 1 and 1 x k depthwise convolutions (one with stride 2 along its axis, SAME), through our
    lowering and the firmware, against TFLite Micro."""
    from tinycompress.frontend.load import read_tflite
    from tinycompress.frontend.quantize import keras_to_int8_tflite
    decomposed, _ = _cp(cp_model(), "cp:conv_a=3,conv_b=6")
    tflite = keras_to_int8_tflite(decomposed, RNG.normal(size=(100, 12, 12, 4)).astype(np.float32))
    graph = read_tflite(tflite)
    filters = sorted(graph.tensors[layer.inputs[1]].shape for layer in graph.layers
                     if layer.op == "DEPTHWISE_CONV_2D")
    assert filters == [(1, 1, 3, 3), (1, 3, 1, 3)]
    (tmp_path / "cp.tflite").write_bytes(tflite)
    np.savez(tmp_path / "data.npz", x=RNG.normal(size=(60, 12, 12, 4)).astype(np.float32))
    firmware_vs_tflm(tmp_path / "cp.tflite", "mps2-an386", tmp_path / "data.npz", tmp_path, min_inputs=60)
