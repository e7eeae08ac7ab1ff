"""Compression plans on the MLPerf Tiny DS-CNN and autoencoder and the digits CNN: one table per model of
flash, SRAM, instructions and the metric from the firmware's own outputs in QEMU, each variant checked bit
for bit against TFLite Micro on its own .tflite.

    .venv/bin/python benchmarks/plans.py              # benchmarks/plans.json and the tables
    .venv/bin/python benchmarks/plans.py --markdown   # the tables for README.md, from plans.json

The models and their evaluation sets come from the seeded model zoo (tests/modelzoo.py); every variant is
fine-tuned for 3 epochs on the zoo's training set; every figure is `tinycompress profile`'s own, on the M4
(mps2-an386).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import modelzoo  # noqa: E402

MODELS = ["kws_dscnn", "ad_autoencoder", "digits_cnn"]
VARIANTS = "full,int4,prune:0.5,prune:0.5+int4,rank:16+int4,cluster:16"
BOARD = "mps2-an386"
EPOCHS = 3
RESULTS = Path(__file__).with_name("plans.json")


def profile(model: str, cache: Path) -> list[dict]:
    tflite = modelzoo.build(model, cache)
    keras, data = tflite.with_suffix(".keras"), tflite.with_suffix(".npz")
    train = tflite.with_name(f"{model}_train.npz")   # fine-tuning after the steps (labels, or the input)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.json"
        subprocess.run([sys.executable, "-m", "tinycompress", "profile", str(keras), "--board", BOARD,
                        "--variants", VARIANTS, "--data", str(data), "--calibration", str(data),
                        "--train", str(train), "--epochs", str(EPOCHS), "--json", str(out)], check=True)
        records = json.loads(out.read_text())["variants"]
    keep = ("variant", "flash", "sram", "instructions", "metric", "firmware", "host_float", "host_int8",
            "bit_exact")
    return [{k: r[k] for k in keep if k in r} for r in records]


def markdown(results: dict) -> str:
    lines = []
    for model, rows in results.items():
        metric = rows[0]["metric"]
        lines += [f"**{model}** (M4, {metric} from the firmware's outputs)", "",
                  f"| variant | flash | weights | SRAM | instructions | {metric} | bit-exact |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            value = f"{100 * r['firmware']:.1f} %" if metric == "accuracy" else f"{r['firmware']:.4g}"
            lines.append(f"| `{r['variant']}` | {r['flash']['total']:,} | {r['flash']['weights']:,} | "
                         f"{r['sram']['total']:,} | {r['instructions']:,.0f} | {value} | "
                         f"{'yes' if r['bit_exact'] else 'NO'} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print the tables from plans.json")
    parser.add_argument("--models", nargs="*", default=MODELS)
    args = parser.parse_args()
    if not args.markdown:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        cache = ROOT / "tests" / ".models"
        for model in args.models:
            results[model] = profile(model, cache)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(json.loads(RESULTS.read_text())))


if __name__ == "__main__":
    main()
