"""Element-wise benchmark: instructions per element of tinycompress's element-wise kernels against TFLite
Micro's reference kernels, on Cortex-M0, M4, M7 and M55, in the same firmware on the same inputs.

    TINYCOMPRESS_TFLM=~/tflite-micro .venv/bin/python benchmarks/elementwise.py            # the table,
    TINYCOMPRESS_TFLM=~/tflite-micro .venv/bin/python benchmarks/elementwise.py --markdown # and its JSON
    .venv/bin/python benchmarks/elementwise.py --ours-only     # our kernels alone, without TFLite Micro

Each case of CASES is one layer as a model would hold it: our side is the kernel call tinycompress's own
lowering (tinycompress/ops) makes of it, parameters and tables included; TFLite Micro's side is the
reference function its kernel's Eval calls (reference_ops / reference_integer_ops), compiled from the
checkout in TINYCOMPRESS_TFLM with TFLite Micro's release flags (-O2 -DNDEBUG), its parameters as its
Prepare derives them. Both run on the same inputs in one firmware (benchmarks/elementwise/harness.c) under
QEMU with -icount, where ticks count instructions; both outputs must be the same bytes. A call to an
empty function through the same pointer is subtracted from each measurement, so what is left is the
kernel with its per-call setup, divided by the elements of the output.

TFLite Micro's headers need gemmlowp's fixedpoint/ (from TINYCOMPRESS_GEMMLOWP, or where TFLite Micro's
Makefile downloads it, tensorflow/lite/micro/tools/make/downloads/gemmlowp); ruy's profiler header is
stubbed (benchmarks/elementwise/stubs). Neither checkout is part of this repository.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tinycompress.target.boards import Board, load_board  # noqa: E402
from tinycompress.codegen.emit import TARGET_SOURCES, _environment, c_init, c_rows  # noqa: E402
from tinycompress.target.emulate import check_exit, qemu_command  # noqa: E402
from tinycompress.errors import TinyCompressError  # noqa: E402
from tinycompress.ops.fixedpoint import f32, quantize_multiplier, tflite_round  # noqa: E402
from tinycompress.ir import Graph, Layer, Tensor  # noqa: E402
from tinycompress.ops import lower_layer  # noqa: E402
from tinycompress.ops.common import KernelCall  # noqa: E402
from tinycompress.ops.unary import _int16_multiplier, _sigmoid_input_scaling  # noqa: E402
from tinycompress.resources import data_dir  # noqa: E402

HERE = Path(__file__).resolve().parent / "elementwise"
CORES = {"M0": "microbit", "M4": "mps2-an386", "M7": "mps2-an500", "M55": "mps3-an547"}
SHAPE = (1, 8, 16, 8)         # 1024 elements: the call's fixed costs are a fraction of an instruction each
NEEDS = ("needs TINYCOMPRESS_TFLM=/path/to/tflite-micro (a checkout, with gemmlowp in its Makefile's "
         "downloads/ or TINYCOMPRESS_GEMMLOWP=/path/to/gemmlowp), or --ours-only")
DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"     # where TFLite Micro's Makefile puts gemmlowp
TFLM_COMMON = "tensorflow/lite/kernels/internal/common.cc"
TFLM_FLAGS = "BUILD_TYPE=release: -DNDEBUG -DTF_LITE_STRIP_ERROR_STRINGS, kernels -O2, common.cc -Os"
C_TYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "float32": "float"}


@dataclass(frozen=True)
class Spec:
    """One tensor of a case: shape and quantization; `data` makes it a constant (weights, alpha)."""
    shape: tuple[int, ...]
    scale: float | None = None            # None: not quantized (float32)
    zero_point: int = 0
    dtype: str = "int8"
    data: tuple | None = None


@dataclass(frozen=True)
class Case:
    """One row: a layer of `op` lowered by tinycompress, and TFLite Micro's reference kernel for it.

    `tflm` is the C++ body that runs TFLite Micro's kernel: it reads in0, in1, ... (the non-constant
    inputs, typed by their dtype), const0, ... (the constant ones), writes `out`, and may use the
    RuntimeShapes shape0, shape1, ... and shape_out, and n (elements of the output). Its {fields} come
    from `values(graph, call)`: the parameters TFLite Micro's Prepare derives, and tflite_round etc.
    where it rounds in float."""
    name: str
    op: str
    inputs: tuple[Spec, ...]
    output: Spec
    header: str | tuple[str, ...]                  # the TFLite Micro header(s) declaring the kernel
    tflm: str
    values: Callable[[Graph, KernelCall], dict] = lambda graph, call: {}
    options: dict = field(default_factory=dict)
    lower: Callable[[Graph], KernelCall] | None = None   # our call where no lowering makes it (float I/O)


# ---- TFLite Micro's Prepare, for the cases whose parameters are not ours (our unary kernels are tables)

def _quant(graph: Graph, index: int) -> tuple[float, int]:
    t = graph.tensors[index]
    return float(t.scale[0]), int(t.zero_point[0])


def _io(graph: Graph):
    layer = graph.layers[0]
    return _quant(graph, layer.inputs[0]), _quant(graph, layer.outputs[0])


def _sigmoid_values(graph, call):
    (in_scale, in_zp), _ = _io(graph)
    multiplier, left_shift, radius = _sigmoid_input_scaling(in_scale)
    return {"zp": in_zp, "radius": radius, "multiplier": multiplier, "shift": left_shift}


def _hard_swish_values(graph, call):
    (in_scale, in_zp), (out_scale, out_zp) = _io(graph)
    hires_scale = f32(1 / 128) * f32(in_scale)
    out_m, out_exp = _int16_multiplier(float(hires_scale / f32(out_scale)))
    relu_m, relu_exp = _int16_multiplier(float(hires_scale / (f32(3) / f32(32768))))
    return {"in_zp": in_zp, "out_zp": out_zp, "relu_m": relu_m, "relu_exp": relu_exp, "out_m": out_m,
            "out_exp": out_exp}


def _leaky_relu_values(graph, call):
    (in_scale, in_zp), (out_scale, out_zp) = _io(graph)
    alpha = f32(graph.layers[0].options["alpha"])
    identity = quantize_multiplier(float(f32(in_scale) / f32(out_scale)))
    negative = quantize_multiplier(float(f32(in_scale) * alpha / f32(out_scale)))
    return {"in_zp": in_zp, "out_zp": out_zp, "alpha_m": negative[0], "alpha_s": negative[1],
            "id_m": identity[0], "id_s": identity[1]}


def _relu_values(graph, call):
    (in_scale, in_zp), (out_scale, out_zp) = _io(graph)
    m, shift = quantize_multiplier(float(f32(in_scale)) / float(f32(out_scale)))
    return {"in_zp": in_zp, "out_zp": out_zp, "m": m, "s": shift, "lo": max(-128, out_zp), "hi": 127}


def _relu6_values(graph, call):
    (in_scale, in_zp), _ = _io(graph)
    return {"zero": in_zp, "six": int(tflite_round(float(f32(6) / f32(in_scale)))) + in_zp}


def _params(graph, call):
    """Cases whose parameters TFLite Micro's Prepare computes exactly as our lowering does."""
    values = {k: v for k, v in call.params.items() if isinstance(v, (int, np.integer))}
    if "act" in call.params:
        values |= {"act_min": call.params["act"]["min"], "act_max": call.params["act"]["max"]}
    return values


