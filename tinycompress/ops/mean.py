"""MEAN and SUM over the spatial axes of an NHWC tensor (GlobalAveragePooling2D) or over the tokens of a
[N, T, D] sequence (GlobalAveragePooling1D, sum pooling): one kernel, T tokens seen as a T x 1 image."""
from __future__ import annotations

from ..errors import TinyCompressError
from ..fixedpoint import mean_multiplier
from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, check_rescaling, scalar_quant, unsupported


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...] | None:
    """The input without the reduced axes, or with them as 1 under keep_dims."""
    inp, axes = t[0], t[1]
    if axes.data is None:
        return None   # lowering refuses axes computed at run time
    rank = len(inp.shape)
    values = [int(a) for a in axes.data.reshape(-1)]
    if any(not -rank <= a < rank for a in values):
        raise TinyCompressError(f"{where}: axes {values} are out of range for a {rank}-D input")
    reduced = {a % rank for a in values}
    if layer.options.get("keep_dims"):
        return tuple(1 if i in reduced else d for i, d in enumerate(inp.shape))
    return tuple(d for i, d in enumerate(inp.shape) if i not in reduced)


def check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    check_rescaling(layer, graph, t, where)


@lowering("MEAN", "SUM", inputs=2, shape=output_shape, check=check, options="ReducerOptionsT")
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, axes_tensor = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    out = graph.tensors[layer.outputs[0]]
    rank = len(inp.shape)
    axes = sorted(int(a) % max(rank, 1) for a in axes_tensor.data.reshape(-1)) if axes_tensor.data is not None \
        else None
    if rank == 4 and axes == [1, 2]:
        n, h, w, c = inp.nhwc()
        summary = f"{h}x{w} -> 1x1"
    elif rank == 3 and axes == [1]:
        (n, h, c), w = inp.shape, 1
        summary = f"{h} tokens -> 1"
    else:
        raise unsupported(layer, f"{layer.op} over axes {axes} of a {rank}-D tensor (only the spatial axes "
                                 "[1, 2] of a 4-D tensor or the token axis [1] of a 3-D one)")
    (in_scale, in_zp), (out_scale, out_zp) = scalar_quant(inp), scalar_quant(out)
    # TFLite Micro folds 1 / count into MEAN's multiplier; SUM keeps the plain scale ratio
    multiplier, shift = mean_multiplier(in_scale, out_scale, h * w if layer.op == "MEAN" else 1)
    params = {
        "input": (n, h, w, c),
        "input_zero_point": in_zp,
        "output_offset": out_zp,
        "multiplier": multiplier,
        "shift": shift,
    }
    return KernelCall(layer, "tc_mean_s8", "tc_mean_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
                      summary=("sum " if layer.op == "SUM" else "") + summary)
