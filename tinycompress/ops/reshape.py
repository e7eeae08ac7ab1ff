"""RESHAPE (and SQUEEZE, EXPAND_DIMS, registered in ops/shape.py): the bytes stay, so the planner lets the
output share the input's buffer."""
from __future__ import annotations

from ..errors import TinyCompressError
from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, dims, scalar_quant, unsupported


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> None:
    """Any shape of as many values: the declared one stands."""
    out = graph.tensors[layer.outputs[0]]
    if out.size != t[0].size:
        raise TinyCompressError(f"{where}: the output {dims(out.shape)} holds {out.size} values but the "
                                f"input {dims(t[0].shape)} holds {t[0].size}")
    return None


@lowering("RESHAPE", inputs=1, shape=output_shape, options="ReshapeOptionsT")
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    if scalar_quant(inp) != scalar_quant(out):
        raise unsupported(layer, "a reshape that changes quantization")
    return KernelCall(
        layer, "tc_reshape_s8", "tc_reshape_params", {"size": out.size},
        inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
        summary="x".join(map(str, inp.shape)) + " -> " + "x".join(map(str, out.shape)),
        in_place=True,
    )