def _float_io(function: str, params_type: str):
    """The float helpers at a float-I/O model's ends (the generator's tc_quantize_f32_s8 and
    tc_dequantize_s8_f32 calls), parameters from the int8 side's quantization."""
    def lower(graph: Graph) -> KernelCall:
        layer = graph.layers[0]
        int8 = next(graph.tensors[i] for i in (*layer.inputs, *layer.outputs)
                    if graph.tensors[i].dtype == "int8")
        params = {"size": int8.size, "scale": repr(float(np.float32(int8.scale[0]))) + "f",
                  "zero_point": int(int8.zero_point[0])}
        return KernelCall(layer, function, params_type, params, inputs=[layer.inputs[0]],
                          outputs=[layer.outputs[0]], summary=f"{layer.op.lower()} {int8.size}")
    return lower


def _affine_values(graph, call):
    """QUANTIZE float32 -> int8 and DEQUANTIZE: the int8 tensor's scale (a double of the float32) and zero
    point."""
    layer = graph.layers[0]
    t = next(graph.tensors[i] for i in (*layer.inputs, *layer.outputs) if graph.tensors[i].dtype == "int8")
    return {"scale": repr(float(np.float32(t.scale[0]))), "zp": int(t.zero_point[0])}


def _requantize_values(graph, call):
    """quantize_common.cc's Prepare: the double ratio of the float32 scales."""
    (in_scale, in_zp), (out_scale, out_zp) = _io(graph)
    m, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    return {"m": m, "s": shift, "in_zp": in_zp, "out_zp": out_zp}


def _rsqrt_values(graph, call):
    """elementwise.cc's SetRsqrtOutputMultiplier: 1 / (float32 sqrt(input scale) x output scale) in double."""
    (in_scale, in_zp), (out_scale, out_zp) = _io(graph)
    m, shift = quantize_multiplier(1.0 / float(np.sqrt(f32(in_scale)) * f32(out_scale)))
    return {"m": m, "s": shift, "in_zp": in_zp, "out_zp": out_zp}


def _resize_nearest_values(graph, call):
    layer = graph.layers[0]
    return {"align": str(bool(layer.options["align_corners"])).lower(),
            "half": str(bool(layer.options["half_pixel_centers"])).lower()}


def _random(shape, seed):
    return tuple(int(v) for v in np.random.default_rng(seed).integers(-128, 128, int(np.prod(shape))))


