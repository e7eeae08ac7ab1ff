"""The decode of the requantizing embedding forms (lowrank, kronecker), on the host: the firmware kernels
tc_embedding_{lowrank,kronecker}_s8 built for this machine against `decode` (the numpy arithmetic whose
table the .tflite carries for TFLite Micro), bit for bit over every row, for random and adversarial forms:
multipliers from 2^-24 to 2^20 (shifts to +21), accumulators and biases near 2^30 and past it, int8 codes
at -127 and 127, any zero point. A form either decodes identically or is refused (check_exact), in one
line: with a left shift the kernel shifts its int32 accumulator in 32 bits, where numpy does not wrap."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from tinycompress.compress.embeddings import EmbeddingSpec, Kronecker, LowRank, compress_table, FloatParts
from tinycompress.errors import TinyCompressError
from tinycompress.ops.fixedpoint import quantize_multiplier
from tinycompress.resources import data_dir

pytestmark = pytest.mark.skipif(not shutil.which("gcc"), reason="gcc missing")

DRIVER = r"""
#include "tc_kernels.h"
int lowrank(int vocab, int width, int rank, int zp, const int8_t *factors, const int8_t *projection,
            const int32_t *multiplier, const int32_t *shift, int8_t *out)
{
    const tc_embedding_lowrank_params p = {vocab, vocab, width, rank, zp, factors, projection,
                                           {multiplier, shift, 1, 0, 0}};
    int32_t ids[4096];
    for (int32_t t = 0; t < vocab; t++) ids[t] = t;
    return (int)tc_embedding_lowrank_s8(&p, ids, out);
}
int kronecker(int vocab, int width, int zp, const uint8_t *strings, const uint16_t *offsets,
              const int8_t *projection, const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
              int8_t *out)
{
    const tc_embedding_kronecker_params p = {vocab, vocab, width, zp, strings, offsets, projection, bias,
                                             {multiplier, shift, 1, 0, 0}};
    int32_t ids[4096];
    for (int32_t t = 0; t < vocab; t++) ids[t] = t;
    return (int)tc_embedding_kronecker_s8(&p, ids, out);
}
"""


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("embedding")
    (tmp / "driver.c").write_text(DRIVER)
    firmware = data_dir("firmware")
    sources = [str(tmp / "driver.c")] + [str(firmware / "kernels" / f"tc_embedding_{m}_s8.c")
                                         for m in ("lowrank", "kronecker")]
    subprocess.run(["gcc", "-O1", "-std=c11", "-shared", "-fPIC", "-fwrapv", f"-I{firmware / 'include'}",
                    *sources, "-o", str(tmp / "embedding.so")], check=True)
    return ctypes.CDLL(str(tmp / "embedding.so"))


def c_decode(kernels, form) -> np.ndarray:
    """Every row of `form` as the firmware kernel writes it."""
    keep = []

    def pointer(values, dtype):
        array = np.ascontiguousarray(np.asarray(values).reshape(-1).astype(dtype))
        keep.append(array)
        return array.ctypes.data_as(ctypes.c_void_p)

    out = np.zeros((form.vocab_size, form.width), np.int8)
    requant = [pointer(form.multiplier, np.int32), pointer(form.shift, np.int32), pointer(out, np.int8)]
    if isinstance(form, LowRank):
        status = kernels.lowrank(form.vocab_size, form.width, form.factors.shape[1], form.zero_point,
                                 pointer(form.factors, np.int8), pointer(form.projection, np.int8), *requant)
    else:
        strings, offsets = form._strings()
        status = kernels.kronecker(form.vocab_size, form.width, form.zero_point, pointer(strings, np.uint8),
                                   pointer(offsets, np.uint16), pointer(form.projection, np.int8),
                                   pointer(form.bias, np.int32), *requant)
    assert status == 0
    return np.asarray(keep[2]).reshape(out.shape)


def _codes(rng, shape):
    """int8 codes in [-127, 127]: uniform, or pinned at the ends (the largest accumulators)."""
    if rng.random() < 0.3:
        return rng.choice([-127, 127], shape)
    return rng.integers(-127, 128, shape)


def _requant(rng, width, top=20):
    """Per-column (Q31 significand, shift) of reals from 2^-24 to 2^top, some columns >= 1."""
    pairs = [quantize_multiplier(float(2.0 ** rng.uniform(-24, top))) for _ in range(width)]
    return np.array([m for m, _ in pairs], np.int64), np.array([s for _, s in pairs], np.int64)


def random_lowrank(rng) -> LowRank:
    vocab, width, rank = int(rng.integers(1, 48)), int(rng.integers(1, 24)), int(rng.integers(1, 17))
    multiplier, shift = _requant(rng, width)
    return LowRank(EmbeddingSpec("lowrank", rank), vocab, width, int(rng.integers(-128, 128)),
                   _codes(rng, (vocab, rank)), _codes(rng, (width, rank)), multiplier, shift)


def random_kronecker(rng) -> Kronecker:
    vocab, width = int(rng.integers(1, 48)), int(rng.integers(1, 24))
    alphabet = "ab z\n\x00\u00e9\u4e2d\U0001f600"                     # one to four UTF-8 bytes each
    tokens = ["".join(rng.choice(list(alphabet), int(rng.integers(0, 20)))) for _ in range(vocab)]
    multiplier, shift = _requant(rng, width, top=8)
    bias = rng.integers(-(1 << 16), 1 << 16, width) * (1 << int(rng.integers(0, 16)))   # up to 2^31
    return Kronecker(EmbeddingSpec("kronecker"), vocab, width, int(rng.integers(-128, 128)), tokens,
                     _codes(rng, (width, 128)), bias, multiplier, shift)


@pytest.mark.parametrize("make", [random_lowrank, random_kronecker])
def test_accepted_forms_decode_as_the_firmware_bit_for_bit(make, kernels):
    rng = np.random.default_rng(20261201)
    accepted = refused = left_shifted = 0
    for _ in range(300):
        form = make(rng)
        try:
            form.check_exact()
        except TinyCompressError as exc:
            assert "\n" not in str(exc) and "cannot be decoded exactly" in str(exc)
            refused += 1
            continue
        accepted += 1
        left_shifted += int((form.shift > 0).any())
        expected, got = form.decode_table(), c_decode(kernels, form)
        wrong = np.argwhere(expected != got)
        assert not wrong.size, (f"{len(wrong)} values differ, first row {wrong[0][0]} column {wrong[0][1]}: "
                                f"decode {expected[tuple(wrong[0])]}, firmware {got[tuple(wrong[0])]}")
    assert accepted > 50 and refused > 50 and left_shifted > 50, (accepted, refused, left_shifted)


def test_a_fine_tuned_form_past_int32_is_refused_in_one_line():
    """A projection row fine-tuning drove to ~0 beside a bias: the bias in projection steps is past int32."""
    vocab = [chr(97 + i) for i in range(8)]
    table_q = np.zeros((8, 4), np.int8)
    projection = np.random.default_rng(0).normal(0, 0.1, (4, 128))
    projection[2] = 1e-12
    parts = FloatParts({"projection": projection, "bias": np.full(4, 0.05)}, {})
    one_line = r"^--embedding kronecker: .*column 2's bias .* past 2\^30[^\n]*$"
    with pytest.raises(TinyCompressError, match=one_line):
        compress_table(EmbeddingSpec("kronecker"), table_q, 0.01, 0, vocab, parts)
