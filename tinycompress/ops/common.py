"""What every operator lowering shares: the kernel-call record and quantization helpers."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import TinyCompressError
from . import nibbles
from .fixedpoint import (PACKED_BIAS_SHIFT, PACKED_FRACTION_BITS, PACKED_LOW_BITS, activation_range,
                         pack_channels)
from ..ir import Graph, Layer, Tensor


@dataclass
class ConstArray:
    """A constant array placed in flash by the generated weights file."""
    name: str            # C identifier
    ctype: str           # 'int8_t', 'uint8_t', 'uint16_t' or 'int32_t'
    values: np.ndarray
    comment: str = ""
    # the same constants in the form builds with TC_DSP read (dsp_forms.py)
    dsp_values: np.ndarray | None = None
    dsp_comment: str = ""

    @property
    def itemsize(self) -> int:
        return int(self.ctype.lstrip("u").removeprefix("int").removesuffix("_t")) // 8

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * self.itemsize

    @property
    def contents(self) -> tuple:
        """What the array holds in C: its type, its bytes and those of its DSP form. Two arrays with equal
        contents are interchangeable in flash (shared_arrays; the adapters' twins of the base's arrays)."""
        dtype = np.dtype(self.ctype.removesuffix("_t"))
        return (self.ctype,) + tuple(None if v is None else np.asarray(v).astype(dtype).tobytes()
                                     for v in (self.values, self.dsp_values))


@dataclass
class KernelCall:
    """One layer lowered to one kernel call: `function(&<layer>_params, inputs..., outputs...)`."""
    layer: Layer
    function: str                    # C kernel, e.g. 'tc_fully_connected_s8'
    params_type: str                 # its parameter struct, e.g. 'tc_fully_connected_params'
    params: dict                     # field -> C initializer: int, str (verbatim C), tuple (braced),
                                     # dict (nested)
    inputs: list[int]                # activation tensors read, in kernel argument order
    outputs: list[int]
    macs: int = 0
    summary: str = ""                # shown in comments and reports, e.g. '3x3 /1 SAME, RELU'
    arrays: list[ConstArray] = field(default_factory=list)
    in_place: bool = False           # the output may reuse the first input's buffer
    overwrites: tuple[int, ...] = () # inputs (by position) whose buffer the output may take over at
                                     # their last use: element-wise kernels read each element before
                                     # writing it
    scratch_bytes: int = 0           # arena bytes the kernel needs while it runs (ops/scratch.py)
    input_list: bool = False         # the inputs go to the kernel as one array of pointers (CONCATENATION)
    output_list: bool = False        # the outputs likewise (SPLIT, UNPACK: layers with several outputs)
    source: str = ""                 # the kernel file's name where it is not the function's (the int4 entry
                                     # points live in their operator's file: tc_conv2d_s4 in tc_conv2d_s8.c)
    rows: object = None              # codegen/rows.RowsInPlace: run in bands of output rows, the output
                                     # overlapping the input (chosen by codegen/plan.choose_in_place)
    patches: object = None           # codegen/patches.Patches: this layer and the next ones run together,
                                     # patch by patch (chosen by codegen/plan.choose_patches); the others
                                     # of the chain are run by it

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)


def shared_arrays(calls: list[KernelCall]) -> dict[str, str]:
    """The constant arrays whose contents equal an earlier one's, by name: the name of that earlier array,
    which the generated files define once and the later name aliases (a converter may give two layers one
    constant: tinylm's causal mask is read by a MUL and an ADD in every block)."""
    first: dict[tuple, str] = {}
    shared = {}
    for a in (a for c in calls for a in c.arrays):
        if first.setdefault(a.contents, a.name) != a.name:
            shared[a.name] = first[a.contents]
    return shared


def flash_weight_bytes(calls: list[KernelCall], shared: dict[str, str] | None = None) -> int:
    """The bytes of constants the generated weights file holds: each shared array once (`shared`:
    shared_arrays(calls), when the caller has it)."""
    shared = shared_arrays(calls) if shared is None else shared
    return sum(a.nbytes for c in calls for a in c.arrays if a.name not in shared)


def dims(shape) -> str:
    return "x".join(map(str, shape)) or "a scalar"


def require_rank(tensor: Tensor, rank: int, where: str, what: str) -> None:
    if len(tensor.shape) != rank:
        raise TinyCompressError(f"{where}: the {what} {tensor.name or tensor.index} is {dims(tensor.shape)}; "
                                f"it must be {rank}-D")


def window_out(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output length of a sliding window, as TFLite's ComputeOutSize."""
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - (kernel - 1) * dilation - 1 + stride) // stride


def window_shape(layer: Layer, inp: Tensor, kernel_hw: tuple[int, int], channels: int, where: str,
                 dilation: bool = True) -> tuple[int, int, int, int]:
    """The NHWC output shape of a sliding-window layer (convolutions and pools), from its options."""
    o = layer.options
    n, h, w, _ = inp.shape
    (kh, kw), padding = kernel_hw, o.get("padding", "VALID")
    dh, dw = (o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)) if dilation else (1, 1)
    out_h = window_out(h, kh, o.get("stride_h", 1), dh, padding)
    out_w = window_out(w, kw, o.get("stride_w", 1), dw, padding)
    if out_h < 1 or out_w < 1:
        raise TinyCompressError(f"{where}: a {kh}x{kw} window (dilation {dh}x{dw}) does not fit the {h}x{w} "
                                f"input with {padding} padding")
    return (n, out_h, out_w, channels)


