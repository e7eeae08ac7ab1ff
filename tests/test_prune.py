"""Structured pruning: the pruned network computes what the whole one computes with the removed channels'
inputs zeroed at the next layers that mix channels, it compiles bit-exact with TFLite Micro, and it is
smaller."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import firmware_vs_tflm, needs_emulator
from tinycompress.compress.plan import Context, parse_plan
from tinycompress.compress.prune import kept_count, prune_model
from tinycompress.errors import TinyCompressError

RNG = np.random.default_rng(5)


def tiny_cnn():
    """conv1 -> BN -> ReLU -> depthwise x2 -> BN -> pool -> conv2 -> Dropout -> Flatten -> fc1 -> fc2: every
    layer pruning follows, with statistics in the BNs so a removed channel is not simply a zero."""
    import keras
    keras.utils.set_random_seed(1)
    L = keras.layers
    inp = keras.Input((12, 12, 3), batch_size=1)
    h = L.Conv2D(8, 3, padding="same", name="conv1")(inp)
    h = L.ReLU(name="relu1")(L.BatchNormalization(name="bn1")(h))
    h = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(h)
    h = L.MaxPooling2D(name="pool")(L.BatchNormalization(name="bn2")(h))
    h = L.Dropout(0.2, name="drop")(L.Conv2D(12, 1, activation="relu", name="conv2")(h))
    h = L.Dense(20, activation="relu", name="fc1")(L.Flatten(name="flat")(h))
    model = keras.Model(inp, L.Dense(5, name="fc2")(h), name="tiny_cnn")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 1, n), rng.normal(0, 1, n),
                               rng.uniform(0.5, 2, n)])
    return model


def _prune(model, spec: str, context: Context | None = None):
    step = parse_plan(spec).steps[0]
    return prune_model(model, *step.options(), context or Context(), step)


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_pruned_network_is_the_whole_one_with_the_removed_inputs_zeroed():
    """Exact up to float rounding, through BN, a depthwise of multiplier 2, pooling, Dropout and Flatten."""
    model = tiny_cnn()
    pruned, steps, kept = _prune(model, "prune:0.5")
    assert {name: len(k) for name, k in kept.items()} == {"conv1": 4, "conv2": 6, "fc1": 10}

    reference = tiny_cnn()      # the same weights; zero the inputs each removed channel feeds
    dropped = np.setdiff1d(np.arange(8), kept["conv1"])
    conv2 = reference.get_layer("conv2").get_weights()
    conv2[0][:, :, np.concatenate([dropped * 2, dropped * 2 + 1])] = 0   # dw's outputs c*2, c*2+1
    reference.get_layer("conv2").set_weights(conv2)
    fc1 = reference.get_layer("fc1").get_weights()
    rows = np.arange(6 * 6 * 12).reshape(36, 12)                    # Flatten of 6x6x12, NHWC
    fc1[0][rows[:, np.setdiff1d(np.arange(12), kept["conv2"])].ravel()] = 0
    reference.get_layer("fc1").set_weights(fc1)
    fc2 = reference.get_layer("fc2").get_weights()
    fc2[0][np.setdiff1d(np.arange(20), kept["fc1"])] = 0
    reference.get_layer("fc2").set_weights(fc2)

    x = RNG.normal(size=(6, 12, 12, 3)).astype(np.float32)
    got, want = pruned(x).numpy(), reference(x).numpy()
    assert got.shape == model(x).shape and not np.allclose(want, model(x).numpy(), atol=1e-3)
    assert np.allclose(got, want, atol=1e-5), np.abs(got - want).max()

    by = {s.layer: s for s in steps}
    assert [s.layer for s in steps] == ["conv1", "dw", "conv2", "fc1", "fc2"]
    assert by["fc2"].params_after == 10 * 5 + 5 and "model's output" in by["fc2"].note
    assert by["dw"].detail == "8 of 16 channels kept (those conv1 keeps)"
    assert all(s.params_after == sum(w.size for w in pruned.get_layer(s.layer).get_weights()) for s in steps)
    assert all(s.bytes_after < s.bytes_before for s in steps)


def test_l1_keeps_the_largest_channels_and_at_least_one():
    model = tiny_cnn()
    l1 = np.abs(model.get_layer("conv1").get_weights()[0]).sum(axis=(0, 1, 2))
    _, steps, kept = _prune(model, "prune:conv1=0.01")
    assert kept_count(0.01, 8) == 1 and list(kept) == ["conv1"] and kept["conv1"].tolist() == [np.argmax(l1)]
    assert steps[0].detail == "1 of 8 channels kept (L1 norm)"
    assert [kept_count(f, 7) for f in (0.5, 0.05, 1.0)] == [4, 1, 7]   # 3.5 -> 4, 0.35 -> 1


@pytest.mark.slow
def test_loss_sensitivity_drops_a_large_channel_nothing_reads():
    """conv1's largest filter feeds nothing (its rows in conv2 are zero): L1 keeps it, the loss measure
    (class labels, float targets, or the change of the outputs) removes it."""
    model = tiny_cnn()
    conv1 = model.get_layer("conv1").get_weights()
    conv1[0][..., 3] *= 50
    model.get_layer("conv1").set_weights(conv1)
    conv2 = model.get_layer("conv2").get_weights()
    conv2[0][:, :, [6, 7]] = 0
    model.get_layer("conv2").set_weights(conv2)
    x = RNG.normal(size=(40, 12, 12, 3)).astype(np.float32)
    assert 3 in _prune(model, "prune:conv1=0.5")[2]["conv1"]
    own = model(x).numpy()     # labels the model gets right: removing what it reads costs loss
    for context in (Context(calibration=x), Context(train_x=x, train_y=own.argmax(axis=1)),
                    Context(train_x=x, train_y=own + RNG.normal(0, 0.01, own.shape))):
        _, steps, kept = _prune(model, "prune:conv1=0.5:loss", context)
        assert 3 not in kept["conv1"] and "loss sensitivity" in steps[0].detail


def test_merges_and_outputs_are_kept_with_the_reason():
    import keras
    L = keras.layers
    inp = keras.Input((8, 8, 4), batch_size=1)
    a = L.Conv2D(4, 3, padding="same", name="a")(inp)
    b = L.Conv2D(4, 1, name="b")(L.ReLU()(a))
    out = L.Conv2D(3, 1, name="c")(L.Add(name="add")([a, b]))
    model = keras.Model(inp, out)
    pruned, steps, kept = _prune(model, "prune:0.5")
    assert kept == {}
    notes = {s.layer: s.note for s in steps}
    merge = "its outputs reach the merge add (Add)"
    assert notes == {"a": merge, "b": merge, "c": "its outputs reach the model's output"}
    assert all(s.params_after == s.params_before for s in steps)


REFUSALS = [("prune:0", r"the fraction 0 must lie in \(0, 1\]"), ("prune:1.5", "must lie in"),
            ("prune:half", "'half' is not a fraction"),
            ("prune:0.5:fisher", "unknown importance measure 'fisher'"),
            ("prune:conv9=0.5", "the model has no layer conv9"),
            ("prune:dw=0.5", "dw: a DepthwiseConv2D keeps"), ("prune", "it needs a value")]


def test_refusals_are_one_line():
    model = tiny_cnn()
    for spec, message in REFUSALS:
        with pytest.raises(TinyCompressError, match=message) as error:
            _prune(model, spec)
        assert "\n" not in str(error.value) and str(error.value).startswith("--compress prune"), spec


@pytest.mark.slow
@needs_emulator
def test_pruned_model_compiles_bit_exact_with_tflite_micro(tmp_path):
    from tinycompress.frontend.quantize import keras_to_int8_tflite
    pruned, _, _ = _prune(tiny_cnn(), "prune:0.5")
    calibration = RNG.normal(size=(100, 12, 12, 3)).astype(np.float32)
    (tmp_path / "pruned.tflite").write_bytes(keras_to_int8_tflite(pruned, calibration))
    np.savez(tmp_path / "data.npz", x=RNG.normal(size=(60, 12, 12, 3)).astype(np.float32))
    firmware_vs_tflm(tmp_path / "pruned.tflite", "mps2-an386", tmp_path / "data.npz", tmp_path,
                     min_inputs=60)


def weight_params(model) -> int:
    import keras
    kinds = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    return sum(w.size for layer in model.layers if isinstance(layer, kinds) for w in layer.get_weights())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kws_dscnn", "ad_autoencoder"])
def test_half_of_the_channels_cut_the_mlperf_weights_by_40_percent(zoo, name):
    from tinycompress.frontend.quantize import load_keras
    model = load_keras(zoo(name)[0].with_suffix(".keras"))
    pruned, steps, _ = _prune(model, "prune:0.5")
    before, after = weight_params(model), weight_params(pruned)
    assert after <= 0.6 * before, f"{after} of {before} weight parameters left"
    assert sum(s.params_before - s.params_after for s in steps) == before - after
    assert pruned.outputs[0].shape == model.outputs[0].shape
    if name == "kws_dscnn":
        assert steps[-1].note == "its outputs reach the model's output through softmax"


@pytest.mark.slow
@needs_emulator
def test_pruned_dscnn_is_bit_exact_with_tflite_micro(zoo, tmp_path):
    from tinycompress.frontend.quantize import keras_to_int8_tflite, load_keras
    tflite, data = zoo("kws_dscnn")
    pruned, _, _ = _prune(load_keras(tflite.with_suffix(".keras")), "prune:0.5")
    calibration = np.load(tflite.with_name("kws_dscnn_train.npz"))["x"]
    (tmp_path / "pruned.tflite").write_bytes(keras_to_int8_tflite(pruned, calibration))
    firmware_vs_tflm(tmp_path / "pruned.tflite", "mps2-an386", data, tmp_path, min_inputs=100)
