"""Stage 2b, compress embeddings: shrink the int8 table behind an embedding lookup (GATHER).

Five methods (`--embedding METHOD`), each a compressed form fitted to the float table, stored as integers
in flash, and decoded one token at a time by the firmware (firmware/kernels/tc_embedding_*_s8.c) straight
into int8 at the table's own scale, so no expanded table ever sits in RAM:

    row-int8     int8 codes with one scale per row (a Q15 multiplier to the table's scale)
    lowrank:R    a V x R int8 table and an R x D int8 projection, requantized per column
    pq:M[xK]     product quantization: M sub-vectors, a K-entry int8 codebook each (K from 2 to 256,
                 256 by default), uint8 codes
    hash:B       token ids hashed into B buckets of one shared int8 table
    kronecker    no per-token table: a fixed encoder of the token's bytes and their positions (the
                 Kronecker product of a code per byte and a code per position, summed over the bytes),
                 computed in firmware from the token strings, then one learned projection

`decode` is each method's integer arithmetic in numpy, the firmware's bit for bit. A decoded row depends
on the token id alone, so a GATHER over the decoded table is the same model in TFLite operators: the
pipeline patches that table into the .tflite, and the TFLite Micro interpreter checks the firmware.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TinyCompressError
from .plan import GRAPH, Context, LayerStep, Method
from ..ops.fixedpoint import quantize_multiplier, requantize
from ..ops.common import ConstArray

METHODS = ("row-int8", "lowrank", "pq", "hash", "kronecker")
EXAMPLE = "row-int8, lowrank:16, pq:8 (or pq:8x16), hash:512 or kronecker"
PQ_CODEBOOK = 256                 # entries per sub-vector codebook by default, and at most: a code is one uint8
HASH_MULTIPLIER = 2654435761      # Knuth's multiplicative hash, 2^32 / golden ratio
HASH_SHIFT = 16                   # keep the well-mixed high half of the product
KRONECKER_MAX_BYTES = 16          # longer tokens are encoded by their first 16 bytes
KRONECKER_BYTE_BITS = 16          # a byte's code: 16 signs from (byte + 1) * 40503 mod 2^16
KRONECKER_POSITION_BITS = 8       # a position's code: 8 signs from (position + 1) * 157 mod 2^8
KRONECKER_FEATURES = KRONECKER_BYTE_BITS * KRONECKER_POSITION_BITS
ROW_SCALE_BITS = 15               # row-int8: row scale / table scale as a Q15 uint16
# The kernels accumulate and requantize in int32. An accumulator (after a left shift) below 2^30 leaves
# room for the rest: the Q31 significand is < 2^31, so the product's high half is < 2^30 too, and adding
# the zero point (|zp| <= 128) stays inside int32; a kronecker bias below 2^30 plus any partial sum of the
# 128 products (|f| <= 16 features, |w| <= 128: 2^18 at most) never leaves int32 in whatever order.
ACC_LIMIT = 1 << 30


@dataclass(frozen=True)
class EmbeddingSpec:
    """What the user asked for: a method and its parameter (rank, sub-vectors or buckets), and pq's codebook
    entries when not the default."""
    method: str
    value: int | None = None
    entries: int | None = None

    @property
    def label(self) -> str:
        label = self.method if self.value is None else f"{self.method}:{self.value}"
        return label if self.entries is None else f"{label}x{self.entries}"

    @property
    def codebook(self) -> int:
        """pq's entries per codebook."""
        return self.entries or PQ_CODEBOOK