UNARY = "shape0, in0, shape_out, out"
# ADD's, SUB's and SQUARED_DIFFERENCE's parameters, as the ArithmeticParams their Prepare fills; ACTIVATION
# the fused activation's clamp (ADD, SUB, MUL)
ARITHMETIC = """tflite::ArithmeticParams op = {{}};
    op.left_shift = {left_shift};
    op.input1_offset = {input1_offset};
    op.input1_multiplier = {input1_multiplier}; op.input1_shift = {input1_shift};
    op.input2_offset = {input2_offset};
    op.input2_multiplier = {input2_multiplier}; op.input2_shift = {input2_shift};
    op.output_offset = {output_offset};
    op.output_multiplier = {output_multiplier}; op.output_shift = {output_shift};
    """
ACTIVATION = """op.quantized_activation_min = {act_min}; op.quantized_activation_max = {act_max};
    """
CASES = [
    Case("ADD", "ADD", (Spec(SHAPE, 0.05, 4), Spec(SHAPE, 0.03, -7)), Spec(SHAPE, 0.07, -2),
         "tensorflow/lite/kernels/internal/reference/integer_ops/add.h",
         ARITHMETIC + ACTIVATION
         + "tflite::reference_integer_ops::Add(op, shape0, in0, shape1, in1, shape_out, out);", _params),
    Case("LOGISTIC", "LOGISTIC", (Spec(SHAPE, 0.1, 3),), Spec(SHAPE, 1 / 256, -128),
         "tensorflow/lite/kernels/internal/reference/integer_ops/logistic.h",
         "tflite::reference_integer_ops::Logistic({zp}, {radius}, {multiplier}, {shift}, n, in0, out);",
         _sigmoid_values),
    Case("TANH", "TANH", (Spec(SHAPE, 0.05, -5),), Spec(SHAPE, 1 / 128, 0),
         "tensorflow/lite/kernels/internal/reference/integer_ops/tanh.h",
         "tflite::reference_integer_ops::Tanh({zp}, {radius}, {multiplier}, {shift}, " + UNARY + ");",
         _sigmoid_values),
    Case("HARD_SWISH", "HARD_SWISH", (Spec(SHAPE, 0.04, 10),), Spec(SHAPE, 0.03, -20),
         "tensorflow/lite/kernels/internal/reference/hard_swish.h",
         """tflite::HardSwishParams op;
    op.input_zero_point = {in_zp}; op.output_zero_point = {out_zp};
    op.reluish_multiplier_fixedpoint_int16 = {relu_m}; op.reluish_multiplier_exponent = {relu_exp};
    op.output_multiplier_fixedpoint_int16 = {out_m}; op.output_multiplier_exponent = {out_exp};
    tflite::reference_ops::HardSwish<int8_t>(op, """ + UNARY + ");", _hard_swish_values),
    Case("LEAKY_RELU", "LEAKY_RELU", (Spec(SHAPE, 0.05, -3),), Spec(SHAPE, 0.04, -30),
         "tensorflow/lite/kernels/internal/reference/leaky_relu.h",
         """tflite::LeakyReluParams op = {{}};
    op.input_offset = {in_zp}; op.output_offset = {out_zp};
    op.output_multiplier_alpha = {alpha_m}; op.output_shift_alpha = {alpha_s};
    op.output_multiplier_identity = {id_m}; op.output_shift_identity = {id_s};
    tflite::reference_ops::QuantizeLeakyRelu(op, """ + UNARY + ");", _leaky_relu_values, {"alpha": 0.2}),
    Case("RELU", "RELU", (Spec(SHAPE, 0.05, -10),), Spec(SHAPE, 0.03, -128),
         "tensorflow/lite/micro/kernels/activations.h",
         """tflite::ReluOpData op = {{}};
    op.params.input_offset = {in_zp}; op.params.output_offset = {out_zp};
    op.params.output_multiplier = {m}; op.params.output_shift = {s};
    op.params.quantized_activation_min = {lo}; op.params.quantized_activation_max = {hi};
    tflite::ReluQuantized<int8_t>(op, shape0, shape_out, in0, out);""", _relu_values),
    Case("RELU6", "RELU6", (Spec(SHAPE, 0.03, -128),), Spec(SHAPE, 0.03, -128),
         "tensorflow/lite/micro/kernels/activations.h",
         "tflite::Relu6Quantized<int8_t>({zero}, {six}, shape0, in0, shape_out, out);", _relu6_values),
    Case("PRELU", "PRELU", (Spec(SHAPE, 0.05, 5), Spec((1, 1, SHAPE[3]), 0.01, 0, data=_random((8,), 7))),
         Spec(SHAPE, 0.04, -10), "tensorflow/lite/kernels/internal/reference/prelu.h",
         """tflite::PreluParams op;
    op.input_offset = {input_offset}; op.alpha_offset = {alpha_offset}; op.output_offset = {output_offset};
    op.output_multiplier_1 = {identity_multiplier}; op.output_shift_1 = {identity_shift};
    op.output_multiplier_2 = {alpha_multiplier}; op.output_shift_2 = {alpha_shift};
    tflite::reference_ops::BroadcastPrelu4DSlow(op, shape0, in0, shape1, const1, shape_out, out);""",
         _params),
    Case("RESIZE_BILINEAR", "RESIZE_BILINEAR",
         (Spec((1, 8, 8, 4), 0.05, 3), Spec((2,), dtype="int32", data=(16, 16))),
         Spec((1, 16, 16, 4), 0.05, 3), "tensorflow/lite/kernels/internal/reference/resize_bilinear.h",
         """tflite::ResizeBilinearParams op = {{}};
    op.align_corners = false; op.half_pixel_centers = true;
    tflite::reference_ops::ResizeBilinearInteger(op, shape0, in0, shape1, const1, shape_out, out);""",
         options={"align_corners": False, "half_pixel_centers": True}),
]