RESCALE_LIMIT = 2 ** 30   # a left shift past 30 bits overflows TFLite's fixed-point multiply


def check_rescaling(layer: Layer, graph: Graph, t: list, where: str, weights: Tensor | None = None) -> None:
    """The input-to-output rescaling (times the largest weight scale) stays below RESCALE_LIMIT."""
    out = graph.tensors[layer.outputs[0]]
    if not (t[0].quantized and out.quantized):
        return
    largest = float(t[0].scale[0]) / float(out.scale[0])
    if weights is not None and weights.quantized:
        largest *= float(np.max(weights.scale))
    if largest >= RESCALE_LIMIT:
        raise TinyCompressError(f"{where}: the scales give a rescaling factor of {largest:g} (input scale "
                                f"{t[0].scale[0]:g}, output scale {out.scale[0]:g}); TFLite needs it below "
                                "2^30")


def check_weighted(layer: Layer, graph: Graph, t: list, where: str, channel_axis: int,
                   bias_required: bool = False) -> None:
    """FULLY_CONNECTED and the convolutions: int8 weights with zero point 0, quantized along the output
    channels, one int32 bias value per channel, default weight layout; then the rescaling."""
    weights = t[1]
    if weights.quantized and np.any(weights.zero_point != 0):
        raise TinyCompressError(f"{where}: the weights {weights.name or weights.index} have a zero point of "
                                f"{int(weights.zero_point[weights.zero_point != 0][0])}; int8 weights must "
                                "have 0")
    channels = weights.shape[channel_axis]
    if weights.scale.size > 1 and weights.quantized_dimension != channel_axis:
        raise TinyCompressError(f"{where}: the weights are quantized along dimension "
                                f"{weights.quantized_dimension}, not along the output channels")
    bias = t[2] if len(t) > 2 else None
    if bias is None and bias_required:
        raise TinyCompressError(f"{where} has no bias; TFLite Micro requires one for a depthwise convolution")
    if o_format := layer.options.get("weights_format", 0):
        raise TinyCompressError(f"{where}: weights_format {o_format} (shuffled weights) is not supported; "
                                "only DEFAULT (0)")
    bias_type = layer.options.get("quantized_bias_type", 0)
    if bias_type not in (0, 2) or (bias_type == 2 and bias is not None and bias.dtype != "int32"):
        raise TinyCompressError(f"{where}: quantized_bias_type {bias_type} does not match an int32 bias; it "
                                "must be 0 (unset) or 2 (INT32)")
    if bias is not None and bias.size != channels:
        raise TinyCompressError(f"{where}: the bias {bias.name or bias.index} has {bias.size} values for "
                                f"{channels} output channels")
    check_rescaling(layer, graph, t, where, weights)


def same_shape(layer: Layer, graph: Graph, t: list, where: str) -> tuple[int, ...]:
    """The shape rule of an element-wise operator on one input: the output is shaped like it."""
    return t[0].shape


def unsupported(layer: Layer, what: str) -> TinyCompressError:
    return TinyCompressError(f"layer {layer.name} ({layer.op}): {what} is not supported")


def activation_tensors(graph: Graph, layer: Layer) -> list[Tensor]:
    """The non-constant inputs of a layer."""
    return [graph.tensors[i] for i in layer.inputs if i >= 0 and not graph.tensors[i].is_constant]