def parse_embedding(text: str) -> EmbeddingSpec:
    """`row-int8`, `lowrank:R`, `pq:M`, `pq:MxK`, `hash:B` or `kronecker`."""
    method, _, value = text.strip().partition(":")
    if method not in METHODS:
        raise TinyCompressError(f"--embedding {text}: unknown method {method!r}; use {EXAMPLE}")
    if method in ("row-int8", "kronecker"):
        if value:
            raise TinyCompressError(f"--embedding {text}: {method} takes no parameter")
        return EmbeddingSpec(method)
    what = {"lowrank": "a rank", "pq": "a sub-vector count", "hash": "a bucket count"}[method]
    entries = None
    if method == "pq" and re.fullmatch(r"\d+x.*", value):
        value, _, count = value.partition("x")
        try:
            entries = int(count)
        except ValueError:
            raise TinyCompressError(f"--embedding {text}: pq:MxK needs K, the entries per codebook, "
                                    "e.g. pq:8x16") from None
        if not 2 <= entries <= PQ_CODEBOOK:
            raise TinyCompressError(f"--embedding {text}: a codebook has 2 to {PQ_CODEBOOK} entries (a code is "
                                    f"one byte); choose K in that range")
    try:
        number = int(value)
    except ValueError:
        raise TinyCompressError(f"--embedding {text}: {method} needs {what}, e.g. {method}:"
                                f"{ {'lowrank': 16, 'pq': 8, 'hash': 512}[method]}") from None
    if number < 1:
        raise TinyCompressError(f"--embedding {text}: {what} must be at least 1")
    return EmbeddingSpec(method, number, entries)


def parse_embeddings(text: str) -> list[EmbeddingSpec]:
    specs = [parse_embedding(t) for t in text.split(",") if t.strip()]
    if not specs:
        raise TinyCompressError(f"--embeddings needs at least one method: {EXAMPLE}")
    return specs


def read_vocab(path: Path) -> list[str]:
    """One token per line; line i is token id i."""
    path = Path(path)
    if not path.exists() or path.is_dir():
        raise TinyCompressError(f"vocabulary file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TinyCompressError(f"{path} is not UTF-8 text with one token per line") from None
    lines = text.split("\n")
    return [line.rstrip("\r") for line in (lines[:-1] if text.endswith("\n") else lines)]


def check(spec: EmbeddingSpec, vocab_size: int, width: int, vocab: list[str] | None) -> None:
    """Refuse a method that cannot apply to a V x D table, saying why and what to do instead."""
    v = spec.value
    if spec.method == "lowrank" and v > width:
        raise TinyCompressError(f"--embedding {spec.label}: the rank {v} is above the embedding width {width}; "
                                f"choose a rank below {width}")
    if spec.method == "pq":
        if width % v:
            raise TinyCompressError(f"--embedding {spec.label}: {v} sub-vectors do not divide the embedding "
                                    f"width {width}; choose a divisor of {width}")
        if vocab_size < spec.codebook:
            raise TinyCompressError(f"--embedding {spec.label}: a {spec.codebook}-entry codebook is larger than the "
                                    f"vocabulary of {vocab_size} tokens; give fewer entries (pq:{v}xK) or use "
                                    "lowrank or hash")
    if spec.method == "hash" and v >= vocab_size:
        raise TinyCompressError(f"--embedding {spec.label}: {v} buckets are not fewer than the {vocab_size} tokens "
                                "of the vocabulary; choose fewer buckets")
    if spec.method == "kronecker":
        if vocab is None:
            raise TinyCompressError("--embedding kronecker encodes each token's bytes: give the token strings with "
                                    "--vocab FILE (one token per line, line i is id i) or under 'vocab' in --data")
        if len(vocab) != vocab_size:
            raise TinyCompressError(f"the vocabulary has {len(vocab)} tokens but the embedding table has "
                                    f"{vocab_size} rows; give the vocabulary the model was trained with")


# ---- the compressed forms: fit, flash arrays, and the firmware's decode in numpy -------------------------

@dataclass
class FloatParts:
    """A method's float form: what training may change, and what stays fixed (codes, hash map, features)."""
    trainable: dict
    fixed: dict


@dataclass
class CompressedEmbedding:
    """A compressed table whose rows decode to int8 at the table's scale and zero point."""
    spec: EmbeddingSpec
    vocab_size: int
    width: int
    zero_point: int

    function = ""        # the firmware kernel
    params_type = ""

    # Fitting goes through float parts, so fine-tuning (embedding_tune.py) can train them in between:
    # `float_parts` fits them to a float table, `float_table` rebuilds the table from them (with numpy or
    # keras.ops), `from_float` quantizes them at the int8 table's scale.
    @classmethod
    def fit(cls, spec, table, scale, zero_point, vocab):
        return cls.from_float(spec, cls.float_parts(spec, table, vocab), table.shape, scale, zero_point, vocab)

    @classmethod
    def float_parts(cls, spec, table: np.ndarray, vocab) -> "FloatParts":
        raise NotImplementedError

    @staticmethod
    def float_table(ops, trainable: dict, fixed: dict):
        raise NotImplementedError

    @classmethod
    def from_float(cls, spec, parts: "FloatParts", shape, scale: float, zero_point: int, vocab):
        raise NotImplementedError

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """The firmware's rows for `ids`, as int8 (len(ids), width)."""
        raise NotImplementedError

    def decode_table(self) -> np.ndarray:
        return self.decode(np.arange(self.vocab_size))

    def check_exact(self) -> None:
        """Refuse, in one line, a form whose firmware decode would leave int32 on some row: there the C
        wraps and `decode` (int64) does not, so the verification model would not be the firmware's."""

    def arrays(self, prefix: str) -> list[ConstArray]:
        raise NotImplementedError

    def params(self, prefix: str) -> dict:
        """The method's fields of its parameter struct (count, vocab_size and width come first)."""
        raise NotImplementedError

    def macs_per_token(self) -> int:
        return 0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays("x"))

    def _clamp(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values + self.zero_point, -128, 127).astype(np.int8)

    def _refuse(self, why: str):
        raise _inexact(self.spec.label, why)


