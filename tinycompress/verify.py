"""The model verifier: every .tflite is checked here right after it is read, before anything is lowered.

Two passes. `check_file` and `check_flatbuffer` look at the raw file and the parsed flatbuffer tables before
the graph IR is built from them: the identifier, the file size, and every index (tensor, buffer, opcode)
in range. `verify_graph` then checks what the kernels rely on: constant sizes, shapes, each supported
operator's output shape derived from its inputs and options, window parameters, quantization, and an
acyclic graph whose every input is produced before it is used. Each failure is one line naming the tensor
or the layer, as a TinyCompressError.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import TinyCompressError
from .fixedpoint import ADD_LEFT_SHIFT
from .ir import Graph, Layer, Tensor

MAX_FILE_BYTES = 256 * 1024 * 1024   # a .tflite for a microcontroller is far smaller
MAX_TENSOR_BYTES = 2 ** 31           # no tensor (or shape product) past this: sizes stay within int32
IDENTIFIER = b"TFL3"
INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (0, 0), "int32": (0, 0), "int4": (-8, 7)}
WEIGHTED = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")    # weights and bias at inputs 1 and 2
WINDOW_OPTIONS = {"stride_h": "strides", "stride_w": "strides", "dilation_h_factor": "dilations",
                  "dilation_w_factor": "dilations", "filter_height": "pool sizes", "filter_width": "pool sizes",
                  "depth_multiplier": "depth multipliers"}
MIN_INPUTS = {"FULLY_CONNECTED": 2, "CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "MAX_POOL_2D": 1, "AVERAGE_POOL_2D": 1,
              "ADD": 2, "MEAN": 2, "SUM": 2, "SOFTMAX": 1, "RESHAPE": 1, "SQUEEZE": 1, "GATHER": 2,
              "EMBEDDING_LOOKUP": 2}


def fail(message: str) -> TinyCompressError:
    return TinyCompressError(message)


def check_file(path: Path) -> None:
    """Size cap and identifier, read from the first 8 bytes before the whole file is read."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise fail(f"{path.name} is {size:,} bytes; model files past {MAX_FILE_BYTES // 2**20} MiB are refused "
                   "(a microcontroller model is far smaller): check the file")
    with open(path, "rb") as f:
        head = f.read(8)
    check_identifier(head, path.stem)


def check_identifier(head: bytes, name: str) -> None:
    if len(head) < 8 or head[4:8] != IDENTIFIER:
        raise fail(f"{name} is not a TFLite flatbuffer (no TFL3 identifier); give a .tflite file or a .keras model")


def check_flatbuffer(model, data: bytes, name: str) -> None:
    """Every index of the first subgraph's tables in range, before they are followed (schema.ModelT)."""
    sub = model.subgraphs[0]
    tensors, buffers, codes = sub.tensors or [], model.buffers or [], model.operatorCodes or []
    n = len(tensors)

    def in_range(index, count: int, what: str, optional: bool = False) -> None:
        if not (-1 if optional else 0) <= int(index) < count:
            raise fail(f"{name}: {what} refers to index {int(index)}, but there are only {count}; "
                       "the model is corrupt: re-export it")

    for what, indices in (("a graph input", sub.inputs), ("a graph output", sub.outputs)):
        if indices is None or len(indices) == 0:
            raise fail(f"{name} declares no graph {what.split()[-1]}s; re-export the model")
        for i in indices:
            in_range(i, n, f"{what} (tensor)")
    for k, op in enumerate(sub.operators or []):
        in_range(op.opcodeIndex, len(codes), f"operator {k}'s opcode")
        if op.outputs is None or len(op.outputs) == 0:
            raise fail(f"{name}: operator {k} has no output; the model is corrupt: re-export it")
        for i in op.inputs if op.inputs is not None else []:
            in_range(i, n, f"an input of operator {k} (tensor)", optional=True)
        for i in op.outputs:
            in_range(i, n, f"an output of operator {k} (tensor)")
    for k, t in enumerate(tensors):
        in_range(t.buffer, max(len(buffers), 1), f"tensor {k}'s buffer")
        if t.buffer < len(buffers):
            buf = buffers[t.buffer]
            if buf.offset and buf.size and (buf.offset < 0 or buf.offset + buf.size > len(data)):
                raise fail(f"{name}: tensor {k}'s data lies past the end of the file; the file is truncated")


