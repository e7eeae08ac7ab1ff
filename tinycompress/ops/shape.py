"""Data movement on int8 tensors: the bytes are moved, never changed, with TFLite Micro's semantics.

Three kernels serve them all (firmware/kernels/):
- tc_strided_copy_s8.c: TRANSPOSE, SLICE and STRIDED_SLICE, each an output written in order from input
  positions offset + sum(index * step) (`_strided_copy`);
- tc_concatenation_s8.c / tc_split_s8.c: block copies for CONCATENATION and PACK / SPLIT, SPLIT_V and UNPACK;
- tc_pad_s8.c: PAD and PADV2.
EXPAND_DIMS and SQUEEZE only rename the shape: they alias their input as RESHAPE does (ops/reshape.py).

Every constant operand (axes, permutations, begin/end/strides, paddings, split sizes) is read here and
checked against the shapes (indices in range, sizes consistent) before anything reaches C; a refusal is one
line naming the layer. Axes of extent 1 are dropped and neighbours that stay contiguous merged, so the kernels
see at most TC_COPY_MAX_RANK axes and plain slices become a few memcpy runs.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import TinyCompressError
from ..ir import Graph, Layer, Tensor
from . import lowering
from . import reshape
from .common import ConstArray, KernelCall, dims, scalar_quant, unsupported

MAX_RANK = 5            # TC_COPY_MAX_RANK, and TFLite Micro's limit for TRANSPOSE, SLICE and PAD
MAX_RANK_STRIDED = 4    # TFLite Micro's STRIDED_SLICE limit
MAX_CONCAT_INPUTS = 10  # TFLite Micro's CONCATENATION limit (kMaxInputNum)


# ---- constant operands --------------------------------------------------------------------------------

def const_ints(graph: Graph, layer: Layer, position: int, where: str, what: str,
               dtypes: tuple[str, ...] = ("int32",)) -> list[int]:
    """The values of a constant integer operand, flattened; refused when computed at run time."""
    if position >= len(layer.inputs) or layer.inputs[position] < 0:
        raise TinyCompressError(f"{where}: the {what} operand is missing")
    t = graph.tensors[layer.inputs[position]]
    if t.data is None:
        raise TinyCompressError(f"{where}: the {what} are computed at run time; TFLite Micro needs them "
                                "constant (convert with a fixed input shape)")
    if t.dtype not in dtypes:
        raise TinyCompressError(f"{where}: the {what} are {t.dtype}; {' or '.join(dtypes)} expected")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def positive_axis(axis: int, rank: int, where: str, what: str = "axis") -> int:
    """An axis in [-rank, rank) as an index in [0, rank)."""
    if not -rank <= axis < rank:
        raise TinyCompressError(f"{where}: {what} {axis} is out of range for a {rank}-D tensor "
                                f"(it must lie in {-rank}..{rank - 1})")
    return axis + rank if axis < 0 else axis


def check_rank(t: Tensor, limit: int, where: str) -> None:
    if len(t.shape) > limit:
        raise TinyCompressError(f"{where}: the input is {len(t.shape)}-D ({dims(t.shape)}); TFLite Micro "
                                f"runs this operator on at most {limit} dimensions")


def same_bytes(layer: Layer, graph: Graph, tensors: list[Tensor], what: str) -> None:
    """CONCATENATION's inputs and output share scale and zero point, as TFLite Micro requires of int8 (the
    other operators here copy bytes whatever the quantization, as TFLite Micro does)."""
    out = graph.tensors[layer.outputs[0]]
    for t in tensors:
        if scalar_quant(t) != scalar_quant(out):
            (s1, z1), (s2, z2) = scalar_quant(t), scalar_quant(out)
            raise unsupported(layer, f"{what} with an input quantized unlike its output (scale {s1:g}, zero "
                                     f"point {z1} against {s2:g}, {z2}); TFLite Micro refuses int8 "
                                     "requantization here")


def require_int8(layer: Layer, tensors: list[Tensor]) -> None:
    """The kernels move int8 bytes; int32 shape arithmetic is folded before lowering (or refused there)."""
    for t in tensors:
        if t.dtype != "int8":
            raise unsupported(layer, f"a {t.dtype} tensor ({t.name or t.index}); only int8 data is moved")


def row_major_steps(shape: tuple[int, ...]) -> list[int]:
    steps, step = [], 1
    for d in reversed(shape):
        steps.append(step)
        step *= d
    return steps[::-1]


def merge_axes(counts: list[int], steps: list[int],
               inner_steps: list[int] | None = None) -> tuple[list, list]:
    """Drop axes of extent 1 and merge each axis into the next when both the strided side (`steps`) and the
    contiguous side (`inner_steps`, row-major by default) stay contiguous across the pair."""
    contiguous = row_major_steps(tuple(counts)) if inner_steps is None else inner_steps
    axes = [(c, s, k) for c, s, k in zip(counts, steps, contiguous) if c != 1] or [(1, 1, 1)]
    merged = [list(axes[-1])]
    for c, s, k in reversed(axes[:-1]):
        inner = merged[0]
        if s == inner[1] * inner[0] and k == inner[2] * inner[0]:
            inner[0] *= c
        else:
            merged.insert(0, [c, s, k])
    if len(merged) > MAX_RANK:
        raise ValueError(len(merged))
    return [m[0] for m in merged], [m[1] for m in merged]


def padded(values: list[int], fill: int) -> tuple[int, ...]:
    return tuple(values) + (fill,) * (MAX_RANK - len(values))


def _strided_copy(layer: Layer, graph: Graph, counts: list[int], steps: list[int], offset: int,
                  summary: str) -> KernelCall:
    """The call of tc_strided_copy_s8: output element (i0, ..) = input[offset + sum(i * step)]."""
    out = graph.tensors[layer.outputs[0]]
    require_int8(layer, [graph.tensors[layer.inputs[0]], out])
    try:
        counts, steps = merge_axes(counts, steps)
    except ValueError:
        raise unsupported(layer, f"a copy of more than {MAX_RANK} axes that cannot be merged") from None
    assert math.prod(counts) == out.size
    params = {"rank": len(counts), "count": padded(counts, 1), "step": padded(steps, 0), "offset": offset}
    return KernelCall(layer, "tc_strided_copy_s8", "tc_strided_copy_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]], summary=summary)


# ---- EXPAND_DIMS and SQUEEZE: aliases ----------------------------------------------------------------

def expand_dims_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """A 1 inserted at the axis, which may count from the end of the output (TFLite's ExpandDims)."""
    axis = const_ints(graph, layer, 1, where, "axis", ("int32", "int64"))
    if len(axis) != 1:
        raise TinyCompressError(f"{where}: the axis operand holds {len(axis)} values; EXPAND_DIMS takes one")
    rank = len(t[0].shape)
    a = positive_axis(axis[0], rank + 1, where)
    return t[0].shape[:a] + (1,) + t[0].shape[a:]


def squeeze_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """The listed axes removed, each of extent 1; with none listed, every axis of extent 1."""
    shape = t[0].shape
    listed = layer.options.get("squeeze_dims") or []
    if not listed:
        return tuple(d for d in shape if d != 1)
    axes = {positive_axis(int(a), len(shape), where, "squeeze axis") for a in listed}
    for a in sorted(axes):
        if shape[a] != 1:
            raise TinyCompressError(f"{where}: squeeze axis {a} of the {dims(shape)} input has extent "
                                    f"{shape[a]}, not 1")
    return tuple(d for i, d in enumerate(shape) if i not in axes)


@lowering("EXPAND_DIMS", inputs=2, shape=expand_dims_shape)
def lower_expand_dims(layer: Layer, graph: Graph) -> KernelCall:
    require_int8(layer, [graph.tensors[layer.inputs[0]]])
    return reshape.lower(layer, graph)


@lowering("SQUEEZE", inputs=1, shape=squeeze_shape, options="SqueezeOptionsT")
def lower_squeeze(layer: Layer, graph: Graph) -> KernelCall:
    require_int8(layer, [graph.tensors[layer.inputs[0]]])
    return reshape.lower(layer, graph)


# ---- TRANSPOSE -----------------------------------------------------------------------------------------

def transpose_perm(layer: Layer, graph: Graph, t: list, where: str) -> list[int]:
    check_rank(t[0], MAX_RANK, where)
    perm = const_ints(graph, layer, 1, where, "permutation")
    rank = len(t[0].shape)
    if sorted(perm) != list(range(rank)):
        raise TinyCompressError(f"{where}: the permutation {perm} is not one of the {rank} axes of the "
                                f"{dims(t[0].shape)} input")
    return perm


def transpose_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """Output axis i is input axis perm[i]."""
    return tuple(t[0].shape[p] for p in transpose_perm(layer, graph, t, where))


@lowering("TRANSPOSE", inputs=2, shape=transpose_shape, options="TransposeOptionsT")
def lower_transpose(layer: Layer, graph: Graph) -> KernelCall:
    inp = graph.tensors[layer.inputs[0]]
    where = f"layer {layer.name} (TRANSPOSE)"
    perm = transpose_perm(layer, graph, [inp], where)
    steps = row_major_steps(inp.shape)
    return _strided_copy(layer, graph, [inp.shape[p] for p in perm], [steps[p] for p in perm], 0,
                         f"{dims(inp.shape)} perm {perm}")


# ---- SLICE and STRIDED_SLICE ---------------------------------------------------------------------------

def slice_ranges(layer: Layer, graph: Graph, t: list, where: str) -> list[tuple[int, int]]:
    """(begin, count) per axis; size -1 runs to the end of the axis, as TFLite's Slice."""
    shape = t[0].shape
    check_rank(t[0], MAX_RANK, where)
    begin = const_ints(graph, layer, 1, where, "begin indices", ("int32", "int64"))
    size = const_ints(graph, layer, 2, where, "sizes", ("int32", "int64"))
    if len(begin) != len(shape) or len(size) != len(shape):
        raise TinyCompressError(f"{where}: {len(begin)} begin indices and {len(size)} sizes for the "
                                f"{len(shape)}-D input {dims(shape)}")
    ranges = []
    for axis, (b, s, d) in enumerate(zip(begin, size, shape)):
        count = d - b if s == -1 else s
        if not (0 <= b < d and 1 <= count and b + count <= d):
            stop = b + count if s != -1 else "end"
            raise TinyCompressError(f"{where}: the slice {b}..{stop} of axis {axis} is out of range for its "
                                    f"extent {d}")
        ranges.append((b, count))
    return ranges


def slice_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    return tuple(c for _, c in slice_ranges(layer, graph, t, where))


@lowering("SLICE", inputs=3, shape=slice_shape, options="SliceOptionsT")
def lower_slice(layer: Layer, graph: Graph) -> KernelCall:
    inp = graph.tensors[layer.inputs[0]]
    ranges = slice_ranges(layer, graph, [inp], f"layer {layer.name} (SLICE)")
    steps = row_major_steps(inp.shape)
    offset = sum(b * s for (b, _), s in zip(ranges, steps))
    return _strided_copy(layer, graph, [c for _, c in ranges], steps, offset,
                         f"{dims(inp.shape)} from {[b for b, _ in ranges]} size {[c for _, c in ranges]}")


def strided_ranges(layer: Layer, graph: Graph, t: list, where: str) -> list[tuple[int, int, int, bool]]:
    """(start, stride, count, shrunk) per input axis, by TFLite Micro's rules: it ignores the ellipsis and
    new-axis masks (and `offset`); negative indices count from the end; an index is clamped to the axis
    ([0, d] going forward, [-1, d - 1] going backward); a begin/end mask bit takes the whole axis in the
    stride's direction; a shrunk axis takes the one element at its start."""
    shape = t[0].shape
    check_rank(t[0], MAX_RANK_STRIDED, where)
    begin = const_ints(graph, layer, 1, where, "begin indices")
    end = const_ints(graph, layer, 2, where, "end indices")
    strides = const_ints(graph, layer, 3, where, "strides")
    if not len(begin) == len(end) == len(strides) == len(shape):
        raise TinyCompressError(f"{where}: {len(begin)} begin, {len(end)} end and {len(strides)} stride "
                                f"values for the {len(shape)}-D input {dims(shape)}")
    o = layer.options
    begin_mask, end_mask, shrink = (int(o.get(k, 0) or 0)
                                    for k in ("begin_mask", "end_mask", "shrink_axis_mask"))
    result = []
    for axis, (b, e, s, d) in enumerate(zip(begin, end, strides, shape)):
        if s == 0:
            raise TinyCompressError(f"{where}: the stride of axis {axis} is 0")
        lo, hi = (0, d) if s > 0 else (-1, d - 1)
        start = min(max(b + d if b < 0 else b, lo), hi)
        if begin_mask >> axis & 1:
            start = 0 if s > 0 else d - 1
        shrunk = bool(shrink >> axis & 1)
        if shrunk:
            if not 0 <= start < d:
                raise TinyCompressError(f"{where}: axis {axis} is shrunk to index {b}, out of range for its "
                                        f"extent {d}")
            result.append((start, 1, 1, True))
            continue
        stop = min(max(e + d if e < 0 else e, lo), hi)
        if end_mask >> axis & 1:
            stop = d if s > 0 else -1
        count = len(range(start, stop, s))
        if count == 0:
            raise TinyCompressError(f"{where}: axis {axis} slices nothing (begin {b}, end {e}, stride {s} of "
                                    f"extent {d}); empty tensors are not supported")
        result.append((start, s, count, False))
    return result


def strided_slice_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    return tuple(c for _, _, c, shrunk in strided_ranges(layer, graph, t, where) if not shrunk)


@lowering("STRIDED_SLICE", inputs=4, shape=strided_slice_shape, options="StridedSliceOptionsT")
def lower_strided_slice(layer: Layer, graph: Graph) -> KernelCall:
    inp = graph.tensors[layer.inputs[0]]
    ranges = strided_ranges(layer, graph, [inp], f"layer {layer.name} (STRIDED_SLICE)")
    steps = row_major_steps(inp.shape)
    offset = sum(start * step for (start, _, _, _), step in zip(ranges, steps))
    return _strided_copy(layer, graph, [c for _, _, c, _ in ranges], [s * st for (_, s, _, _), st in
                                                                      zip(ranges, steps)], offset,
                         f"{dims(inp.shape)} start {[r[0] for r in ranges]} stride {[r[1] for r in ranges]}")


# ---- PAD and PADV2 -------------------------------------------------------------------------------------

def paddings_of(layer: Layer, graph: Graph, t: list, where: str) -> list[tuple[int, int]]:
    shape = t[0].shape
    check_rank(t[0], MAX_RANK, where)
    values = const_ints(graph, layer, 1, where, "paddings", ("int32", "int64"))
    if len(values) != 2 * len(shape):
        raise TinyCompressError(f"{where}: {len(values)} padding values for the {len(shape)}-D input "
                                f"{dims(shape)}; it needs {2 * len(shape)} (before and after each axis)")
    pairs = [(values[2 * i], values[2 * i + 1]) for i in range(len(shape))]
    for axis, (before, after) in enumerate(pairs):
        if before < 0 or after < 0:
            raise TinyCompressError(f"{where}: axis {axis} has padding ({before}, {after}); paddings must "
                                    "be >= 0")
    return pairs


def pad_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    return tuple(d + b + a for d, (b, a) in zip(t[0].shape, paddings_of(layer, graph, t, where)))


def pad_value(layer: Layer, graph: Graph, where: str) -> int:
    """PAD pads with the output zero point (a real 0); PADV2 with its constant, which TFLite Micro requires
    to share the output's scale and zero point, so its int8 byte is the pad byte."""
    out = graph.tensors[layer.outputs[0]]
    if layer.op == "PAD" or len(layer.inputs) < 3 or layer.inputs[2] < 0:
        return scalar_quant(out)[1]
    const = graph.tensors[layer.inputs[2]]
    if const.data is None or const.dtype != "int8" or const.size != 1:
        raise unsupported(layer, f"a pad value other than one constant int8 "
                                 f"({const.dtype} {dims(const.shape)})")
    if not const.quantized or scalar_quant(const) != scalar_quant(out):
        raise unsupported(layer, "a pad value quantized unlike the output (TFLite Micro refuses it)")
    return int(np.asarray(const.data).reshape(-1)[0])


@lowering("PAD", "PADV2", inputs=2, shape=pad_shape, options={"PAD": "PadOptionsT", "PADV2": "PadV2OptionsT"})
def lower_pad(layer: Layer, graph: Graph) -> KernelCall:
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    where = f"layer {layer.name} ({layer.op})"
    pairs = paddings_of(layer, graph, [inp], where)
    require_int8(layer, [inp, out])
    value = pad_value(layer, graph, where)
    out_steps = row_major_steps(out.shape)
    offset = sum(b * s for (b, _), s in zip(pairs, out_steps))
    # input-side merge: the input is read in order (contiguous), the output written at strided places
    try:
        counts, steps = merge_axes(list(inp.shape), out_steps)
    except ValueError:
        raise unsupported(layer, f"padding more than {MAX_RANK} axes") from None
    params = {"rank": len(counts), "count": padded(counts, 1), "step": padded(steps, 0), "offset": offset,
              "output_size": out.size, "pad_value": value}
    return KernelCall(layer, "tc_pad_s8", "tc_pad_params", params, inputs=[layer.inputs[0]],
                      outputs=[layer.outputs[0]], summary=f"{dims(inp.shape)} pad {pairs} with {value}")


# ---- CONCATENATION and PACK ----------------------------------------------------------------------------

def _data_inputs(layer: Layer, graph: Graph, where: str) -> list[Tensor]:
    ts = [graph.tensors[i] for i in layer.inputs if i >= 0]
    if not ts:
        raise TinyCompressError(f"{where} has no inputs")
    return ts


def concatenation_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """The inputs joined along the axis: equal ranks, equal extents elsewhere."""
    ts = _data_inputs(layer, graph, where)
    first = ts[0].shape
    axis = positive_axis(int(layer.options.get("axis", 0)), len(first), where)
    for x in ts[1:]:
        if len(x.shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(x.shape, first))
                                             if i != axis):
            raise TinyCompressError(f"{where}: the inputs {dims(first)} and {dims(x.shape)} differ off axis "
                                    f"{axis}")
    return first[:axis] + (sum(x.shape[axis] for x in ts),) + first[axis + 1:]


