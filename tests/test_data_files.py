"""Data files (--data, --calibration, --train) are read without trusting them and checked against the model.

Every refusal is one line saying what was expected and what was found. The models are the zoo's
(seeded): digits_mlp reads (1, 64) floats and has 10 outputs; text_mean reads 16 token ids.
"""
from __future__ import annotations

import io
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from test_cli import assert_one_line_error, tc

from tinycompress.frontend.data import MAX_NPZ_BYTES, graph_io
from tinycompress.errors import EXIT_ERROR, TinyCompressError
from tinycompress.frontend.load import read_tflite_file
from tinycompress.pipeline import load_inputs, training_data
from tinycompress.frontend.quantize import load_calibration


@pytest.fixture(scope="module")
def mlp(zoo):
    model, data = zoo("digits_mlp")
    return model, data, read_tflite_file(model)


@pytest.fixture(scope="module")
def text(zoo):
    model, data = zoo("text_mean")
    return read_tflite_file(model)


def npz(tmp_path, **arrays):
    path = tmp_path / "eval.npz"
    np.savez(path, **arrays)
    return path


def refused(path, graph, *fragments):
    with pytest.raises(TinyCompressError) as info:
        load_inputs(path, graph, 10)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


FEATURES = np.zeros((10, 64), np.float32)


def test_good_data_in_every_accepted_shape(mlp, tmp_path):
    _, data, graph = mlp
    x, y = load_inputs(data, graph, 10)
    assert x.shape == (120, 64) and y.shape == (120,)
    for shape, count in [((7, 64), 7), ((7, 1, 64), 7), ((64,), 1), ((1, 64), 1)]:
        x, _ = load_inputs(npz(tmp_path, x=np.ones(shape, np.float32)), graph, 10)
        assert x.shape == (count, 64)


def test_wrong_shape_that_divides_evenly_is_refused(mlp, tmp_path):
    _, _, graph = mlp
    refused(npz(tmp_path, x=np.zeros((10, 8, 8), np.float32)), graph,
            "'x' has shape (10, 8, 8); the model reads (1, 64): expected (N, 64) or (N, 1, 64)")
    refused(npz(tmp_path, x=np.zeros((2, 128), np.float32)), graph, "'x' has shape (2, 128)")
    refused(npz(tmp_path, x_int8=np.zeros((10, 8, 8), np.int8)), graph, "'x_int8' has shape (10, 8, 8)")


def test_wrong_dtype_is_refused(mlp, text, tmp_path):
    _, _, graph = mlp
    refused(npz(tmp_path, x=np.zeros((10, 64), np.int64)), graph, "'x' is int64", "float32")
    refused(npz(tmp_path, x_int8=np.zeros((10, 64), np.int16)), graph, "'x_int8' is int16", "int8")
    refused(npz(tmp_path, x=np.zeros((10, 16), np.float32)), text, "'x' is float32", "token ids")


def test_nan_and_inf_are_counted_and_located(mlp, tmp_path):
    _, _, graph = mlp
    x = FEATURES.copy()
    x[3, 5], x[7, 0] = np.nan, -np.inf
    refused(npz(tmp_path, x=x), graph,
            "'x' has 2 values that are NaN or infinite (the first at index (3, 5))")


def test_token_ids_outside_the_vocabulary(text, tmp_path):
    vocab = graph_io(text).vocab
    ids = np.zeros((4, 16), np.int32)
    ids[2, 3] = vocab
    refused(npz(tmp_path, x=ids), text, f"token ids run from 0 to {vocab}", f"ids 0 to {vocab - 1}")
    refused(npz(tmp_path, x=-ids), text, f"token ids run from {-vocab} to 0")


def test_labels_are_checked(mlp, tmp_path):
    _, _, graph = mlp
    refused(npz(tmp_path, x=FEATURES, y=np.arange(9)), graph, "'y' holds 9 labels for 10 inputs")
    refused(npz(tmp_path, x=FEATURES, y=np.arange(10) + 1), graph,
            "class ids run from 1 to 10 (the first out of range at index 9)", "expected 0 to 9")
    refused(npz(tmp_path, x=FEATURES, y=np.arange(10, dtype=np.float32)), graph,
            "'y' is float32; a classifier of 10 outputs takes integer class ids 0 to 9")
    refused(npz(tmp_path, x=FEATURES, y=np.zeros((10, 3), np.float32)), graph,
            "'y' has shape (10, 3); the model writes (1, 10)")
    targets = np.zeros((10, 10), np.float32)
    targets[1, 1] = np.nan
    refused(npz(tmp_path, x=FEATURES, y=targets), graph, "'y' has 1 values that are NaN")
    _, y = load_inputs(npz(tmp_path, x=FEATURES, y=np.zeros((10, 10), np.float32)), graph, 10)
    assert y.shape == (10, 10)   # regression targets shaped like the output


