"""The model verifier: every .tflite is checked here right after it is read, before anything is lowered.

Two passes. `check_file` and `check_flatbuffer` look at the raw file and the parsed flatbuffer tables before
the graph IR is built from them: the identifier, the file size, and every index (tensor, buffer, opcode)
in range. `verify_graph` then checks what the kernels rely on: constant sizes, shapes, each supported
operator's output shape derived from its inputs and options, window parameters, quantization, and an
acyclic graph whose every input is produced before it is used. Each failure is one line naming the tensor
or the layer, as a TinyCompressError.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from pathlib import Path

import numpy as np

from ..errors import TinyCompressError
from ..ir import Graph, Layer, Tensor
from ..ops import RULES
from ..ops.common import dims

MAX_FILE_BYTES = 256 * 1024 * 1024   # a .tflite for a microcontroller is far smaller
MAX_TENSOR_BYTES = 2 ** 31           # no tensor (or shape product) past this: sizes stay within int32
IDENTIFIER = b"TFL3"
INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (0, 0), "int32": (0, 0), "int4": (-8, 7)}
WINDOW_OPTIONS = {"stride_h": "strides", "stride_w": "strides", "dilation_h_factor": "dilations",
                  "dilation_w_factor": "dilations", "filter_height": "pool sizes",
                  "filter_width": "pool sizes", "depth_multiplier": "depth multipliers"}


def fail(message: str) -> TinyCompressError:
    return TinyCompressError(message)


_REFUSALS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("tinycompress_refusals", default=None)


@contextlib.contextmanager
def collecting_refusals():
    """Within this block a refused layer is recorded, {id(layer): (layer, message)}, instead of raised, so
    `inspect` can list every layer the model cannot run; what concerns the whole model still raises."""
    refusals: dict = {}
    token = _REFUSALS.set(refusals)
    try:
        yield refusals
    finally:
        _REFUSALS.reset(token)


def refuse_layer(layer: Layer, error: TinyCompressError) -> None:
    """Raise `error`, or record it against `layer` inside collecting_refusals()."""
    refusals = _REFUSALS.get()
    if refusals is None:
        raise error
    refusals.setdefault(id(layer), (layer, str(error)))


def check_file(path: Path) -> None:
    """Size cap and identifier, read from the first 8 bytes before the whole file is read."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise fail(f"{path.name} is {size:,} bytes; model files past {MAX_FILE_BYTES // 2**20} MiB are "
                   "refused (a microcontroller model is far smaller): check the file")
    with open(path, "rb") as f:
        head = f.read(8)
    check_identifier(head, path.stem)


def check_identifier(head: bytes, name: str) -> None:
    if len(head) < 8 or head[4:8] != IDENTIFIER:
        raise fail(f"{name} is not a TFLite flatbuffer (no TFL3 identifier); give a .tflite file or a "
                   ".keras model")


def check_flatbuffer(model, data: bytes, name: str) -> None:
    """Every index of the first subgraph's tables in range, before they are followed (schema.ModelT)."""
    sub = model.subgraphs[0]
    tensors, buffers, codes = sub.tensors or [], model.buffers or [], model.operatorCodes or []
    n = len(tensors)

    def in_range(index, count: int, what: str, optional: bool = False) -> None:
        if not (-1 if optional else 0) <= int(index) < count:
            raise fail(f"{name}: {what} refers to index {int(index)}, but there are only {count}; "
                       "the model is corrupt: re-export it")

    for what, indices in (("a graph input", sub.inputs), ("a graph output", sub.outputs)):
        if indices is None or len(indices) == 0:
            raise fail(f"{name} declares no graph {what.split()[-1]}s; re-export the model")
        for i in indices:
            in_range(i, n, f"{what} (tensor)")
    for k, op in enumerate(sub.operators or []):
        in_range(op.opcodeIndex, len(codes), f"operator {k}'s opcode")
        if op.outputs is None or len(op.outputs) == 0:
            raise fail(f"{name}: operator {k} has no output; the model is corrupt: re-export it")
        for i in op.inputs if op.inputs is not None else []:
            in_range(i, n, f"an input of operator {k} (tensor)", optional=True)
        for i in op.outputs:
            in_range(i, n, f"an output of operator {k} (tensor)")
    for k, t in enumerate(tensors):
        in_range(t.buffer, max(len(buffers), 1), f"tensor {k}'s buffer")
        if t.buffer < len(buffers):
            buf = buffers[t.buffer]
            if buf.offset and buf.size and (buf.offset < 0 or buf.offset + buf.size > len(data)):
                raise fail(f"{name}: tensor {k}'s data lies past the end of the file; the file is truncated")


def check_options(op_name: str, options, index: int) -> None:
    """The options table attached to operator `index` is the one its operator reads."""
    rule = RULES.get(op_name)
    expected, required = (rule.options, rule.options_required) if rule is not None else (None, False)
    found = type(options).__name__ if options is not None else None
    if expected is not None and (found != expected if options is not None else required):
        carried = found.removesuffix('T') if found else 'no options'
        raise fail(f"operator {index} ({op_name}) carries {carried} instead of {expected.removesuffix('T')}; "
                   "the model is corrupt: re-export it")


def packed_bytes(count: int, dtype: str) -> int:
    """Bytes a constant of `count` elements takes in the flatbuffer; int4 packs two to a byte."""
    return (count + 1) // 2 if dtype == "int4" else count * np.dtype(dtype).itemsize