# The options table each supported operator reads, and whether TFLite Micro needs it (without it, it runs
# with zeroed parameters, where the kernels here would take TFLite's defaults).
OPTIONS = {"FULLY_CONNECTED": ("FullyConnectedOptionsT", False), "CONV_2D": ("Conv2DOptionsT", True),
           "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptionsT", True), "MAX_POOL_2D": ("Pool2DOptionsT", True),
           "AVERAGE_POOL_2D": ("Pool2DOptionsT", True), "ADD": ("AddOptionsT", False),
           "MEAN": ("ReducerOptionsT", False), "SUM": ("ReducerOptionsT", False),
           "SOFTMAX": ("SoftmaxOptionsT", True), "RESHAPE": ("ReshapeOptionsT", False),
           "SQUEEZE": ("SqueezeOptionsT", False), "GATHER": ("GatherOptionsT", False)}


def check_options(op_name: str, options, index: int) -> None:
    """The options table attached to operator `index` is the one its operator reads."""
    expected, required = OPTIONS.get(op_name, (None, False))
    found = type(options).__name__ if options is not None else None
    if expected is not None and (found != expected if options is not None else required):
        raise fail(f"operator {index} ({op_name}) carries {found.removesuffix('T') if found else 'no options'} "
                   f"instead of {expected.removesuffix('T')}; the model is corrupt: re-export it")


def packed_bytes(count: int, dtype: str) -> int:
    """Bytes a constant of `count` elements takes in the flatbuffer; int4 packs two to a byte."""
    return (count + 1) // 2 if dtype == "int4" else count * np.dtype(dtype).itemsize


def check_shape(tensor_index: int, name: str, shape, dtype: str) -> None:
    """Dims >= 1 and a size below MAX_TENSOR_BYTES, in Python integers so nothing overflows."""
    label = f"tensor {name or tensor_index}"
    for d in shape:
        if int(d) < 1:
            raise fail(f"{label} has shape {list(map(int, shape))}; every dimension must be >= 1 "
                       "(dynamic shapes are not supported)")
    if tensor_bytes(shape, dtype) >= MAX_TENSOR_BYTES:
        raise fail(f"{label} of shape {list(map(int, shape))} would take {math.prod(map(int, shape)):,} elements; "
                   f"tensors are limited to {MAX_TENSOR_BYTES:,} bytes")


def tensor_bytes(shape, dtype: str) -> int:
    """Bytes of a tensor, in Python integers (no overflow); int4 counted unpacked, a byte each."""
    return math.prod(int(d) for d in shape) * (1 if dtype == "int4" else np.dtype(dtype).itemsize)


def verify_graph(graph: Graph) -> None:
    """Refuse, in one line naming the tensor or layer, a graph the kernels would run wrongly."""
    if not graph.layers:
        raise fail(f"{graph.name} has no layers; there is nothing to compile")
    total = sum(tensor_bytes(t.shape, t.dtype) for t in graph.tensors)
    if total >= MAX_TENSOR_BYTES:
        raise fail(f"{graph.name}'s tensors take {total:,} bytes together; models are limited to "
                   f"{MAX_TENSOR_BYTES:,} bytes")
    for t in graph.tensors:
        _check_quantization(t)
    _check_order(graph)
    for layer in graph.layers:
        _check_layer(layer, graph)


def _tname(t: Tensor) -> str:
    return f"tensor {t.name or t.index}"


