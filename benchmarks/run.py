"""Benchmarks: instructions per inference and per MAC, flash, and the SRAM an inference uses for the
MLPerf Tiny models, the digits MLP and CNN, ResNet-8 and MobileNetV2-0.35 on Cortex-M0, M4, M7 and M55,
the optimized kernels beside the portable ones and CMSIS-NN's (given a checkout in TINYCOMPRESS_CMSIS_NN),
and the SRAM beside TFLite Micro's.

    .venv/bin/python benchmarks/run.py                  # the tables, and benchmarks/results.json
    .venv/bin/python benchmarks/run.py --markdown       # the tables for benchmarks/README.md
    .venv/bin/python benchmarks/run.py --models arch_resnet8_int8   # re-measure some rows, keep the others
    .venv/bin/python benchmarks/run.py --print --markdown           # the tables of results.json, no run

Instructions come from QEMU under -icount (exact and repeatable; instructions, not cycles). SRAM used is
the arena, the peak stack of the inference (the firmware repaints the free stack before each one and
reports how deep it went below the harness's call: the profile's stack_inference) and the static data
(.data and .bss other than the arena and the stack reservation). TFLite Micro's is its interpreter's arena
for the same .tflite (its whole arena: activations plus its runtime structures) plus its kernels' stack:
the peak stack of the cmsis-nn firmware on the same core, since CMSIS-NN's kernels are what TFLite Micro
runs on Arm; without a CMSIS-NN checkout (and no stored cmsis-nn row) that figure stays empty.
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
MODELS = ["ad_autoencoder", "kws_dscnn", "digits_mlp", "digits_cnn", "vww_mobilenet", "arch_resnet8_int8",
          "arch_mobilenetv2_int8"]
CORES = {"M0": "microbit", "M4": "mps2-an386", "M7": "mps2-an500", "M55": "mps3-an547"}
INPUTS = 2            # instruction counts do not depend on the data beyond a few instructions
MATRIX_OPS = ("CONV_2D", "FULLY_CONNECTED")
# Issue 19: on the M4, these models' optimized kernels within TARGET_RATIO of CMSIS-NN's instructions and of
# TFLite Micro's SRAM (arena plus its kernels' stack).
TARGET_MODELS = ["kws_dscnn", "ad_autoencoder", "digits_mlp", "digits_cnn", "vww_mobilenet"]
TARGET_CORE, TARGET_RATIO = "M4", 0.5
NO_CMSIS_NN = ("TINYCOMPRESS_CMSIS_NN is not set: no cmsis-nn rows are measured, so the instructions "
               "against CMSIS-NN and TFLite Micro's kernel stack come only from stored cmsis-nn rows, else "
               "stay empty")


def variants() -> dict[str, dict]:
    kinds = {"optimized": {}, "portable": {"defines": "-DTC_PORTABLE"}}
    if os.environ.get("TINYCOMPRESS_CMSIS_NN"):
        kinds["cmsis-nn"] = {"cmsis_nn": Path(os.environ["TINYCOMPRESS_CMSIS_NN"]).resolve()}
    return kinds


def per_mac(layers, ops) -> float | None:
    """Instructions per MAC of the layers of `ops`, leaving out the layers of chains run by patches (measured
    as one: codegen/patches.py)."""
    chosen = [layer for layer in layers if layer.op in ops and layer.macs and "patch" not in layer.scheme]
    macs = sum(layer.macs for layer in chosen)
    return round(sum(layer.instructions for layer in chosen) / macs, 3) if macs else None


def run_measured(project, elf: Path, board, data: Path, reference: bytes):
    """Run a built project's firmware in QEMU on the first INPUTS inputs of `data`: its report, the run's
    profile, and whether its outputs equal TFLite Micro's on the `reference` .tflite (bit for bit)."""
    inputs, _ = load_inputs(data, project.graph, INPUTS)
    inputs = inputs[:INPUTS]
    run = run_firmware(elf, board, inputs, project.graph.output_tensor().nbytes, timeout=600)
    report = make_report(project, elf_sizes(elf), run)
    return report, run, bool((tflm_outputs(reference, inputs) == run.outputs).all())


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
        report, run, exact = run_measured(project, elf, board, tflite.with_suffix(".npz"),
                                          tflite.read_bytes())
    # SRAM used: the arena's symbol, the inference's stack and the rest of .data and .bss (report.sram's
    # "other"; its "total" holds the whole stack reservation instead).
    sram = report.sram["arena"] + run.stack_inference + report.sram["other"]
    return {**row, "fits": True, "bit_exact": exact, "macs": report.macs, "instructions": report.instructions,
            "instructions_per_mac": report.instructions_per_mac,
            "conv_fc_instructions_per_mac": per_mac(report.layers, MATRIX_OPS),
            "depthwise_instructions_per_mac": per_mac(report.layers, ("DEPTHWISE_CONV_2D",)),
            "flash": report.flash["total"], "sram": report.sram["total"], "arena": report.arena["planned"],
            "tensors_unshared": report.arena["unshared"], "stack_peak": run.stack_inference,
            "static_data": report.sram["other"], "sram_used": sram}


