"""The reductions MEAN, SUM, REDUCE_MAX and ARG_MAX over any axes, keep_dims or not: one lowering, one kernel
(firmware/kernels/tc_reduce_s8.c).

Whatever the rank and the axes, a reduction the kernel runs is a walk over three extents computed here:
the input seen as [outer, reduced, inner], each output element reducing `reduced` inputs `inner` apart.
That holds when the reduced axes are adjacent once the size-1 axes are dropped (they reduce nothing);
the rare rest is refused. keep_dims changes the output's shape, not its bytes.

Arithmetic (TFLite Micro's reduce.cc and reference_ops::QuantizedMeanOrSum; the int8 MEAN has no special
4-D path there, only the float one does): the int32 sum of the inputs, less input_zero_point times the
count, requantized by input/output scale (MEAN: with 1/count folded into the multiplier as TFLite Micro
folds it, fixedpoint.mean_multiplier), plus the output zero point, clamped. REDUCE_MAX compares raw int8
values: TFLite Micro requires equal input and output quantization (it does not requantize) and so do we.
ARG_MAX gives the index of the first largest value as int32 (TFLite Micro has no int64 output).
"""
from __future__ import annotations

import math

from ..errors import TinyCompressError
from .fixedpoint import mean_multiplier
from ..ir import Graph, Layer, Tensor
from . import lowering
from .common import KernelCall, check_rescaling, dims, scalar_quant, unsupported

# tc_reduce_params.op
OPS = {"SUM": "TC_REDUCE_SUM", "MEAN": "TC_REDUCE_SUM", "REDUCE_MAX": "TC_REDUCE_MAX",
       "ARG_MAX": "TC_REDUCE_ARG_MAX"}


def _axes(axes: Tensor, rank: int, where: str) -> list[int] | None:
    """The distinct axes, non-negative and sorted, as TFLite's ResolveAxis; None when computed at run time."""
    if axes.data is None:
        return None
    values = [int(a) for a in axes.data.reshape(-1)]
    if any(not -rank <= a < rank for a in values):
        raise TinyCompressError(f"{where}: axes {values} are out of range for a {rank}-D input")
    return sorted({a % rank for a in values})


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...] | None:
    """The input without the reduced axes, or with them as 1 under keep_dims (ARG_MAX: one axis, dropped)."""
    inp = t[0]
    rank = len(inp.shape)
    axes = _axes(t[1], rank, where)
    if axes is None:
        return None   # lowering refuses axes computed at run time
    if layer.op == "ARG_MAX":
        if t[1].size != 1:
            raise TinyCompressError(f"{where}: {t[1].size} axes; ARG_MAX takes one")
        return tuple(d for i, d in enumerate(inp.shape) if i != axes[0])
    if layer.options.get("keep_dims"):
        return tuple(1 if i in axes else d for i, d in enumerate(inp.shape))
    return tuple(d for i, d in enumerate(inp.shape) if i not in axes)


def check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    out = graph.tensors[layer.outputs[0]]
    if layer.op == "ARG_MAX":
        if out.dtype != "int32":
            raise TinyCompressError(f"{where}: a {out.dtype} output; TFLite Micro's ARG_MAX gives only int32 "
                                    "(convert with tf.argmax(..., output_type=tf.int32))")
        return
    if layer.op == "REDUCE_MAX" and t[0].quantized and out.quantized and (
            float(t[0].scale[0]) != float(out.scale[0]) or int(t[0].zero_point[0]) != int(out.zero_point[0])):
        raise TinyCompressError(f"{where}: input and output quantization differ (scale {t[0].scale[0]:g}, "
                                f"zero point {int(t[0].zero_point[0])} against {out.scale[0]:g}, "
                                f"{int(out.zero_point[0])}); TFLite Micro's REDUCE_MAX requires them equal")
    check_rescaling(layer, graph, t, where)


def extents(shape: tuple[int, ...], axes: list[int]) -> tuple[int, int, int] | None:
    """(outer, reduced, inner) when the reduced axes of size > 1 are adjacent among the axes of size > 1."""
    kinds = [(i in axes, d) for i, d in enumerate(shape) if d != 1]
    reduced_at = [k for k, (r, _) in enumerate(kinds) if r]
    if reduced_at and reduced_at[-1] - reduced_at[0] + 1 != len(reduced_at):
        return None
    first, last = (reduced_at[0], reduced_at[-1] + 1) if reduced_at else (len(kinds), len(kinds))
    sizes = [d for _, d in kinds]
    return math.prod(sizes[:first]), math.prod(sizes[first:last]), math.prod(sizes[last:])


@lowering("MEAN", "SUM", "REDUCE_MAX", "ARG_MAX", inputs=2, shape=output_shape, check=check,
          options={"MEAN": "ReducerOptionsT", "SUM": "ReducerOptionsT", "REDUCE_MAX": "ReducerOptionsT",
                   "ARG_MAX": "ArgMaxOptionsT"})
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    axes = _axes(graph.tensors[layer.inputs[1]], len(inp.shape), f"layer {layer.name} ({layer.op})")
    if axes is None:
        raise unsupported(layer, "axes computed at run time")
    walk = extents(inp.shape, axes)
    if walk is None:
        raise unsupported(layer, f"reducing axes {axes} of a {dims(inp.shape)} tensor (the reduced axes of "
                                 "size > 1 must be adjacent)")
    outer, reduced, inner = walk
    in_scale, in_zp = scalar_quant(inp)
    multiplier = shift = out_zp = 0
    if layer.op in ("MEAN", "SUM"):
        out_scale, out_zp = scalar_quant(out)
        # TFLite Micro folds 1 / count into MEAN's multiplier; SUM keeps the plain scale ratio
        multiplier, shift = mean_multiplier(in_scale, out_scale, reduced if layer.op == "MEAN" else 1)
    params = {
        "op": OPS[layer.op],
        "outer": outer, "reduced": reduced, "inner": inner,
        "input_zero_point": in_zp,
        "output_offset": out_zp,
        "multiplier": multiplier,
        "shift": shift,
    }
    what = {"MEAN": "mean", "SUM": "sum", "REDUCE_MAX": "max", "ARG_MAX": "argmax"}[layer.op]
    return KernelCall(layer, "tc_reduce_s8", "tc_reduce_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
                      summary=f"{what} over axes {axes} of {dims(inp.shape)}: {outer}x[{reduced}]x{inner}")
