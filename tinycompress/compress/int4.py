"""INT4 weights: `int4` (every FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D) or `int4:LAYER,...`.

A GRAPH step on the full-int8 .tflite. Each chosen weight tensor becomes TFLite's INT4 tensor type:
symmetric, values in [-7, 7], scale = max|w| / 7, packed two to a byte with element 2i in the low nibble
(as TFLite's and TFLite Micro's UnpackDenseInt4IntoInt8 read them). The convolutions' scales are per output
channel; FULLY_CONNECTED's is one per tensor, because TFLite Micro refuses per-channel INT4 weights there
(CalculateOpDataFullyConnected) and runs them with the per-tensor reference kernel. The bias (int32, scale
input_scale x weight_scale) is requantized to the new weight scale, rounded half away from zero and clamped.
A convolution's channel scale is max|w| / 7 moved to the nearest float32 (half the time within 0.02 %)
whose requantization multiplier has the firmware's packed form (ops/fixedpoint.py packable_scale), and its
values are rounded to that scale (clamped to [-7, 7]): the layer's bias and requantization then take 4 bytes
a channel instead of 12. Values already on the grid (fine-tuned ones) stay where they are unless the scale
moved by over 7 %.
The rewritten .tflite is the verification model: TFLite Micro unpacks the weights to int8 and runs the int8
kernel, and the firmware's int4 kernels (firmware/kernels/tc_*_s8.c, the `_s4` entry points) match it.

Fine-tuning (`--train`) sees the 4-bit arithmetic: `fine_tune_model` swaps the chosen Dense, Conv2D and
DepthwiseConv2D layers for ones whose kernel is fake-quantized to the same grid (per tensor for Dense, per
output channel otherwise) with a straight-through estimator; `fine_tuned` gives back plain layers whose
kernels lie on the grid, so that the int8 conversion and then this rewrite reproduce them exactly.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinyCompressError
from ..ops.fixedpoint import packable_scale
from ..ops.nibbles import pack_tflite
from .plan import GRAPH, Context, LayerStep, Method, layer_names, unknown_layers

INT4 = 17                # schema TensorType.INT4
LEVELS = 7               # symmetric: values in [-7, 7]
# op -> the weight tensor's output-channel axis, or None for one scale per tensor (FULLY_CONNECTED)
CHANNEL_AXIS = {"FULLY_CONNECTED": None, "CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}
# Keras layer -> the kernel axes one scale covers: Dense per tensor (as FULLY_CONNECTED above); Conv2D's kernel
# [kh, kw, in, out] per out; DepthwiseConv2D's [kh, kw, in, multiplier] per (in, multiplier), TFLite's channel
KERAS_REDUCE = {"Dense": None, "Conv2D": (0, 1, 2), "DepthwiseConv2D": (0, 1)}
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


def round_away(x: np.ndarray) -> np.ndarray:
    """Round half away from zero, as TFLite rounds."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def int4_grid(weights: np.ndarray, reduce: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """Real weights on the 4-bit grid, one scale per slice along the axes not in `reduce` (None: one for
    all): (values in [-7, 7], scales max|w| / 7 broadcastable to the weights, 1 for an all-zero slice)."""
    w = np.asarray(weights, np.float64)
    largest = np.max(np.abs(w), axis=reduce, keepdims=True)
    scales = np.where(largest > 0, largest / LEVELS, 1.0)
    values = np.clip(round_away(w / scales), -LEVELS, LEVELS)
    return values.astype(np.int8), scales


def channel_reduce(ndim: int, axis: int | None) -> tuple[int, ...] | None:
    """The axes one scale covers, for scales along `axis` (None: per tensor)."""
    return None if axis is None else tuple(i for i in range(ndim) if i != axis)


class Int4Method(Method):
    names = ("int4",)
    stage = GRAPH
    usage = "int4 or int4:LAYER,..."

    # ---- the graph: int8 .tflite -> INT4 .tflite ----

    def chosen(self, graph) -> list:
        """The layers to rewrite: those named (all eligible ones without names), each with int8 weights."""
        eligible = [layer for layer in graph.layers if layer.op in CHANNEL_AXIS and len(layer.inputs) > 1
                    and graph.tensors[layer.inputs[1]].dtype == "int8"
                    and graph.tensors[layer.inputs[1]].data is not None]
        asked = layer_names(self)
        if asked is None:
            return eligible
        unknown_layers(self, asked, [layer.name for layer in eligible])
        return [layer for layer in eligible if layer.name in asked]

    @classmethod
    def candidates(cls, graph) -> dict[str, list[str | None]]:
        """For auto: every layer with int8 weights, on its own (`int4:LAYER`)."""
        return {layer.name: [None] for layer in cls(cls.names[0], None).chosen(graph)}

    def apply_graph(self, graph, context: Context) -> tuple[object, list[LayerStep]]:
        from ..frontend.load import read_tflite
        layers = self.chosen(graph)
        if not layers:
            raise self.bad("the model has no FULLY_CONNECTED, CONV_2D or DEPTHWISE_CONV_2D layer with int8 weights")
        data, steps = rewrite_int4(graph, layers)
        return read_tflite(data, graph.name), steps

    # ---- fine-tuning: fake-quantized kernels ----

    def _wanted(self, layer) -> bool:
        names = layer_names(self)
        return type(layer).__name__ in KERAS_REDUCE and (names is None or layer.name in names)

    def fine_tune_model(self, model):
        return _clone(model, lambda layer: _qat_class(type(layer)) if self._wanted(layer) else None,
                      lambda layer, weights: weights)

    def fine_tuned(self, model):
        def plain(layer):
            return getattr(type(layer), "_int4_base", None)

        def on_grid(layer, weights):
            if getattr(type(layer), "_int4_base", None) is None:
                return weights
            values, scales = int4_grid(weights[0], KERAS_REDUCE[type(layer)._int4_base.__name__])
            return [(values * scales).astype(weights[0].dtype)] + list(weights[1:])
        return _clone(model, plain, on_grid)


# ---- the flatbuffer rewrite ----

def rewrite_int4(graph, layers) -> tuple[bytes, list[LayerStep]]:
    """graph.source with the weights of `layers` as INT4 and their biases requantized; the steps done."""
    import flatbuffers
    from ..frontend.load import schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(graph.source), 0)
    if any(b.offset for b in model.buffers or []):
        raise TinyCompressError(f"{graph.name} keeps its buffers after the flatbuffer (a model over 2 GB); "
                                "int4 cannot rewrite it")
    tensors = model.subgraphs[0].tensors
    uses: dict[int, int] = {}
    for t in tensors:
        uses[t.buffer] = uses.get(t.buffer, 0) + 1
    done, steps = set(), []

    def store(t, raw: np.ndarray) -> None:
        """The tensor's data, in its own buffer (a new one where another tensor shares it)."""
        buf = schema.BufferT()
        buf.data = np.frombuffer(raw.tobytes(), np.uint8)
        if uses[t.buffer] == 1:
            model.buffers[t.buffer] = buf
        else:
            uses[t.buffer] -= 1
            t.buffer = len(model.buffers)
            uses[t.buffer] = 1
            model.buffers.append(buf)

    for layer in layers:
        w_index = layer.inputs[1]
        if w_index in done:
            continue
        done.add(w_index)
        weights = graph.tensors[w_index]
        axis = CHANNEL_AXIS[layer.op]
        inp = graph.tensors[layer.inputs[0]]
        real = _real(weights)
        values, grid = int4_grid(real, channel_reduce(real.ndim, axis))
        scales = grid.reshape(-1).astype(np.float32)
        out = graph.tensors[layer.outputs[0]]
        if axis is not None and inp.quantized and out.quantized:
            scales = np.array([packable_scale(inp.scale[0], out.scale[0], s) for s in scales], np.float32)
            values = np.clip(round_away(real / scales.astype(np.float64).reshape(grid.shape)), -LEVELS, LEVELS)
        t = tensors[w_index]
        t.type = INT4
        store(t, pack_tflite(values))
        t.quantization.scale = scales
        t.quantization.zeroPoint = np.zeros(scales.size, np.int64)
        t.quantization.quantizedDimension = axis or 0
        note = "one scale per tensor (TFLite Micro's INT4 FULLY_CONNECTED)" if axis is None else ""
        bias_index = layer.inputs[2] if len(layer.inputs) > 2 else -1
        if bias_index >= 0 and graph.tensors[bias_index].data is not None:
            bias = graph.tensors[bias_index]
            old = np.broadcast_to(weights.scale.astype(np.float64), (bias.size,))
            new = np.broadcast_to(scales.astype(np.float64), (bias.size,))
            requantized = np.clip(round_away(bias.data.astype(np.float64) * old / new), INT32_MIN, INT32_MAX)
            tb = tensors[bias_index]
            store(tb, requantized.astype("<i4"))
            in_scale = float(inp.scale[0]) if inp.quantized else 1.0
            tb.quantization.scale = (np.float64(in_scale) * new).astype(np.float32)
            tb.quantization.zeroPoint = np.zeros(bias.size, np.int64)
        count = weights.size
        steps.append(LayerStep(layer.name, "int4", "4-bit " + ("per tensor" if axis is None else "per channel"),
                               count, count, bytes_before=count, bytes_after=(count + 1) // 2, note=note))
    builder = flatbuffers.Builder(len(graph.source) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), steps


def _real(weights) -> np.ndarray:
    """The int8 weights as real numbers, by their scales along their quantized dimension."""
    q = weights.data.astype(np.float64)
    scale = weights.scale.astype(np.float64)
    if scale.size == 1:
        return q * scale[0]
    shape = [1] * q.ndim
    shape[weights.quantized_dimension] = -1
    return q * scale.reshape(shape)


# ---- Keras: fake-quantized layers for fine-tuning ----

def _fake_quant(kernel, layer):
    """The kernel on the 4-bit grid in the forward pass (int4_grid's scales), the identity backward."""
    from keras import ops
    reduce = KERAS_REDUCE[type(layer)._int4_base.__name__]
    largest = ops.max(ops.abs(kernel), axis=reduce, keepdims=True)
    scale = ops.where(largest > 0, largest / LEVELS, ops.ones_like(largest))
    # round half away from zero, as int4_grid: sign(x) floor(|x| + 1/2)
    steps = ops.sign(kernel) * ops.floor(ops.abs(kernel / scale) + 0.5)
    q = ops.clip(steps, -LEVELS, LEVELS) * scale
    return kernel + ops.stop_gradient(q - kernel)


_QAT_CLASSES: dict[type, type] = {}


def _qat_class(base: type) -> type:
    """`base` with its kernel fake-quantized (Dense and Conv2D through their `kernel` property,
    DepthwiseConv2D through its call, whose kernel is a plain attribute)."""
    if base in _QAT_CLASSES:
        return _QAT_CLASSES[base]
    if base.__name__ == "DepthwiseConv2D":
        def call(self, inputs):
            from keras import ops
            outputs = ops.depthwise_conv(inputs, _fake_quant(self.kernel, self), strides=self.strides,
                                         padding=self.padding, dilation_rate=self.dilation_rate,
                                         data_format=self.data_format)
            if self.use_bias:
                outputs = ops.add(outputs, ops.reshape(self.bias, (1,) * (self.rank + 1) + (-1,)))
            return self.activation(outputs) if self.activation is not None else outputs
        body = {"call": call}
    else:
        body = {"kernel": property(lambda self: _fake_quant(base.kernel.fget(self), self))}
    cls = type(f"Int4{base.__name__}", (base,), {"_int4_base": base, **body})
    _QAT_CLASSES[base] = cls
    return cls


def _clone(model, new_class, new_weights):
    """The model with each layer rebuilt as new_class(layer) (None: its own class), weights new_weights(
    old layer, its weights)."""
    import keras

    def clone(layer):
        cls = new_class(layer) or type(layer)
        return cls.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for old, new in zip(model.layers, copy.layers):
        if old.weights:
            new.set_weights(new_weights(old, old.get_weights()))
    return copy