def _check_quantization(t: Tensor) -> None:
    if not t.quantized:
        return
    scale, zp = t.scale, t.zero_point
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        bad = scale[~(np.isfinite(scale) & (scale > 0))][0]
        raise fail(f"{_tname(t)} has scale {bad}; scales must be finite and > 0")
    if zp.size != scale.size:
        raise fail(f"{_tname(t)} has {scale.size} scales but {zp.size} zero points; they must match")
    if scale.size > 1:
        if not 0 <= t.quantized_dimension < len(t.shape):
            raise fail(f"{_tname(t)} is quantized along dimension {t.quantized_dimension} of a "
                       f"{len(t.shape)}-D tensor")
        channels = t.shape[t.quantized_dimension]
        if scale.size != channels:
            raise fail(f"{_tname(t)} has {scale.size} per-channel scales for {channels} channels "
                       f"(dimension {t.quantized_dimension}); they must match")
    lo, hi = INT_RANGES.get(t.dtype, (None, None))
    if lo is not None and (zp.min() < lo or zp.max() > hi):
        bad = int(zp[(zp < lo) | (zp > hi)][0])
        raise fail(f"{_tname(t)} ({t.dtype}) has zero point {bad}; it must lie in {lo}..{hi}")


def _check_order(graph: Graph) -> None:
    """Acyclic and in order: each layer reads graph inputs, constants or earlier layers' outputs."""
    ready = set(graph.inputs) | {t.index for t in graph.tensors if t.is_constant}
    computed = set()
    for i in graph.inputs:
        if graph.tensors[i].is_constant:
            raise fail(f"graph input {_tname(graph.tensors[i])} holds constant data; re-export the model")
    for layer in graph.layers:
        for i in layer.inputs:
            if i >= 0 and i not in ready:
                raise fail(f"layer {layer.name} ({layer.op}) reads {_tname(graph.tensors[i])} before any layer "
                           "computes it (a cycle or an out-of-order graph)")
        for i in layer.outputs:
            if i in ready:
                what = "a graph input or a constant" if i in graph.inputs or graph.tensors[i].is_constant \
                    else "already computed by an earlier layer"
                raise fail(f"layer {layer.name} ({layer.op}) writes {_tname(graph.tensors[i])}, which is {what}")
            ready.add(i)
            computed.add(i)
    for i in graph.outputs:
        if i not in computed:
            raise fail(f"graph output {_tname(graph.tensors[i])} is not computed by any layer")


def _check_layer(layer: Layer, graph: Graph) -> None:
    """Inputs present, options in range and the declared output shape equal to the one computed."""
    where = f"layer {layer.name} ({layer.op})"
    need = MIN_INPUTS.get(layer.op)
    if need is None:
        return   # lowering refuses it as unsupported, or (float models) the quantizer replaces it
    if len(layer.inputs) < need or any(i < 0 for i in layer.inputs[:need]):
        raise fail(f"{where} has inputs {layer.inputs}; it needs {need}")
    o = layer.options
    for key in WINDOW_OPTIONS:
        if key in o and not (isinstance(o[key], int) and o[key] >= 1):
            raise fail(f"{where}: {key} is {o[key]}; {WINDOW_OPTIONS[key]} must be >= 1")
    if "padding" in o and o["padding"] not in ("SAME", "VALID"):
        raise fail(f"{where}: padding {o['padding']} is neither SAME nor VALID")
    t = [graph.tensors[i] if i >= 0 else None for i in layer.inputs]
    out = graph.tensors[layer.outputs[0]]
    expected = _output_shape(layer, graph, t, where)
    if expected is not None and tuple(expected) != tuple(out.shape):
        raise fail(f"{where}: the output {out.name or out.index} is declared {_dims(out.shape)} but the layer "
                   f"computes {_dims(expected)} from its inputs and options")
    if layer.op in WEIGHTED:
        _check_weights(layer, where, t)
    _check_requantization(layer, where, t, out)