# the binary operators: TFLite Micro's Eval asks ProcessBroadcastShapes, then runs the flat loop or the
# 4-D broadcast one; CHANNEL is the per-channel broadcast (an 8-vector against 1x8x16x8)
CHANNEL = (1, 1, 1, SHAPE[3])
MUL_PARAMS = """tflite::ArithmeticParams op = {{}};
    op.input1_offset = {input1_offset}; op.input2_offset = {input2_offset};
    op.output_offset = {output_offset};
    op.output_multiplier = {output_multiplier}; op.output_shift = {output_shift};
    """ + ACTIVATION
BROADCAST = "tflite::reference_ops::ProcessBroadcastShapes(shape0, shape1, &op);\n    "
MINMAX = "tflite::reference_ops::MaximumMinimumBroadcastSlow(shape0, in0, shape1, in1, shape_out, out, "
SQUARED_DIFFERENCE = ARITHMETIC + """op.quantized_activation_min = -128; op.quantized_activation_max = 127;
    """
PROCESS_BROADCAST = "tensorflow/lite/kernels/internal/reference/process_broadcast_shapes.h"
SD_SOURCE = "tensorflow/lite/micro/kernels/squared_difference.cc"


def _binary(name, op, second, header, body, values=_params):
    return Case(name, op, (Spec(SHAPE, 0.05, 4), Spec(second, 0.03, -7)), Spec(SHAPE, 0.07, -2),
                (header, PROCESS_BROADCAST), body, values)


def _minmax(name, op, second):
    # the converter gives both inputs and the output one quantization
    return Case(name, op, (Spec(SHAPE, 0.05, 4), Spec(second, 0.05, 4)), Spec(SHAPE, 0.05, 4),
                "tensorflow/lite/micro/kernels/maximum_minimum.h",
                MINMAX + f"tflite::{op.capitalize()}Op::op<int8_t>);")