def scalar_quant(tensor: Tensor) -> tuple[float, int]:
    """(scale, zero point) of a per-tensor quantized int8 tensor."""
    if not tensor.quantized:
        raise TinyCompressError(f"tensor {tensor.name} has no quantization parameters; give a full-int8 "
                                "model")
    return float(tensor.scale[0]), int(tensor.zero_point[0])


def fused_activation(layer: Layer, output: Tensor) -> dict:
    scale, zero_point = scalar_quant(output)
    activation = layer.options.get("fused_activation_function", "NONE")
    if activation not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise unsupported(layer, f"fused activation {activation}")
    lo, hi = activation_range(activation, scale, zero_point)
    return {"min": lo, "max": hi}


def requant_arrays(layer: Layer, multipliers: list[int], shifts: list[int]) -> tuple[dict, list[ConstArray]]:
    """The tc_requant initializer and its two flash arrays."""
    arrays = [
        ConstArray(f"{layer.name}_multiplier", "int32_t", np.array(multipliers, np.int64),
                   "Q31 significands"),
        ConstArray(f"{layer.name}_shift", "int32_t", np.array(shifts, np.int64), "power-of-two exponents"),
    ]
    init = {"multiplier": arrays[0].name, "shift": arrays[1].name, "per_channel": int(len(multipliers) > 1)}
    return init, arrays


def weight_values(tensor: Tensor) -> np.ndarray:
    """A constant's values in its shape; INT4 ones unpacked to int8."""
    return nibbles.unpack_tflite(tensor.data, tensor.shape) if tensor.dtype == "int4" else tensor.data


def int4_kernel(layer: Layer, weights: Tensor, function: str, depth: int) -> tuple[str, str]:
    """(the kernel to call, its file) for `function`'s operator: the int4 entry point beside the int8 one
    for INT4 weights, once the accumulation depth is one the kernels' 16x accumulators hold; the palette
    one (`_p4`) for clustered int8 weights (compress/cluster.py)."""
    if weights.dtype == "int8" and palette_of(layer) is not None:
        return function.removesuffix("_s8") + "_p4", function
    if weights.dtype == "int8":
        return function, ""
    if weights.dtype != "int4":
        raise unsupported(layer, f"{weights.dtype} weights")
    if depth > nibbles.MAX_DEPTH:
        raise unsupported(layer, f"int4 weights with an accumulation depth of {depth} "
                                 f"(over {nibbles.MAX_DEPTH})")
    return function.removesuffix("_s8") + "_s4", function


def palette_of(layer: Layer) -> np.ndarray | None:
    """The palette of a clustered layer's weights (compress/cluster.py), or None."""
    return layer.options.get("cluster_palette")


def weight_array(layer: Layer, tensor: Tensor, suffix: str = "weights") -> ConstArray:
    if tensor.data is None:
        raise unsupported(layer, "a weight tensor computed at run time")
    palette = palette_of(layer) if suffix == "weights" else None
    if palette is not None:
        from ..compress.cluster import palette_indices
        rows = nibbles.row_view(layer.op, palette_indices(palette, tensor.data))
        indices = nibbles.nibble_rows(rows, offset=0).astype(np.int64)    # stored as they are, 0..15
        return ConstArray(f"{layer.name}_{suffix}", "int8_t", indices,
                          f"[{dims(tensor.shape)}] as {rows.shape[0]} rows of {rows.shape[1]} indices "
                          f"into the {palette.size}-entry palette, in the nibble form (ops/nibbles.py)")
    if tensor.dtype == "int4":
        rows = nibbles.row_view(layer.op, weight_values(tensor))
        block = nibbles.block_of(layer.op)
        form = f"nibble form, blocks of {block} rows" if block > 1 else "nibble form"
        packed = nibbles.nibble_rows(rows, block).astype(np.int64)
        return ConstArray(f"{layer.name}_{suffix}", "int8_t", packed,
                          f"[{dims(tensor.shape)}] int4 as {rows.shape[0]} rows of {rows.shape[1]} in the "
                          f"{form} (ops/nibbles.py)")
    ctype = {"int8": "int8_t", "int32": "int32_t"}.get(tensor.dtype)
    if ctype is None:
        raise unsupported(layer, f"{tensor.dtype} {suffix}")
    shape = "x".join(str(d) for d in tensor.shape)
    return ConstArray(f"{layer.name}_{suffix}", ctype, tensor.data.reshape(-1).astype(np.int64), f"[{shape}]")


