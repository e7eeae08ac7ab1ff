"""The binary element-wise operators ADD, SUB, MUL, SQUARED_DIFFERENCE, MAXIMUM and MINIMUM, int8.

Both inputs broadcast against each other by NumPy's rules (up to 5-D, scalars included), and either one
may be a constant (its values go to flash). Every output element is one function of one element of each
input, so the order TFLite Micro's broadcast loops visit them in does not matter: the compiler reduces
the two shapes to a walk over at most five collapsed axes (firmware/include/tc_broadcast.h) whose last
axis is a row in which each input either advances (step 1) or repeats (step 0). Same shapes are one row,
a per-channel vector is rows of C, a scalar is one row with a step of 0.

The per-element arithmetic is TFLite Micro's, with the parameters its Prepare computes:
  ADD, SUB  each input (q - zp) << 20 times a multiplier <= 1/2 (its scale over twice the larger input
            scale), summed or subtracted, then times twice that scale / (2^20 x output scale); ADD's
            multipliers from doubles, SUB's too (sub_common.cc widens the float32 scales first).
  SQUARED_DIFFERENCE  the same rescaling with << 7, the difference squared (< 2^30), times
            (twice the larger scale)^2 / (2^14 x output scale); no activation.
  MUL       (q1 - zp1) (q2 - zp2) times input1 x input2 / output scale (doubles).
  MAXIMUM, MINIMUM  compare the raw int8 values, as TFLite Micro does (it ignores the scales: the
            converter gives both inputs and the output one quantization).
"""
from __future__ import annotations


import numpy as np

from ..errors import TinyCompressError
from .fixedpoint import ADD_LEFT_SHIFT, add_multipliers, f32, quantize_multiplier
from ..ir import Graph, Layer, Tensor
from . import lowering
from .common import RESCALE_LIMIT, KernelCall, dims, fused_activation, scalar_quant, unsupported, weight_array

MAX_RANK = 5                 # TC_BROADCAST_RANK in firmware/include/tc_broadcast.h
SQUARED_DIFFERENCE_LEFT_SHIFT = 7   # 255^2 x 2^14 < 2^31: the square of a rescaled difference fits int32

OPTIONS = {"ADD": "AddOptionsT", "SUB": "SubOptionsT", "MUL": "MulOptionsT",
           "SQUARED_DIFFERENCE": "SquaredDifferenceOptionsT",
           "MAXIMUM": "MaximumMinimumOptionsT", "MINIMUM": "MaximumMinimumOptionsT"}
KERNELS = {"ADD": "tc_add_s8", "SUB": "tc_add_s8", "MUL": "tc_mul_s8",
           "SQUARED_DIFFERENCE": "tc_squared_difference_s8", "MAXIMUM": "tc_maximum_s8",
           "MINIMUM": "tc_minimum_s8"}
PARAMS = {"tc_add_s8": "tc_add_params", "tc_mul_s8": "tc_mul_params",
          "tc_squared_difference_s8": "tc_squared_difference_params",
          "tc_maximum_s8": "tc_minmax_params", "tc_minimum_s8": "tc_minmax_params"}


# ---- TFLite Micro's Prepare ------------------------------------------------------------------------

def sub_multipliers(scale1: float, scale2: float, out_scale: float) -> list[tuple[int, int]]:
    """SUB's three (multiplier, shift) pairs, from doubles as ADD's (add_multipliers): the TFLite Micro we
    verify against widens the float32 scales before dividing (sub_common.cc, "avoid precision loss").

    Float32 quotients, as older releases took, carry 24 significant bits: the Q31 multiplier's low 7 bits
    come out 0 and it moves by up to 2^7 from the double one, so the output's x m / 2^(31 + n) moves by
    up to |x| 2^-(24 + n) of a step. With |x| < 2^28 (each rescaled input is at most 255 x 2^19) and the
    usual n = 18 that is up to 2^-14 of a step: enough to cross a rounding tie, where the output moves by
    one (4 of the 65,536 pairs at the scales of sub_2 in examples/tinylm fine-tuned with kronecker)."""
    twice_max = 2 * float(max(f32(scale1), f32(scale2)))       # x 2 is exact: still a float32 value
    reals = [float(f32(scale1)) / twice_max, float(f32(scale2)) / twice_max,
             twice_max / ((1 << ADD_LEFT_SHIFT) * float(f32(out_scale)))]
    return [quantize_multiplier(r) for r in reals]


