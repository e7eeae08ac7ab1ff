"""FULLY_CONNECTED's pair form (ops/dsp_forms.py): what the generator stores, and when it keeps the plain
form. The kernel that reads it runs against the portable one in test_kernel_sweep.py and against TFLite Micro
in test_firmware_vs_tflm.py."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tinycompress.target.boards import load_board
from tinycompress.ops.common import ConstArray
from tinycompress.ops.dsp_forms import EXACT_LIMIT, assign_dsp_forms, pair_bias, pair_weights


def lanes(word_bytes: np.ndarray) -> np.ndarray:
    """The two int16 lanes SMLAD sees in each little-endian word."""
    return word_bytes.astype(np.uint8).view("<i2").astype(np.int64)


def test_pair_words_hold_even_plus_256_odd_and_blocks_interleave():
    rng = np.random.default_rng(5)
    w = rng.integers(-127, 128, size=(10, 12))              # two blocks of four, then a block of two
    stored = pair_weights(w)
    assert stored.size == w.size and stored.min() >= -128 and stored.max() <= 127
    words = stored.reshape(-1, 4)
    expected = []
    for start, size in ((0, 4), (4, 4), (8, 2)):
        for group in range(3):
            for row in range(start, start + size):
                expected.append(w[row, 4 * group:4 * group + 4])
    expected = np.array(expected)
    assert np.array_equal(lanes(words).reshape(-1, 2), expected[:, 0::2] + 256 * expected[:, 1::2])
    assert np.array_equal(words[:, 0::2], expected[:, 0::2])     # SXTB16 of the word: the even weights


def test_pair_sums_equal_the_plain_sums():
    """The kernel's arithmetic on the stored words, in numpy: 256 x the plain sum, for random and extreme
    inputs."""
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, size=(4, 16))
    bias = rng.integers(-30000, 30000, size=4)
    words = pair_weights(w).reshape(4, 4, 4).transpose(1, 0, 2)   # [row, group, byte]
    raw = lanes(words.reshape(-1, 4)).reshape(4, 8)               # each row's int16 lanes, in input order
    even = words[:, :, 0::2].reshape(4, 8)                        # SXTB16: bytes 0 and 2
    sums = pair_bias(w, bias)
    for q in [rng.integers(-128, 128, size=16), np.where(w[0] < 0, -128, 127), np.full(16, -128)]:
        first = q[1::2] - 127
        second = 256 * q[0::2] - q[1::2] + 127
        assert second.min() >= -32768 and second.max() <= 32767 and first.min() >= -32768
        acc = 256 * sums + raw @ first + even @ second
        assert np.array_equal(acc, 256 * (bias + w @ q))


def test_the_plain_form_stays_where_the_pair_form_cannot_hold_the_layer():
    assert pair_weights(np.ones((4, 6), np.int64)) is None             # depth no multiple of four
    assert pair_weights(np.array([[-1, -128, 0, 0]])) is None          # the borrow takes -128 below int8
    heavy = np.full((1, 520), 127)
    assert pair_bias(heavy, np.zeros(1, np.int64)) is None             # 128 x 127 x 520 > 2^23
    assert pair_bias(heavy[:, :512], np.zeros(1, np.int64)) is not None
    assert pair_bias(np.zeros((1, 4), np.int64), np.array([EXACT_LIMIT])) is None


def fc_call(depth=8, units=4, multiplier=2 ** 30, shift=-5):
    arrays = [ConstArray("fc_weights", "int8_t", np.arange(units * depth, dtype=np.int64) % 50 - 25),
              ConstArray("fc_bias", "int32_t", np.zeros(units, np.int64)),
              ConstArray("fc_multiplier", "int32_t", np.full(units, multiplier, np.int64)),
              ConstArray("fc_shift", "int32_t", np.full(units, shift, np.int64))]
    params = {"input_depth": depth, "output_depth": units, "weights": "fc_weights", "bias": "fc_bias",
              "requant": {"multiplier": "fc_multiplier", "shift": "fc_shift"}, "dsp_pairs": 0}
    return SimpleNamespace(function="tc_fully_connected_s8", params=params, arrays=arrays)


@pytest.mark.parametrize("board,pairs", [("mps2-an386", 1), ("mps2-an500", 1), ("mps2-an505", 1),
                                         ("mps2-an385", 0), ("mps3-an547", 0), ("microbit", 0)])
def test_only_cores_whose_kernel_reads_the_pair_form_get_it(board, pairs):
    call = fc_call()
    assign_dsp_forms([call], load_board(board))
    assert call.params["dsp_pairs"] == pairs
    assert (call.arrays[0].dsp_values is not None) == bool(pairs)
    assert call.arrays[2].dsp_values is None                            # requantization stays as it is


@pytest.mark.parametrize("kwargs", [{"depth": 6}, {"multiplier": 2 ** 29}, {"shift": 0}, {"shift": -24}])
def test_layers_without_the_fast_requantization_or_whole_groups_stay_plain(kwargs):
    call = fc_call(**kwargs)
    assign_dsp_forms([call], load_board("mps2-an386"))
    assert call.params["dsp_pairs"] == 0 and all(a.dsp_values is None for a in call.arrays)