MUL_H = "tensorflow/lite/kernels/internal/reference/integer_ops/mul.h"
SUB_H = "tensorflow/lite/kernels/internal/reference/sub.h"
CASES += [
    _binary("MUL", "MUL", SHAPE, MUL_H,
            MUL_PARAMS + BROADCAST +
            "tflite::reference_integer_ops::Mul(op, shape0, in0, shape1, in1, shape_out, out);"),
    _binary("MUL per-channel", "MUL", CHANNEL, MUL_H, MUL_PARAMS + BROADCAST +
            "tflite::reference_integer_ops::BroadcastMul4DSlow(op, shape0, in0, shape1, in1, shape_out, "
            "out);"),
    _binary("SUB", "SUB", SHAPE, SUB_H, ARITHMETIC + ACTIVATION + BROADCAST +
            "tflite::reference_ops::Sub(op, shape0, in0, shape1, in1, shape_out, out);"),
    _binary("SUB per-channel", "SUB", CHANNEL, SUB_H, ARITHMETIC + ACTIVATION + BROADCAST +
            "tflite::reference_ops::BroadcastQuantSubSlow(op, shape0, in0, shape1, in1, shape_out, out);"),
    _binary("SQUARED_DIFFERENCE", "SQUARED_DIFFERENCE", SHAPE, SD_SOURCE, SQUARED_DIFFERENCE +
            "tflite::reference_integer_ops::ElementWise(n, op, in0, in1, out, "
            "tflite::reference_integer_ops::CheckArithmeticParams, tflite::SquaredDifference<int8_t>);"),
    _binary("SQUARED_DIFFERENCE per-channel", "SQUARED_DIFFERENCE", CHANNEL, SD_SOURCE, SQUARED_DIFFERENCE +
            "tflite::reference_integer_ops::BroadcastBinaryFunction4DSlow(op, shape0, in0, shape1, in1, "
            "shape_out, out, tflite::reference_integer_ops::CheckArithmeticParams, "
            "tflite::SquaredDifference<int8_t>);"),
    _minmax("MINIMUM", "MINIMUM", SHAPE),
    _minmax("MINIMUM per-channel", "MINIMUM", CHANNEL),
    _minmax("MAXIMUM", "MAXIMUM", SHAPE),
    _minmax("MAXIMUM per-channel", "MAXIMUM", CHANNEL),
    Case("QUANTIZE float->int8", "QUANTIZE", (Spec(SHAPE, None, dtype="float32"),), Spec(SHAPE, 0.05, 3),
         "tensorflow/lite/kernels/internal/reference/quantize.h",
         """tflite::QuantizationParams op;
    op.zero_point = {zp}; op.scale = {scale};
    tflite::reference_ops::AffineQuantize(op, """ + UNARY + ");", _affine_values,
         lower=_float_io("tc_quantize_f32_s8", "tc_quantize_f32_params")),
    Case("DEQUANTIZE int8->float", "DEQUANTIZE", (Spec(SHAPE, 0.05, 3),), Spec(SHAPE, None, dtype="float32"),
         "tensorflow/lite/kernels/internal/reference/dequantize.h",
         """tflite::DequantizationParams op;
    op.zero_point = {zp}; op.scale = {scale};
    tflite::reference_ops::Dequantize(op, """ + UNARY + ");", _affine_values,
         lower=_float_io("tc_dequantize_s8_f32", "tc_dequantize_f32_params")),
    Case("QUANTIZE int8->int8", "QUANTIZE", (Spec(SHAPE, 0.05, 3),), Spec(SHAPE, 0.08, -9),
         "tensorflow/lite/kernels/internal/reference/requantize.h",
         "tflite::reference_ops::Requantize(in0, n, {m}, {s}, {in_zp}, {out_zp}, out);", _requantize_values),
    # TFLite Micro stops on an input below the zero point (a negative number): the zero point is -128
    Case("RSQRT", "RSQRT", (Spec(SHAPE, 0.02, -128),), Spec(SHAPE, 0.05, 0),
         "tensorflow/lite/micro/kernels/elementwise.cc",
         """tflite::OpDataAbsRsqrt op = {{}};
    op.multiplier = {m}; op.shift = {s}; op.input_offset = {in_zp}; op.output_offset = {out_zp};
    op.needs_rescale = true; op.input_type = kTfLiteInt8;
    TfLiteNode node = {{}};
    node.user_data = &op;
    for (int i = 0; i < n; ++i) {{   // EvalImplQuantized's loop
        if (tflite::validate_input_func<int8_t>(nullptr, &node, in0[i]) != kTfLiteOk) return 1;
        out[i] = tflite::RsqrtEvalQuantized<int8_t>(nullptr, &node, in0[i]);
    }}""", _rsqrt_values),
    Case("RESIZE_NEAREST_NEIGHBOR", "RESIZE_NEAREST_NEIGHBOR",
         (Spec((1, 8, 8, 4), 0.05, 3), Spec((2,), dtype="int32", data=(16, 16))),
         Spec((1, 16, 16, 4), 0.05, 3),
         "tensorflow/lite/kernels/internal/reference/resize_nearest_neighbor.h",
         """tflite::ResizeNearestNeighborParams op = {{}};
    op.align_corners = {align}; op.half_pixel_centers = {half};
    tflite::reference_ops::ResizeNearestNeighbor(op, shape0, in0, shape1, const1, shape_out, out);""",
         _resize_nearest_values, options={"align_corners": False, "half_pixel_centers": True}),
]


# ---- one firmware per core with every case

@dataclass
class Built:
    case: Case
    graph: Graph
    call: KernelCall
    inputs: dict[int, np.ndarray]        # layer input position -> the values fed (constants included)

    @property
    def output(self) -> Tensor:
        return self.graph.tensors[self.graph.layers[0].outputs[0]]


def _tensor(index: int, spec: Spec) -> Tensor:
    quantized = spec.scale is not None
    data = None if spec.data is None else np.array(spec.data, np.int64).reshape(spec.shape).astype(spec.dtype)
    return Tensor(index, f"t{index}", tuple(spec.shape), spec.dtype,
                  np.array([spec.scale] if quantized else [], np.float32),
                  np.array([spec.zero_point] if quantized else [], np.int64), data=data)


