"""BATCH_MATMUL: out[b, i, j] = sum_k lhs[b, i, k] * rhs[b, k, j], what attention (q @ k^T, scores @ v) and
some Dense layers on sequences convert to.

Arithmetic (TFLite Micro's batch_matmul.cc and reference_ops::BatchMatMul): the int32 sum of
(lhs - lhs zero point) * (rhs - rhs zero point), requantized by double(lhs scale) * double(rhs scale) /
double(output scale) (QuantizeMultiplier), plus the output zero point, clamped to int8; int32 sums wrap
alike in any order, so the kernel may add in whatever order is fastest. adj_x / adj_y transpose the last
two axes of an operand; the batch axes (up to three) broadcast where one side has 1.

The kernel (firmware/kernels/tc_batch_matmul_s8.c) reads both operands through strides, so no operand is
ever transposed on the target, except a right-hand side whose depth axis is not contiguous (scores @ v):
on DSP and Helium cores each batch of it is transposed once into scratch (ops/scratch.py), where the
dot products run on words (SMLAD) or vectors. A constant right-hand side is stored in flash already
transposed, [batch, N, K].
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import TinyCompressError
from .fixedpoint import quantize_multiplier
from ..ir import Graph, Layer
from . import lowering
from .common import ConstArray, KernelCall, dims, scalar_quant, unsupported

MAX_BATCH_AXES = 3   # TFLite Micro's ranks 2..5


def _operands(layer: Layer, t: list) -> tuple[tuple[int, ...], tuple[int, ...], int, int, int, int]:
    """(lhs batch shape, rhs batch shape, M, K of lhs, K of rhs, N)."""
    lhs, rhs = t[0].shape, t[1].shape
    adj_x, adj_y = bool(layer.options.get("adj_x")), bool(layer.options.get("adj_y"))
    m, k_lhs = (lhs[-1], lhs[-2]) if adj_x else (lhs[-2], lhs[-1])
    k_rhs, n = (rhs[-1], rhs[-2]) if adj_y else (rhs[-2], rhs[-1])
    return tuple(lhs[:-2]), tuple(rhs[:-2]), m, k_lhs, k_rhs, n


def output_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """The batch axes broadcast against each other, then [M, N]."""
    for name, tensor in (("left", t[0]), ("right", t[1])):
        if not 2 <= len(tensor.shape) <= 2 + MAX_BATCH_AXES:
            raise TinyCompressError(f"{where}: the {name} operand is {dims(tensor.shape)}; TFLite Micro "
                                    f"takes 2 to {2 + MAX_BATCH_AXES} dimensions")
    lhs_batch, rhs_batch, m, k_lhs, k_rhs, n = _operands(layer, t)
    if k_lhs != k_rhs:
        raise TinyCompressError(f"{where}: the operands {dims(t[0].shape)} and {dims(t[1].shape)} (adj_x "
                                f"{bool(layer.options.get('adj_x'))}, adj_y "
                                f"{bool(layer.options.get('adj_y'))}) "
                                f"have depths {k_lhs} and {k_rhs}")
    try:
        batch = np.broadcast_shapes(lhs_batch, rhs_batch)
    except ValueError:
        raise TinyCompressError(f"{where}: the batch axes of {dims(t[0].shape)} and {dims(t[1].shape)} do "
                                "not broadcast") from None
    return tuple(batch) + (m, n)


def check(layer: Layer, graph: Graph, t: list, where: str) -> None:
    out = graph.tensors[layer.outputs[0]]
    for name, tensor in (("left", t[0]), ("right", t[1])):
        if tensor.quantized and tensor.scale.size > 1:
            raise TinyCompressError(f"{where}: the {name} operand is quantized per channel; TFLite Micro's "
                                    "BATCH_MATMUL takes one scale per tensor")
    if t[0].quantized and t[1].quantized and out.quantized:
        real = float(t[0].scale[0]) * float(t[1].scale[0]) / float(out.scale[0])
        if real >= 2 ** 30:
            raise TinyCompressError(f"{where}: the scales give a rescaling factor of {real:g}; TFLite needs "
                                    "it below 2^30")


def _batch_strides(shape: tuple[int, ...], batch: tuple[int, ...], matrix: int) -> list[int]:
    """Element strides of an operand along the output's batch axes (padded to three), 0 where broadcast."""
    own = (1,) * (len(batch) - len(shape)) + tuple(shape)
    strides, step = [], matrix
    for axis in reversed(range(len(batch))):
        strides.append(step if own[axis] == batch[axis] and batch[axis] != 1 else 0)
        step *= own[axis]
    strides.reverse()
    return [0] * (MAX_BATCH_AXES - len(strides)) + strides


