"""`profile --executor ray` against the local executor: the wall time of one sweep run both ways, on a Ray
head this script starts on 127.0.0.1 with --cpus worker CPUs (tests/test_ray.py's local_head), with the
records checked identical. Run it on a quiet machine: it measures elapsed time.

    .venv/bin/python benchmarks/ray_speedup.py                      # benchmarks/ray_speedup.json
    .venv/bin/python benchmarks/ray_speedup.py --cpus 2 --jobs 2 --model ad_autoencoder \\
        --ranks 4,8,16,32,full

On one machine Ray's workers share the local executor's cores, so the figure is Ray's overhead (the
object store, the project sent back) more than a speed-up; with N worker CPUs across nodes a sweep of V
variants takes about ceil(V / N) variant builds and runs, bounded below by the driver's own work (loading
the model, applying each plan: serial, overlapped with the workers).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

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
               "--jobs", str(args.jobs), *executor]
    start = time.monotonic()
    subprocess.run(command, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    return seconds, json.loads((out / "profile.json").read_text())["variants"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ad_autoencoder", help="a model of tests/modelzoo.py with .keras")
    parser.add_argument("--ranks", default="4,8,16,32,full")
    parser.add_argument("--jobs", type=int, default=2, help="the local executor's --jobs")
    parser.add_argument("--cpus", type=int, default=2, help="the local Ray head's worker CPUs")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tinycompress-ray-speedup-") as tmp:
        local, local_records = sweep(args, Path(tmp) / "local")
        with local_head(args.cpus) as (address, _):
            env = dict(os.environ, RAY_ADDRESS=address)
            remote, remote_records = sweep(args, Path(tmp) / "ray", "--executor", "ray", env=env)
    strip = [[{k: v for k, v in r.items() if k not in PLACES} for r in records]
             for records in (local_records, remote_records)]
    if strip[0] != strip[1]:
        sys.exit("the records differ between the local executor and Ray")
    result = {"version": 1, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "model": args.model, "ranks": args.ranks, "variants": len(local_records),
              "local": {"jobs": args.jobs, "seconds": round(local, 1)},
              "ray": {"worker_cpus": args.cpus, "seconds": round(remote, 1)},
              "speedup": round(local / remote, 2)}
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"| {args.model} --ranks {args.ranks} | local, --jobs {args.jobs}: {local:.1f} s | "
          f"Ray, {args.cpus} worker CPUs: {remote:.1f} s | {local / remote:.2f}x |")


if __name__ == "__main__":
    main()