def _inexact(label: str, why: str) -> TinyCompressError:
    return TinyCompressError(f"--embedding {label}: the compressed table cannot be decoded exactly in the "
                             f"firmware's 32-bit arithmetic ({why}); fine-tune fewer epochs or choose "
                             "another method")


def _check_requantize(form: CompressedEmbedding, acc: np.ndarray, shift: np.ndarray) -> None:
    """The firmware's requantization of int32 accumulators `acc` (rows x columns) by column shifts, as
    tc_requantize_s8 (and TFLite Micro) compute it: with a shift s > 0 the accumulator is shifted left by
    s in 32 bits first ((uint32_t)x << s), then multiplied by the Q31 significand in 64 bits. So each
    column needs |acc| 2^max(s, 0) < 2^31 on every row (`requantize` shifts in int64 and would not wrap);
    we ask for ACC_LIMIT = 2^30, i.e. |acc| < 2^(30 - s), which leaves a shift above 29 no room at all
    (and shifting by 32 or more is undefined in C)."""
    left = np.maximum(np.asarray(shift, np.int64), 0)
    peak = np.abs(acc).max(axis=0) if acc.size else np.zeros(len(left), np.int64)
    over = np.flatnonzero((left > 29) | (peak >= ACC_LIMIT >> np.minimum(left, 30)))
    if over.size:
        j = int(over[0])
        form._refuse(f"column {j}'s accumulator reaches {int(peak[j]):,} x 2^{int(left[j])}, past 2^30")


def _symmetric(values: np.ndarray, axis=None) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes in [-127, 127] and their scale(s), max |x| / 127 (along `axis`, or one for all)."""
    peak = np.abs(values).max(axis=axis, keepdims=axis is not None) if values.size else np.zeros(1)
    scale = np.where(peak > 0, peak / 127.0, 1.0)
    return np.clip(np.round(values / scale), -127, 127).astype(np.int64), scale


def _multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's (Q31 significand, exponent) for each real multiplier."""
    pairs = [quantize_multiplier(float(r)) for r in reals]
    return np.array([m for m, _ in pairs], np.int64), np.array([s for _, s in pairs], np.int64)


def _requant(prefix: str, multiplier: np.ndarray, shift: np.ndarray) -> tuple[dict, list[ConstArray]]:
    """A per-column tc_requant initializer and its two arrays."""
    arrays = [ConstArray(f"{prefix}_multiplier", "int32_t", multiplier, "Q31 significands, per output column"),
              ConstArray(f"{prefix}_shift", "int32_t", shift, "power-of-two exponents")]
    return {"multiplier": arrays[0].name, "shift": arrays[1].name, "per_channel": 1}, arrays