@lowering("BATCH_MATMUL", inputs=2, shape=output_shape, check=check, options="BatchMatMulOptionsT")
def lower(layer: Layer, graph: Graph) -> KernelCall:
    lhs, rhs = graph.tensors[layer.inputs[0]], graph.tensors[layer.inputs[1]]
    out = graph.tensors[layer.outputs[0]]
    if lhs.is_constant:
        raise unsupported(layer, "a constant left-hand operand")
    t = [lhs, rhs]
    _, rhs_batch, m, k, _, n = _operands(layer, t)
    batch = tuple(out.shape[:-2])
    adj_x, adj_y = bool(layer.options.get("adj_x")), bool(layer.options.get("adj_y"))
    (ls, lz), (rs, rz), (os_, oz) = scalar_quant(lhs), scalar_quant(rhs), scalar_quant(out)
    # GetQuantizedConvolutionMultipler: double(lhs scale) * double(rhs scale) / double(output scale)
    multiplier, shift = quantize_multiplier(float(np.float32(ls)) * float(np.float32(rs))
                                            / float(np.float32(os_)))
    arrays = []
    constant = "NULL"
    if rhs.is_constant:
        values = rhs.data.astype(np.int64)
        if not adj_y:   # [batch, K, N] -> [batch, N, K]: each column's depth contiguous
            values = np.swapaxes(values, -1, -2)
        arrays.append(ConstArray(f"{layer.name}_rhs", "int8_t", np.ascontiguousarray(values).reshape(-1),
                                 f"[{dims(rhs_batch + (n, k))}] right-hand side, transposed to [N, K]"))
        constant = arrays[0].name
        rhs_col, rhs_depth = k, 1
    else:
        rhs_col, rhs_depth = (k, 1) if adj_y else (1, n)
    params = {
        "batches": [1] * (MAX_BATCH_AXES - len(batch)) + list(batch),
        "lhs_batch_strides": _batch_strides(lhs.shape[:-2], batch, m * k),
        "rhs_batch_strides": _batch_strides(rhs_batch, batch, n * k),
        "rows": m, "cols": n, "depth": k,
        "lhs_row_stride": 1 if adj_x else k, "lhs_depth_stride": m if adj_x else 1,
        "rhs_col_stride": rhs_col, "rhs_depth_stride": rhs_depth,
        "lhs_offset": -lz, "rhs_offset": -rz, "output_offset": oz,
        "multiplier": multiplier, "shift": shift,
        "constant_rhs": constant,
    }
    macs = math.prod(batch) * m * n * k
    flags = ", ".join(f for f, on in (("adj_x", adj_x), ("adj_y", adj_y), ("constant rhs", rhs.is_constant))
                      if on)
    # A constant right-hand side is not an arena tensor: the kernel's second argument repeats the first
    # and is ignored (constant_rhs is set).
    inputs = [layer.inputs[0], layer.inputs[0] if rhs.is_constant else layer.inputs[1]]
    return KernelCall(layer, "tc_batch_matmul_s8", "tc_batch_matmul_params", params,
                      inputs=inputs, outputs=[layer.outputs[0]], macs=macs, arrays=arrays,
                      summary=f"{dims(lhs.shape)} @ {dims(rhs.shape)}" + (f", {flags}" if flags else ""))
