"""One firmware for a frozen base and several low-rank adapters (compress/lora.py): the shared C code, the
adapter slots and their images.

Every task's int8 graph has the same layers. Its calls split in two:
- fixed calls: every call before the adapters' influence (it reads no tensor an adapter wrote and is no
  adapter's A): the same in every task, compiled as constants (and sharing the base's arrays);
- slot calls: each adapter's A, B and ADD, the FC(x; W0) or CONV_2D beside them (the converter gives it the
  ADD's quantization), and every call after them. Their quantization parameters and arrays (but the base's
  own int8 weights W0, the same in every task) live in an adapter slot; selecting an adapter checks its
  slot (header and CRC-32), and each inference with it reads the slot calls' parameter structs from it onto
  the stack (templates/model_adapters.c.j2).

A slot is a header then the payload, little-endian:

    0   4  magic "TCAD"           4   2  format version        6   2  header bytes (40 + 16 x layers)
    8   4  layout: CRC-32 of the layout (the payload's items, offsets, the adapters' shapes, and a digest of
           the base's part every adapter shares: an image made against another base is refused)
    12  4  payload bytes          16  2  rank                  18  2  adapted layers L
    20  16 the adapter's name (NUL-padded ASCII)
    36  16 per adapted layer: input width u16, rank u16, output width u16, 0 u16, the ADD's output scale
           f32 and zero point i32 (its quantization)
    36 + 16L  4  CRC-32 (IEEE) of the header before it and of the payload

The payload holds the slot calls' items at 4-byte aligned offsets: each scalar parameter that quantization
decides as an int32 word, each array in its C type. The parameters that shapes decide (STRUCTURAL: sizes,
depths, broadcast strides, flags) are compiled in; the layout, and so its CRC, records their values, so an
image of a graph that differs in them is refused.
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import TinyCompressError
from ..ir import Graph
from ..ops.common import ConstArray, KernelCall
from ..target.boards import Board

MAGIC = b"TCAD"
VERSION = 1
NAME_BYTES = 16
HEADER_FIXED = 36
LAYER_BYTES = 16
MAX_ADAPTERS = 64
SLOT_ALIGN = 16
A_LAYER = re.compile(r"_lora_a(_\d+)*$")     # an adapter's A: Keras' `L_lora_a` (the converter adds `_1`)


@dataclass
class Lowered:
    """A graph lowered, planned and ready to emit."""
    graph: Graph
    calls: list[KernelCall]
    plan: object
    slots: list[int] = field(default_factory=list)   # the slot calls' indices (adapted graphs)


@dataclass
class Item:
    """One piece of a slot's payload: a scalar parameter (`word`) or an array of a slot call."""
    call: int
    path: str          # where in the call's parameters: 'input_offset', 'requant.multiplier', 'act.min'
    kind: str          # 'word' or 'array'
    ctype: str         # int32_t for words
    count: int
    offset: int

    @property
    def nbytes(self) -> int:
        return self.count * _itemsize(self.ctype)


WEIGHTED = ("FULLY_CONNECTED", "CONV_2D")
KERNELS = ("tc_fully_connected_s8", "tc_conv2d_s8")

# Parameters that the shapes decide, not the quantization: compiled into the adapted path, not in a slot.
STRUCTURAL = frozenset({"batches", "input_depth", "output_depth", "per_channel", "dsp_pairs", "size", "rows",
                        "depth", "subtract", "left_shift", "stride_h", "stride_w", "dilation_h",
                        "dilation_w", "pad_top", "pad_left"})


def _structural(path: str) -> bool:
    return path.startswith(("broadcast", "input[", "filter[", "output[")) or \
        path.rsplit(".", 1)[-1] in STRUCTURAL