def squared_difference_multipliers(scale1: float, scale2: float, out_scale: float) -> list[tuple[int, int]]:
    """squared_difference.cc's PrepareQuantized: doubles, except (1 << 14) x output scale, a float product."""
    twice_max = 2.0 * float(max(f32(scale1), f32(scale2)))
    out_real = twice_max * twice_max / float(f32(1 << 2 * SQUARED_DIFFERENCE_LEFT_SHIFT) * f32(out_scale))
    return [quantize_multiplier(float(f32(scale1)) / twice_max),
            quantize_multiplier(float(f32(scale2)) / twice_max), quantize_multiplier(out_real)]


def mul_multiplier(scale1: float, scale2: float, out_scale: float) -> tuple[int, int]:
    return quantize_multiplier(float(f32(scale1)) * float(f32(scale2)) / float(f32(out_scale)))


# ---- the verifier's rules --------------------------------------------------------------------------

def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """The two inputs broadcast against each other, up to 5-D."""
    rank = max(len(t[0].shape), len(t[1].shape))
    if rank > MAX_RANK:
        raise TinyCompressError(f"{where}: inputs of rank {rank}; at most {MAX_RANK} is supported")
    try:
        return tuple(np.broadcast_shapes(tuple(t[0].shape), tuple(t[1].shape)))
    except ValueError:
        raise TinyCompressError(f"{where}: the inputs {dims(t[0].shape)} and {dims(t[1].shape)} do not "
                                "broadcast") from None


def check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    """int8 throughout, and the scales give multipliers TFLite's fixed point can hold."""
    out = graph.tensors[layer.outputs[0]]
    for tensor, what in ((t[0], "input 1"), (t[1], "input 2"), (out, "output")):
        if tensor.dtype != "int8":
            raise TinyCompressError(f"{where}: the {what} is {tensor.dtype}; only int8 is supported")
    if not (t[0].quantized and t[1].quantized and out.quantized):
        return
    s1, s2, so = (float(x.scale[0]) for x in (t[0], t[1], out))
    if layer.op in ("ADD", "SUB"):
        real = 2 * max(s1, s2) / (2 ** ADD_LEFT_SHIFT * so)
        if not real < 1:
            raise TinyCompressError(f"{where}: the output scale {so:g} is too small for the input scales "
                                    f"{s1:g} and {s2:g} (TFLite requires 2 x max(input scales) < "
                                    f"2^{ADD_LEFT_SHIFT} x output scale)")
    elif layer.op == "MUL" and s1 * s2 / so >= RESCALE_LIMIT:
        raise TinyCompressError(f"{where}: the scales give a rescaling factor of {s1 * s2 / so:g}; "
                                "TFLite needs it below 2^30")
    elif layer.op == "SQUARED_DIFFERENCE" and (2 * max(s1, s2)) ** 2 / (2 ** 14 * so) >= RESCALE_LIMIT:
        raise TinyCompressError(f"{where}: the output scale {so:g} is too small for the input scales "
                                f"{s1:g} and {s2:g}")


# ---- the broadcast walk ----------------------------------------------------------------------------

def broadcast_walk(shape1, shape2, out_shape) -> dict:
    """tc_broadcast: the output's axes with those of length 1 dropped and neighbours merged wherever both
    inputs step through them alike, padded in front to MAX_RANK axes; each input's element strides, 0
    where it repeats. An input's stride on the last axis is 1 or 0: the kernel's row step."""
    rank = len(out_shape)
    axes = []   # (length, stride1, stride2), outermost first
    strides = []
    for shape in (shape1, shape2):
        shape = (1,) * (rank - len(shape)) + tuple(shape)
        s, step = [0] * rank, 1
        for axis in reversed(range(rank)):
            s[axis] = step if shape[axis] == out_shape[axis] else 0
            step *= shape[axis]
        strides.append(s)
    for axis in range(rank):
        if out_shape[axis] == 1:
            continue
        length, s1, s2 = out_shape[axis], strides[0][axis], strides[1][axis]
        if axes and axes[-1][1] == s1 * length and axes[-1][2] == s2 * length:
            # the previous axis continues this one in both inputs (or repeats it in both): one axis
            axes[-1] = (axes[-1][0] * length, s1, s2)
        else:
            axes.append((length, s1, s2))
    axes = axes or [(1, 0, 0)]
    axes = [(1, 0, 0)] * (MAX_RANK - len(axes)) + axes
    return {"shape": tuple(a[0] for a in axes), "strides1": tuple(a[1] for a in axes),
            "strides2": tuple(a[2] for a in axes)}


