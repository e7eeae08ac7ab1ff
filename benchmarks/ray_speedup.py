"""`profile --executor ray` against the local executor: the wall time of one sweep run locally with each
--jobs, and on a Ray head this script starts on 127.0.0.1 with each --cpus worker CPUs (tests/test_ray.py's
local_head), the records checked identical. Run it on a quiet machine: it measures elapsed time.

    .venv/bin/python benchmarks/ray_speedup.py                      # benchmarks/ray_speedup.json
    .venv/bin/python benchmarks/ray_speedup.py --jobs 1,2 --cpus 1,2 --model ad_autoencoder \\
        --ranks 4,8,16,32,full

On one machine Ray's workers share the cores of the driver and of the local executor, so the figures show
Ray's overhead (the object store, the project sent back) as much as a speed-up. Across nodes, a sweep of V
variants on N worker CPUs takes about the driver's start (loading the model, converting the uncompressed
reference) plus ceil(V / N) variants' work: the workers apply the plans of the Keras model themselves.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import modelzoo  # noqa: E402
from test_ray import PLACES, local_head  # noqa: E402

RESULTS = Path(__file__).with_name("ray_speedup.json")


def sweep(args, out: Path, *executor: str, env: dict | None = None) -> tuple[float, list[dict]]:
    """Seconds the sweep took, and its records."""
    tflite = modelzoo.build(args.model, ROOT / "tests" / ".models")
    command = [sys.executable, "-m", "tinycompress", "profile", str(tflite.with_suffix(".keras")),
               "--ranks", args.ranks, "--data", str(tflite.with_suffix(".npz")),
               "--calibration", str(tflite.with_name(f"{args.model}_train.npz")), "-o", str(out),
               *executor]
    start = time.monotonic()
    subprocess.run(command, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    return seconds, json.loads((out / "profile.json").read_text())["variants"]


def fit_workers(runs: list[dict], variants: int) -> dict | None:
    """T(N) = start + ceil(V / N) * per variant, least squares over the Ray runs (two or more worker counts):
    the driver's start (loading the model, the reference's conversion, Ray's) and one variant's work on a
    worker, and what they project for larger sweeps and clusters. The first variant (the uncompressed
    model) counts as one like the others."""
    if len({r["worker_cpus"] for r in runs}) < 2:
        return None
    rounds = np.array([math.ceil(variants / r["worker_cpus"]) for r in runs], float)
    seconds = np.array([r["seconds"] for r in runs], float)
    (start, per), *_ = np.linalg.lstsq(np.stack([np.ones_like(rounds), rounds], 1), seconds, rcond=None)
    projected = [(v, n, round(start + math.ceil(v / n) * per)) for v in (variants, 100) for n in (1, 8, 32)]
    return {"start_seconds": round(float(start), 1), "variant_seconds": round(float(per), 1),
            "projected": projected}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ad_autoencoder", help="a model of tests/modelzoo.py with .keras")
    parser.add_argument("--ranks", default="4,8,16,32,full")
    parser.add_argument("--jobs", default="1,2", help="the local executor's --jobs, each measured")
    parser.add_argument("--cpus", default="1,2", help="the local Ray head's worker CPUs, each measured")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs, records = [], []
    with tempfile.TemporaryDirectory(prefix="tinycompress-ray-speedup-") as tmp:
        modelzoo.build(args.model, ROOT / "tests" / ".models")     # built before any clock starts
        for jobs in map(int, args.jobs.split(",")):
            seconds, found = sweep(args, Path(tmp) / f"local{jobs}", "--jobs", str(jobs))
            runs.append({"executor": "local", "jobs": jobs, "seconds": round(seconds, 1)})
            records.append(found)
        for cpus in map(int, args.cpus.split(",")):
            with local_head(cpus) as (address, _):
                env = dict(os.environ, RAY_ADDRESS=address)
                seconds, found = sweep(args, Path(tmp) / f"ray{cpus}", "--executor", "ray", env=env)
            runs.append({"executor": "ray", "worker_cpus": cpus, "seconds": round(seconds, 1)})
            records.append(found)
    strip = [[{k: v for k, v in r.items() if k not in PLACES} for r in found] for found in records]
    if any(s != strip[0] for s in strip):
        sys.exit("the records differ between the runs")
    base = runs[0]["seconds"]
    for run in runs:
        run["speedup"] = round(base / run["seconds"], 2)
    fit = fit_workers([r for r in runs if r["executor"] == "ray"], len(records[0]))
    result = {"version": 2, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "model": args.model, "ranks": args.ranks, "variants": len(records[0]),
              "baseline": "the first run", "runs": runs, "fit": fit}
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{args.model} --ranks {args.ranks} ({len(records[0])} variants, {os.cpu_count()} cores)\n")
    print("| executor | workers | seconds | speed-up |\n|---|---:|---:|---:|")
    for run in runs:
        print(f"| {run['executor']} | {run.get('jobs', run.get('worker_cpus'))} | {run['seconds']:.1f} | "
              f"{run['speedup']:.2f}x |")
    if fit:
        print(f"\nRay: T(N) = {fit['start_seconds']} s + ceil(V / N) x {fit['variant_seconds']} s; "
              + ", ".join(f"V = {v}, N = {n}: {t} s" for v, n, t in fit["projected"]))


if __name__ == "__main__":
    main()
