"""The profile's outputs: a terminal table, JSON, CSV, a Pareto plot and JUnit XML."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from xml.sax.saxutils import quoteattr

from .. import __version__
from ..outputs import write_file
from .sweep import Budgets, VariantResult, pareto

PROFILE_VERSION = 1


def _metric(v: VariantResult, value: float | None) -> str:
    if value is None:          # no float model: the sweep started from a .tflite
        return "-"
    return f"{100 * value:.2f} %" if v.metric == "accuracy" else f"{value:.4g}"


def _embedding(v: VariantResult) -> str:
    """The embedding tables' flash and how much smaller than as int8."""
    stored, table = sum(e["bytes"] for e in v.embeddings), sum(e["table_bytes"] for e in v.embeddings)
    return f"{stored / 1024:.1f} KiB ({table / max(stored, 1):.1f}x)"


def variant_name(v: VariantResult) -> str:
    return {"rank": f"rank {v.variant}", "embedding": f"embedding {v.variant}"}.get(v.kind, v.variant)


def _steps(steps: list[dict]) -> str:
    """What a plan did, per method: the layers it changed (with the settings), and those it kept."""
    parts, kept = [], []
    for method in dict.fromkeys(s["method"] for s in steps):
        mine = [s for s in steps if s["method"] == method]
        changed = [s for s in mine if s["detail"] != "kept" and
                   (s["params_after"], s["bytes_after"]) != (s["params_before"], s["bytes_before"])]
        kept += [s for s in mine if s not in changed]
        if changed:
            details = list(dict.fromkeys(s["detail"] for s in changed))
            shown = ", ".join(details[:3]) + (", ..." if len(details) > 3 else "")
            parts.append(f"{method} on {len(changed)} layer{'s' * (len(changed) != 1)} ({shown})")
    if kept:
        parts.append("kept as they are: " + ", ".join(s["layer"] + (f" ({s['note']})" if s["note"] else "")
                                                      for s in kept))
    return "; ".join(parts) or "nothing changed"