@dataclass
class RowInt8(CompressedEmbedding):
    codes: np.ndarray = None          # (V, D) int8
    row_multiplier: np.ndarray = None  # (V,) uint16, Q15

    function, params_type = "tc_embedding_row_int8_s8", "tc_embedding_row_int8_params"

    @classmethod
    def float_parts(cls, spec, table, vocab):
        return FloatParts({"table": table}, {})

    @staticmethod
    def float_table(ops, trainable, fixed):
        return trainable["table"]

    @classmethod
    def from_float(cls, spec, parts, shape, scale, zero_point, vocab):
        table = np.asarray(parts.trainable["table"], np.float64)
        _, row_scale = _symmetric(table, axis=1)
        multiplier = np.clip(np.round(row_scale[:, 0] / scale * (1 << ROW_SCALE_BITS)), 1, 65535).astype(np.int64)
        exact_scale = multiplier[:, None] * scale / (1 << ROW_SCALE_BITS)   # the scale the decode applies
        codes = np.clip(np.round(table / exact_scale), -127, 127).astype(np.int64)
        return cls(spec, *table.shape, zero_point, codes, multiplier)

    def decode(self, ids):
        product = self.codes[ids] * self.row_multiplier[ids, None]
        return self._clamp((product + (1 << (ROW_SCALE_BITS - 1))) >> ROW_SCALE_BITS)

    def arrays(self, prefix):
        return [ConstArray(f"{prefix}_codes", "int8_t", self.codes.reshape(-1), f"[{self.vocab_size}x{self.width}]"),
                ConstArray(f"{prefix}_row_multiplier", "uint16_t", self.row_multiplier,
                           f"[{self.vocab_size}] Q15: each row's scale over the table's")]

    def params(self, prefix):
        return {"zero_point": self.zero_point, "codes": f"{prefix}_codes",
                "row_multiplier": f"{prefix}_row_multiplier"}


@dataclass
class LowRank(CompressedEmbedding):
    factors: np.ndarray = None     # (V, R) int8, one scale
    projection: np.ndarray = None  # (D, R) int8, one scale per output column
    multiplier: np.ndarray = None
    shift: np.ndarray = None

    function, params_type = "tc_embedding_lowrank_s8", "tc_embedding_lowrank_params"

    @classmethod
    def float_parts(cls, spec, table, vocab):
        rank = spec.value
        u, s, vt = np.linalg.svd(table.astype(np.float64), full_matrices=False)
        root = np.sqrt(s[:rank])    # split the singular values evenly so both factors quantize alike
        return FloatParts({"factors": u[:, :rank] * root, "projection": (root[:, None] * vt[:rank]).T}, {})

    @staticmethod
    def float_table(ops, trainable, fixed):
        return ops.matmul(trainable["factors"], ops.transpose(trainable["projection"]))

    @classmethod
    def from_float(cls, spec, parts, shape, scale, zero_point, vocab):
        """From float factors A (V x R) and the projection B^T (D x R)."""
        a, b_t = (np.asarray(parts.trainable[k], np.float64) for k in ("factors", "projection"))
        factors, a_scale = _symmetric(a)
        projection, b_scale = _symmetric(b_t, axis=1)
        multiplier, shift = _multipliers(float(a_scale) * b_scale[:, 0] / scale)
        return cls(spec, a.shape[0], b_t.shape[0], zero_point, factors, projection, multiplier, shift)

    def accumulators(self, ids):
        """tc_embedding_lowrank_s8's int32 sums: |acc| <= rank x 127 x 127, under 2^31 up to rank 133,000."""
        return self.factors[ids] @ self.projection.T

    def decode(self, ids):
        return self._clamp(requantize(self.accumulators(ids), self.multiplier, self.shift))

    def check_exact(self):
        _check_requantize(self, self.accumulators(np.arange(self.vocab_size)), self.shift)

    def arrays(self, prefix):
        rank = self.factors.shape[1]
        requant = _requant(prefix, self.multiplier, self.shift)[1]
        return [ConstArray(f"{prefix}_factors", "int8_t", self.factors.reshape(-1), f"[{self.vocab_size}x{rank}]"),
                ConstArray(f"{prefix}_projection", "int8_t", self.projection.reshape(-1),
                           f"[{self.width}x{rank}] the R x D projection, one column per row"), *requant]

    def params(self, prefix):
        return {"rank": self.factors.shape[1], "zero_point": self.zero_point, "factors": f"{prefix}_factors",
                "projection": f"{prefix}_projection", "requant": _requant(prefix, self.multiplier, self.shift)[0]}

    def macs_per_token(self):
        return self.projection.size


