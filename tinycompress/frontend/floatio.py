"""Float input and output: an int8 model wrapped in QUANTIZE and DEQUANTIZE is an int8 model.

The TFLite converter's default export takes float32 in and gives float32 out: a QUANTIZE (float32 ->
int8) reads the graph input and a DEQUANTIZE (int8 -> float32) writes the graph output, with full int8
in between. `fold_float_io` takes those boundary ops off at load time: the graph reads and writes the
int8 tensors (whose scale and zero point are the QUANTIZE's and DEQUANTIZE's parameters), its `source`
becomes the same flatbuffer with those ops removed (what the int8 tools and TFLite Micro run), and
`graph.float_io` keeps the file as given, for the float helpers of the generated API and --verify.
A DEQUANTIZE whose float result feeds only QUANTIZEs becomes one int8 -> int8 layer per QUANTIZE
(ops/quantize.py: one table). Float tensors anywhere else are refused, naming the layer.

The arithmetic is TFLite Micro's (reference_ops::AffineQuantize and Dequantize):
  quantize:   q = clamp(int32(roundf(x / scale)) + zero_point), a float32 division, halves away from 0;
  dequantize: x = float(double(scale) * (q - zero_point)), which equals the float32 product
              scale * float(q - zero_point): both factors are exact and the double product of a 24-bit
              significand by a 9-bit integer is exact, so rounding it to float is one correct rounding.
The int32 cast of a quotient past int32 (or NaN) is undefined in C++: Arm builds saturate it (NaN to 0),
TFLite Micro's x86 build gives INT32_MIN. tinycompress saturates, as the Arm builds do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TinyCompressError
from ..ir import Graph, Layer

FLOAT = "float32"
# |x / scale| beyond this saturates whatever the rounding; the reference interpreter (x86) is given inputs
# clipped here so its undefined int32 cast never sees a quotient past int32 (see the module's docstring).
SATURATED_STEPS = float(2 ** 24)


@dataclass
class FloatIO:
    """What the model file takes and gives in float32, folded off by fold_float_io."""
    source: bytes          # the .tflite as given: TFLite Micro runs it for --verify
    input: bool            # its input was float32, quantized by a QUANTIZE (the int8 input's parameters)
    output: bool           # its output was float32, from a DEQUANTIZE (the int8 output's parameters)


def _consumers(graph: Graph) -> dict[int, list[Layer]]:
    readers: dict[int, list[Layer]] = {}
    for layer in graph.layers:
        for i in layer.inputs:
            if i >= 0:
                readers.setdefault(i, []).append(layer)
    return readers


def _activation(graph: Graph, index: int) -> bool:
    return index >= 0 and not graph.tensors[index].is_constant


def is_float_model(graph: Graph) -> bool:
    """A float model for TensorFlow's calibrator: float32 input and no int8 activation anywhere."""
    if graph.input_tensor().dtype != FLOAT:
        return False
    return not any(graph.tensors[i].dtype == "int8" for layer in graph.layers
                   for i in layer.inputs + layer.outputs if _activation(graph, i))