# The kernels whose INT4 entry points read the packed per-channel form (tc_requant in tc_types.h)
PACKED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def weighted_params(layer: Layer, graph: Graph, multipliers: list[int], shifts: list[int],
                    positions: tuple[int, int, int] = (0, 1, 2)) -> tuple[dict, list[ConstArray]]:
    """The fields FULLY_CONNECTED and the convolutions share: offsets, weights, bias, requantization, clamp.
    An INT4 convolution whose channels fit it takes the packed form (bias and requantization in one word).
    `positions`: where the layer's inputs list holds the input, the weights and the optional bias."""
    at_input, at_weights, at_bias = positions
    inp, weights, out = (graph.tensors[layer.inputs[at_input]], graph.tensors[layer.inputs[at_weights]],
                         graph.tensors[layer.outputs[0]])
    bias = graph.tensor(layer.inputs[at_bias]) if len(layer.inputs) > at_bias else None
    packed = None
    if weights.dtype == "int4" and layer.op in PACKED_OPS and (bias is None or bias.data is not None):
        packed = pack_channels(multipliers, shifts, None if bias is None else bias.data)
    if packed is not None:
        words, base = packed
        arrays = [ConstArray(f"{layer.name}_channels", "int32_t", words,
                             f"bias << {PACKED_BIAS_SHIFT} | (shift - packed_shift) << {PACKED_FRACTION_BITS}"
                             f" | the multiplier's bits {PACKED_LOW_BITS}..29")]
        requant = {"multiplier": "NULL", "shift": "NULL", "per_channel": 1, "packed": arrays[0].name,
                   "packed_shift": base}
        bias = None
    else:
        requant, arrays = requant_arrays(layer, multipliers, shifts)
    arrays.insert(0, weight_array(layer, weights))
    palette = {}
    if palette_of(layer) is not None:
        arrays.append(ConstArray(f"{layer.name}_palette", "int8_t", palette_of(layer).astype(np.int64),
                                 "the weights' values, by index"))
        palette = {"palette": arrays[-1].name}
    params = {
        "input_offset": -scalar_quant(inp)[1],
        "output_offset": scalar_quant(out)[1],
        "weights": arrays[0].name,
        "bias": "NULL",
        "requant": requant,
        "act": fused_activation(layer, out),
        **palette,
    }
    if bias is not None:
        arrays.insert(1, weight_array(layer, bias, "bias"))
        params["bias"] = arrays[1].name
    return params, arrays


def window_params(layer: Layer, in_hw: tuple[int, int], out_hw: tuple[int, int], kernel_hw: tuple[int, int],
                  dilation: bool = True) -> dict:
    """Strides, dilations and SAME padding of a sliding-window layer, from its options."""
    o = layer.options
    stride = o.get("stride_h", 1), o.get("stride_w", 1)
    dil = (o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)) if dilation else (1, 1)
    pad = [same_padding(o.get("padding"), in_hw[i], kernel_hw[i], stride[i], dil[i], out_hw[i])
           for i in (0, 1)]
    params = {"stride_h": stride[0], "stride_w": stride[1]}
    if dilation:
        params.update(dilation_h=dil[0], dilation_w=dil[1])
    params.update(pad_top=pad[0], pad_left=pad[1])
    return params


def same_padding(padding: str, in_size: int, kernel: int, stride: int, dilation: int, out_size: int) -> int:
    """Padding before the first row/column, as TFLite's ComputePaddingHeightWidth (VALID gives 0)."""
    effective = (kernel - 1) * dilation + 1
    total = max(0, (out_size - 1) * stride + effective - in_size)
    return total // 2 if padding == "SAME" else 0


def window_summary(kh: int, kw: int, layer: Layer, stride_mark: str = "/") -> str:
    """'3x3 /2 SAME, RELU6': kernel, stride, padding and activation for reports; `stride_mark` 'x' for a
    layer that multiplies its input's size by the stride (TRANSPOSE_CONV: '3x3 x2 SAME')."""
    o = layer.options
    stride = o.get("stride_h", 1) if o.get("stride_h", 1) == o.get("stride_w", 1) else \
        f"{o.get('stride_h')}x{o.get('stride_w')}"
    text = f"{kh}x{kw} {stride_mark}{stride} {o.get('padding', 'VALID')}"
    if o.get("dilation_h_factor", 1) != 1 or o.get("dilation_w_factor", 1) != 1:
        text += f" dilation {o.get('dilation_h_factor')}x{o.get('dilation_w_factor')}"
    activation = o.get("fused_activation_function", "NONE")
    return text + ("" if activation == "NONE" else f", {activation}")