def _feed(tensor: Tensor, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if tensor.data is not None:
        return tensor.data.reshape(-1)
    if tensor.dtype == "float32":
        return rng.uniform(-8, 8, tensor.size).astype(np.float32)
    info = np.iinfo(tensor.dtype)
    return rng.integers(info.min, info.max + 1, tensor.size).astype(tensor.dtype)


def lower_case(case: Case, index: int) -> Built:
    """The case as a one-layer graph, lowered by tinycompress's own lowering."""
    specs = list(case.inputs) + [case.output]
    tensors = [_tensor(i, spec) for i, spec in enumerate(specs)]
    count = len(case.inputs)
    layer = Layer(f"case{index}", case.op, list(range(count)), [count], dict(case.options))
    graph = Graph(f"bench_{case.name.lower()}", tensors, [layer],
                  [i for i, t in enumerate(tensors[:-1]) if not t.is_constant], [len(case.inputs)])
    call = case.lower(graph) if case.lower else lower_layer(layer, graph)
    inputs = {k: _feed(tensors[k], 1000 * index + k) for k in range(len(case.inputs))}
    return Built(case, graph, call, inputs)


def _array(name: str, values: np.ndarray, ctype: str, static: bool = True) -> str:
    if ctype == "float":
        body = ", ".join(repr(float(v)) + "f" for v in values)
    else:
        body = ", ".join(str(int(v)) for v in values)
    storage = "static const" if static else "const"
    return f"{storage} {ctype} {name}[{values.size}] __attribute__((aligned(16))) = {{{body}}};"


def ours_source(built: list[Built], with_tflm: bool) -> str:
    """bench_ours.c: the inputs, and every case's kernel call as the generator writes it."""
    lines = ['#include <stddef.h>', '#include <stdint.h>', '', '#include "bench_cases.h"',
             '#include "tc_dsp.h"', '#include "tc_kernels.h"', '']
    for i, b in enumerate(built):
        layer, call = b.graph.layers[0], b.call
        lines.append(f"/* {b.case.name}: {call.summary} */")
        for k, values in b.inputs.items():
            lines.append(_array(f"bench_{i}_in{k}", values, C_TYPES[b.graph.tensors[k].dtype], static=False))
        for a in call.arrays:
            if a.dsp_values is not None:
                lines += ["#if TC_DSP", f"static const {a.ctype} {a.name}[] __attribute__((aligned(4))) = "
                          f"{{\n{c_rows(a, dsp=True)}\n}};", "#else"]
            lines.append(f"static const {a.ctype} {a.name}[] __attribute__((aligned(4))) = "
                         f"{{\n{c_rows(a)}\n}};")
            if a.dsp_values is not None:
                lines.append("#endif")
        lines.append(f"static const {call.params_type} bench_{i}_params = {c_init(call.params)};")
        args = [f"(const void *)bench_{i}_in{layer.inputs.index(t)}" for t in call.inputs] + ["out"]
        lines += [f"static int32_t bench_{i}_ours(void *out)",
                  f"{{\n    return (int32_t){call.function}(&bench_{i}_params, {', '.join(args)});\n}}",
                  f"int32_t bench_{i}_tflm(void *out);" if with_tflm else "", ""]
    lines.append("const bench_case bench_cases[] = {")
    for i, b in enumerate(built):
        tflm = f"bench_{i}_tflm" if with_tflm else "NULL"
        lines.append(f"    {{{b.output.nbytes}, bench_{i}_ours, {tflm}}},  /* {b.case.name} */")
    lines += ["};", f"const uint32_t bench_case_count = {len(built)};", "",
              "int32_t bench_empty(void *out)\n{\n    (void)out;\n    return 0;\n}", ""]
    return "\n".join(lines)


def _shape(name: str, shape) -> str:
    """A RuntimeShape as TFLite Micro's GetTensorShape makes it, from the tensor's dims."""
    return (f"static const int32_t {name}_dims[] = {{{', '.join(map(str, shape))}}}; "
            f"const tflite::RuntimeShape {name}({len(shape)}, {name}_dims);")


def tflm_source(built: list[Built]) -> str:
    """bench_tflm.cc: every case through TFLite Micro's reference kernel."""
    headers = sorted({h for b in built for h in ((b.case.header,) if isinstance(b.case.header, str)
                                                 else b.case.header)})
    lines = [f'#include "{h}"' for h in headers] + ['', '#include <stdint.h>', '']
    for i, b in enumerate(built):
        layer = b.graph.layers[0]
        lines.append(f"extern \"C\" int32_t bench_{i}_tflm(void *out_);  /* {b.case.name} */")
        body = []
        names = {}
        for k, t in enumerate(layer.inputs):
            tensor = b.graph.tensors[t]
            ctype = C_TYPES[tensor.dtype]
            name = f"const{k}" if tensor.is_constant else f"in{k}"
            lines.append(f"extern \"C\" const {ctype} bench_{i}_in{k}[];")
            body.append(f"const {ctype} *{name} = bench_{i}_in{k};")
            body.append(_shape(f"shape{k}", tensor.shape))
            names[k] = name
        out = b.output
        body.append(f"{C_TYPES[out.dtype]} *out = static_cast<{C_TYPES[out.dtype]} *>(out_);")
        body.append(_shape("shape_out", out.shape))
        body.append(f"const int n = {out.size};")
        unused = " ".join(f"(void){v}; (void)shape{k};" for k, v in names.items())
        body.append(f"(void)n; (void)shape_out; {unused}")
        body.append(b.case.tflm.format(**b.case.values(b.graph, b.call)))
        body.append("return 0;")
        lines += [f"int32_t bench_{i}_tflm(void *out_)", "{", *("    " + x for x in body), "}", ""]
    return "\n".join(lines)


def tflm_paths() -> tuple[Path, Path] | None:
    """(TFLite Micro checkout, gemmlowp) from the environment; None where TINYCOMPRESS_TFLM is not set."""
    root = os.environ.get("TINYCOMPRESS_TFLM")
    if not root:
        return None
    tflm = Path(root).expanduser().resolve()
    if not (tflm / "tensorflow/lite/kernels/internal/common.h").is_file():
        raise TinyCompressError(f"TINYCOMPRESS_TFLM={root} is not a TFLite Micro checkout "
                                "(no tensorflow/lite/kernels/internal/common.h)")
    gemm = os.environ.get("TINYCOMPRESS_GEMMLOWP")
    gemmlowp = Path(gemm).expanduser().resolve() if gemm else tflm / DOWNLOADS / "gemmlowp"
    if not (gemmlowp / "fixedpoint/fixedpoint.h").is_file():
        raise TinyCompressError(f"no gemmlowp at {gemmlowp} (TFLite Micro's headers include "
                                "fixedpoint/fixedpoint.h): set TINYCOMPRESS_GEMMLOWP=/path/to/gemmlowp")
    return tflm, gemmlowp


def _commit(checkout: Path) -> str | None:
    """The TFLite Micro checkout's commit, where it is a git work tree."""
    proc = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _run(command: list[str], what: str) -> None:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.splitlines() if "collect2" not in l]
        first = next((l for l in lines if "error" in l.lower() or "undefined reference" in l),
                     proc.stderr.strip()[-300:])
        raise TinyCompressError(f"building {what} failed: {first.strip()}")


