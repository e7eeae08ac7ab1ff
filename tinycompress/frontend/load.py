"""Stage 1, load: read a model file into the graph IR.

A .tflite is parsed straight from its flatbuffer with the schema module that
tflite-micro ships, so compiling a .tflite needs no TensorFlow. A .keras model
is first converted to a full-int8 .tflite by the quantize stage.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from . import fold, verify
from ..errors import EXIT_TOOL_MISSING, TinyCompressError, pip_hint
from ..ir import Graph, Layer, Tensor

try:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
except ImportError:  # pragma: no cover - exercised only without the dependency
    schema = None

_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool",
           7: "int16", 9: "int8", 10: "float64", 17: "int4"}


def _enum_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def read_tflite(data: bytes, name: str = "model") -> Graph:
    """Parse a .tflite flatbuffer (first subgraph) into a Graph."""
    if schema is None:
        raise TinyCompressError("the tflite-micro package is missing; install it with: "
                                + pip_hint("tflite-micro"), EXIT_TOOL_MISSING)
    verify.check_identifier(data[:8], name)
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # the generated parser raises anything on a corrupt buffer
        raise TinyCompressError(f"{name} is a corrupt TFLite flatbuffer ({type(exc).__name__}); "
                                "re-export the model") from None
    if not model.subgraphs:
        raise TinyCompressError(f"{name} has no subgraph")
    if len(model.subgraphs) > 1:
        raise TinyCompressError(f"{name} has {len(model.subgraphs)} subgraphs; control flow is not supported")

    verify.check_flatbuffer(model, data, name)
    sub = model.subgraphs[0]
    tensors = [_tensor(i, t, model.buffers, data) for i, t in enumerate(sub.tensors or [])]
    signatures = {i: tuple(int(d) for d in t.shapeSignature) for i, t in enumerate(sub.tensors or [])
                  if t.shapeSignature is not None and any(int(d) < 0 for d in t.shapeSignature)}
    op_names = _enum_names(schema.BuiltinOperator)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes or []]
    layers = []
    for op in sub.operators or []:
        code = codes[op.opcodeIndex]
        op_name = op_names.get(code, f"OPCODE_{code}")
        if op_name == "CUSTOM":
            custom = model.operatorCodes[op.opcodeIndex].customCode or b""
            op_name = "CUSTOM:" + custom.decode(errors="replace")
        verify.check_options(op_name, op.builtinOptions, len(layers))
        layers.append(Layer(name="", op=op_name, inputs=[int(i) for i in op.inputs],
                            outputs=[int(i) for i in op.outputs], options=_options(op), operator=len(layers)))
    _name_layers(layers, tensors)
    graph = Graph(name=name, tensors=tensors, layers=layers, inputs=[int(i) for i in sub.inputs],
                  outputs=[int(i) for i in sub.outputs], source=bytes(data))
    # Shape arithmetic (dynamic-batch exports) becomes constants; the layers left are named afresh.
    graph.folded = fold.fold_constants(graph, signatures)
    if graph.folded:
        _name_layers(graph.layers, tensors)
    fold.refuse_data_dependent_shapes(graph)
    verify.verify_graph(graph)
    return graph


def read_tflite_file(path: Path) -> Graph:
    path = Path(path)
    if not path.is_file():
        raise TinyCompressError(f"model file {path} does not exist")
    verify.check_file(path)   # identifier and size before the whole file is read
    return read_tflite(path.read_bytes(), name=path.stem)


def open_npz(path: Path, what: str):
    """An .npz of arrays (inputs, labels, calibration samples), or a one-line error (see data.py)."""
    from .data import NpzData
    return NpzData(path, what)


def _tensor(index: int, t, buffers, data: bytes) -> Tensor:
    if t.type not in _DTYPES:
        raise TinyCompressError(f"tensor {index} has TFLite type {t.type}, which is not supported")
    dtype = _DTYPES[t.type]
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    name = t.name.decode(errors="replace") if isinstance(t.name, bytes) else str(t.name or "")
    verify.check_shape(index, name, shape, dtype)
    q = t.quantization
    scale = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float32)
    zero_point = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], np.int64)
    const = None
    buf = buffers[t.buffer] if buffers and t.buffer < len(buffers) else None
    if buf is not None:
        raw = None
        if buf.data is not None and len(buf.data):
            raw = np.asarray(buf.data, np.uint8).tobytes()
        elif buf.offset and buf.size:  # large models keep buffers after the flatbuffer
            raw = data[buf.offset:buf.offset + buf.size]
        if raw is not None:
            expected = verify.packed_bytes(int(np.prod(shape, dtype=np.int64)), dtype)
            if len(raw) != expected:
                raise TinyCompressError(f"tensor {name or index} has {len(raw)} bytes of data but its shape "
                                        f"{list(shape)} of {dtype} needs {expected}; the model is corrupt: "
                                        "re-export it")
            # int4 stays packed
            const = np.frombuffer(raw, np.uint8) if dtype == "int4" else \
                np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    return Tensor(index=index, name=name, shape=shape, dtype=dtype, scale=scale, zero_point=zero_point,
                  quantized_dimension=int(q.quantizedDimension) if q is not None else 0, data=const)


_ENUM_OPTIONS = {"padding": "Padding", "fused_activation_function": "ActivationFunctionType"}


def _options(op) -> dict:
    opts = op.builtinOptions
    if opts is None:
        return {}
    result = {}
    for key, value in vars(opts).items():
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
        if snake in _ENUM_OPTIONS:
            value = _enum_names(getattr(schema, _ENUM_OPTIONS[snake])).get(value, value)
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        result[snake] = value
    return result


MAX_NAME = 44   # a layer's C name, short enough for the symbols made from it (NAME_multiplier, ...)


def _name_layers(layers: list[Layer], tensors: list[Tensor]) -> None:
    """Name each layer after the Keras layer behind its output tensor, as a C identifier unique in the
    graph: a repeated name gets the first free suffix _2, _3, ... that no other layer is named, so the two
    halves of a Keras Conv1D (conv1d_1, conv1d_1_2) do not take the name of the next one (conv1d_1_2)."""
    bases = []
    for i, layer in enumerate(layers):
        tensor_name = tensors[layer.outputs[0]].name.split(";")[0] if layer.outputs else ""
        parts = [p for p in tensor_name.split("/") if p]
        base = parts[1] if len(parts) >= 3 else layer.op.lower()  # graph outputs carry no Keras name
        base = re.sub(r"[^0-9A-Za-z_]", "_", base).strip("_") or f"layer_{i}"
        if base[0].isdigit():
            base = "l_" + base
        bases.append(base[:MAX_NAME].rstrip("_") or f"layer_{i}")
    taken, used = set(bases), set()
    for layer, base in zip(layers, bases):
        name, count = base, 1
        while name in used or (count > 1 and name in taken):
            count += 1
            name = f"{base}_{count}"
        used.add(name)
        layer.name = name


def constant_bytes_location(data: bytes, tensor_index: int) -> tuple[int, int]:
    """(offset, length) of a constant tensor's bytes inside the flatbuffer, so they can be patched in
    place."""
    model = schema.Model.GetRootAs(data, 0)
    buffer = model.Buffers(model.Subgraphs(0).Tensors(tensor_index).Buffer())
    if buffer.Offset() > 1:          # stored after the flatbuffer
        return int(buffer.Offset()), int(buffer.Size())
    field = buffer._tab.Offset(4)    # Buffer.data, the first field of the table
    return int(buffer._tab.Vector(field)), int(buffer._tab.VectorLen(field))