def pack_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """values_count inputs of one shape stacked along a new axis."""
    ts = _data_inputs(layer, graph, where)
    count = int(layer.options.get("values_count", len(ts)))
    if count != len(ts):
        raise TinyCompressError(f"{where}: values_count is {count} but the layer has {len(ts)} inputs")
    first = ts[0].shape
    for x in ts[1:]:
        if x.shape != first:
            raise TinyCompressError(f"{where}: the inputs {dims(first)} and {dims(x.shape)} differ")
    axis = positive_axis(int(layer.options.get("axis", 0)), len(first) + 1, where)
    return first[:axis] + (len(ts),) + first[axis:]


def _check_constant_inputs(layer: Layer, ts: list[Tensor]) -> None:
    for x in ts:
        if x.is_constant:
            raise unsupported(layer, f"a constant input ({x.name or x.index})")


@lowering("CONCATENATION", inputs=1, shape=concatenation_shape, options="ConcatenationOptionsT")
@lowering("PACK", inputs=1, shape=pack_shape, options="PackOptionsT")
def lower_concatenation(layer: Layer, graph: Graph) -> KernelCall:
    where = f"layer {layer.name} ({layer.op})"
    ts, out = _data_inputs(layer, graph, where), graph.tensors[layer.outputs[0]]
    _check_constant_inputs(layer, ts)
    require_int8(layer, ts + [out])
    activation = layer.options.get("fused_activation_function", "NONE")
    if activation not in (None, "NONE"):
        raise unsupported(layer, f"fused activation {activation} (TFLite Micro refuses it)")
    if layer.op == "CONCATENATION" and len(ts) > MAX_CONCAT_INPUTS:
        raise unsupported(layer, f"joining {len(ts)} inputs (TFLite Micro joins at most {MAX_CONCAT_INPUTS})")
    if layer.op == "CONCATENATION":
        same_bytes(layer, graph, ts, "joining")
    axis = positive_axis(int(layer.options.get("axis", 0)), len(out.shape), where)
    outer, inner = math.prod(out.shape[:axis]), math.prod(out.shape[axis + 1:])
    sizes = [(x.shape[axis] if layer.op == "CONCATENATION" else 1) * inner for x in ts]
    array = ConstArray(f"{layer.name}_sizes", "int32_t", np.array(sizes, np.int64),
                       "bytes per input and step")
    return KernelCall(layer, "tc_concatenation_s8", "tc_concatenation_params",
                      {"count": len(ts), "outer": outer, "sizes": array.name},
                      inputs=[i for i in layer.inputs if i >= 0], outputs=[layer.outputs[0]], arrays=[array],
                      input_list=True, summary=f"{len(ts)} along axis {axis} -> {dims(out.shape)}")