def check_shape(tensor_index: int, name: str, shape, dtype: str) -> None:
    """Dims >= 1 and a size below MAX_TENSOR_BYTES, in Python integers so nothing overflows."""
    label = f"tensor {name or tensor_index}"
    for d in shape:
        if int(d) < 1:
            raise fail(f"{label} has shape {list(map(int, shape))}; every dimension must be >= 1 "
                       "(dynamic shapes are not supported)")
    if tensor_bytes(shape, dtype) >= MAX_TENSOR_BYTES:
        raise fail(f"{label} of shape {list(map(int, shape))} would take {math.prod(map(int, shape)):,} "
                   f"elements; tensors are limited to {MAX_TENSOR_BYTES:,} bytes")


def tensor_bytes(shape, dtype: str) -> int:
    """Bytes of a tensor, in Python integers (no overflow); int4 counted unpacked, a byte each."""
    return math.prod(int(d) for d in shape) * (1 if dtype == "int4" else np.dtype(dtype).itemsize)


def verify_graph(graph: Graph) -> None:
    """Refuse, in one line naming the tensor or layer, a graph the kernels would run wrongly."""
    if not graph.layers:
        raise fail(f"{graph.name} has no layers; there is nothing to compile")
    total = sum(tensor_bytes(t.shape, t.dtype) for t in graph.tensors)
    if total >= MAX_TENSOR_BYTES:
        raise fail(f"{graph.name}'s tensors take {total:,} bytes together; models are limited to "
                   f"{MAX_TENSOR_BYTES:,} bytes")
    for t in graph.tensors:
        _check_quantization(t)
    _check_order(graph)
    for layer in graph.layers:
        try:
            _check_layer(layer, graph)
        except TinyCompressError as exc:
            refuse_layer(layer, exc)


def _tname(t: Tensor) -> str:
    return f"tensor {t.name or t.index}"


def _check_quantization(t: Tensor) -> None:
    if not t.quantized:
        return
    scale, zp = t.scale, t.zero_point
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        bad = scale[~(np.isfinite(scale) & (scale > 0))][0]
        raise fail(f"{_tname(t)} has scale {bad}; scales must be finite and > 0")
    if zp.size != scale.size:
        raise fail(f"{_tname(t)} has {scale.size} scales but {zp.size} zero points; they must match")
    if scale.size > 1:
        if not 0 <= t.quantized_dimension < len(t.shape):
            raise fail(f"{_tname(t)} is quantized along dimension {t.quantized_dimension} of a "
                       f"{len(t.shape)}-D tensor")
        channels = t.shape[t.quantized_dimension]
        if scale.size != channels:
            raise fail(f"{_tname(t)} has {scale.size} per-channel scales for {channels} channels "
                       f"(dimension {t.quantized_dimension}); they must match")
    lo, hi = INT_RANGES.get(t.dtype, (None, None))
    if lo is not None and (zp.min() < lo or zp.max() > hi):
        bad = int(zp[(zp < lo) | (zp > hi)][0])
        raise fail(f"{_tname(t)} ({t.dtype}) has zero point {bad}; it must lie in {lo}..{hi}")


def _check_order(graph: Graph) -> None:
    """Acyclic and in order: each layer reads graph inputs, constants or earlier layers' outputs."""
    ready = set(graph.inputs) | {t.index for t in graph.tensors if t.is_constant}
    computed = set()
    for i in graph.inputs:
        if graph.tensors[i].is_constant:
            raise fail(f"graph input {_tname(graph.tensors[i])} holds constant data; re-export the model")
    for layer in graph.layers:
        for i in layer.inputs:
            if i >= 0 and i not in ready:
                raise fail(f"layer {layer.name} ({layer.op}) reads {_tname(graph.tensors[i])} before any "
                           "layer computes it (a cycle or an out-of-order graph)")
        for i in layer.outputs:
            if i in ready:
                what = "a graph input or a constant" if i in graph.inputs or graph.tensors[i].is_constant \
                    else "already computed by an earlier layer"
                raise fail(f"layer {layer.name} ({layer.op}) writes {_tname(graph.tensors[i])}, which is "
                           f"{what}")
            ready.add(i)
            computed.add(i)
    for i in graph.outputs:
        if i not in computed:
            raise fail(f"graph output {_tname(graph.tensors[i])} is not computed by any layer")


def _check_layer(layer: Layer, graph: Graph) -> None:
    """Inputs present, options in range, the declared output shape equal to the one the operator computes
    (its rule, beside its lowering in ops/), then the operator's own further checks."""
    rule = RULES.get(layer.op)
    if rule is None:
        return   # lowering refuses it as unsupported, or (float models) the quantizer replaces it
    where = f"layer {layer.name} ({layer.op})"
    if len(layer.inputs) < rule.inputs or any(i < 0 for i in layer.inputs[:rule.inputs]):
        raise fail(f"{where} has inputs {layer.inputs}; it needs {rule.inputs}")
    o = layer.options
    for key in WINDOW_OPTIONS:
        if key in o and not (isinstance(o[key], int) and o[key] >= 1):
            raise fail(f"{where}: {key} is {o[key]}; {WINDOW_OPTIONS[key]} must be >= 1")
    if "padding" in o and o["padding"] not in ("SAME", "VALID"):
        raise fail(f"{where}: padding {o['padding']} is neither SAME nor VALID")
    t = [graph.tensors[i] if i >= 0 else None for i in layer.inputs]
    out = graph.tensors[layer.outputs[0]]
    expected = rule.shape(layer, graph, t, where)
    if expected is not None and tuple(expected) != tuple(out.shape):
        raise fail(f"{where}: the output {out.name or out.index} is declared {dims(out.shape)} but the layer "
                   f"computes {dims(expected)} from its inputs and options")
    if rule.check is not None:
        rule.check(layer, graph, t, where)