def build_firmware(built: list[Built], board: Board, work: Path, tflm: tuple[Path, Path] | None) -> Path:
    fw = data_dir("firmware")
    memory = _environment().get_template("memory.ld.j2")
    (work / "memory.ld").write_text(memory.render(board=board, stack_size=board.stack_size, banner=""))
    (work / "bench_ours.c").write_text(ours_source(built, tflm is not None))
    max_out = max(b.output.nbytes for b in built)
    target = [*board.cflags, "-ffunction-sections", "-fdata-sections", f"-I{HERE}"]
    # as the generated project's Makefile builds our kernels
    c_flags = [*target, "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{fw / 'include'}",
               f"-I{fw / 'runtime'}"]
    objects = []
    kernels = sorted({fw / "kernels" / f"{b.call.function}.c" for b in built})
    runtime = [fw / "runtime" / n for n in TARGET_SOURCES]
    sources = [HERE / "harness.c", work / "bench_ours.c", *kernels, *runtime]
    for source in sources:
        obj = work / (source.stem + ".o")
        _run(["arm-none-eabi-gcc", *c_flags, f"-DBENCH_MAX_OUTPUT_BYTES={max_out}", "-c", str(source),
              "-o", str(obj)], source.name)
        objects.append(str(obj))
    if tflm is not None:
        root, gemmlowp = tflm
        (work / "bench_tflm.cc").write_text(tflm_source(built))
        # TFLite Micro's kernel flags (its Makefile, BUILD_TYPE=release: -O2 for kernels).
        # TFLite Micro's flags (its Makefile with BUILD_TYPE=release): kernels at -O2, the shared sources
        # such as kernels/internal/common.cc (MultiplyByQuantizedMultiplier) at -Os.
        cxx = ["arm-none-eabi-g++", *target, "-std=c++17", "-fno-rtti", "-fno-exceptions",
               "-fno-threadsafe-statics", "-fno-unwind-tables", "-fno-asynchronous-unwind-tables",
               "-DTF_LITE_STATIC_MEMORY", "-DNDEBUG", "-DTF_LITE_STRIP_ERROR_STRINGS", f"-I{root}",
               f"-I{gemmlowp}", f"-I{HERE / 'stubs'}",
               f"-I{root / DOWNLOADS / 'flatbuffers/include'}"]   # for a case that includes a kernel's .cc
        for source, level in ((work / "bench_tflm.cc", "-O2"), (root / TFLM_COMMON, "-Os")):
            obj = work / (source.stem + "_tflm.o")
            _run([*cxx, level, "-c", str(source), "-o", str(obj)], f"TFLite Micro's {source.name}")
            objects.append(str(obj))
    elf = work / "elementwise.elf"
    # C++ objects (TFLite Micro's side) link with g++ and libstdc++; ours alone are C
    linker = "arm-none-eabi-g++" if tflm is not None else "arm-none-eabi-gcc"
    _run([linker, *board.cflags, *objects, "-nostartfiles", "-Wl,--gc-sections",
          f"-T{fw / 'linker' / 'cortex_m.ld'}", f"-L{work}", f"-L{fw / 'linker'}", "--specs=nano.specs",
          "--specs=nosys.specs", "-o", str(elf)], "the benchmark firmware")
    return elf


