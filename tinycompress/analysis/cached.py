"""`tinycompress generate --cache`: greedy generation through a key/value-cached step model.

A step model computes one position of a causal language model. Its signature:

    inputs   token     int32 [1, 1]: the token at the position
             position  int8 [1, T]: the position's one-hot (quantized: zero point everywhere, the
                       int8 of 1.0 at the position)
             caches    N >= 1 int8 [1, H, T, D]: rows 0 .. position-1 hold the earlier positions' rows,
                       the others the zero point (real 0)
    outputs  logits    int8 [1, V]: the logits at the position
             rows      N int8 [1, H, 1, D]: the position's new row of each cache

The token and the position are told apart from the caches by their shapes. Cache i takes row i, with
caches and rows each in the order of their tensor names, digit runs compared as numbers: the
TFLite converter names inputs 'serving_default_NAME:0' (name the Keras inputs so they sort in the
order of the Keras outputs, as examples/tinylm/step.py does: cache_0_k0, cache_1_v0, ...) and
outputs 'StatefulPartitionedCall_1:K', K the Keras output's index.

The firmware (templates/generate_cache.c.j2) keeps the caches in static arrays outside the tensor arena,
copies them into the model's inputs before every step, and stores each new row at the position, converted
from its output's scale to its cache input's by a 256-entry table (requantize_table: the same table here,
for the host's replay, and in the firmware, where it is emitted as a constant array). The prompt's tokens
are fed one step each (their logits are verified too), then each step feeds the argmax of the last. The
positions used, prompt tokens + generated tokens - 1, must fit in T: the cache does not slide.

With verification, the TFLite Micro interpreter replays the same steps on the host, its caches taken from
its own outputs through the same tables, and every step's logits must equal the firmware's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import EXIT_USAGE, TinyCompressError
from ..ir import Graph, Tensor


@dataclass
class CacheSignature:
    """Where the step model's inputs and outputs are (indices into graph.inputs / graph.outputs)."""
    context: int
    vocab: int
    token: int
    position: int
    caches: list[int]
    logits: int
    rows: list[int]
    heads: int
    width: int                 # D: a row's values per head
    hot: int                   # the one-hot's int8 at the position; elsewhere `cold`
    cold: int
    cache_zero: list[int]      # each cache input's zero point: its empty rows
    tables: np.ndarray         # (N, 256) int8: table[i][q + 128], row value q as cache i's int8

    def fields(self, max_steps: int) -> dict:
        """What generate_cache.c.j2 is rendered with."""
        return dict(cache=True, context=self.context, vocab=self.vocab, token=self.token,
                    position=self.position, caches=self.caches, logits=self.logits, rows=self.rows,
                    heads=self.heads, width=self.width, hot=self.hot, cold=self.cold,
                    cache_zero=self.cache_zero, tables=self.tables.tolist(), max_steps=max_steps)


def natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def requantize_table(out: Tensor, cache: Tensor) -> np.ndarray:
    """table[q + 128]: the int8, at the cache input's scale, of the value q of the row output, rounded half
    up (step.Int8Step's rule): clip(floor((q - zo) * so / sc + 0.5) + zc)."""
    so, zo = float(out.scale[0]), int(out.zero_point[0])
    sc, zc = float(cache.scale[0]), int(cache.zero_point[0])
    q = np.arange(-128, 128, dtype=np.float64)
    return np.clip(np.floor((q - zo) * so / sc + 0.5) + zc, -128, 127).astype(np.int8)


def one_hot_values(position: Tensor) -> tuple[int, int]:
    """The int8 of 1.0 and of 0.0 at the position input's scale (round half to even, as step.py)."""
    scale, zero = float(position.scale[0]), int(position.zero_point[0])
    return int(np.clip(round(1 / scale) + zero, -128, 127)), zero


