"""Data files (--data, --calibration, --train): read without trusting them, checked against the model.

An .npz is a zip of .npy arrays. Its zip directory is read first and the members' declared sizes are
capped before anything is decompressed; each array's .npy header is read before its data, refused
when it holds Python objects (a pickle) or declares more data than the member holds. Then the arrays
are checked against the model that reads them: the exact input shape (with or without a leading
batch dimension), the dtype, finite values, token ids within the vocabulary, and labels (one per
input, integer class ids within the model's outputs, or targets shaped like the output).
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TinyCompressError

MAX_NPZ_BYTES = 1 << 30     # all members together, uncompressed
MAX_NPZ_MEMBERS = 256


class NpzData:
    """The arrays of an .npz, read one at a time when asked for; `files` names them."""

    def __init__(self, path: Path, what: str):
        self.path, self.what = Path(path), what
        if not self.path.is_file():
            raise TinyCompressError(f"{what} file {self.path} does not exist")
        try:
            with zipfile.ZipFile(self.path) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise TinyCompressError(f"{self.path} is not a readable .npz file ({_reason(exc)}); "
                                    "write it with numpy.savez") from None
        if len(infos) > MAX_NPZ_MEMBERS:
            raise TinyCompressError(f"{self.path} holds {len(infos):,} arrays, more than the "
                                    f"{MAX_NPZ_MEMBERS} a data file may have")
        total = sum(info.file_size for info in infos)
        if total > MAX_NPZ_BYTES:
            raise TinyCompressError(f"{self.path} would decompress to {total:,} bytes, more than the "
                                    f"{MAX_NPZ_BYTES:,} a data file may hold; give fewer or smaller arrays")
        self._members = {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i for i in infos}
        self.files = list(self._members)
        self._cache: dict[str, np.ndarray] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._members

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._cache:
            self._cache[key] = self._read(key)
        return self._cache[key]

    def _read(self, key: str) -> np.ndarray:
        info = self._members[key]
        fmt = np.lib.format
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open(info) as f:
                version = fmt.read_magic(f)
                read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, fortran, dtype = read_header(f)
                if dtype.hasobject:
                    raise TinyCompressError(f"{self.path}: '{key}' holds Python objects ({dtype}), which "
                                            "would need unpickling; store plain numeric or string arrays")
                count = int(np.prod(shape, dtype=np.int64))
                nbytes = count * dtype.itemsize
                if nbytes > info.file_size:
                    raise ValueError(f"its header declares {nbytes:,} bytes in a member of "
                                     f"{info.file_size:,}")
                raw = f.read(nbytes)
        except TinyCompressError:
            raise
        except Exception as exc:  # zipfile, zlib and the .npy header parser raise many kinds
            raise TinyCompressError(f"{self.path}: '{key}' is not a readable array ({_reason(exc)}); "
                                    "write the file with numpy.savez") from None
        if len(raw) != nbytes:
            raise TinyCompressError(f"{self.path}: '{key}' is truncated ({len(raw):,} of {nbytes:,} bytes)")
        array = np.frombuffer(raw, dtype=dtype, count=count)
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass
class ModelIO:
    """What a model reads and writes, for checking data files against it."""
    input_shape: tuple          # one sample, batch dimension included; None where any size goes
    tokens: bool                # the input is integer token ids (else float features)
    vocab: int | None           # token ids run 0..vocab-1, when known
    output_shape: tuple         # one sample's output, batch dimension included

    @property
    def classes(self) -> int:
        return int(np.prod([d or 1 for d in self.output_shape[1:]] or [1]))


def graph_io(graph) -> ModelIO:
    from ..pipeline import token_range
    inp = graph.input_tensor()
    return ModelIO(tuple(inp.shape), inp.dtype == "int32", token_range(graph),
                   tuple(graph.output_tensor().shape))


def _forms(shape: tuple) -> list[tuple]:
    """The shapes one sample may have: without the batch dimension (when it is 1), then with it."""
    return ([tuple(shape[1:])] if shape and shape[0] in (1, None) else []) + [tuple(shape)]


def _same(found: tuple, form: tuple) -> bool:
    return len(found) == len(form) and all(f is None or f == d for d, f in zip(found, form))


def _text(shape: tuple, lead: str = "") -> str:
    dims = ([lead] if lead else []) + ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def sample_count(shape: tuple, model_shape: tuple) -> int | None:
    """How many samples an array of `shape` holds for a model reading `model_shape`: a single sample,
    or (N, *sample); None when it fits neither."""
    forms = _forms(model_shape)
    if any(_same(tuple(shape), f) for f in forms):
        return 1
    if shape and any(_same(tuple(shape[1:]), f) for f in forms):
        return int(shape[0])
    return None


def _check_shape(array: np.ndarray, model_shape: tuple, where: str, reads: str) -> int:
    n = sample_count(array.shape, model_shape)
    if n is None:
        expected = " or ".join(_text(f, "N") for f in _forms(model_shape))
        raise TinyCompressError(f"{where} has shape {_text(array.shape)}; the model {reads} "
                                f"{_text(model_shape)}: expected {expected}")
    if n == 0:
        raise TinyCompressError(f"{where} holds no samples")
    return n


def _check_finite(array: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise TinyCompressError(f"{where} has {int(bad.sum()):,} values that are NaN or infinite "
                                f"(the first at index {first}); give finite numbers")


def _is_int(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.integer)


def check_samples(x: np.ndarray, io: ModelIO, where: str) -> np.ndarray:
    """Samples 'x' for the model, (N, *input shape): float features, or integer token ids in the
    vocabulary."""
    x = np.asarray(x)
    n = _check_shape(x, io.input_shape, where, "reads")
    if io.tokens:
        if not _is_int(x):
            raise TinyCompressError(f"{where} is {x.dtype}; the model reads token ids: store integers")
        if io.vocab is not None and (x.min() < 0 or x.max() >= io.vocab):
            raise TinyCompressError(f"{where}: token ids run from {x.min()} to {x.max()} but the vocabulary "
                                    f"has {io.vocab} tokens (ids 0 to {io.vocab - 1})")
        return x.astype(np.int32).reshape((n,) + tuple(x.shape[x.ndim - len(_core(io)):]))
    if not np.issubdtype(x.dtype, np.floating):
        raise TinyCompressError(f"{where} is {x.dtype}; the model reads float features: store float32 "
                                "(or int8 values under 'x_int8')")
    _check_finite(x, where)
    return x.astype(np.float32).reshape((n,) + tuple(x.shape[x.ndim - len(_core(io)):]))


def _core(io: ModelIO) -> tuple:
    return _forms(io.input_shape)[0]


def check_int8_samples(x: np.ndarray, io: ModelIO, where: str) -> np.ndarray:
    """Already-quantized samples 'x_int8': int8, the model's input shape."""
    x = np.asarray(x)
    n = _check_shape(x, io.input_shape, where, "reads")
    if x.dtype != np.int8:
        raise TinyCompressError(f"{where} is {x.dtype}; expected int8 values (or floats under 'x')")
    return x.reshape(n, -1)