def _check_requantization(layer: Layer, where: str, t: list, out: Tensor) -> None:
    """The rescalings TFLite Micro derives from the scales exist: it aborts on the others."""
    if layer.op in WEIGHTED + ("MEAN", "SUM") and t[0].quantized and out.quantized:
        ratio = float(t[0].scale[0]) / float(out.scale[0])
        largest = ratio * (float(np.max(t[1].scale)) if layer.op in WEIGHTED and t[1].quantized else 1.0)
        if largest >= 2 ** 30:   # a left shift past 30 bits overflows TFLite's fixed-point multiply
            raise fail(f"{where}: the scales give a rescaling factor of {largest:g} (input scale "
                       f"{t[0].scale[0]:g}, output scale {out.scale[0]:g}); TFLite needs it below 2^30")
    if layer.op == "SOFTMAX" and t[0].quantized:
        real = float(np.float32(layer.options.get("beta", 1.0))) * float(t[0].scale[0]) * 2 ** (31 - 5)
        if not real > 1:
            raise fail(f"{where}: the input scale {t[0].scale[0]:g} is too small: beta x scale x 2^26 is {real:g}, "
                       "and TFLite requires more than 1")
    if layer.op == "ADD" and t[0].quantized and t[1].quantized and out.quantized:
        real = 2 * max(float(t[0].scale[0]), float(t[1].scale[0])) / (2 ** ADD_LEFT_SHIFT * float(out.scale[0]))
        if not real < 1:
            raise fail(f"{where}: the output scale {out.scale[0]:g} is too small for the input scales "
                       f"{t[0].scale[0]:g} and {t[1].scale[0]:g} (TFLite requires 2 x max(input scales) < "
                       f"2^{ADD_LEFT_SHIFT} x output scale)")


def _dims(shape) -> str:
    return "x".join(map(str, shape)) or "a scalar"


def _check_weights(layer: Layer, where: str, t: list) -> None:
    weights = t[1]
    if weights.quantized and np.any(weights.zero_point != 0):
        raise fail(f"{where}: the weights {weights.name or weights.index} have a zero point of "
                   f"{int(weights.zero_point[weights.zero_point != 0][0])}; int8 weights must have 0")
    channels = weights.shape[3 if layer.op == "DEPTHWISE_CONV_2D" else 0]
    if weights.scale.size > 1 and weights.quantized_dimension != (3 if layer.op == "DEPTHWISE_CONV_2D" else 0):
        raise fail(f"{where}: the weights are quantized along dimension {weights.quantized_dimension}, "
                   "not along the output channels")
    bias = t[2] if len(t) > 2 else None
    if bias is None and layer.op == "DEPTHWISE_CONV_2D":
        raise fail(f"{where} has no bias; TFLite Micro requires one for a depthwise convolution")
    if o_format := layer.options.get("weights_format", 0):
        raise fail(f"{where}: weights_format {o_format} (shuffled weights) is not supported; only DEFAULT (0)")
    bias_type = layer.options.get("quantized_bias_type", 0)
    if bias_type not in (0, 2) or (bias_type == 2 and bias is not None and bias.dtype != "int32"):
        raise fail(f"{where}: quantized_bias_type {bias_type} does not match an int32 bias; it must be 0 (unset) "
                   "or 2 (INT32)")
    if bias is not None and bias.size != channels:
        raise fail(f"{where}: the bias {bias.name or bias.index} has {bias.size} values for {channels} "
                   "output channels")


def _window(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output length of a sliding window, as TFLite's ComputeOutSize."""
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - (kernel - 1) * dilation - 1 + stride) // stride


def _rank(tensor: Tensor, rank: int, where: str, what: str) -> None:
    if len(tensor.shape) != rank:
        raise fail(f"{where}: the {what} {tensor.name or tensor.index} is {_dims(tensor.shape)}; "
                   f"it must be {rank}-D")


