"""QUANTIZE and DEQUANTIZE inside an int8 graph, each as a 256-byte table (tc_lut_s8).

The float32 ends of a float-I/O model are folded off at load time (floatio.py); what remains here:
- QUANTIZE int8 -> int8, a requantization. TFLite Micro's Prepare takes the ratio of the scales in
  double, QuantizeMultiplier turns it into a Q31 significand and a shift, and Requantize computes
  MultiplyByQuantizedMultiplier(q - input zero point) + output zero point, clamped to int8.
- DEQUANTIZE int8 -> float32 read only by QUANTIZEs back to int8: floatio.py makes it one int8 -> int8
  layer per QUANTIZE, the float32 product scale * (q - zero point) then the float32 division and
  halves-away rounding of AffineQuantize.
Either result depends on the int8 input alone, so the host evaluates it on all 256 inputs.
"""
from __future__ import annotations

import numpy as np

from . import gemmlowp as g
from .fixedpoint import INT8_MAX, INT8_MIN, quantize_multiplier
from ..frontend.floatio import dequantize, quantize
from ..ir import Graph, Layer
from . import lowering
from .common import ConstArray, KernelCall, same_shape, scalar_quant, unsupported

INPUTS = np.arange(INT8_MIN, INT8_MAX + 1)


def requantize_table(in_q: tuple[float, int], out_q: tuple[float, int]) -> list[int]:
    """Requantize's result for every int8 input: the multiplier from the double ratio of the float32
    scales."""
    (in_scale, in_zp), (out_scale, out_zp) = in_q, out_q
    multiplier, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    return [min(max(g.multiply_by_quantized_multiplier(int(q) - in_zp, multiplier, shift) + out_zp, INT8_MIN),
                INT8_MAX) for q in INPUTS]


def float_roundtrip_table(in_q: tuple[float, int], out_q: tuple[float, int]) -> list[int]:
    """DEQUANTIZE then QUANTIZE in float32, as TFLite Micro runs the pair."""
    return quantize(dequantize(INPUTS, *in_q), *out_q).astype(int).tolist()


def _check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    """TFLite Micro quantizes to one scale (per tensor); the int8 side must carry it."""
    out = graph.tensors[layer.outputs[0]]
    for tensor in (t[0], out):
        if tensor.dtype == "int8" and tensor.scale.size != 1:
            raise unsupported(layer, f"{'per-channel' if tensor.scale.size else 'no'} quantization on "
                                     f"{tensor.name or tensor.index}")


@lowering("QUANTIZE", "DEQUANTIZE", inputs=1, shape=same_shape, check=_check)
def lower(layer: Layer, graph: Graph) -> KernelCall:
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    if inp.dtype != "int8" or out.dtype != "int8":
        raise unsupported(layer, f"{inp.dtype} to {out.dtype} (float32 only at the model's input and output; "
                                 "int8 to int8 in between)")
    in_q, out_q = scalar_quant(inp), scalar_quant(out)
    if layer.op == "QUANTIZE":
        values, summary = requantize_table(in_q, out_q), "requantized"
    else:
        values, summary = float_roundtrip_table(in_q, out_q), "with the QUANTIZE after it, in float32"
    lut = ConstArray(f"{layer.name}_table", "int8_t", np.array(values, np.int64),
                     "results for inputs -128..127")
    return KernelCall(layer, "tc_lut_s8", "tc_lut_params", {"size": out.size, "table": lut.name},
                      inputs=[layer.inputs[0]], outputs=[layer.outputs[0]], arrays=[lut],
                      summary="x".join(map(str, out.shape)) + f", {summary}, 256-byte table", overwrites=(0,))
