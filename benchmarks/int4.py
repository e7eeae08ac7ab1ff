"""INT4 kernels beside int8: instructions per MAC of FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D on a
core, each model compiled as its full-int8 .tflite and after the `int4` step (tinycompress/compress/int4.py),
both runs checked bit for bit against the TFLite Micro interpreter on their own .tflite.

    .venv/bin/python benchmarks/int4.py                 # the table, and benchmarks/int4.json
    .venv/bin/python benchmarks/int4.py --markdown --cores M4 M7

Instructions come from QEMU under -icount (exact and repeatable; instructions, not cycles); an op's figure
is the instructions of its layers over their MACs. `ratio` is int4 over int8: the cost of unpacking the
nibbles inside the kernels. The weights' flash is the ELF's weight arrays (`*_weights`).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))     # the model zoo builds the models from fixed seeds
sys.path.insert(0, str(ROOT / "benchmarks"))

import modelzoo  # noqa: E402
from run import CORES, INPUTS, per_mac, run_measured  # noqa: E402
from tinycompress.target.elfsize import elf_sizes  # noqa: E402
from tinycompress.compress.int4 import Int4Method  # noqa: E402
from tinycompress.compress.plan import Context  # noqa: E402
from tinycompress.frontend.load import read_tflite  # noqa: E402
from tinycompress.pipeline import compile_graph  # noqa: E402
from tinycompress.target.boards import load_board  # noqa: E402
from tinycompress.target.build import build  # noqa: E402

MODELS = ["ad_autoencoder", "kws_dscnn"]     # FULLY_CONNECTED; CONV_2D and DEPTHWISE_CONV_2D
OPS = {"fc": ("FULLY_CONNECTED",), "conv": ("CONV_2D",), "depthwise": ("DEPTHWISE_CONV_2D",)}


def measure(model: str, core: str, weights: str, cache: Path) -> dict:
    tflite = modelzoo.build(model, cache)
    graph = read_tflite(tflite.read_bytes(), model)
    if weights == "int4":
        graph = Int4Method("int4", None).apply_graph(graph, Context())[0]
    board = load_board(CORES[core])
    with tempfile.TemporaryDirectory(prefix="tinycompress-int4-") as tmp:
        project = compile_graph(graph, board, Path(tmp) / "project", tflite.name)
        elf = build(project)
        report, _, exact = run_measured(project, elf, board, tflite.with_suffix(".npz"), graph.source)
        sizes = elf_sizes(elf)
    return {"model": model, "core": core, "weights": weights, "bit_exact": exact,
            "instructions": report.instructions, "macs": report.macs,
            "weight_bytes": sum(size for name, size in sizes.symbols.items() if name.endswith("_weights")),
            **{f"{op}_instructions_per_mac": per_mac(report.layers, ops) for op, ops in OPS.items()}}


def table(rows: list[dict], markdown: bool) -> str:
    head = ["model", "core", "weights", "instructions", "FC", "conv", "depthwise", "weights B", "ratio",
            "exact"]
    by_key = {(r["model"], r["core"], r["weights"]): r for r in rows}
    lines = []
    for r in rows:
        base = by_key.get((r["model"], r["core"], "int8"))
        ratios = [r[f"{op}_instructions_per_mac"] / base[f"{op}_instructions_per_mac"] for op in OPS
                  if base and r[f"{op}_instructions_per_mac"] and base[f"{op}_instructions_per_mac"]]
        lines.append([r["model"], r["core"], r["weights"], f"{r['instructions']:,.0f}",
                      *(_f(r[f"{op}_instructions_per_mac"]) for op in OPS), f"{r['weight_bytes']:,}",
                      "-" if r["weights"] == "int8" else " / ".join(f"{x:.2f}" for x in ratios),
                      "yes" if r["bit_exact"] else "NO"])
    if markdown:
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                         + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
                     for cells in [head, ["-" * w for w in widths]] + lines)


def _f(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "int4.json")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--cores", nargs="*", default=["M4"])
    parser.add_argument("--cache", type=Path, default=ROOT / "tests" / ".models")
    args = parser.parse_args()
    rows = []
    for model in args.models:
        for core in args.cores:
            for weights in ("int8", "int4"):
                rows.append(measure(model, core, weights, args.cache))
                print(f"{model} {core} {weights}: {rows[-1]['instructions']:,}", file=sys.stderr, flush=True)
    args.json.write_text(json.dumps({"inputs_per_run": INPUTS, "results": rows}, indent=2) + "\n")
    print(table(rows, args.markdown))


if __name__ == "__main__":
    main()
