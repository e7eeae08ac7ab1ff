"""Benchmarks: instructions per inference and per MAC, flash, SRAM and arena for the MLPerf Tiny
models, the digits CNN, ResNet-8 and MobileNetV2-0.35 on Cortex-M0, M4, M7 and M55, the optimized
kernels beside the portable ones (and CMSIS-NN's, given a checkout in TINYCOMPRESS_CMSIS_NN).

    .venv/bin/python benchmarks/run.py                  # the table, and benchmarks/results.json
    .venv/bin/python benchmarks/run.py --markdown       # the table for benchmarks/README.md
    .venv/bin/python benchmarks/run.py --models arch_resnet8_int8   # re-measure some rows, keep the others

Instructions come from QEMU under -icount (exact and repeatable; instructions, not cycles). The
arena is compared with the TFLite Micro interpreter's for the same .tflite: its whole arena
(activations plus its runtime structures) and its activation part alone.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))     # the model zoo builds the models from fixed seeds

import modelzoo  # noqa: E402
from tinycompress.target.boards import load_board  # noqa: E402
from tinycompress.target.build import build  # noqa: E402
from tinycompress.target.elfsize import elf_sizes  # noqa: E402
from tinycompress.target.emulate import run_firmware  # noqa: E402
from tinycompress.errors import TinyCompressError  # noqa: E402
from tinycompress.pipeline import compile_model, load_inputs  # noqa: E402
from tinycompress.frontend.reference import tflm_arena, tflm_outputs  # noqa: E402
from tinycompress.analysis.report import make_report  # noqa: E402

# The architecture zoo's (tests/zoo_arch.py) MLPerf Tiny ResNet-8 (32x32x3) and MobileNetV2 width 0.35
# on 96x96x3, both int8 I/O with a fixed batch.
MODELS = ["ad_autoencoder", "kws_dscnn", "digits_cnn", "vww_mobilenet", "arch_resnet8_int8",
          "arch_mobilenetv2_int8"]
CORES = {"M0": "microbit", "M4": "mps2-an386", "M7": "mps2-an500", "M55": "mps3-an547"}
INPUTS = 2            # instruction counts do not depend on the data beyond a few instructions
MATRIX_OPS = ("CONV_2D", "FULLY_CONNECTED")


def variants() -> dict[str, dict]:
    kinds = {"optimized": {}, "portable": {"defines": "-DTC_PORTABLE"}}
    if os.environ.get("TINYCOMPRESS_CMSIS_NN"):
        kinds["cmsis-nn"] = {"cmsis_nn": Path(os.environ["TINYCOMPRESS_CMSIS_NN"]).resolve()}
    return kinds


def per_mac(layers, ops) -> float | None:
    chosen = [layer for layer in layers if layer.op in ops and layer.macs]
    macs = sum(layer.macs for layer in chosen)
    return round(sum(layer.instructions for layer in chosen) / macs, 3) if macs else None


def run_measured(project, elf: Path, board, data: Path, reference: bytes):
    """Run a built project's firmware in QEMU on the first INPUTS inputs of `data`: its report, the ELF's
    sizes, and whether its outputs equal TFLite Micro's on the `reference` .tflite (bit for bit)."""
    inputs, _ = load_inputs(data, project.graph, INPUTS)
    inputs = inputs[:INPUTS]
    run = run_firmware(elf, board, inputs, project.graph.output_tensor().nbytes, timeout=600)
    sizes = elf_sizes(elf)
    report = make_report(project, sizes, run)
    return report, sizes, bool((tflm_outputs(reference, inputs) == run.outputs).all())


def measure(model: str, core: str, variant: str, options: dict, cache: Path) -> dict:
    tflite = modelzoo.build(model, cache)
    board = load_board(CORES[core])
    row = {"model": model, "core": core, "board": board.name, "kernels": variant}
    with tempfile.TemporaryDirectory(prefix="tinycompress-bench-") as tmp:
        try:
            project = compile_model(tflite, board, Path(tmp) / "project", cmsis_nn=options.get("cmsis_nn"))
            elf = build(project, defines=options.get("defines", ""))
        except TinyCompressError as exc:
            return {**row, "fits": False, "note": str(exc)}
        report, _, exact = run_measured(project, elf, board, tflite.with_suffix(".npz"), tflite.read_bytes())
    return {**row, "fits": True, "bit_exact": exact, "macs": report.macs, "instructions": report.instructions,
            "instructions_per_mac": report.instructions_per_mac,
            "conv_fc_instructions_per_mac": per_mac(report.layers, MATRIX_OPS),
            "depthwise_instructions_per_mac": per_mac(report.layers, ("DEPTHWISE_CONV_2D",)),
            "flash": report.flash["total"], "sram": report.sram["total"], "arena": report.arena["planned"],
            "tensors_unshared": report.arena["unshared"]}


def table(rows: list[dict], markdown: bool) -> str:
    head = ["model", "core", "kernels", "instructions", "instr/MAC", "conv+FC", "depthwise", "flash KiB",
            "SRAM KiB", "arena B", "TFLM arena B (activations)", "exact"]
    lines = []
    for r in rows:
        if not r["fits"]:
            lines.append([r["model"], r["core"], r["kernels"], "does not fit"] + [""] * (len(head) - 4))
            continue
        lines.append([r["model"], r["core"], r["kernels"], f"{r['instructions']:,.0f}",
                      f"{r['instructions_per_mac']:.2f}",
                      _f(r["conv_fc_instructions_per_mac"]), _f(r["depthwise_instructions_per_mac"]),
                      f"{r['flash'] / 1024:.1f}", f"{r['sram'] / 1024:.1f}", f"{r['arena']:,}",
                      f"{r['tflm_arena']['total']:,} ({r['tflm_arena']['head']:,})",
                      "yes" if r["bit_exact"] else "NO"])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    fmt = lambda cells: "  ".join(str(c).rjust(w) if i >= 3 else str(c).ljust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines])


def _f(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "results.json")
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--cores", nargs="*", default=list(CORES))
    parser.add_argument("--cache", type=Path, default=ROOT / "tests" / ".models")
    args = parser.parse_args()
    rows = []
    for model in args.models:
        arena = tflm_arena(modelzoo.build(model, args.cache).read_bytes())
        for core in args.cores:
            for variant, options in variants().items():
                row = measure(model, core, variant, options, args.cache)
                row["tflm_arena"] = arena
                rows.append(row)
                print(f"{model} {core} {variant}: "
                      f"{row.get('instructions', 'does not fit')}", file=sys.stderr, flush=True)
    rows = _merged(args.json, rows)
    args.json.write_text(json.dumps({"inputs_per_run": INPUTS, "results": rows}, indent=2) + "\n")
    print(table(rows, args.markdown))


def _merged(path: Path, rows: list[dict]) -> list[dict]:
    """The rows just measured, with the stored ones of the models and cores not measured this time, in
    MODELS' and CORES' order: a run of some models updates their rows and keeps the others."""
    key = lambda r: (r["model"], r["core"], r["kernels"])  # noqa: E731
    fresh = {key(r) for r in rows}
    kept = json.loads(path.read_text())["results"] if path.exists() else []
    rows = [r for r in kept if key(r) not in fresh] + rows
    order = {m: i for i, m in enumerate(MODELS)}
    cores, kinds = list(CORES), ["optimized", "portable", "cmsis-nn"]
    return sorted(rows, key=lambda r: (order.get(r["model"], len(order)), cores.index(r["core"]),
                                       kinds.index(r["kernels"]) if r["kernels"] in kinds else 9))


if __name__ == "__main__":
    main()