def test_pickled_object_arrays_are_refused(mlp, tmp_path):
    _, _, graph = mlp
    path = tmp_path / "eval.npz"
    np.savez(path, x=np.array([FEATURES[0], "import os"], dtype=object))
    refused(path, graph, "'x' holds Python objects", "unpickling")


def test_garbage_and_truncated_files_are_one_line(mlp, tmp_path):
    _, data, graph = mlp
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00not a zip at all" * 100)
    refused(garbage, graph, "is not a readable .npz file")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    refused(truncated, graph, "is not a readable .npz file")
    bad_header = tmp_path / "header.npz"
    with zipfile.ZipFile(bad_header, "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': garbage")
    refused(bad_header, graph, "'x' is not a readable array")


def test_a_header_declaring_more_than_the_member_holds(mlp, tmp_path):
    """A 1 GB array declared in a few bytes is refused from its header, before anything is allocated."""
    _, _, graph = mlp
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (4_000_000, 64)})
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(64))
    refused(path, graph, "'x' is not a readable array", "declares 1,024,000,000 bytes")


def test_zip_bomb_is_refused_quickly_without_decompressing(mlp, tmp_path):
    """An .npz of a few MB on disk that would decompress past the cap."""
    _, _, graph = mlp
    path = tmp_path / "bomb.npz"
    rows = MAX_NPZ_BYTES // (64 * 4) + 1024
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (rows, 64)})
            chunk = bytes(1 << 24)
            for _ in range(rows * 64 * 4 // len(chunk) + 1):
                member.write(chunk)
    assert path.stat().st_size < 16 << 20
    tracemalloc.start()
    start = time.monotonic()
    try:
        refused(path, graph, "would decompress to", f"more than the {MAX_NPZ_BYTES:,}")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 2 and peak < 16 << 20


def test_calibration_is_checked_against_the_model(zoo, tmp_path):
    graph = read_tflite_file(zoo("float_mlp")[0])
    with pytest.raises(TinyCompressError, match=r"'x' has shape \(20, 15\); the model reads \(1, 16\)"):
        load_calibration(npz(tmp_path, x=np.zeros((20, 15), np.float32)), graph_io(graph))
    x = np.zeros((20, 16), np.float32)
    x[4, 2] = np.inf
    with pytest.raises(TinyCompressError,
                       match=r"1 values that are NaN or infinite \(the first at index \(4, 2\)\)"):
        load_calibration(npz(tmp_path, x=x), graph_io(graph))


def test_training_labels_are_checked_against_the_keras_model(mlp, tmp_path):
    import keras
    model = keras.models.load_model(mlp[0].with_suffix(".keras"), compile=False)
    x = np.zeros((10, 64), np.float32)
    with pytest.raises(TinyCompressError, match="'y' holds 5 labels for 10 inputs"):
        training_data(npz(tmp_path, x=x, y=np.arange(5)), model)
    with pytest.raises(TinyCompressError, match="class ids run from 3 to 12"):
        training_data(npz(tmp_path, x=x, y=np.arange(10) + 3), model)
    with pytest.raises(TinyCompressError, match=r"'x' has shape \(10, 65\)"):
        training_data(npz(tmp_path, x=np.zeros((10, 65), np.float32)), model)


@pytest.mark.parametrize("command", ["run", "profile-functions"])
def test_the_cli_refuses_bad_data_in_one_line_before_building(mlp, tmp_path, command):
    model, _, _ = mlp
    bad = npz(tmp_path, x=np.zeros((10, 63), np.float32))
    out = tmp_path / "out"
    assert_one_line_error(tc(command, model, "--data", bad, "-o", out), EXIT_ERROR,
                          "'x' has shape (10, 63); the model reads (1, 64): expected (N, 64) or (N, 1, 64)")
    assert not out.exists()
