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
VARIANTS = "full,int4,prune:0.5,prune:0.5+int4,rank:16+int4,cluster:16,auto"
# auto's budgets: a flash budget no fixed variant above meets within the metric floor, where one exists
BUDGETS = {"kws_dscnn": ["--max-flash", "28000", "--min-accuracy", "90"],
           "ad_autoencoder": ["--max-flash", "100000", "--max-error", "0.55"],
           "digits_cnn": ["--max-flash", "18700", "--min-accuracy", "88"]}
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
                        "--train", str(train), "--epochs", str(EPOCHS), *BUDGETS[model], "--json", str(out)],
                       check=True)
        records = json.loads(out.read_text())["variants"]
    keep = ("variant", "plan", "flash", "sram", "instructions", "metric", "firmware", "host_float",
            "host_int8", "bit_exact", "budget_failures")
    return [{k: r[k] for k in keep if k in r} for r in records]


def markdown(results: dict) -> str:
    lines = []
    for model, rows in results.items():
        metric = rows[0]["metric"]
        budgets = " ".join(BUDGETS.get(model, []))
        lines += [f"**{model}** (M4, {metric} from the firmware's outputs; budgets `{budgets}`)", "",
                  f"| variant | flash | weights | SRAM | instructions | {metric} | bit-exact | budgets |",
                  "|---|---:|---:|---:|---:|---:|---|---|"]
        for r in rows:
            value = f"{100 * r['firmware']:.1f} %" if metric == "accuracy" else f"{r['firmware']:.4g}"
            name = f"`{r['variant']}`" + (f": `{r['plan']}`" if r["variant"] == "auto" else "")
            failed = r.get("budget_failures") or []
            verdict = "over " + ", ".join(failed) if failed else "met"
            lines.append(f"| {name} | {r['flash']['total']:,} | {r['flash']['weights']:,} | "
                         f"{r['sram']['total']:,} | {r['instructions']:,.0f} | {value} | "
                         f"{'yes' if r['bit_exact'] else 'NO'} | {verdict} |")
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
        for model in args.models:     # each model's table kept as soon as it is measured
            results[model] = profile(model, cache)
            RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(json.loads(RESULTS.read_text())))


if __name__ == "__main__":
    main()