def kmeans(points: np.ndarray, k: int, iterations: int = 25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means from a k-means++ start: (centroids (k, d), assignment (n,))."""
    rng = np.random.default_rng(seed)
    n = len(points)
    centroids = [points[rng.integers(n)]]
    nearest = ((points - centroids[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        pick = rng.choice(n, p=nearest / total) if total > 0 else rng.integers(n)
        centroids.append(points[pick])
        nearest = np.minimum(nearest, ((points - points[pick]) ** 2).sum(axis=1))
    centroids = np.array(centroids)
    for _ in range(iterations):
        distances = (points ** 2).sum(1)[:, None] - 2 * points @ centroids.T + (centroids ** 2).sum(1)[None, :]
        assignment = distances.argmin(axis=1)
        counts = np.bincount(assignment, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assignment, points)
        empty = counts == 0
        centroids = np.where(empty[:, None], centroids, sums / np.maximum(counts, 1)[:, None])
        if empty.any():   # re-seed empty clusters at the points worst served
            worst = distances[np.arange(n), assignment].argsort()[::-1][:int(empty.sum())]
            centroids[np.flatnonzero(empty)] = points[worst]
    distances = (points ** 2).sum(1)[:, None] - 2 * points @ centroids.T + (centroids ** 2).sum(1)[None, :]
    return centroids, distances.argmin(axis=1)


@dataclass
class ProductQuantized(CompressedEmbedding):
    codes: np.ndarray = None      # (V, M) uint8
    codebooks: np.ndarray = None  # (M, K, D / M) int8 at the table's scale

    function, params_type = "tc_embedding_pq_s8", "tc_embedding_pq_params"

    @classmethod
    def float_parts(cls, spec, table, vocab):
        m = spec.value
        sub = table.shape[1] // m
        step = np.abs(table).max() / 127 or 1.0   # k-means in int8 steps, where the rounding happens
        codes, books = [], []
        for i in range(m):
            centroids, assignment = kmeans(table[:, i * sub:(i + 1) * sub] / step, spec.codebook, seed=i)
            books.append(centroids * step)
            codes.append(assignment)
        return FloatParts({"codebooks": np.stack(books)}, {"codes": np.stack(codes, 1).astype(np.int32)})

    @staticmethod
    def float_table(ops, trainable, fixed):
        books, codes = trainable["codebooks"], fixed["codes"]
        return ops.concatenate([ops.take(books[i], codes[:, i], axis=0) for i in range(codes.shape[1])], axis=1)

    @classmethod
    def from_float(cls, spec, parts, shape, scale, zero_point, vocab):
        books = np.clip(np.round(np.asarray(parts.trainable["codebooks"]) / scale) + zero_point, -128, 127)
        return cls(spec, *shape, zero_point, parts.fixed["codes"].astype(np.int64), books.astype(np.int64))

    def decode(self, ids):
        m = self.codes.shape[1]
        return np.concatenate([self.codebooks[i][self.codes[ids, i]] for i in range(m)], axis=1).astype(np.int8)

    def arrays(self, prefix):
        m, entries, sub = self.codebooks.shape
        return [ConstArray(f"{prefix}_codes", "uint8_t", self.codes.reshape(-1),
                           f"[{self.vocab_size}x{m}] one codebook entry per sub-vector"),
                ConstArray(f"{prefix}_codebooks", "int8_t", self.codebooks.reshape(-1),
                           f"[{m}x{entries}x{sub}] at the table's scale")]

    def params(self, prefix):
        if not 0 <= int(self.codes.min()) <= int(self.codes.max()) < self.codebooks.shape[1] <= PQ_CODEBOOK:
            self._refuse("a code outside its codebook")      # the kernel indexes codebooks with them
        return {"subvectors": self.codes.shape[1], "entries": self.codebooks.shape[1], "codes": f"{prefix}_codes",
                "codebooks": f"{prefix}_codebooks"}


def hash_buckets(ids: np.ndarray, buckets: int) -> np.ndarray:
    """tc_embedding_hash_s8's bucket of each id: the high half of id * 2654435761 mod 2^32, mod B."""
    return ((np.asarray(ids, np.uint64) * HASH_MULTIPLIER % (1 << 32)) >> HASH_SHIFT).astype(np.int64) % buckets


@dataclass
class Hashed(CompressedEmbedding):
    table: np.ndarray = None   # (B, D) int8 at the table's scale

    function, params_type = "tc_embedding_hash_s8", "tc_embedding_hash_params"

    @classmethod
    def float_parts(cls, spec, table, vocab):
        """Each bucket starts as the mean of the rows hashed into it."""
        bucket_of = hash_buckets(np.arange(len(table)), spec.value)
        sums = np.zeros((spec.value, table.shape[1]))
        np.add.at(sums, bucket_of, table)
        means = sums / np.maximum(np.bincount(bucket_of, minlength=spec.value), 1)[:, None]
        return FloatParts({"buckets": means}, {"bucket_of": bucket_of.astype(np.int32)})

    @staticmethod
    def float_table(ops, trainable, fixed):
        return ops.take(trainable["buckets"], fixed["bucket_of"], axis=0)

    @classmethod
    def from_float(cls, spec, parts, shape, scale, zero_point, vocab):
        buckets = np.clip(np.round(np.asarray(parts.trainable["buckets"]) / scale) + zero_point, -128, 127)
        return cls(spec, *shape, zero_point, buckets.astype(np.int64))

    def decode(self, ids):
        return self.table[hash_buckets(ids, self.spec.value)].astype(np.int8)

    def arrays(self, prefix):
        b = self.spec.value
        return [ConstArray(f"{prefix}_buckets", "int8_t", self.table.reshape(-1),
                           f"[{b}x{self.width}] token t reads bucket ((t * 2654435761) mod 2^32 >> 16) mod {b}")]

    def params(self, prefix):
        return {"buckets": self.spec.value, "table": f"{prefix}_buckets"}


def token_bytes(vocab: list[str]) -> list[bytes]:
    return [t.encode("utf-8")[:KRONECKER_MAX_BYTES] for t in vocab]


def kronecker_features(vocab: list[str]) -> np.ndarray:
    """(V, 128) int: sum over a token's bytes of byte code (x) position code, each code a vector of signs."""
    byte_code = lambda b: ((b + 1) * 40503) & 0xFFFF          # noqa: E731
    position_code = lambda i: ((i + 1) * 157) & 0xFF          # noqa: E731
    bits = lambda word, n: 1 - 2 * ((word >> np.arange(n)) & 1)   # noqa: E731  bit set -> -1
    features = np.zeros((len(vocab), KRONECKER_FEATURES), np.int64)
    for v, raw in enumerate(token_bytes(vocab)):
        for i, b in enumerate(raw):
            features[v] += np.outer(bits(byte_code(b), KRONECKER_BYTE_BITS),
                                    bits(position_code(i), KRONECKER_POSITION_BITS)).reshape(-1)
    return features


@dataclass
class Kronecker(CompressedEmbedding):
    vocab: list[str] = None
    projection: np.ndarray = None  # (D, 128) int8, one scale per row
    bias: np.ndarray = None        # (D,) int32 at the projection's scales
    multiplier: np.ndarray = None
    shift: np.ndarray = None

    function, params_type = "tc_embedding_kronecker_s8", "tc_embedding_kronecker_params"

    @classmethod
    def float_parts(cls, spec, table, vocab):
        """The least-squares projection (and bias) from the byte features to the table."""
        features = kronecker_features(vocab).astype(np.float64)
        solution = np.linalg.lstsq(np.hstack([features, np.ones((len(vocab), 1))]), table, rcond=None)[0]
        return FloatParts({"projection": solution[:-1].T, "bias": solution[-1]}, {"features": features})

    @staticmethod
    def float_table(ops, trainable, fixed):
        return ops.matmul(fixed["features"], ops.transpose(trainable["projection"])) + trainable["bias"]

    @classmethod
    def from_float(cls, spec, parts, shape, scale, zero_point, vocab):
        """From the float projection (D x 128) and bias (D,)."""
        weights, bias = (np.asarray(parts.trainable[k], np.float64) for k in ("projection", "bias"))
        projection, w_scale = _symmetric(weights, axis=1)
        bias_q = np.round(bias / w_scale[:, 0])     # the features are integers: scale 1
        if not np.all(np.abs(bias_q) < ACC_LIMIT):   # a near-zero projection row with a bias beside it
            j = int(np.argmax(np.abs(bias_q)))
            raise _inexact(spec.label, f"column {j}'s bias is {bias_q[j]:.3g} steps of its projection, "
                                       "past 2^30")
        bias_q = bias_q.astype(np.int64)
        multiplier, shift = _multipliers(w_scale[:, 0] / scale)
        return cls(spec, len(vocab), weights.shape[0], zero_point, list(vocab), projection, bias_q, multiplier, shift)

    def accumulators(self, ids):
        """tc_embedding_kronecker_s8's int32 sums: bias + 128 features (|f| <= 16) x int8 weights."""
        return kronecker_features([self.vocab[i] for i in ids]) @ self.projection.T + self.bias

    def decode(self, ids):
        return self._clamp(requantize(self.accumulators(ids), self.multiplier, self.shift))

    def check_exact(self):
        """The bias is an int32_t array, and the kernel adds the 128 products to it one by one: with
        |bias| < 2^30 no partial sum leaves int32 (ACC_LIMIT)."""
        big = np.flatnonzero(np.abs(self.bias) >= ACC_LIMIT)
        if big.size:
            self._refuse(f"column {int(big[0])}'s bias {int(self.bias[big[0]]):,} is past 2^30")
        _check_requantize(self, self.accumulators(np.arange(self.vocab_size)), self.shift)

    def _strings(self) -> tuple[np.ndarray, np.ndarray]:
        raw = token_bytes(self.vocab)
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in raw])]).astype(np.int64)
        if offsets[-1] > 0xFFFF:
            raise TinyCompressError(f"kronecker: the token strings take {offsets[-1]:,} bytes; at most 65,535 "
                                    "(16-bit offsets) are supported")
        return np.frombuffer(b"".join(raw), np.uint8).astype(np.int64), offsets

    def arrays(self, prefix):
        strings, offsets = self._strings()
        return [ConstArray(f"{prefix}_strings", "uint8_t", strings,
                           f"the {self.vocab_size} token strings, UTF-8, each cut to {KRONECKER_MAX_BYTES} bytes"),
                ConstArray(f"{prefix}_offsets", "uint16_t", offsets, f"[{self.vocab_size + 1}] token t: "
                           "strings[offsets[t]] up to strings[offsets[t + 1]]"),
                ConstArray(f"{prefix}_projection", "int8_t", self.projection.reshape(-1),
                           f"[{self.width}x{KRONECKER_FEATURES}] one row per output column"),
                ConstArray(f"{prefix}_bias", "int32_t", self.bias, f"[{self.width}] at each column's projection scale"),
                *_requant(prefix, self.multiplier, self.shift)[1]]

    def params(self, prefix):
        return {"zero_point": self.zero_point, "strings": f"{prefix}_strings", "offsets": f"{prefix}_offsets",
                "projection": f"{prefix}_projection", "bias": f"{prefix}_bias",
                "requant": _requant(prefix, self.multiplier, self.shift)[0]}

    def macs_per_token(self):
        return self.projection.size