def format_table(results: list[VariantResult], model: str, board: str) -> str:
    embeddings = any(v.embeddings for v in results)
    header = ("variant", "params", "MACs", "flash", "weights", *(("embedding",) if embeddings else ()), "arena",
              "stack", "SRAM", "instructions", f"{results[0].metric} fw", "float", "int8", "compr.", "exact")
    rows = [header]
    for v in results:
        rows.append((v.variant, f"{v.params:,}", f"{v.macs:,}", f"{v.flash['total'] / 1024:.1f} KiB",
                     f"{v.flash['weights'] / 1024:.1f} KiB", *((_embedding(v),) if embeddings else ()),
                     f"{v.sram['arena']:,} B", f"{v.sram['stack_peak']:,} B",
                     f"{v.sram['total'] / 1024:.1f} KiB", f"{v.instructions:,.0f}", _metric(v, v.firmware),
                     _metric(v, v.host_float), _metric(v, v.host_int8), f"{v.compression:.2f}x",
                     "yes" if v.bit_exact else "NO"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [f"tinycompress profile: {model} on {board}", ""]
    for k, row in enumerate(rows):
        lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    lines.append("")
    for v in results:
        if v.steps:
            lines.append(f"  {variant_name(v)}: {_steps(v.steps)}")
        if v.larger_than_uncompressed:
            lines.append(f"    {variant_name(v)} is larger than the uncompressed model: "
                         f"{v.larger_than_uncompressed:,} B more flash")
        if v.note:
            lines.append(f"    {v.note}")
        if v.budget_failures:
            lines.append(f"    {variant_name(v)} over budget: {', '.join(v.budget_failures)}")
    return "\n".join(lines)


def to_json(results: list[VariantResult], model: str, board: str) -> str:
    return json.dumps({"version": PROFILE_VERSION, "tool": f"tinycompress {__version__}", "model": model,
                       "board": board, "variants": [asdict(v) for v in results]}, indent=2)


CSV_COLUMNS = ["variant", "params", "macs", "flash_total", "flash_weights", "flash_embedding", "sram_total",
               "sram_arena", "stack_peak", "instructions", "metric", "firmware", "host_float", "host_int8",
               "compression", "bit_exact"]


def write_csv(results: list[VariantResult], path: Path) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    for v in results:
        writer.writerow([v.variant, v.params, v.macs, v.flash["total"], v.flash["weights"],
                         sum(e["bytes"] for e in v.embeddings), v.sram["total"],
                         v.sram["arena"], v.sram["stack_peak"], v.instructions, v.metric, v.firmware,
                         v.host_float, v.host_int8, v.compression, v.bit_exact])
    write_file(path, text.getvalue())


def write_pareto(results: list[VariantResult], path: Path, title: str,
                 budgets: Budgets | None = None) -> None:
    """Flash against the metric and instructions against the metric: one point per variant, the Pareto front
    as a step line through them, the budgets as dashed lines, and labels moved apart so none overlap."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = budgets or Budgets()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    metric = results[0].metric
    value = (lambda v: 100 * v.firmware) if metric == "accuracy" else (lambda v: v.firmware)
    floor = {"accuracy": budgets.min_accuracy, "mse": budgets.max_error,
             "perplexity": budgets.max_perplexity}[metric]
    flash_limit = None if budgets.max_flash is None else budgets.max_flash / 1024
    for ax, (cost, label, limit) in zip(axes, [
            (lambda v: v.flash["total"] / 1024, "flash (KiB)", flash_limit),
            (lambda v: v.instructions, "instructions per inference", budgets.max_instructions)]):
        ax.plot([cost(v) for v in results], [value(v) for v in results], "o", color="tab:blue")
        front = pareto(results, cost)
        ax.step([cost(v) for v in front], [value(v) for v in front], where="post", color="tab:blue",
                alpha=0.7, label="Pareto front")
        if limit is not None:
            ax.axvline(limit, color="tab:red", linestyle="--", label="budget")
        if floor is not None:
            ax.axhline(100 * floor if metric == "accuracy" else floor, color="tab:red", linestyle="--")
        ax.set_xlabel(label)
        ax.set_ylabel({"accuracy": "accuracy on the firmware (%)", "mse": "MSE on the firmware",
                       "perplexity": "perplexity on the firmware"}[metric])
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        _annotate(ax, fig, [(cost(v), value(v), v.variant) for v in results])
    fig.suptitle(title)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=110)
    plt.close(fig)
    write_file(path, image.getvalue())


def _annotate(ax, fig, points: list[tuple[float, float, str]], size: int = 9) -> None:
    """Labels beside their points, each moved up (greedily, lowest point first) until its box overlaps
    no label placed before it."""
    fig.canvas.draw()          # the axes' final limits, for data -> display coordinates
    to_points = 72 / fig.dpi
    placed = []                # (x, y, width) of each label's box, in points
    for x, y, text in sorted(points, key=lambda p: (p[1], p[0])):
        px, py = (c * to_points for c in ax.transData.transform((x, y)))
        width, lift = 0.6 * size * len(text), 4.0
        while any(abs(px - ox) < max(width, w) and abs(py + lift - oy) < size + 2 for ox, oy, w in placed):
            lift += size + 2
        placed.append((px, py + lift, width))
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, lift), fontsize=size)


def write_junit(results: list[VariantResult], path: Path, board: str) -> None:
    cases = []
    for v in results:
        problems = [f"over budget: {b}" for b in v.budget_failures]
        if not v.bit_exact:
            problems.append("firmware output differs from the TFLite Micro interpreter")
        body = "".join(f"<failure message={quoteattr(p)}/>" for p in problems)
        name = quoteattr(variant_name(v))
        cases.append(f'  <testcase classname="tinycompress.analysis.sweep.{board}" name={name}>'
                     f"{body}</testcase>")
    failures = sum(bool(v.budget_failures) or not v.bit_exact for v in results)
    write_file(path, f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="tinycompress profile" '
                     f'tests="{len(results)}" failures="{failures}">\n' + "\n".join(cases) + "\n</testsuite>\n")
