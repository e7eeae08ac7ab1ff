"""RESHAPE (and SQUEEZE): the bytes stay, so the planner lets the output share the input's buffer."""
from __future__ import annotations

from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, scalar_quant, unsupported


@lowering("RESHAPE", "SQUEEZE")
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