def _summary(layer: Layer, a: Tensor, b: Tensor, out: Tensor) -> str:
    text = f"{dims(a.shape)}{' const' if a.is_constant else ''} {layer.op.lower()} " \
           f"{dims(b.shape)}{' const' if b.is_constant else ''}"
    activation = layer.options.get("fused_activation_function", "NONE")
    return text + ("" if activation == "NONE" else f", {activation}")


@lowering(*OPTIONS, inputs=2, shape=output_shape, check=check, options=OPTIONS)
def lower(layer: Layer, graph: Graph) -> KernelCall:
    a, b = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    out = graph.tensors[layer.outputs[0]]
    if a.is_constant and b.is_constant:
        raise unsupported(layer, "an operation on two constants (fold it before converting)")
    out_shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    if len(out_shape) > MAX_RANK:
        raise unsupported(layer, f"rank {len(out_shape)} (at most {MAX_RANK})")
    (s1, z1), (s2, z2), (so, zo) = scalar_quant(a), scalar_quant(b), scalar_quant(out)
    function = KERNELS[layer.op]
    params: dict = {"broadcast": broadcast_walk(a.shape, b.shape, out_shape), "size": out.size}
    arrays = []
    # A constant input's values go to flash; the call passes the other input in its place too, so the
    # kernel's signature stays (params, input1, input2, output) and it reads the flash copy instead.
    activations = [layer.inputs[1] if a.is_constant else layer.inputs[0],
                   layer.inputs[0] if b.is_constant else layer.inputs[1]]
    for position, tensor in enumerate((a, b), 1):
        params[f"constant{position}"] = "NULL"
        if tensor.is_constant:
            array = weight_array(layer, tensor, f"input{position}")
            arrays.append(array)
            params[f"constant{position}"] = array.name
    if layer.op in ("ADD", "SUB"):
        multipliers = add_multipliers if layer.op == "ADD" else sub_multipliers
        (m1, sh1), (m2, sh2), (mo, sho) = multipliers(s1, s2, so)
        params.update({"left_shift": ADD_LEFT_SHIFT,
                       "input1_offset": -z1, "input1_multiplier": m1, "input1_shift": sh1,
                       "input2_offset": -z2, "input2_multiplier": m2, "input2_shift": sh2,
                       "output_offset": zo, "output_multiplier": mo, "output_shift": sho,
                       "subtract": int(layer.op == "SUB"), "act": fused_activation(layer, out)})
    elif layer.op == "SQUARED_DIFFERENCE":
        (m1, sh1), (m2, sh2), (mo, sho) = squared_difference_multipliers(s1, s2, so)
        params.update({"left_shift": SQUARED_DIFFERENCE_LEFT_SHIFT,
                       "input1_offset": -z1, "input1_multiplier": m1, "input1_shift": sh1,
                       "input2_offset": -z2, "input2_multiplier": m2, "input2_shift": sh2,
                       "output_offset": zo, "output_multiplier": mo, "output_shift": sho})
    elif layer.op == "MUL":
        m, sh = mul_multiplier(s1, s2, so)
        params.update({"input1_offset": -z1, "input2_offset": -z2, "output_offset": zo,
                       "output_multiplier": m, "output_shift": sh, "act": fused_activation(layer, out)})
    # MAXIMUM and MINIMUM need nothing more: they compare raw values
    # Element-wise: an input shaped like the output is read at the output's index before it is written.
    overwrites = tuple(i for i, t in enumerate((a, b)) if not t.is_constant and t.size == out.size)
    return KernelCall(layer, function, PARAMS[function], params, inputs=activations,
                      outputs=[layer.outputs[0]], arrays=arrays, overwrites=overwrites,
                      summary=_summary(layer, a, b, out))