def run_core(core: str, built: list[Built], tflm: tuple[Path, Path] | None) -> list[dict]:
    """Every case on one core: instructions per element, ours and TFLite Micro's, and whether they agree."""
    board = load_board(CORES[core])
    with tempfile.TemporaryDirectory(prefix="tinycompress-elementwise-") as tmp:
        work = Path(tmp)
        elf = build_firmware(built, board, work, tflm)
        proc = subprocess.run(qemu_command(board, elf), cwd=work, capture_output=True, text=True, timeout=600)
        check_exit(proc.returncode, (proc.stdout + proc.stderr).strip(), f"in QEMU ({board.qemu_machine})")
        ticks = np.frombuffer((work / "ticks.bin").read_bytes(), np.uint64).reshape(-1, 4).astype(np.int64)
        ours_bytes, tflm_bytes = (work / "ours.bin").read_bytes(), (work / "tflm.bin").read_bytes()
    rows, offset = [], 0
    for b, (empty, ours, ref, status) in zip(built, ticks):
        if status != 0:
            raise TinyCompressError(f"{b.call.function} returned status {status} on the {b.case.name} case")
        size = b.output.nbytes
        mine, theirs = ours_bytes[offset:offset + size], tflm_bytes[offset:offset + size]
        offset += size
        elements = b.output.size
        per = lambda t: round(float(board.instructions(t - empty)) / elements, 2)  # noqa: E731
        row = {"op": b.case.name, "core": core, "board": board.name, "elements": elements,
               "ours": per(ours), "output": np.frombuffer(mine, b.output.dtype)}
        if tflm is not None:
            row |= {"tflm": per(ref), "same_bytes": mine == theirs}
            if mine != theirs:
                diff = np.flatnonzero(np.frombuffer(mine, np.uint8) != np.frombuffer(theirs, np.uint8))
                row["first_difference"] = int(diff[0])
        rows.append(row)
    return rows


def table(rows: list[dict], markdown: bool) -> str:
    cores = list(dict.fromkeys(r["core"] for r in rows))
    ops = list(dict.fromkeys(r["op"] for r in rows))
    by = {(r["op"], r["core"]): r for r in rows}
    has_tflm = any("tflm" in r for r in rows)

    def cell(r):
        if not has_tflm:
            return f"{r['ours']:.2f}"
        flag = "" if r["same_bytes"] else " DIFFER"
        return f"{r['ours']:.2f} / {r['tflm']:.2f}{flag}"
    head = ["op"] + [c + (" ours / TFLM" if has_tflm else " ours") for c in cores]
    lines = [[op] + [cell(by[(op, c)]) if (op, c) in by else "" for c in cores] for op in ops]
    if markdown:
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                         ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Where the results go (default benchmarks/elementwise.json;"
                                                  " with --ours-only, nowhere unless given).")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    parser.add_argument("--ops", nargs="*", default=[c.name for c in CASES])
    parser.add_argument("--cores", nargs="*", default=list(CORES))
    parser.add_argument("--ours-only", action="store_true",
                        help="Measure our kernels alone (no TFLite Micro; no JSON unless --json).")
    args = parser.parse_args(argv)
    names = {c.name for c in CASES}
    unknown = [o for o in args.ops if o not in names] + [c for c in args.cores if c not in CORES]
    if unknown:
        print(f"elementwise.py: unknown op or core {unknown[0]!r}; ops: {', '.join(c.name for c in CASES)}; "
              f"cores: {', '.join(CORES)}", file=sys.stderr)
        return 2
    try:
        tflm = None if args.ours_only else tflm_paths()
        if tflm is None and not args.ours_only:
            print(f"elementwise.py: {NEEDS}", file=sys.stderr)
            return 2
        built = [lower_case(c, i) for i, c in enumerate(CASES) if c.name in args.ops]
        rows = []
        for core in args.cores:
            rows += run_core(core, built, tflm)
            print(f"{core}: done", file=sys.stderr, flush=True)
    except TinyCompressError as exc:
        print(f"elementwise.py: {exc}", file=sys.stderr)
        return 1
    if tflm is not None or args.json:
        results = [{k: v for k, v in r.items() if k != "output"} for r in rows]
        text = json.dumps({"shape": list(SHAPE), "tflm_commit": _commit(tflm[0]) if tflm else None,
                           "tflm_flags": TFLM_FLAGS, "results": results}, indent=2)
        (args.json or Path(__file__).resolve().parent / "elementwise.json").write_text(text + "\n")
    print(table(rows, args.markdown))
    bad = [r for r in rows if r.get("same_bytes") is False]
    for r in bad:
        print(f"{r['op']} on {r['core']}: our output differs from TFLite Micro's at byte "
              f"{r['first_difference']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
