"""Constant folding at load: the shape arithmetic of dynamic-batch exports, computed once for batch 1.

A Keras model converted with a `None` batch carries int32 arithmetic on tensor shapes in front of its
RESHAPEs (SHAPE -> STRIDED_SLICE -> PACK, or SHAPE -> GATHER -> REDUCE_PROD -> CONCATENATION for a Dense
on a sequence), and its activation tensors say -1 for the batch in their shape signature. The firmware runs
one input at a time, so the batch is 1 and every such value is known before the build: this pass computes
them here, one folder per operator, and drops the layers that computed them. The folded values become
constants (a RESHAPE's new shape, a MEAN's axes), so every later stage sees a static int8 graph.

TFLite Micro runs the same file with the shapes its flatbuffer declares (1 for the batch), and so computes
the same values at run time. Where the converter could not know a shape, it declares a placeholder (often
1x1) and puts -1 in the signature: such a tensor's shape is computed here from its layer (the operator's
verifier rule, or the folded new shape of a RESHAPE) instead of being read from the file.

Only a shape computed from the values of the data cannot be folded: it is refused, naming the layer.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import TinyCompressError
from ..ir import Graph, Layer, Tensor
from ..ops.common import dims

# What folding computes on: integer shape arithmetic, never quantized activations.
FOLDABLE_TYPES = ("int32", "int64", "bool")
# Inputs whose values an operator needs before it runs (shapes, axes, paddings, slice bounds): the
# firmware's kernels take them as constants.
SHAPE_OPERANDS = {
    "RESHAPE": (1,), "EXPAND_DIMS": (1,), "FILL": (0,), "BROADCAST_TO": (1,), "TILE": (1,), "PAD": (1,),
    "PADV2": (1,), "MIRROR_PAD": (1,), "STRIDED_SLICE": (1, 2, 3), "SLICE": (1, 2), "TRANSPOSE": (1,),
    "MEAN": (1,), "SUM": (1,), "REDUCE_MAX": (1,), "REDUCE_MIN": (1,), "REDUCE_PROD": (1,), "ARG_MAX": (1,),
    "ARG_MIN": (1,), "SPLIT": (0,), "SPLIT_V": (1, 2), "RESIZE_NEAREST_NEIGHBOR": (1,),
    "RESIZE_BILINEAR": (1,), "TRANSPOSE_CONV": (0,),
}
SHAPE_ONLY = {"SHAPE"}   # reads its input's shape, not its values
MAX_FOLDED_ELEMENTS = 1 << 16   # shape vectors are tiny; a folder never builds anything large


class FoldError(TinyCompressError):
    """A layer whose values cannot be computed at compile time."""


Folder = Callable[[Layer, list, list[Tensor], str], list[np.ndarray]]
FOLDERS: dict[str, Folder] = {}


def folder(*op_names: str):
    """Register the decorated function as the folder of `op_names`: (layer, input values (None for an
    omitted input; for SHAPE, the input tensor), output tensors, "layer NAME (OP)") -> output values."""
    def register(fn):
        for name in op_names:
            FOLDERS[name] = fn
        return fn
    return register


def _values(v: np.ndarray | None, where: str, what: str) -> list[int]:
    if v is None:
        raise FoldError(f"{where} has no {what}")
    return [int(x) for x in np.asarray(v).reshape(-1)]


def _axis(axis: int, rank: int, where: str) -> int:
    if not -rank <= axis < max(rank, 1):
        raise FoldError(f"{where}: axis {axis} is out of range for a {rank}-D input")
    return axis % max(rank, 1)


def _dtype(t: Tensor):
    return np.dtype(t.dtype)


@folder("SHAPE")
def _shape(layer, x, out, where):
    return [np.array(x[0].shape, _dtype(out[0]))]


@folder("STRIDED_SLICE")
def _strided_slice(layer, x, out, where):
    """TFLite's StartForAxis / StopForAxis (the rules TFLite Micro's kernel sizes its output with)."""
    o, data = layer.options, np.asarray(x[0])
    for key in ("ellipsis_mask", "new_axis_mask"):
        if o.get(key, 0):
            raise FoldError(f"{where}: {key} {o[key]} is not supported (TFLite Micro ignores it)")
    if o.get("offset"):
        raise FoldError(f"{where}: the offset form of STRIDED_SLICE is not supported")
    rank = data.ndim
    begin, end, strides = (_values(v, where, what) for v, what in zip(x[1:4], ("begin", "end", "strides")))
    if not len(begin) == len(end) == len(strides) == rank:
        raise FoldError(f"{where}: begin, end and strides must have {rank} values each")
    index, shape = [], []
    for axis in range(rank):
        size, stride, bit = data.shape[axis], strides[axis], 1 << axis
        if stride == 0:
            raise FoldError(f"{where}: stride 0 on axis {axis}")
        start = begin[axis]
        if o.get("begin_mask", 0) & bit:
            start = -(2 ** 31) if stride > 0 else 2 ** 31 - 1
        start += size if start < 0 else 0
        start = min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)
        if o.get("shrink_axis_mask", 0) & bit:
            if not 0 <= start < size:
                raise FoldError(f"{where}: index {begin[axis]} is out of range for axis {axis} of size "
                                f"{size}")
            index.append(start)
            continue
        stop = end[axis]
        if o.get("end_mask", 0) & bit:
            stop = 2 ** 31 - 1 if stride > 0 else -(2 ** 31)
        stop += size if stop < 0 else 0
        stop = min(max(stop, 0), size) if stride > 0 else min(max(stop, -1), size - 1)
        count = max(0, math.ceil((stop - start) / stride))
        index.append(slice(start, start + count * stride if start + count * stride >= 0 else None, stride))
        shape.append(count)
    return [data[tuple(index)].reshape(shape)]


@folder("SLICE")
def _slice(layer, x, out, where):
    data = np.asarray(x[0])
    begin, size = _values(x[1], where, "begin"), _values(x[2], where, "size")
    if not len(begin) == len(size) == data.ndim:
        raise FoldError(f"{where}: begin and size must have {data.ndim} values each")
    index = []
    for axis, (b, s) in enumerate(zip(begin, size)):
        s = data.shape[axis] - b if s == -1 else s
        if b < 0 or s < 0 or b + s > data.shape[axis]:
            raise FoldError(f"{where}: begin {b} and size {s} do not fit axis {axis} of size "
                            f"{data.shape[axis]}")
        index.append(slice(b, b + s))
    return [data[tuple(index)]]


@folder("PACK")
def _pack(layer, x, out, where):
    parts = [np.asarray(v) for v in x]
    if len({p.shape for p in parts}) != 1:
        raise FoldError(f"{where}: the packed values have different shapes")
    return [np.stack(parts, axis=_axis(layer.options.get("axis", 0), parts[0].ndim + 1, where))]


@folder("UNPACK")
def _unpack(layer, x, out, where):
    data = np.asarray(x[0])
    axis = _axis(layer.options.get("axis", 0), data.ndim, where)
    if data.shape[axis] != len(out):
        raise FoldError(f"{where}: axis {axis} holds {data.shape[axis]} values for {len(out)} outputs")
    return [np.take(data, i, axis=axis) for i in range(len(out))]


@folder("FILL")
def _fill(layer, x, out, where):
    shape = _values(x[0], where, "shape")
    if any(d < 0 for d in shape) or math.prod(shape) > MAX_FOLDED_ELEMENTS:
        raise FoldError(f"{where}: cannot fill a tensor of shape {shape} at compile time")
    return [np.full(shape, np.asarray(x[1]).reshape(-1)[0], _dtype(out[0]))]


_REDUCERS = {"REDUCE_PROD": np.prod, "SUM": np.sum, "REDUCE_MAX": np.max, "REDUCE_MIN": np.min,
             "REDUCE_ANY": np.any, "REDUCE_ALL": np.all}


@folder(*_REDUCERS)
def _reduce(layer, x, out, where):
    data = np.asarray(x[0])
    axes = tuple(sorted({_axis(a, data.ndim, where) for a in _values(x[1], where, "axes")}))
    if layer.op in ("REDUCE_MAX", "REDUCE_MIN") and any(data.shape[a] == 0 for a in axes):
        raise FoldError(f"{where}: {layer.op} over an empty axis")
    keep = bool(layer.options.get("keep_dims", False))
    return [np.asarray(_REDUCERS[layer.op](data, axis=axes, keepdims=keep)).astype(_dtype(out[0]))]


@folder("CONCATENATION")
def _concatenation(layer, x, out, where):
    parts = [np.asarray(v) for v in x]
    if layer.options.get("fused_activation_function", "NONE") != "NONE":
        raise FoldError(f"{where}: a fused activation on integer shapes is not supported")
    axis = _axis(layer.options.get("axis", 0), parts[0].ndim, where)
    try:
        return [np.concatenate(parts, axis=axis)]
    except ValueError:
        raise FoldError(f"{where}: the concatenated shapes {[list(p.shape) for p in parts]} do not match "
                        f"outside axis {axis}") from None


@folder("GATHER")
def _gather(layer, x, out, where):
    params, indices = np.asarray(x[0]), np.asarray(x[1]).astype(np.int64)
    if layer.options.get("batch_dims", 0):
        raise FoldError(f"{where}: batch_dims {layer.options['batch_dims']} is not supported")
    axis = _axis(layer.options.get("axis", 0), params.ndim, where)
    if indices.size and (indices.min() < 0 or indices.max() >= params.shape[axis]):
        raise FoldError(f"{where}: an index is out of range for axis {axis} of size {params.shape[axis]}")
    return [np.take(params, indices, axis=axis)]


@folder("RESHAPE")
def _reshape(layer, x, out, where):
    data = np.asarray(x[0])
    return [data.reshape(reshape_target(layer, x[1] if len(x) > 1 else None, data.size, out[0], where))]


@folder("EXPAND_DIMS")
def _expand_dims(layer, x, out, where):
    data = np.asarray(x[0])
    axis = _values(x[1], where, "axis")[0]
    return [np.expand_dims(data, _axis(axis, data.ndim + 1, where))]


@folder("SQUEEZE")
def _squeeze(layer, x, out, where):
    data = np.asarray(x[0])
    axes = layer.options.get("squeeze_dims") or [a for a, d in enumerate(data.shape) if d == 1]
    axes = tuple(_axis(a, data.ndim, where) for a in axes)
    if any(data.shape[a] != 1 for a in axes):
        raise FoldError(f"{where}: cannot squeeze axes {list(axes)} of shape {dims(data.shape)}")
    return [np.squeeze(data, axis=axes)]


@folder("CAST")
def _cast(layer, x, out, where):
    return [np.asarray(x[0]).astype(_dtype(out[0]))]


def _divide(a, b, where, floor):
    if np.any(b == 0):
        raise FoldError(f"{where}: division by zero")
    if floor:
        return np.floor_divide(a, b)
    return np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))    # C's division truncates toward zero


_BINARY = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "MAXIMUM": np.maximum,
           "MINIMUM": np.minimum, "FLOOR_DIV": lambda a, b, w: _divide(a, b, w, True),
           "DIV": lambda a, b, w: _divide(a, b, w, False),
           "FLOOR_MOD": lambda a, b, w: np.mod(a, b) if not np.any(b == 0) else _divide(a, b, w, True)}


@folder(*_BINARY)
def _binary(layer, x, out, where):
    if layer.options.get("fused_activation_function", "NONE") != "NONE":
        raise FoldError(f"{where}: a fused activation on integer shapes is not supported")
    a, b = (np.asarray(v).astype(np.int64) for v in x[:2])
    fn = _BINARY[layer.op]
    result = fn(a, b, where) if layer.op in ("FLOOR_DIV", "DIV", "FLOOR_MOD") else fn(a, b)
    return [np.asarray(result).astype(_dtype(out[0]))]     # int32 wraps as in the interpreter


@folder("RANGE")
def _range(layer, x, out, where):
    start, limit, delta = (int(np.asarray(v).reshape(-1)[0]) for v in x[:3])
    if delta == 0 or abs((limit - start) // delta) > MAX_FOLDED_ELEMENTS:
        raise FoldError(f"{where}: cannot build range({start}, {limit}, {delta}) at compile time")
    return [np.arange(start, limit, delta, dtype=_dtype(out[0]))]


@folder("TRANSPOSE")
def _transpose(layer, x, out, where):
    data = np.asarray(x[0])
    perm = _values(x[1], where, "permutation")
    if sorted(perm) != list(range(data.ndim)):
        raise FoldError(f"{where}: {perm} is not a permutation of {data.ndim} axes")
    return [np.transpose(data, perm)]


def reshape_target(layer: Layer, new_shape: np.ndarray | None, size: int, out: Tensor, where: str) -> tuple:
    """The shape a RESHAPE gives `size` values: its new-shape input (or option), at most one -1 in it
    resolved as TensorFlow does; without either, the declared output shape."""
    if new_shape is not None:
        shape = _values(new_shape, where, "new shape")
    elif layer.options.get("new_shape"):
        shape = [int(d) for d in layer.options["new_shape"]]
    else:
        return tuple(out.shape)
    known = math.prod(d for d in shape if d != -1)
    if shape.count(-1) > 1 or any(d < -1 for d in shape) or (-1 in shape and known == 0):
        raise FoldError(f"{where}: the new shape {shape} is not a shape")
    if -1 in shape:
        shape[shape.index(-1)] = size // known
    if math.prod(shape) != size:
        raise FoldError(f"{where}: the new shape {shape} holds {math.prod(shape)} values but the input "
                        f"holds {size}")
    return tuple(shape)


def fold_constants(graph: Graph, signatures: dict[int, tuple[int, ...]]) -> list[str]:
    """Fold the graph's constant shape arithmetic in place, for batch 1; returns the folded layers as
    'NAME (OP)'. `signatures` maps a tensor to its shape signature where that holds a -1: its declared
    shape is then only a placeholder, computed here instead."""
    from ..ops import RULES
    _check_inputs(graph, signatures)
    kept, folded = [], []
    for layer in graph.layers:
        where = f"layer {layer.name} ({layer.op})"
        outs = [graph.tensors[i] for i in layer.outputs]
        if _foldable(layer, graph):
            values = FOLDERS[layer.op](layer, _inputs(layer, graph), outs, where)
            for t, v in zip(outs, values):
                _set_constant(t, np.asarray(v), t.index in signatures, where)
            folded.append(f"{layer.name} ({layer.op})")
            continue
        kept.append(layer)
        for t in outs:
            if t.index in signatures:
                t.shape = _computed_shape(layer, graph, t, RULES.get(layer.op), where)
    graph.layers = kept
    return folded


def _check_inputs(graph: Graph, signatures: dict) -> None:
    """A graph input may leave its batch open (compiled as 1); any other open dimension is refused."""
    for i in graph.inputs:
        signature = signatures.get(i)
        if signature is None:
            continue
        t = graph.tensors[i]
        if any(d == -1 for d in signature[1:]):
            raise TinyCompressError(
                f"the input {t.name or i} has shape signature {list(signature)}: a dimension other than the "
                "batch is left open; export the model with a fixed input shape (only the batch may be None)")
        t.shape = (1,) + tuple(t.shape[1:])


def _foldable(layer: Layer, graph: Graph) -> bool:
    """A folder exists, every output is integer shape arithmetic, and every input it reads is known."""
    if layer.op not in FOLDERS or not layer.outputs:
        return False
    if any(graph.tensors[i].dtype not in FOLDABLE_TYPES for i in layer.outputs):
        return False
    if layer.op in SHAPE_ONLY:
        return bool(layer.inputs) and layer.inputs[0] >= 0
    return all(graph.tensors[i].is_constant for i in layer.inputs if i >= 0)


def _inputs(layer: Layer, graph: Graph) -> list:
    if layer.op in SHAPE_ONLY:
        return [graph.tensors[layer.inputs[0]]]
    result = []
    for i in layer.inputs:
        t = graph.tensor(i)
        if t is None:
            result.append(None)
        elif t.dtype == "int4":
            raise FoldError(f"layer {layer.name} ({layer.op}) reads packed int4 values")
        else:
            result.append(t.data)
    return result


def _set_constant(t: Tensor, value: np.ndarray, placeholder: bool, where: str) -> None:
    if value.size > MAX_FOLDED_ELEMENTS:
        raise FoldError(f"{where} computes {value.size:,} values; shape arithmetic is never that large")
    if not placeholder and tuple(value.shape) != tuple(t.shape):
        raise FoldError(f"{where}: computed for batch 1 it gives {dims(value.shape)} values, but the model "
                        f"declares {t.name or t.index} as {dims(t.shape)}; the model is inconsistent: "
                        "re-export it")
    t.shape = tuple(int(d) for d in value.shape)
    t.data = value.astype(np.dtype(t.dtype))


def _computed_shape(layer: Layer, graph: Graph, out: Tensor, rule, where: str) -> tuple[int, ...]:
    """The shape of an output the converter only had a placeholder for: from the operator's verifier rule,
    a RESHAPE's folded new shape, or (for an operator without a rule, which lowering refuses anyway) the
    declared shape with the batch as 1."""
    inputs = [graph.tensor(i) for i in layer.inputs]
    if layer.op == "RESHAPE" and inputs and inputs[0] is not None:
        new_shape = inputs[1] if len(inputs) > 1 else None
        if new_shape is not None and not new_shape.is_constant:
            return tuple(out.shape)   # refused below, naming the layer that computes it
        return reshape_target(layer, None if new_shape is None else new_shape.data, inputs[0].size, out,
                              where)
    if rule is not None and len(layer.outputs) == 1 and len(inputs) >= rule.inputs \
            and all(t is not None for t in inputs[:rule.inputs]):
        try:
            shape = rule.shape(layer, graph, inputs, where)
        except TinyCompressError:
            shape = None      # the verifier reports it, naming the layer
        if shape is not None:
            return tuple(int(d) for d in shape)
    return tuple(out.shape)


def refuse_data_dependent_shapes(graph: Graph) -> None:
    """After folding, every value a layer needs as a shape is a constant, or depends on the data: refuse
    each layer that computes such a value (or reads it from a graph input), the first one in order."""
    from .verify import refuse_layer
    needed: dict[int, Layer] = {}    # tensor -> a layer that needs its value at compile time
    for layer in graph.layers:
        for position in SHAPE_OPERANDS.get(layer.op, ()):
            if position < len(layer.inputs) and layer.inputs[position] >= 0 \
                    and not graph.tensors[layer.inputs[position]].is_constant:
                needed.setdefault(layer.inputs[position], layer)
    for layer in reversed(graph.layers):
        if layer.op in SHAPE_ONLY or not any(o in needed for o in layer.outputs):
            continue
        user = next(needed[o] for o in layer.outputs if o in needed)
        for i in layer.inputs:    # back through the shape arithmetic, up to the layer that reads the data
            if i >= 0 and not graph.tensors[i].is_constant and graph.tensors[i].dtype in FOLDABLE_TYPES:
                needed.setdefault(i, user)
    for layer in graph.layers:
        if any(o in needed for o in layer.outputs):
            user = next(needed[o] for o in layer.outputs if o in needed)
            refuse_layer(layer, FoldError(
                f"layer {layer.name} ({layer.op}) computes a value that layer {user.name} ({user.op}) needs "
                "as a shape, from data known only at run time; shapes must be fixed at compile time (a "
                "dynamic batch is compiled as 1)"))
    for layer in graph.layers:   # and the layers reading those values (recorded by `inspect`)
        for position in SHAPE_OPERANDS.get(layer.op, ()):
            i = layer.inputs[position] if position < len(layer.inputs) else -1
            if i in needed and i not in graph.inputs:
                refuse_layer(layer, FoldError(f"layer {layer.name} ({layer.op}) takes a shape from values "
                                              "known only at run time; shapes must be fixed at compile time"))
    for i in graph.inputs:
        if i in needed:
            refuse_layer(needed[i], FoldError(
                f"layer {needed[i].name} ({needed[i].op}) takes a shape from the graph input "
                f"{graph.tensors[i].name or i}; shapes must be fixed at compile time"))