def _output_shape(layer: Layer, graph: Graph, t: list, where: str):
    """The output shape the operator computes, or None where the declared one is taken as it is."""
    o, op = layer.options, layer.op
    if op == "FULLY_CONNECTED":
        inp, weights = t[0], t[1]
        _rank(weights, 2, where, "weights")
        units, depth = weights.shape
        if inp.size % depth:
            raise fail(f"{where}: the input {_dims(inp.shape)} does not split into rows of {depth}")
        if o.get("keep_num_dims"):
            if inp.shape[-1] != depth:
                raise fail(f"{where}: the input's last dimension is {inp.shape[-1]}, the weights read {depth}")
            return inp.shape[:-1] + (units,)
        return (inp.size // depth, units)
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"):
        inp = t[0]
        _rank(inp, 4, where, "input")
        n, h, w, c = inp.shape
        if op == "CONV_2D":
            _rank(t[1], 4, where, "weights")
            channels, kh, kw, depth = t[1].shape
            if depth != c:
                raise fail(f"{where}: the weights read {depth} channels but the input has {c}")
        elif op == "DEPTHWISE_CONV_2D":
            _rank(t[1], 4, where, "weights")
            one, kh, kw, channels = t[1].shape
            multiplier = o.get("depth_multiplier", 1) or 1
            if one != 1 or channels != c * multiplier:
                raise fail(f"{where}: the weights {_dims(t[1].shape)} do not match {c} input channels "
                           f"times depth multiplier {multiplier}")
        else:
            kh, kw, channels = o.get("filter_height", 1), o.get("filter_width", 1), c
        dh, dw = (1, 1) if "POOL" in op else (o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1))
        padding = o.get("padding", "VALID")
        out_h = _window(h, kh, o.get("stride_h", 1), dh, padding)
        out_w = _window(w, kw, o.get("stride_w", 1), dw, padding)
        if out_h < 1 or out_w < 1:
            raise fail(f"{where}: a {kh}x{kw} window (dilation {dh}x{dw}) does not fit the {h}x{w} input "
                       f"with {padding} padding")
        return (n, out_h, out_w, channels)
    if op == "ADD":
        if max(len(t[0].shape), len(t[1].shape)) > 4:
            raise fail(f"{where}: inputs of rank {max(len(t[0].shape), len(t[1].shape))}; at most 4 is supported")
        try:
            return np.broadcast_shapes(t[0].shape, t[1].shape)
        except ValueError:
            raise fail(f"{where}: the inputs {_dims(t[0].shape)} and {_dims(t[1].shape)} do not broadcast") \
                from None
    if op in ("MEAN", "SUM"):
        inp, axes = t[0], t[1]
        if axes.data is None:
            return None   # lowering refuses axes computed at run time
        rank = len(inp.shape)
        values = [int(a) for a in axes.data.reshape(-1)]
        if any(not -rank <= a < rank for a in values):
            raise fail(f"{where}: axes {values} are out of range for a {rank}-D input")
        reduced = {a % rank for a in values}
        if o.get("keep_dims"):
            return tuple(1 if i in reduced else d for i, d in enumerate(inp.shape))
        return tuple(d for i, d in enumerate(inp.shape) if i not in reduced)
    if op == "SOFTMAX":
        beta = o.get("beta", 1.0)
        if not (math.isfinite(beta) and beta > 0):
            raise fail(f"{where}: beta is {beta}; it must be finite and > 0")
        if not t[0].shape:
            raise fail(f"{where}: the input is a scalar; softmax needs at least one axis")
        return t[0].shape
    if op in ("RESHAPE", "SQUEEZE"):
        out = graph.tensors[layer.outputs[0]]
        if out.size != t[0].size:
            raise fail(f"{where}: the output {_dims(out.shape)} holds {out.size} values but the input "
                       f"{_dims(t[0].shape)} holds {t[0].size}")
        return None
    if op in ("GATHER", "EMBEDDING_LOOKUP"):
        from .ops.gather import table_and_ids
        table, ids = (graph.tensors[i] for i in table_and_ids(layer, graph))
        if len(table.shape) != 2 or o.get("axis", 0) != 0 or o.get("batch_dims", 0) != 0:
            return None   # lowering refuses it
        return (ids.size, table.shape[1]) if op == "EMBEDDING_LOOKUP" else ids.shape + (table.shape[1],)
    return None