def compare(rows: list[dict]) -> list[dict]:
    """Each measured row with its figures against the cmsis-nn row of the same model and core: instructions
    over CMSIS-NN's, and TFLite Micro's SRAM (its interpreter's arena plus the cmsis-nn firmware's peak
    stack, None without a cmsis-nn row that measured it) with ours over it."""
    cmsis = {(r["model"], r["core"]): r for r in rows if r["kernels"] == "cmsis-nn" and r["fits"]}
    out = []
    for r in rows:
        if not r["fits"]:
            out.append(r)
            continue
        theirs = cmsis.get((r["model"], r["core"]), {})
        stack = theirs.get("stack_peak")
        tflm = r["tflm_arena"]["total"] + stack if stack is not None else None
        out.append({**r, "cmsis_nn_instructions": theirs.get("instructions"),
                    "instructions_vs_cmsis_nn": _ratio(r["instructions"], theirs.get("instructions")),
                    "tflm_stack": stack, "tflm_sram": tflm, "sram_vs_tflm": _ratio(r.get("sram_used"), tflm)})
    return out


def _ratio(ours, theirs) -> float | None:
    return None if ours is None or not theirs else round(ours / theirs, 3)


HEAD = ["model", "core", "kernels", "instructions", "vs CMSIS-NN", "instr/MAC", "conv+FC", "depthwise",
        "flash KiB", "arena B", "stack B", "static B", "SRAM used B", "TFLM arena B (activations)",
        "TFLM stack B", "TFLM SRAM B", "vs TFLM", "exact"]


def table(rows: list[dict], markdown: bool) -> str:
    """Every row's figures side by side: ours, CMSIS-NN's in the same firmware, TFLite Micro's SRAM."""
    lines = []
    for r in rows:
        if not r["fits"]:
            lines.append([r["model"], r["core"], r["kernels"], "does not fit"] + [""] * (len(HEAD) - 4))
            continue
        lines.append([r["model"], r["core"], r["kernels"], f"{r['instructions']:,.0f}",
                      _f(r.get("instructions_vs_cmsis_nn")), f"{r['instructions_per_mac']:.2f}",
                      _f(r["conv_fc_instructions_per_mac"]), _f(r["depthwise_instructions_per_mac"]),
                      f"{r['flash'] / 1024:.1f}", f"{r['arena']:,}", _n(r.get("stack_peak")),
                      _n(r.get("static_data")), _n(r.get("sram_used")),
                      f"{r['tflm_arena']['total']:,} ({r['tflm_arena']['head']:,})", _n(r.get("tflm_stack")),
                      _n(r.get("tflm_sram")), _f(r.get("sram_vs_tflm")), "yes" if r["bit_exact"] else "NO"])
    return render(HEAD, lines, markdown, left=3)


def targets(rows: list[dict], markdown: bool) -> str:
    """Issue 19's targets: on the M4, each target model's optimized kernels against CMSIS-NN's instructions
    and TFLite Micro's SRAM, with whether each ratio is within TARGET_RATIO."""
    within = f"<= {TARGET_RATIO}"
    head = ["model", "instructions ours / CMSIS-NN", "ratio", within, "SRAM used B ours / TFLM", "ratio",
            within]
    found = {r["model"]: r for r in rows if r["core"] == TARGET_CORE and r["kernels"] == "optimized"}
    lines = []
    for model in TARGET_MODELS:
        r = found.get(model)
        if r is None or not r["fits"]:
            lines.append([model, "not measured" if r is None else "does not fit"] + [""] * (len(head) - 2))
            continue
        theirs = r.get("cmsis_nn_instructions")
        lines.append([model, f"{r['instructions']:,.0f} / {_n(theirs)}",
                      _f(r.get("instructions_vs_cmsis_nn"), 3), _met(r["instructions"], theirs),
                      f"{_n(r.get('sram_used'))} / {_n(r.get('tflm_sram'))}", _f(r.get("sram_vs_tflm"), 3),
                      _met(r.get("sram_used"), r.get("tflm_sram"))])
    return render(head, lines, markdown, left=1)


def _met(ours, theirs) -> str:
    if ours is None or theirs is None:
        return "-"
    return "met" if ours <= TARGET_RATIO * theirs else "not met"


def render(head: list[str], lines: list[list[str]], markdown: bool, left: int) -> str:
    """Markdown, or plain columns with the first `left` aligned left and the figures right."""
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    fmt = lambda cells: "  ".join(str(c).rjust(w) if i >= left else str(c).ljust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines])


def _f(x, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _n(x) -> str:
    return "-" if x is None else f"{x:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "results.json")
    parser.add_argument("--markdown", action="store_true", help="Print the tables as Markdown.")
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="Measure nothing: print the tables of the rows stored in --json.")
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--cores", nargs="*", default=list(CORES))
    parser.add_argument("--cache", type=Path, default=ROOT / "tests" / ".models")
    args = parser.parse_args()
    rows = []
    if not args.print_only:
        if "cmsis-nn" not in variants():
            print(NO_CMSIS_NN, file=sys.stderr)
        for model in args.models:
            arena = tflm_arena(modelzoo.build(model, args.cache).read_bytes())
            for core in args.cores:
                for variant, options in variants().items():
                    row = measure(model, core, variant, options, args.cache)
                    row["tflm_arena"] = arena
                    rows.append(row)
                    print(f"{model} {core} {variant}: {row.get('instructions', 'does not fit')} "
                          f"instructions, {row.get('sram_used', '-')} B of SRAM", file=sys.stderr, flush=True)
    rows = compare(_merged(args.json, rows))
    if not args.print_only:
        args.json.write_text(json.dumps({"inputs_per_run": INPUTS, "results": rows}, indent=2) + "\n")
    print(table(rows, args.markdown))
    print(f"\nIssue 19 targets ({TARGET_CORE}, optimized kernels, ratio at most {TARGET_RATIO}):\n")
    print(targets(rows, args.markdown))


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