# ---- SPLIT, SPLIT_V and UNPACK: several outputs --------------------------------------------------------

def split_parts(layer: Layer, graph: Graph, where: str) -> tuple[Tensor, int, list[int]]:
    """(input, positive axis, extent of each output along it), from the constant operands and options."""
    if layer.op == "SPLIT":            # (axis, input)
        inp, axis_values = graph.tensors[layer.inputs[1]], const_ints(graph, layer, 0, where, "axis")
    elif layer.op == "SPLIT_V":        # (input, sizes, axis)
        inp, axis_values = graph.tensors[layer.inputs[0]], const_ints(graph, layer, 2, where, "axis")
    else:                              # UNPACK: (input), the axis an option
        inp, axis_values = graph.tensors[layer.inputs[0]], [int(layer.options.get("axis", 0))]
    if len(axis_values) != 1:
        raise TinyCompressError(f"{where}: the axis operand holds {len(axis_values)} values; one expected")
    axis = positive_axis(axis_values[0], len(inp.shape), where)
    extent, n = inp.shape[axis], len(layer.outputs)
    if layer.op == "SPLIT":
        count = int(layer.options.get("num_splits", n))
        if count != n or extent % n:
            raise TinyCompressError(f"{where}: axis {axis} of extent {extent} does not split into {count} "
                                    f"equal parts for {n} outputs")
        parts = [extent // n] * n
    elif layer.op == "UNPACK":
        count = int(layer.options.get("num", n))
        if count != n or extent != n:
            raise TinyCompressError(f"{where}: axis {axis} of extent {extent} does not unpack into "
                                    f"num={count} outputs ({n} declared)")
        parts = [1] * n
    else:
        parts = const_ints(graph, layer, 1, where, "split sizes", ("int32", "int64"))
        if len(parts) != n:
            raise TinyCompressError(f"{where}: {len(parts)} split sizes for {n} outputs")
        if parts.count(-1) == 1:
            parts[parts.index(-1)] = extent - sum(p for p in parts if p != -1)
        if any(p < 1 for p in parts) or sum(parts) != extent:
            raise TinyCompressError(f"{where}: the split sizes {parts} do not add up to axis {axis}'s extent "
                                    f"{extent}")
    return inp, axis, parts


def split_output_shapes(layer: Layer, graph: Graph, where: str) -> list[tuple[int, ...]]:
    inp, axis, parts = split_parts(layer, graph, where)
    if layer.op == "UNPACK":
        return [inp.shape[:axis] + inp.shape[axis + 1:]] * len(parts)
    return [inp.shape[:axis] + (p,) + inp.shape[axis + 1:] for p in parts]


def split_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    return split_output_shapes(layer, graph, where)[0]


def split_check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    """Every output's declared shape (the verifier compares the first)."""
    for i, shape in zip(layer.outputs, split_output_shapes(layer, graph, where)):
        out = graph.tensors[i]
        if tuple(out.shape) != tuple(shape):
            raise TinyCompressError(f"{where}: the output {out.name or out.index} is declared "
                                    f"{dims(out.shape)} but the layer computes {dims(shape)}")


@lowering("SPLIT", inputs=2, shape=split_shape, check=split_check, options="SplitOptionsT")
@lowering("SPLIT_V", inputs=3, shape=split_shape, check=split_check, options="SplitVOptionsT")
@lowering("UNPACK", inputs=1, shape=split_shape, check=split_check, options="UnpackOptionsT")
def lower_split(layer: Layer, graph: Graph) -> KernelCall:
    where = f"layer {layer.name} ({layer.op})"
    inp, axis, parts = split_parts(layer, graph, where)
    if inp.is_constant:
        raise unsupported(layer, "a constant input")
    require_int8(layer, [inp] + [graph.tensors[i] for i in layer.outputs])
    outer, inner = math.prod(inp.shape[:axis]), math.prod(inp.shape[axis + 1:])
    sizes = [p * inner for p in parts]
    array = ConstArray(f"{layer.name}_sizes", "int32_t", np.array(sizes, np.int64),
                       "bytes per output and step")
    return KernelCall(layer, "tc_split_s8", "tc_split_params", {"count": len(parts), "outer": outer,
                                                                "sizes": array.name},
                      inputs=[inp.index], outputs=list(layer.outputs), arrays=[array], output_list=True,
                      summary=f"{dims(inp.shape)} into {parts} along axis {axis}")