FORMS = {"row-int8": RowInt8, "lowrank": LowRank, "pq": ProductQuantized, "hash": Hashed, "kronecker": Kronecker}


def compress_table(spec: EmbeddingSpec, table_q: np.ndarray, scale: float, zero_point: int,
                   vocab: list[str] | None = None, parts: FloatParts | None = None) -> CompressedEmbedding:
    """Fit the method to an int8 table (V x D, real = scale * (q - zero_point)), or quantize the float
    parts fine-tuning gave (at that table's scale)."""
    check(spec, *table_q.shape, vocab)
    if parts is not None:
        form = FORMS[spec.method].from_float(spec, parts, table_q.shape, scale, zero_point, vocab)
    else:
        table = scale * (table_q.astype(np.float64) - zero_point)
        form = FORMS[spec.method].fit(spec, table, scale, zero_point, vocab)
    form.check_exact()      # the decoded table patched into the .tflite must be the firmware's
    return form


# ---- the graph: every embedding table replaced by its compressed form ---------------------------------

def compress_embeddings(graph, spec: EmbeddingSpec, vocab: list[str] | None = None,
                        parts: FloatParts | None = None):
    """A new graph whose embedding lookups carry `spec`'s compressed form of their table (for the firmware),
    and whose .tflite holds the decoded table instead (for the TFLite Micro interpreter: the same model).
    `parts`: the fine-tuned float form of the (one) table, instead of a fit to it."""
    from ..frontend.load import constant_bytes_location, read_tflite
    from ..ops.common import scalar_quant
    from ..ops.gather import EMBEDDING, is_embedding_lookup, table_and_ids

    lookups = [i for i, layer in enumerate(graph.layers) if is_embedding_lookup(layer, graph)]
    if not lookups:
        raise TinyCompressError(f"--embedding {spec.label}: {graph.name} has no embedding lookup (a GATHER of rows "
                                "of a constant int8 table by int32 token ids) to compress")
    source, forms = bytearray(graph.source), {}
    for i in lookups:
        index = table_and_ids(graph.layers[i], graph)[0]
        table = graph.tensors[index]
        forms[i] = compress_table(spec, table.data, *scalar_quant(table), vocab, parts)
        offset, length = constant_bytes_location(graph.source, index)
        decoded = forms[i].decode_table().tobytes()
        assert length == len(decoded) and graph.source[offset:offset + length] == table.data.tobytes()
        source[offset:offset + length] = decoded
    compressed = read_tflite(bytes(source), name=graph.name)
    for i, form in forms.items():
        compressed.layers[i].options[EMBEDDING] = form
    return compressed