def check_cache_signature(graph: Graph) -> CacheSignature:
    """Refuse, in one line, a model that is not a step model of the signature above."""
    from ..pipeline import token_range
    name = graph.name
    ins = [graph.tensors[t] for t in graph.inputs]
    outs = [graph.tensors[t] for t in graph.outputs]
    if graph.float_io is not None and (graph.float_io.input or graph.float_io.output):
        raise TinyCompressError(f"{name} has float32 inputs or outputs; --cache needs an int8 step model")
    tokens = [i for i, t in enumerate(ins) if t.dtype == "int32" and list(t.shape) == [1, 1]]
    if len(tokens) != 1:
        raise TinyCompressError(f"--cache needs a step model with one int32 [1, 1] token input; {name} has "
                                f"{len(tokens)}")
    rest = [i for i in range(len(ins)) if i != tokens[0]]
    if any(ins[i].dtype != "int8" or not ins[i].quantized for i in rest):
        raise TinyCompressError(f"--cache: {name}'s inputs other than the token must be quantized int8")
    positions = [i for i in rest if len(ins[i].shape) == 2]
    caches = [i for i in rest if len(ins[i].shape) == 4]
    if len(positions) != 1 or not caches or len(positions) + len(caches) != len(rest):
        raise TinyCompressError(f"--cache needs a step model whose inputs are a token [1, 1], a position "
                                f"one-hot [1, T] and caches [1, H, T, D]; {name} takes "
                                + ", ".join(f"{t.dtype} {list(t.shape)}" for t in ins))
    context = ins[positions[0]].shape[1]
    cache_shape = list(ins[caches[0]].shape)
    if ins[positions[0]].shape[0] != 1 or context < 1:
        raise TinyCompressError(f"--cache: {name}'s position input is {list(ins[positions[0]].shape)}, "
                                "not [1, T]")
    if cache_shape[0] != 1 or cache_shape[2] != context or any(list(ins[i].shape) != cache_shape
                                                               for i in caches):
        raise TinyCompressError(f"--cache: {name}'s caches must all be [1, H, {context}, D] (T = "
                                f"{context}, the one-hot's length); they are "
                                + ", ".join(str(list(ins[i].shape)) for i in caches))
    heads, width = cache_shape[1], cache_shape[3]
    logits = [i for i, t in enumerate(outs) if len(t.shape) == 2]
    rows = [i for i, t in enumerate(outs) if len(t.shape) == 4]
    if len(logits) != 1 or len(rows) != len(caches) or len(outs) != 1 + len(rows):
        raise TinyCompressError(f"--cache needs a step model giving logits [1, V] and one row [1, H, 1, D] "
                                f"per cache ({len(caches)}); {name} gives "
                                + ", ".join(f"{t.dtype} {list(t.shape)}" for t in outs))
    row_shape = [1, heads, 1, width]
    if any(outs[i].dtype != "int8" or not outs[i].quantized or list(outs[i].shape) != row_shape
           for i in rows):
        raise TinyCompressError(f"--cache: {name}'s new rows must be quantized int8 {row_shape}")
    lg = outs[logits[0]]
    if lg.dtype != "int8" or lg.shape[0] != 1 or lg.shape[1] < 2:
        raise TinyCompressError(f"--cache: {name}'s logits must be int8 [1, V]; they are {lg.dtype} "
                                f"{list(lg.shape)}")
    vocab = lg.shape[1]
    table_rows = token_range(graph, graph.inputs[tokens[0]])
    if table_rows is None:
        raise TinyCompressError(f"{name}'s token input does not index an embedding table")
    if vocab > table_rows:
        raise TinyCompressError(f"{name} gives logits for {vocab} tokens but its embedding table has "
                                f"{table_rows} rows: a generated token could not be fed back")
    caches.sort(key=lambda i: natural_key(ins[i].name))
    rows.sort(key=lambda i: natural_key(outs[i].name))
    hot, cold = one_hot_values(ins[positions[0]])
    if hot == cold:
        raise TinyCompressError(f"--cache: {name}'s position input cannot represent 1.0 (scale "
                                f"{float(ins[positions[0]].scale[0]):g})")
    tables = np.stack([requantize_table(outs[r], ins[c]) for c, r in zip(caches, rows)])
    return CacheSignature(context, vocab, tokens[0], positions[0], caches, logits[0], rows, heads, width,
                          hot, cold, [int(ins[c].zero_point[0]) for c in caches], tables)


def check_length(prompt_tokens: int, steps: int, signature: CacheSignature) -> None:
    used = prompt_tokens + steps - 1
    if used > signature.context:
        raise TinyCompressError(f"--cache: {prompt_tokens} prompt tokens and {steps} generated need "
                                f"{used} positions, more than the step model's {signature.context} (the "
                                "cache does not slide): generate fewer tokens", EXIT_USAGE)


def reference_logits(tflite: bytes, fed: list[int], signature: CacheSignature) -> np.ndarray:
    """TFLite Micro's logits (steps, V) int8 for the tokens fed at positions 0, 1, ..., its caches replayed
    from its own new rows through the signature's tables."""
    from ..frontend.reference import tflm_cached
    spec = dict(token=signature.token, position=signature.position, caches=signature.caches,
                logits=signature.logits, rows=signature.rows, hot=signature.hot, cold=signature.cold,
                cache_zero=signature.cache_zero, context=signature.context, tokens=[int(t) for t in fed])
    return tflm_cached(tflite, spec, signature.tables)