@dataclass
class Layout:
    """Where each slot call's values lie in the payload, and the adapters' shapes."""
    items: list[Item]
    slot_calls: list[int]
    shared: dict[str, str]            # slot calls' arrays kept in flash: array name -> role
    layers: list[tuple[int, int, int, int]]   # per adapter: (A's call, B's call, ADD's call, 0)
    shapes: list[tuple[int, int, int]]        # per adapter: input width, rank, output width
    payload_bytes: int
    constants: list[tuple[int, str, int]] = field(default_factory=list)   # (call, path, value): STRUCTURAL
    shared_digest: str = ""     # SHA-256 of what the slots rely on outside them (shared_digest())

    @property
    def header_bytes(self) -> int:
        return HEADER_FIXED + LAYER_BYTES * len(self.shapes) + 4

    @property
    def image_bytes(self) -> int:
        return self.header_bytes + self.payload_bytes

    @property
    def slot_bytes(self) -> int:
        return -(-self.image_bytes // SLOT_ALIGN) * SLOT_ALIGN

    @property
    def rank(self) -> int:
        return self.shapes[0][1]

    def description(self) -> dict:
        return {"items": [[i.call, i.path, i.kind, i.ctype, i.count, i.offset] for i in self.items],
                "slot_calls": self.slot_calls, "shared": self.shared,
                "layers": [list(x) for x in self.layers], "shapes": [list(s) for s in self.shapes],
                "payload_bytes": self.payload_bytes, "constants": [list(c) for c in self.constants],
                "shared_digest": self.shared_digest}

    @property
    def crc(self) -> int:
        return zlib.crc32(json.dumps(self.description(), sort_keys=True).encode())

    @classmethod
    def from_description(cls, d: dict) -> "Layout":
        try:
            items = [Item(int(c), str(p), str(k), str(t), int(n), int(o)) for c, p, k, t, n, o in d["items"]]
            shared = {str(k): str(v) for k, v in d["shared"].items()}
            return cls(items, [int(i) for i in d["slot_calls"]], shared,
                       [tuple(int(v) for v in x) for x in d["layers"]],
                       [tuple(int(v) for v in s) for s in d["shapes"]], int(d["payload_bytes"]),
                       [(int(c), str(p), int(v)) for c, p, v in d["constants"]], str(d["shared_digest"]))
        except (KeyError, TypeError, ValueError):
            raise TinyCompressError("the adapters' slot layout in adapters.json is malformed") from None


def _itemsize(ctype: str) -> int:
    return int(ctype.lstrip("u").removeprefix("int").removesuffix("_t")) // 8


def slot_calls(graph: Graph) -> list[int]:
    """The indices of the calls an adapter decides: its A (a layer named ..._lora_a), and every layer reading
    a tensor one of them wrote, transitively."""
    tainted: set[int] = set()
    slots = []
    for i, layer in enumerate(graph.layers):
        if A_LAYER.search(layer.name) or any(t in tainted for t in layer.inputs):
            slots.append(i)
            tainted.update(layer.outputs)
    if not any(A_LAYER.search(graph.layers[i].name) for i in slots):
        raise TinyCompressError(f"{graph.name} has no adapter layer (a FULLY_CONNECTED named *_lora_a)")
    # TFLiteConverter gives FC(x; W0) the quantization of the ADD it feeds: the adapter decides it too.
    producer = {t: i for i, layer in enumerate(graph.layers) for t in layer.outputs}
    for i in list(slots):
        if graph.layers[i].op != "ADD":
            continue
        for t in graph.layers[i].inputs:
            p = producer.get(t)
            if p is not None and p not in slots and graph.layers[p].op in WEIGHTED:
                slots.append(p)
    return sorted(slots)


def lower_graph(graph: Graph, board: Board, adapted: bool) -> Lowered:
    """Lower, choose kernel forms, plan the arena. In an adapted graph the slot calls keep their plain
    forms (no DSP pair form): their arrays come from a slot, whatever the build reads."""
    from ..ops import lower_layer
    from ..ops.dsp_forms import assign_dsp_forms
    from ..ops.scratch import assign_scratch, bind_scratch
    from .plan import plan_arena
    calls = [lower_layer(layer, graph) for layer in graph.layers]
    slots = slot_calls(graph) if adapted else []
    assign_scratch(calls, board)
    assign_dsp_forms(calls, board)
    for i in slots:
        for array in calls[i].arrays:
            array.dsp_values, array.dsp_comment = None, ""
        if "dsp_pairs" in calls[i].params:
            calls[i].params["dsp_pairs"] = 0
    plan = plan_arena(calls, graph.tensors, graph.inputs, graph.outputs)
    bind_scratch(calls, plan.scratch)
    return Lowered(graph, calls, plan, slots)


def leaves(value, path: str = ""):
    """(path, value) of every int and str leaf of a call's parameters; lists and tuples by index."""
    if isinstance(value, dict):
        for key, v in value.items():
            yield from leaves(v, f"{path}.{key}" if path else key)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _shared_role(call: KernelCall, path: str, value) -> str | None:
    """The role of an array of a slot call that stays in flash: the base's own int8 weights (W0), which no
    adapter changes."""
    if path == "weights" and "_lora" not in call.layer.name and isinstance(value, str):
        return "weights"
    return None


def make_layout(task: Lowered) -> Layout:
    """The payload's layout from one task's lowered graph (every task has the same)."""
    items, shared, constants, offset = [], {}, [], 0
    for i in task.slots:
        call = task.calls[i]
        arrays = {a.name: a for a in call.arrays}
        for path, value in leaves(call.params):
            if _is_int(value) and _structural(path):
                constants.append((i, path, int(value)))
                continue
            if _is_int(value):
                items.append(Item(i, path, "word", "int32_t", 1, offset))
            elif isinstance(value, str) and value in arrays:
                if _shared_role(call, path, value):
                    shared[value] = "weights"
                    continue
                array = arrays[value]
                items.append(Item(i, path, "array", array.ctype, int(array.values.size), offset))
            else:
                continue
            offset += -(-items[-1].nbytes // 4) * 4
    layers, shapes = [], []
    for i in task.slots:
        call = task.calls[i]
        if not A_LAYER.search(call.layer.name):
            continue
        if call.function not in KERNELS:
            raise TinyCompressError(f"adapter layer {call.layer.name} is {call.layer.op}, not a plain int8 "
                                    "FULLY_CONNECTED or CONV_2D")
        b = _consumer(task, i, lambda c: c.function == call.function)
        add = _consumer(task, b, lambda c: c.function == "tc_add_s8", through_reshape=True)
        layers.append((i, b, add, 0))
        shapes.append((_depth(call, "input"), _depth(call, "output"), _depth(task.calls[b], "output")))
    if any(not 0 < v < 2 ** 16 for s in shapes for v in s):
        raise TinyCompressError("an adapter's width does not fit the slot header (1 to 65535)")
    if len({s[1] for s in shapes}) != 1:
        raise TinyCompressError("the adapters' layers have different ranks")
    return Layout(items, list(task.slots), shared, layers, shapes, offset, constants,
                  shared_digest(task, shared))


def shared_digest(task: Lowered, shared: dict[str, str]) -> str:
    """SHA-256 of the adapted path's part outside the slots, in a form no board changes: each fixed call's
    kernel, integer parameters and plain arrays, and the slot calls' shared arrays (W0)."""
    digest = hashlib.sha256()
    slots = set(task.slots)
    for i, call in enumerate(task.calls):
        arrays = [a for a in call.arrays if a.name in shared] if i in slots else call.arrays
        if i not in slots:
            ints = [(path, int(v)) for path, v in leaves(call.params) if _is_int(v) and path != "dsp_pairs"]
            digest.update(repr((call.function, ints)).encode())
        for array in arrays:
            digest.update(array.ctype.encode() + np.ascontiguousarray(array.values, np.int64).tobytes())
    return digest.hexdigest()


def _depth(call: KernelCall, side: str) -> int:
    """A FULLY_CONNECTED's or CONV_2D's input or output channels."""
    if call.function == "tc_fully_connected_s8":
        return int(call.params[f"{side}_depth"])
    return int(call.params[side][-1])


def _consumer(task: Lowered, index: int, wanted, through_reshape: bool = False) -> int:
    """The call reading call `index`'s output that `wanted` accepts (through RESHAPEs when asked)."""
    outputs = set(task.calls[index].outputs)
    for j in range(index + 1, len(task.calls)):
        call = task.calls[j]
        if not outputs & set(call.inputs):
            continue
        if wanted(call):
            return j
        if through_reshape and call.layer.op == "RESHAPE":
            outputs |= set(call.outputs)
    raise TinyCompressError(f"adapter layer {task.calls[index].layer.name} does not feed the ADD of an "
                            "adapted layer")


def _get(params: dict, path: str):
    value = params
    for part in path.replace("[", ".[").split("."):
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    return value


def check_same_structure(first: Lowered, other: Lowered, name: str) -> None:
    """Every task's graph has the first's calls, parameters' shape, arrays and fixed calls' values."""
    def refuse(why: str):
        raise TinyCompressError(f"task {name}'s int8 graph differs from the first task's ({why}); the "
                                "adapters cannot share one firmware")
    if len(first.calls) != len(other.calls) or first.slots != other.slots:
        refuse("its layers")
    if first.plan.offsets != other.plan.offsets or first.plan.size != other.plan.size:
        refuse("its tensors")
    slots = set(first.slots)
    for i, (a, b) in enumerate(zip(first.calls, other.calls)):
        if (a.function, a.params_type, a.inputs, a.outputs) != \
                (b.function, b.params_type, b.inputs, b.outputs):
            refuse(f"layer {a.layer.name}")
        pa, pb = list(leaves(a.params)), list(leaves(b.params))
        differ = (_is_int(x) != _is_int(y) or (not _is_int(x) and x != y) for (_, x), (_, y) in zip(pa, pb))
        if [p for p, _ in pa] != [p for p, _ in pb] or any(differ):
            refuse(f"the parameters of layer {a.layer.name}")
        arrays_a, arrays_b = {x.name: x for x in a.arrays}, {x.name: x for x in b.arrays}
        if {k: (v.ctype, v.values.size) for k, v in arrays_a.items()} != \
                {k: (v.ctype, v.values.size) for k, v in arrays_b.items()}:
            refuse(f"the arrays of layer {a.layer.name}")
        fixed = i not in slots
        for key, x in arrays_a.items():
            keep = fixed or _shared_role(a, next((p for p, v in pa if v == key), ""), key)
            if keep and x.contents != arrays_b[key].contents:
                refuse(f"{'layer ' + a.layer.name if fixed else 'the base weights ' + key}, which no "
                       "adapter should change")
        if fixed and pa != pb:
            refuse(f"the parameters of layer {a.layer.name}, which no adapter should change")




# ---- slot images --------------------------------------------------------------------------------------

def payload(task: Lowered, layout: Layout) -> bytes:
    """The payload of one task's slot: its slot calls' values at the layout's offsets."""
    out = bytearray(layout.payload_bytes)
    for index, path, value in layout.constants:
        if int(_get(task.calls[index].params, path)) != value:
            raise TinyCompressError(f"layer {task.calls[index].layer.name}: {path} differs from the "
                                    "firmware's; the adapter does not fit it")
    for item in layout.items:
        call = task.calls[item.call]
        value = _get(call.params, item.path)
        if item.kind == "word":
            data = np.array([int(value)], "<i8")
            if not -2 ** 31 <= int(value) < 2 ** 31:
                raise TinyCompressError(f"layer {call.layer.name}: {item.path} = {value} does not fit int32")
            data = data.astype("<i4")
        else:
            array = next(a for a in call.arrays if a.name == value)
            dtype = {"int8_t": "i1", "uint8_t": "u1", "int16_t": "<i2", "uint16_t": "<u2",
                     "int32_t": "<i4"}[item.ctype]
            if array.values.size != item.count:
                raise TinyCompressError(f"layer {call.layer.name}: {item.path} has {array.values.size} "
                                        f"values, the slot layout {item.count}")
            info = np.iinfo(np.dtype(dtype))
            if array.values.min() < info.min or array.values.max() > info.max:
                raise TinyCompressError(f"layer {call.layer.name}: {item.path} does not fit {item.ctype}")
            data = array.values.astype(dtype)
        out[item.offset:item.offset + item.nbytes] = data.tobytes()
    return bytes(out)


def check_name(name: str) -> str:
    """A task name: 1 to 15 letters, digits, '_' or '-' (it is a file name and a C string)."""
    if not (0 < len(name) < NAME_BYTES and all(c.isascii() and (c.isalnum() or c in "_-") for c in name)):
        raise TinyCompressError(f"task name {name!r}: use 1 to {NAME_BYTES - 1} letters, digits, '_' or '-'")
    return name


def image(task: Lowered, layout: Layout, name: str) -> bytes:
    """One adapter's slot image: header, payload, and the CRC-32 of both."""
    body = payload(task, layout)
    header = bytearray(MAGIC + struct.pack("<HHII", VERSION, layout.header_bytes, layout.crc, len(body)))
    header += struct.pack("<HH", layout.rank, len(layout.shapes))
    header += check_name(name).encode().ljust(NAME_BYTES, b"\0")
    for (_, _, add, _), (m, r, n) in zip(layout.layers, layout.shapes):
        out = task.graph.tensors[task.calls[add].outputs[0]]
        header += struct.pack("<HHHHfi", m, r, n, 0, float(out.scale[0]), int(out.zero_point[0]))
    crc = zlib.crc32(bytes(header) + body)
    return bytes(header) + struct.pack("<I", crc) + body


def read_header(data: bytes) -> dict:
    """The fields of a slot image's header (for the tests and the CLI), without checking them."""
    version, header_bytes, layout, length = struct.unpack_from("<HHII", data, 4)
    rank, count = struct.unpack_from("<HH", data, 16)
    return {"magic": data[:4], "version": version, "header_bytes": header_bytes, "layout": layout,
            "payload_bytes": length, "rank": rank, "layers": count,
            "name": data[20:20 + NAME_BYTES].rstrip(b"\0").decode("ascii", "replace")}


# ---- C -------------------------------------------------------------------------------------------------

def _c_value(value) -> str:
    from .emit import c_init
    return c_init(value)


def render_params(call: KernelCall, index: int, layout: Layout, symbols: dict[str, str],
                  indent: int = 1) -> str:
    """A slot call's parameter struct as a C compound-literal body reading the payload `p`: words with
    tc_adapter_word(p, OFFSET), slot arrays as p + OFFSET, the base's arrays by their symbols."""
    at = {item.path: item for item in layout.items if item.call == index}
    compiled = {path for call_index, path, _ in layout.constants if call_index == index}

    def render(value, path: str, depth: int) -> str:
        pad = "    " * (depth + 1)
        if isinstance(value, dict):
            fields = ",\n".join(f"{pad}.{k} = {render(v, f'{path}.{k}' if path else k, depth + 1)}"
                                for k, v in value.items())
            return "{\n" + fields + ",\n" + "    " * depth + "}"
        if isinstance(value, (list, tuple)):
            return "{" + ", ".join(render(v, f"{path}[{i}]", depth) for i, v in enumerate(value)) + "}"
        item = at.get(path)
        if path in compiled:
            return _c_value(value)
        if item is not None and item.kind == "word":
            return f"tc_adapter_word(p, {item.offset})"
        if item is not None:
            return f"(const {item.ctype} *)(const void *)(p + {item.offset})"
        if isinstance(value, str) and value in symbols:
            return symbols[value]
        return _c_value(value)
    return render(call.params, "", indent)


def fixed_params(call: KernelCall, symbols: dict[str, str]) -> dict:
    """A fixed call's parameters with its arrays' names replaced by the symbols they are emitted as."""
    def swap(value):
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(swap(v) for v in value)
        return symbols.get(value, value) if isinstance(value, str) else value
    return swap(call.params)


@dataclass
class AdapterCode:
    """What templates/model_adapters.c.j2 renders."""
    names: list[str]
    images: list[bytes]
    layout: Layout
    lowered: Lowered
    arrays: list[tuple[str, ConstArray]]     # arrays the adapted path emits itself: (symbol, array)
    structs: list[dict]                       # per call: name, type, fixed (bool), init (C)
    slot_bytes: int
    input_offset: int                          # the adapted plan's input and output, against the base's
    output_offset: int
    base_arena: int = 0                        # the base alone's arena, for the comment
    outputs: list[tuple[float, int]] = field(default_factory=list)   # each adapter's output quantization


def adapter_code(base: Lowered, tasks: list[Lowered], names: list[str], layout: Layout) -> AdapterCode:
    """The C of the adapted path: arrays shared with the base where equal, the fixed calls' constants, the
    slot calls' structs, and every task's slot image."""
    from ..escape import c_identifier
    first = tasks[0]
    base_arrays = [a for c in base.calls for a in c.arrays]
    symbols, arrays = {}, []
    slots = set(first.slots)
    for i, call in enumerate(first.calls):
        for path, value in leaves(call.params):
            named = isinstance(value, str)
            array = next((a for a in call.arrays if a.name == value), None) if named else None
            if array is None or (i in slots and value not in layout.shared):
                continue
            twin = next((b for b in base_arrays if b.contents == array.contents), None)
            if twin is not None:
                symbols[value] = c_identifier(twin.name)
            else:
                symbols[value] = c_identifier(f"tc_ad_{array.name}")
                arrays.append((symbols[value], array))
    structs = []
    base_structs = {(c.params_type, _c_value(c.params)): c_identifier(f"{c.layer.name}_params")
                    for c in base.calls}
    for i, call in enumerate(first.calls):
        name = c_identifier(f"tc_ad_{call.layer.name}_params")
        if i in slots:
            structs.append({"name": name, "type": call.params_type, "fixed": False, "base": None,
                            "init": render_params(call, i, layout, symbols)})
            continue
        init = _c_value(fixed_params(call, symbols))
        twin = base_structs.get((call.params_type, init))    # the base's own call: its struct serves
        structs.append({"name": twin or name, "type": call.params_type, "fixed": True, "base": twin,
                        "init": init})
    images = [image(task, layout, name) for task, name in zip(tasks, names)]
    g = first.graph
    outputs = [(float(t.graph.output_tensor().scale[0]), int(t.graph.output_tensor().zero_point[0]))
               if t.graph.output_tensor().quantized else (0.0, 0) for t in tasks]
    return AdapterCode(names, images, layout, first, arrays, structs, layout.slot_bytes,
                       first.plan.offsets[g.inputs[0]], first.plan.offsets[g.outputs[0]], outputs=outputs)
