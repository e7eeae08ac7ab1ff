"""The cycle estimate on the NUCLEO-L4R5ZI (Cortex-M4 at 120 MHz, the MLPerf Tiny reference board) for the
MLPerf Tiny models of the zoo: our kernels and CMSIS-NN v7.0.0's (TINYCOMPRESS_CMSIS_NN), one inference
each, traced on the board's stand-in mps2-an386 (tinycompress/analysis/cycles.py). Writes cycles.json;
benchmarks/README.md compares it with the published MLPerf Tiny figures."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import modelzoo  # noqa: E402
from tinycompress.analysis.cycles import estimate_cycles  # noqa: E402
from tinycompress.pipeline import compile_model, load_inputs  # noqa: E402
from tinycompress.target.boards import load_board  # noqa: E402
from tinycompress.target.build import build  # noqa: E402

MODELS = ["kws_dscnn", "ad_autoencoder", "vww_mobilenet"]
# Published MLPerf Tiny latencies on the NUCLEO-L4R5ZI at 120 MHz: the performance run's median throughput
# (results.txt of each benchmark), as milliseconds per inference. Only the v1.0 OctoML submission states
# CMSIS-NN; the v0.5 reference submission (TFLite Micro v2.3.1 on Mbed OS) names no kernel library.
PUBLISHED = {
    "mlperf-tiny-v1.0-octoml-microtvm-cmsis-nn": {
        "source": "https://github.com/mlcommons/tiny_results_v1.0/tree/main/closed/OctoML/results/"
                  "microtvm_cmsis_nn/NUCLEO_L4R5ZI (*/performance/results.txt)",
        "stack": "microTVM with CMSIS-NN 51263182, Zephyr 2.7.3", "cmsis_nn": True,
        "throughput": {"kws_dscnn": 10.019, "vww_mobilenet": 3.320, "ad_autoencoder": 116.212}},
    "mlperf-tiny-v0.5-reference": {
        "source": "https://github.com/mlcommons/tiny_results_v0.5/tree/main/closed/reference/results/"
                  "Nucleo-L4R5ZI (*/performance/results.txt)",
        "stack": "TFLite Micro v2.3.1, Mbed OS bare metal (kernel library not stated)", "cmsis_nn": None,
        "throughput": {"kws_dscnn": 5.497, "vww_mobilenet": 1.665, "ad_autoencoder": 99.487}},
}


def comparison(rows: list[dict]) -> list[dict]:
    """Our CMSIS-NN build's estimate against each published latency: estimate / published."""
    out = []
    for row in rows:
        if row["kernels"] != "cmsis-nn" or row["board"] != "nucleo-l4r5zi":
            continue
        for name, pub in PUBLISHED.items():
            if row["model"] in pub["throughput"]:
                ms = 1e3 / pub["throughput"][row["model"]]
                out.append({"model": row["model"], "published": name, "published_ms": round(ms, 3),
                            "estimate_ms": row["latency_ms"], "ratio": round(row["latency_ms"] / ms, 3)})
    return out


def measure(model: str, kernels: str, cache: Path, board_name: str) -> dict:
    board = load_board(board_name)
    emulated = load_board(board.emulated_by)
    tflite = modelzoo.build(model, cache)
    cmsis = Path(os.environ["TINYCOMPRESS_CMSIS_NN"]) if kernels == "cmsis-nn" else None
    with tempfile.TemporaryDirectory(prefix="tinycompress-cycles-") as tmp:
        project = compile_model(tflite, emulated, Path(tmp) / "project", cmsis_nn=cmsis)
        elf = build(project)
        inputs, _ = load_inputs(tflite.with_suffix(".npz"), project.graph, 1)
        e = estimate_cycles(elf, emulated, board, inputs[0], timeout=3600)
    return {"model": model, "kernels": kernels, "board": board.name, "emulated_by": emulated.name,
            "clock_hz": board.clock_hz, "instructions": e.instructions, "cycles": e.cycles,
            "cycles_per_instruction": round(e.cycles / e.instructions, 3),
            "latency_ms": round(e.latency_ms, 3), "per_layer_cycles": e.layers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "cycles.json")
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--board", default="nucleo-l4r5zi")
    parser.add_argument("--cache", type=Path, default=ROOT / "tests" / ".models")
    args = parser.parse_args()
    kinds = ["optimized"] + (["cmsis-nn"] if os.environ.get("TINYCOMPRESS_CMSIS_NN") else [])
    rows = json.loads(args.json.read_text())["rows"] if args.json.is_file() else []
    write(args.json, rows)                  # --models with no name: only the comparison is rewritten
    for model in args.models:
        for kernels in kinds:
            row = measure(model, kernels, args.cache, args.board)
            print(json.dumps({k: v for k, v in row.items() if k != "per_layer_cycles"}), flush=True)
            rows = [r for r in rows if (r["model"], r["kernels"], r["board"]) != (model, kernels, args.board)]
            rows.append(row)
            write(args.json, rows)


def write(path: Path, rows: list[dict]) -> None:
    path.write_text(json.dumps({"published": PUBLISHED, "comparison": comparison(rows), "rows": rows},
                               indent=1) + "\n")


if __name__ == "__main__":
    main()