class EmbeddingMethod(Method):
    """`embedding:METHOD`: every embedding table of the int8 graph in a compressed form. With training
    data, the method's float parts are fine-tuned with the network first (embedding_tune.py), through
    the fine_tune_model / fine_tuned hooks; `context` gives the token strings kronecker needs."""
    names = ("embedding",)
    stage = GRAPH
    usage = f"embedding:METHOD with METHOD {EXAMPLE}"

    def __init__(self, name: str, arg: str | None):
        super().__init__(name, arg)
        self.parts: FloatParts | None = None       # the fine-tuned float form, once trained
        self._finish = None
        self.spec()                 # a malformed method is refused when the plan is read

    def spec(self) -> EmbeddingSpec:
        if self.arg is None:
            raise self.bad("it needs a method")
        return parse_embedding(self.arg)

    def fine_tune_model(self, model):
        from .embedding_tune import lookup_student
        vocab = self.context.vocab if self.context else None
        student, self._finish = lookup_student(model, self.spec(), vocab)
        return student

    def fine_tuned(self, model):
        tuned, self.parts = self._finish(model)
        return tuned

    def apply_graph(self, graph, context: Context):
        from ..ops.gather import EMBEDDING
        compressed = compress_embeddings(graph, self.spec(), context.vocab, self.parts)
        steps = []
        for layer in compressed.layers:
            form = layer.options.get(EMBEDDING)
            if form is not None:
                table = form.vocab_size * form.width
                detail = form.spec.label + " (fine-tuned)" * bool(self.parts)
                values = sum(int(a.values.size) for a in form.arrays("x"))
                steps.append(LayerStep(layer.name, self.name, detail, table, values, table, form.nbytes))
        return compressed, steps


def embedding_summary(calls) -> list[dict]:
    """Per embedding lookup: the method, and its flash against the int8 table it replaces."""
    from ..ops.gather import EMBEDDING
    rows = []
    for call in calls:
        form = call.layer.options.get(EMBEDDING)
        if call.function == "tc_gather_s8" or form is not None:
            table = call.params["vocab_size"] * call.params["width"]
            rows.append({"layer": call.layer.name, "method": form.spec.label if form else "int8",
                         "vocab_size": call.params["vocab_size"], "width": call.params["width"],
                         "values": sum(int(a.values.size) for a in call.arrays),
                         "bytes": call.weight_bytes, "table_bytes": table,
                         "compression": round(table / max(call.weight_bytes, 1), 2)})
    return rows
