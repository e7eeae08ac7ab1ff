"""`tinycompress inspect`: the graph as tinycompress will run it, without compiling anything.

The model is loaded exactly as `run` loads it (shape arithmetic folded, float I/O taken off), with the
verifier recording each layer it refuses instead of stopping at the first (verify.collecting_refusals);
each layer is then lowered to its kernel call, which gives its MACs and parameter bytes, or the reason it
cannot run. The arena is planned over the layers that lower, as compile plans it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..frontend import verify
from ..target.boards import DEFAULT_BOARD, Board, load_board
from ..errors import TinyCompressError
from ..ir import Graph, Tensor
from ..ops import lower_layer
from ..ops.common import dims


@dataclass
class LayerInfo:
    index: int
    name: str
    op: str
    inputs: list[dict]
    outputs: list[dict]
    kernel: str | None = None
    summary: str = ""
    macs: int = 0
    parameter_bytes: int = 0
    reason: str | None = None     # why it cannot run, or None

    @property
    def supported(self) -> bool:
        return self.reason is None


@dataclass
class Inspection:
    model: str
    graph: Graph
    layers: list[LayerInfo]
    arena_bytes: int | None
    arena_board: str
    folded: list[str]
    fit: dict | None = None      # with --board: what it needs of the board and whether that fits
    float_io: dict = field(default_factory=dict)

    @property
    def refused(self) -> list[LayerInfo]:
        return [layer for layer in self.layers if not layer.supported]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def parameter_bytes(self) -> int:
        return sum(layer.parameter_bytes for layer in self.layers)

    def to_dict(self) -> dict:
        g = self.graph
        return {
            "version": __version__, "model": self.model,
            "inputs": [tensor_info(g.tensors[i]) for i in g.inputs],
            "outputs": [tensor_info(g.tensors[i]) for i in g.outputs],
            "float_io": self.float_io,
            "folded": self.folded,
            "macs": self.macs, "parameter_bytes": self.parameter_bytes,
            "arena_bytes": self.arena_bytes, "arena_board": self.arena_board,
            "arena_complete": not self.refused,
            "layers": [{"index": x.index, "name": x.name, "op": x.op, "inputs": x.inputs, "outputs": x.outputs,
                        "kernel": x.kernel, "summary": x.summary, "macs": x.macs,
                        "parameter_bytes": x.parameter_bytes, "supported": x.supported, "reason": x.reason}
                       for x in self.layers],
            "unsupported": [{"layer": x.name, "op": x.op, "reason": x.reason} for x in self.refused],
            "board": self.fit,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def tensor_info(t: Tensor) -> dict:
    """Name, shape, type and quantization of a tensor (per-channel scales as lists)."""
    info = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "constant": t.is_constant}
    if t.quantized:
        per_tensor = t.scale.size == 1
        info["scale"] = float(t.scale[0]) if per_tensor else [float(s) for s in t.scale]
        info["zero_point"] = int(t.zero_point[0]) if per_tensor else [int(z) for z in t.zero_point]
        if not per_tensor:
            info["quantized_dimension"] = t.quantized_dimension
    return info


def inspect_model(path: Path, board: Board | None = None, calibration: Path | None = None) -> Inspection:
    """Load MODEL as `run` does and describe every layer; `board` adds the fit check."""
    from ..pipeline import load_model, plan_layers
    with verify.collecting_refusals() as refusals:
        graph = load_model(Path(path), calibration)
    layers, calls = [], []
    for index, layer in enumerate(graph.layers):
        info = LayerInfo(index, layer.name, layer.op,
                         [tensor_info(graph.tensors[i]) for i in layer.inputs if i >= 0],
                         [tensor_info(graph.tensors[i]) for i in layer.outputs])
        if id(layer) in refusals:
            info.reason = refusals[id(layer)][1]
        else:
            try:
                call = lower_layer(layer, graph)
            except TinyCompressError as exc:
                info.reason = str(exc)
            else:
                calls.append(call)
                info.kernel, info.summary, info.macs = call.function, call.summary, int(call.macs)
                info.parameter_bytes = call.weight_bytes
        if info.reason is not None:   # what its constants take in the file, for the totals
            info.parameter_bytes = sum(graph.tensors[i].nbytes for i in layer.inputs
                                       if i >= 0 and graph.tensors[i].is_constant)
        layers.append(info)
    target = board if board is not None else load_board(DEFAULT_BOARD)
    plan = plan_layers(calls, graph, target)
    float_io = getattr(graph, "float_io", None)
    result = Inspection(Path(path).name, graph, layers, plan.size, target.name, list(graph.folded),
                        float_io={"input": bool(float_io.input), "output": bool(float_io.output)}
                        if float_io is not None else {})
    if board is not None:
        result.fit = board_fit(graph, result, board)
    return result


def board_fit(graph: Graph, result: Inspection, board: Board) -> dict:
    """The checks `compile` makes before any C exists (pipeline.check_fit): weights against flash, the
    arena and stack, the input and the output against SRAM. The code is not counted: it needs a build."""
    needs = {
        "weights": (result.parameter_bytes, board.flash_size, "flash"),
        "arena and stack": (result.arena_bytes + board.stack_size, board.ram_size, "SRAM"),
        "input": (graph.input_tensor().nbytes, board.ram_size, "SRAM"),
        "output": (graph.output_tensor().nbytes, board.ram_size, "SRAM"),
    }
    return {"name": board.name, "flash_bytes": board.flash_size, "ram_bytes": board.ram_size,
            "stack_bytes": board.stack_size,
            "checks": [{"what": what, "bytes": need, "available": have, "memory": memory, "fits": need <= have}
                       for what, (need, have, memory) in needs.items()],
            "fits": all(need <= have for need, have, _ in needs.values())}


def _quant(info: dict) -> str:
    if "scale" not in info:
        return "-"
    if isinstance(info["scale"], list):
        return f"per-channel ({len(info['scale'])})"
    return f"{info['scale']:.6g} zp {info['zero_point']}"


def _tensor_line(info: dict) -> str:
    return f"{info['name'] or '?'}: {info['dtype']} {dims(info['shape'])}, " + \
        ("not quantized" if "scale" not in info else f"scale {info['scale']:.6g}, zero point {info['zero_point']}")


def format_text(result: Inspection) -> str:
    """The summary block, then one row per layer, then every layer that cannot run with its reason."""
    g = result.graph
    lines = [f"tinycompress inspect: {result.model}"]
    for label, indices in (("input", g.inputs), ("output", g.outputs)):
        for i in indices:
            lines.append(f"  {label:<12} {_tensor_line(tensor_info(g.tensors[i]))}")
    if result.float_io:
        sides = [side for side in ("input", "output") if result.float_io.get(side)]
        lines.append(f"  {'float I/O':<12} float32 {' and '.join(sides)} (QUANTIZE/DEQUANTIZE), int8 inside")
    if result.folded:
        lines.append(f"  {'folded':<12} {len(result.folded)} shape-arithmetic layers computed at compile time "
                     "(batch 1)")
    lines.append(f"  {'layers':<12} {len(result.layers)}, {len(result.refused)} cannot run")
    lines.append(f"  {'macc':<12} {result.macs:,}")
    lines.append(f"  {'weights':<12} {result.parameter_bytes:,} B")
    partial = " over the layers that can run" if result.refused else ""
    lines.append(f"  {'arena':<12} {result.arena_bytes:,} B estimated for {result.arena_board}{partial}")
    if result.fit is not None:
        fit = result.fit
        parts = [f"{c['what']} {c['bytes']:,} of {c['available']:,} B {c['memory']}"
                 + ("" if c["fits"] else " (does not fit)") for c in fit["checks"][:2]]
        lines.append(f"  {'board':<12} {fit['name']}: {'; '.join(parts)}: "
                     f"{'fits' if fit['fits'] else 'DOES NOT FIT'} (code not counted)")
    rows = [("#", "layer", "op", "input shapes", "output shape", "output quantization", "params B", "MACs",
             "status")]
    for x in result.layers:
        shapes = ", ".join(dims(i["shape"]) for i in x.inputs if not i["constant"])
        out = x.outputs[0] if x.outputs else {"shape": [], "dtype": "?"}
        rows.append((str(x.index), x.name, x.op, shapes or "-", dims(out["shape"]), _quant(out),
                     f"{x.parameter_bytes:,}", f"{x.macs:,}" if x.supported else "-",
                     "ok" if x.supported else "CANNOT RUN"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines.append("")
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if r is rows[0]:
            lines.append("  " + "  ".join("-" * w for w in widths))
    if result.refused:
        lines.append("")
        lines.append(f"cannot run ({len(result.refused)}):")
        supported = None
        for x in result.refused:
            reason, _, listed = x.reason.partition("; supported operators: ")
            supported = listed or supported
            lines.append(f"  {x.name} ({x.op}): {reason}")
        if supported:
            lines.append(f"supported operators: {supported}")
    return "\n".join(lines)


def refusal_message(result: Inspection) -> str:
    """One line for the exit status: the layers that cannot run."""
    names = ", ".join(f"{x.name} ({x.op})" for x in result.refused[:5])
    more = f" and {len(result.refused) - 5} more" if len(result.refused) > 5 else ""
    return f"{len(result.refused)} of {len(result.layers)} layers cannot run: {names}{more}"