def check_labels(y: np.ndarray, io: ModelIO, count: int, where: str) -> np.ndarray:
    """Labels 'y', one per input: class ids 0..classes-1 for a classifier, else targets shaped like the
    output."""
    y = np.asarray(y)
    found = y.shape[0] if y.ndim else 0
    if found != count:
        raise TinyCompressError(f"{where} holds {found:,} labels for {count:,} inputs; give one per input")
    if io.classes > 1 and y.size == count:   # one value per input for a model of several outputs: class ids
        if not _is_int(y):
            raise TinyCompressError(f"{where} is {y.dtype}; a classifier of {io.classes} outputs takes "
                                    f"integer class ids 0 to {io.classes - 1}")
        if y.min() < 0 or y.max() >= io.classes:
            first = int(np.argmax((y < 0) | (y >= io.classes)))
            raise TinyCompressError(f"{where}: class ids run from {y.min()} to {y.max()} (the first out of "
                                    f"range at index {first}) but the model has {io.classes} outputs: "
                                    f"expected 0 to {io.classes - 1}")
        return y.reshape(-1)
    if y.size != count * io.classes:
        raise TinyCompressError(f"{where} has shape {_text(y.shape)}; the model writes "
                                f"{_text(io.output_shape)}: expected one target of {io.classes} values per "
                                f"input, {' or '.join(_text(f, 'N') for f in _forms(io.output_shape))}")
    if not _is_int(y):
        _check_finite(y, where)
    return y


def is_language_model(io: ModelIO, y: np.ndarray) -> bool:
    """A language model scored on next tokens: token ids in (1, T), logits at every position out (1, T, V),
    and integer labels (the next token at each position)."""
    out = io.output_shape
    return (io.tokens and len(out) == 3 and len(io.input_shape) == 2 and out[1] == io.input_shape[1]
            and _is_int(np.asarray(y)))


def check_next_tokens(y: np.ndarray, io: ModelIO, count: int, where: str) -> np.ndarray:
    """A language model's targets: the next token at every position of every window, (N, T), ids within
    the model's V outputs."""
    y = np.asarray(y)
    positions, vocab = io.output_shape[1], io.output_shape[2]
    if y.shape != (count, positions):
        raise TinyCompressError(f"{where} has shape {_text(y.shape)}; a language model of {positions} "
                                f"positions scored on {count:,} windows needs the next token at each: "
                                f"({count}, {positions})")
    if y.min() < 0 or y.max() >= vocab:
        raise TinyCompressError(f"{where}: token ids run from {y.min()} to {y.max()} but the model has "
                                f"{vocab} outputs per position (ids 0 to {vocab - 1})")
    return y.astype(np.int64)
