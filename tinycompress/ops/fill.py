"""FILL: an int8 tensor of one value, as TFLite Micro's fill.cc writes it (the value's byte copied, no
rescaling: TFLite Micro requires the value's type to be the output's and copies it as it is).

What a GRU or LSTM exported with a `None` batch starts from: its zero state, FILL(SHAPE-derived dims, 0).
The dims are constant once fold.py has folded the shape arithmetic for batch 1; computed at run time they
are refused, as TFLite Micro refuses them.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinyCompressError
from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, dims, unsupported


def fill_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    shape_tensor = t[0]
    if shape_tensor is None or shape_tensor.data is None:
        raise TinyCompressError(f"{where}: the output shape is computed at run time; TFLite Micro needs it "
                                "constant (convert with a fixed input shape)")
    shape = tuple(int(v) for v in np.asarray(shape_tensor.data).reshape(-1))
    if any(d < 0 for d in shape):
        raise TinyCompressError(f"{where}: the output shape {list(shape)} has a negative extent")
    return shape


def fill_check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    value, out = t[1], graph.tensors[layer.outputs[0]]
    if value is None or value.data is None or value.size != 1:
        raise TinyCompressError(f"{where}: the value must be one constant (TFLite Micro needs a scalar)")
    if value.dtype != out.dtype:
        raise TinyCompressError(f"{where}: the value is {value.dtype} but the output {out.dtype}; TFLite "
                                "Micro needs them the same")
    return None


@lowering("FILL", inputs=2, shape=fill_shape, check=fill_check)
def lower_fill(layer: Layer, graph: Graph) -> KernelCall:
    out = graph.tensors[layer.outputs[0]]
    if out.dtype != "int8":
        raise unsupported(layer, f"a {out.dtype} output (int8 only; int32 shape arithmetic folds)")
    value = int(np.asarray(graph.tensors[layer.inputs[1]].data).reshape(-1)[0])
    return KernelCall(layer, "tc_fill_s8", "tc_fill_params", {"size": out.size, "value": value}, inputs=[],
                      outputs=[layer.outputs[0]], summary=f"{dims(out.shape)} of {value}")
