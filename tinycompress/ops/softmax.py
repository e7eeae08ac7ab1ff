"""SOFTMAX over the last axis: int8 in, int8 out with scale 1/256 and zero point -128."""
from __future__ import annotations

from ..fixedpoint import softmax_scaling
from ..ir import Graph, Layer
from . import lowering
from .common import KernelCall, scalar_quant, unsupported


@lowering("SOFTMAX")
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    in_scale, _ = scalar_quant(inp)
    out_scale, out_zp = scalar_quant(out)
    if out_zp != -128 or out_scale != 1 / 256:
        raise unsupported(layer, f"an output quantization of scale {out_scale:g} and zero point {out_zp} "
                                 "(TFLite requires 1/256 and -128)")
    multiplier, left_shift, diff_min = softmax_scaling(layer.options.get("beta", 1.0), in_scale)
    depth = inp.shape[-1]
    params = {"rows": inp.size // depth, "depth": depth, "input_multiplier": multiplier,
              "input_left_shift": left_shift, "diff_min": diff_min}
    return KernelCall(layer, "tc_softmax_s8", "tc_softmax_params", params,
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]], summary=f"over {depth}")
