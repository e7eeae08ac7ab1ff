"""Stage 8, report: what the model costs on the board, as a terminal table and as JSON."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import __version__
from ..target.elfsize import ElfSizes
from ..compress.embeddings import embedding_summary
from ..codegen.emit import Project
from ..codegen.plan import chained
from ..target.emulate import RunResult

REPORT_VERSION = 1


@dataclass
class LayerReport:
    name: str
    op: str
    summary: str
    output_shape: list[int]
    params_bytes: int
    macs: int
    instructions: float | None
    instructions_per_mac: float | None
    scheme: str = ""              # how it runs where not one call: over its own input, by bands of rows
    cycles: int | None = None     # estimated (analysis/cycles.py), one inference


def execution_scheme(call, overlapped: bool, head=None) -> str:
    """'over its input' (the kernel writes its output over its own input), 'in place, 5 bands of 6
    rows' (codegen/rows.py), 'patched, ...' (the first layer of a chain run by patches, codegen/patches.py)
    or 'in the patches of X' (the others: `head` is the chain's first call), or '' for one call into its
    own output."""
    if call.patches is not None:
        p = call.patches
        return (f"patched with the next {p.steps[1] - p.steps[0]} layers: {p.patches} patches of {p.band_rows} rows, "
                "none recomputed")
    if head is not None:
        return f"in the patches of {head.layer.name}"
    rows = call.rows
    if rows is None or not overlapped:
        return ""
    if not rows.band_rows:
        return "over its input"
    return f"in place, {len(rows.bands)} bands of {rows.band_rows} rows"


@dataclass
class Report:
    version: int
    tool: str
    model: str
    board: str
    core: str
    flash: dict                   # total, weights, code, other
    sram: dict                    # total, arena, stack_peak, stack_reserved, other
    arena: dict                   # planned, lower_bound (the most bytes live at one step), unshared (all
                                  # tensors side by side), tflite_micro (its interpreter's, when verified)
    macs: int
    instructions: float | None    # mean per inference
    instructions_per_mac: float | None
    inferences: int
    layers: list[LayerReport] = field(default_factory=list)
    verification: dict | None = None
    accuracy: float | None = None
    embeddings: list[dict] = field(default_factory=list)   # per lookup: method, bytes, the int8 table's bytes
    cycles: dict | None = None    # the cycle estimate of one inference: total, per_layer, ... (analysis/cycles.py)
    latency_ms: float | None = None   # cycles["total"] at cycles["clock_hz"]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def make_report(project: Project, sizes: ElfSizes, run: RunResult | None) -> Report:
    board, calls = project.board, project.calls
    weights = sum(sizes.symbols.get(name, 0) for name in project.weight_symbols)
    arena = sizes.symbols.get(project.arena_symbol, project.plan.size)
    stack_reserved = board.stack_size
    macs = sum(c.macs for c in calls)
    per_layer = total = None
    if run is not None and len(run.ticks):
        instr = board.instructions(run.ticks.astype(np.float64))
        total = float(instr[:, 0].mean())
        per_layer = instr[:, 1:].mean(axis=0)
    layers = []
    heads = chained(calls)
    for i, call in enumerate(calls):
        out = project.graph.tensors[call.outputs[0]]
        n = float(per_layer[i]) if per_layer is not None else None
        head = calls[heads[i]] if heads.get(i, i) != i else None
        work = call.macs
        if call.patches is not None:    # a chain's instructions are its first layer's, per MAC of all of it
            work = sum(c.macs for c in calls[i:call.patches.steps[1] + 1])
        elif head is not None:
            work, n = 0, None
        layers.append(LayerReport(call.layer.name, call.layer.op, call.summary, list(out.shape),
                                  call.weight_bytes, call.macs, _round(n),
                                  _round(n / work if n is not None and work else None, 3),
                                  execution_scheme(call, i in project.plan.overlapped, head)))
    return Report(
        version=REPORT_VERSION, tool=f"tinycompress {__version__}", model=project.graph.name,
        board=board.name, core=board.core,
        flash={"total": sizes.flash, "weights": weights, "code": sizes.code,
               "other": sizes.flash - weights - sizes.code},
        sram={"total": sizes.ram, "arena": arena, "stack_peak": run.stack_peak if run else None,
              "stack_reserved": stack_reserved, "other": sizes.ram - arena - stack_reserved},
        arena={"planned": project.plan.size, "lower_bound": project.plan.lower_bound,
               "unshared": project.plan.unshared_size, "without_patches": project.plan.unpatched},
        macs=macs, instructions=_round(total),
        instructions_per_mac=_round(total / macs if total is not None and macs else None, 3),
        inferences=int(len(run.ticks)) if run is not None else 0, layers=layers,
        embeddings=embedding_summary(calls))


def _round(x, digits: int = 1):
    return None if x is None else round(float(x), digits)


def _kib(n) -> str:
    return "-" if n is None else f"{n / 1024:,.1f} KiB"


def format_table(r: Report) -> str:
    lines = [
        f"tinycompress report: {r.model} on {r.board} ({r.core})",
        f"  macc                 {r.macs:,}",
        f"  flash (total)        {_kib(r.flash['total'])} = weights {_kib(r.flash['weights'])} "
        f"+ code {_kib(r.flash['code'])} + other {_kib(r.flash['other'])}",
        f"  ram (total)          {_kib(r.sram['total'])} = arena {_kib(r.sram['arena'])} "
        f"+ stack {_kib(r.sram['stack_reserved'])} reserved + other {_kib(r.sram['other'])}",
        f"  stack (peak)         {_kib(r.sram['stack_peak'])}",
        f"  arena                {r.arena['planned']:,} B planned, lower bound {r.arena['lower_bound']:,} B "
        f"(the most live at one step), {r.arena['unshared']:,} B without reuse"
        + (f", {r.arena['without_patches']:,} B without patches" if r.arena.get("without_patches") else "")
        + (f"; TFLite Micro's interpreter {r.arena['tflite_micro']:,} B" if r.arena.get("tflite_micro") else ""),
    ]
    for e in r.embeddings:
        lines.append(f"  embedding            {e['layer']}: {e['method']}, {e['bytes']:,} B for a "
                     f"{e['vocab_size']:,} x {e['width']} table ({e['table_bytes']:,} B as int8: {e['compression']:g}x smaller)")
    if r.instructions is not None:
        lines.append(f"  instructions         {r.instructions:,.0f} per inference "
                     f"({r.instructions_per_mac} per MAC, mean of {r.inferences})")
    if r.cycles is not None:
        c = r.cycles
        lines.append(f"  cycles (estimate)    {c['total']:,} per inference = {r.latency_ms:,.3f} ms at "
                     f"{c['clock_hz'] / 1e6:g} MHz on {c['board']} (timing model on {c['emulated_by']}'s "
                     "instruction stream)")
    if r.verification is not None:
        v = r.verification
        kind = " float32" if v.get("outputs") == "float32" else ""
        lines.append(f"  verification         {v['matching']}/{v['inferences']}{kind} outputs identical "
                     "to the TFLite Micro interpreter")
    if r.accuracy is not None:
        lines.append(f"  accuracy (firmware)  {100 * r.accuracy:.2f} %")
    header = ("layer", "type", "output shape", "params B", "MACs", "instructions", "instr/MAC", "runs")
    rows = [header] + [
        (l.name, l.op, "x".join(map(str, l.output_shape)), f"{l.params_bytes:,}", f"{l.macs:,}",
         "-" if l.instructions is None else f"{l.instructions:,.0f}",
         "-" if l.instructions_per_mac is None else f"{l.instructions_per_mac:.2f}", l.scheme or "one call")
        for l in r.layers]
    if r.cycles is not None:     # the estimate's column, before "runs"
        header = header[:7] + ("cycles (est.)",) + header[7:]
        rows = [header] + [row[:7] + ("-" if l.cycles is None else f"{l.cycles:,}",) + row[7:]
                           for row, l in zip(rows[1:], r.layers)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines.append("")
    for k, row in enumerate(rows):
        lines.append(("  " + "  ".join(c.ljust(w) if i < 3 or i == len(header) - 1 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(row, widths)))).rstrip())
        if k == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)
