"""MEAN over the spatial axes of an NHWC tensor (what GlobalAveragePooling2D converts to)."""
from __future__ import annotations

from ..fixedpoint import mean_multiplier
from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, scalar_quant, unsupported


@lowering("MEAN")
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, axes_tensor = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    out = graph.tensors[layer.outputs[0]]
    if axes_tensor.data is None or len(inp.shape) != 4:
        raise unsupported(layer, "a MEAN that is not over the axes of a 4-D tensor")
    axes = sorted(int(a) % 4 for a in axes_tensor.data.reshape(-1))
    if axes != [1, 2]:
        raise unsupported(layer, f"MEAN over axes {axes} (only the spatial axes [1, 2])")
    (in_scale, in_zp), (out_scale, out_zp) = scalar_quant(inp), scalar_quant(out)
    n, h, w, c = inp.nhwc()
    multiplier, shift = mean_multiplier(in_scale, out_scale, h * w)
    params = {
        "input": (n, h, w, c),
        "input_zero_point": in_zp,
        "output_offset": out_zp,
        "multiplier": multiplier,
        "shift": shift,
    }
    return KernelCall(layer, "tc_mean_s8", "tc_mean_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]],
                      summary=f"{h}x{w} -> 1x1")
