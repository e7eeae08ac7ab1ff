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
from .sweep import VariantResult

PROFILE_VERSION = 1


def _metric(v: VariantResult, value: float | None) -> str:
    if value is None:          # no float model: the sweep started from a .tflite
        return "-"
    return f"{100 * value:.2f} %" if v.metric == "accuracy" else f"{value:.4g}"


def _embedding(v: VariantResult) -> str:
    """The embedding tables' flash and how much smaller than as int8."""
    stored, table = sum(e["bytes"] for e in v.embeddings), sum(e["table_bytes"] for e in v.embeddings)
    return f"{stored / 1024:.1f} KiB ({table / max(stored, 1):.1f}x)"


def _label(v: VariantResult) -> str:
    return f"rank {v.variant}" if v.kind == "rank" else f"embedding {v.variant}"


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
        if v.variant == "full" or v.kind != "rank":
            if v.budget_failures:
                lines.append(f"  {_label(v)} over budget: {', '.join(v.budget_failures)}")
            continue
        factorized = [d for d in v.factorization if d["method"] != "kept"]
        kept = [d for d in v.factorization if d["method"] == "kept"]
        methods = sorted({d["method"] for d in factorized})
        text = f"  rank {v.variant}: {len(factorized)} layers factorized ({', '.join(methods) or '-'})"
        if kept:
            text += "; kept as they are: " + ", ".join(
                d["layer"] + (" (not smaller)" if d["note"] else "") for d in kept)
        lines.append(text)
        if v.budget_failures:
            lines.append(f"    over budget: {', '.join(v.budget_failures)}")
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


def write_pareto(results: list[VariantResult], path: Path, title: str) -> None:
    """Flash against the metric and instructions against the metric, one point per variant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    metric = results[0].metric
    for ax, (key, label) in zip(axes, [("flash", "flash (KiB)"), ("instructions", "instructions per inference")]):
        points = sorted((v.flash["total"] / 1024 if key == "flash" else v.instructions,
                         100 * v.firmware if metric == "accuracy" else v.firmware, v) for v in results)
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color="tab:blue")
        for x, y, v in points:
            ax.annotate(v.variant, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=9)
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy on the firmware (%)" if metric == "accuracy" else "MSE on the firmware")
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=110)
    plt.close(fig)
    write_file(path, image.getvalue())


def write_junit(results: list[VariantResult], path: Path, board: str) -> None:
    cases = []
    for v in results:
        problems = [f"over budget: {b}" for b in v.budget_failures]
        if not v.bit_exact:
            problems.append("firmware output differs from the TFLite Micro interpreter")
        body = "".join(f"<failure message={quoteattr(p)}/>" for p in problems)
        cases.append(f'  <testcase classname="tinycompress.analysis.sweep.{board}" name={quoteattr(_label(v))}>'
                     f"{body}</testcase>")
    failures = sum(bool(v.budget_failures) or not v.bit_exact for v in results)
    write_file(path, f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="tinycompress profile" '
                     f'tests="{len(results)}" failures="{failures}">\n' + "\n".join(cases) + "\n</testsuite>\n")