def fold_float_io(graph: Graph) -> Graph:
    """The int8 graph inside a float-I/O model (the graph itself when it has no float tensor)."""
    if not any(graph.tensors[i].dtype == FLOAT for layer in graph.layers
               for i in layer.inputs + layer.outputs if _activation(graph, i)):
        return graph
    readers = _consumers(graph)
    removed: set[int] = set()
    inputs, outputs = list(graph.inputs), list(graph.outputs)
    for layer in graph.layers:
        src, dst = layer.inputs[0] if layer.inputs else -1, layer.outputs[0]
        if src < 0:
            continue
        s, d = graph.tensors[src], graph.tensors[dst]
        if (layer.op == "QUANTIZE" and s.dtype == FLOAT and d.dtype == "int8" and src in inputs
                and len(readers.get(src, [])) == 1 and src not in outputs):
            inputs[inputs.index(src)] = dst
            removed.add(id(layer))
        elif (layer.op == "DEQUANTIZE" and s.dtype == "int8" and d.dtype == FLOAT and dst in outputs
              and not readers.get(dst)):
            outputs = [src if o == dst else o for o in outputs]
            removed.add(id(layer))
    layers = []
    for layer in graph.layers:
        if id(layer) in removed:
            continue
        if layer.op == "QUANTIZE" and graph.tensors[layer.inputs[0]].dtype == FLOAT:
            producer = next((p for p in graph.layers if layer.inputs[0] in p.outputs), None)
            if (producer is not None and producer.op == "DEQUANTIZE"
                    and all(r.op == "QUANTIZE" for r in readers[layer.inputs[0]])
                    and layer.inputs[0] not in outputs
                    and graph.tensors[producer.inputs[0]].dtype == "int8"):
                # DEQUANTIZE -> float -> QUANTIZE: one int8 -> int8 layer, the DEQUANTIZE's arithmetic then
                # the QUANTIZE's (ops/quantize.py), where the QUANTIZE was
                layers.append(Layer(layer.name, "DEQUANTIZE", [producer.inputs[0]], list(layer.outputs),
                                    {"folded": producer.name}))
                continue
        reading = readers.get(layer.outputs[0], [])
        if layer.op == "DEQUANTIZE" and reading and all(r.op == "QUANTIZE" for r in reading) \
                and layer.outputs[0] not in outputs and graph.tensors[layer.inputs[0]].dtype == "int8":
            continue   # folded into each QUANTIZE reading it, above
        layers.append(layer)
    for layer in layers:
        for i in layer.inputs + layer.outputs:
            if _activation(graph, i) and graph.tensors[i].dtype == FLOAT:
                t, verb = graph.tensors[i], "writes" if i in layer.outputs else "reads"
                raise TinyCompressError(
                    f"layer {layer.name} ({layer.op}) {verb} the float32 tensor {t.name or t.index}; float "
                    "tensors are supported only at the model's input (QUANTIZE) and output (DEQUANTIZE) of "
                    "an int8 model: convert with full int8 quantization")
    float_in = inputs[0] != graph.inputs[0]
    float_out = outputs[0] != graph.outputs[0]
    # the flatbuffer's own operator indices: layers folded at load (fold.py) are not in graph.layers
    dropped = {layer.operator for layer in graph.layers if id(layer) in removed}
    source = _int8_source(graph.source, dropped, inputs, outputs) if graph.source else b""
    folded = Graph(name=graph.name, tensors=graph.tensors, layers=layers, inputs=inputs, outputs=outputs,
                   source=source, folded=graph.folded)
    folded.float_io = FloatIO(graph.source, float_in, float_out) if (float_in or float_out) else None
    return folded


def _int8_source(data: bytes, dropped: set[int], inputs: list[int], outputs: list[int]) -> bytes:
    """The flatbuffer without the boundary QUANTIZE/DEQUANTIZE operators, reading and writing int8."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sub = model.subgraphs[0]
    renamed = {old: new for old, new in zip(list(sub.inputs) + list(sub.outputs), inputs + outputs)}
    sub.operators = [op for i, op in enumerate(sub.operators) if i not in dropped]
    sub.inputs, sub.outputs = list(inputs), list(outputs)
    for signature in model.signatureDefs or []:
        for entry in (signature.inputs or []) + (signature.outputs or []):
            entry.tensorIndex = renamed.get(entry.tensorIndex, entry.tensorIndex)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# ---- TFLite Micro's arithmetic on the host ---------------------------------------------------------

def quantize(x, scale: float, zero_point: int) -> np.ndarray:
    """AffineQuantize to int8: float32 division, std::round (halves away from zero), saturating cast."""
    with np.errstate(over="ignore", invalid="ignore"):   # a quotient past float32 is infinite, as in C
        # the float32 quotient, exactly
        r = (np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64)
        rounded = np.sign(r) * np.floor(np.abs(r) + 0.5)   # exact in double for a float32 r below 2^29
        rounded = np.where(np.isnan(r), 0.0, np.clip(rounded, -2.0 ** 31, 2.0 ** 31 - 1))
    return np.clip(rounded + zero_point, -128, 127).astype(np.int8)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """Dequantize from int8: scale * (q - zero_point), one rounding to float32."""
    return np.float32(scale) * (np.asarray(q, np.int32) - zero_point).astype(np.float32)


def reference_inputs(x: np.ndarray, scale: float) -> np.ndarray:
    """Float inputs for TFLite Micro's x86 interpreter: clipped where the quotient saturates anyway."""
    limit = np.float32(SATURATED_STEPS) * np.float32(scale)
    return np.clip(np.asarray(x, np.float32), -limit, limit)
