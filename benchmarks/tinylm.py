"""tinylm (examples/tinylm) compressed and generating: the profile of its variants (flash, SRAM, instructions
and perplexity from the firmware's logits, on the M4) and the instructions per generated token on the M4
and the M55 (the full window, the key/value-cached step model, compressed variants), every variant and every
step checked bit for bit against TFLite Micro.

    .venv/bin/python benchmarks/tinylm.py              # benchmarks/tinylm.json and the tables
    .venv/bin/python benchmarks/tinylm.py --part generate   # re-measure one part, keep the other
    .venv/bin/python benchmarks/tinylm.py --markdown   # the tables for README.md, from tinylm.json

Every figure is `tinycompress profile`'s or `tinycompress generate --verify`'s own (--json): QEMU under
-icount (instructions, exact and repeatable), flash and SRAM from the ELF, perplexity per byte over all 200
held-out windows x 64 positions. Every compressed variant is fine-tuned on examples/tinylm/tinylm_train.npz
(next bytes of 8,192 training windows) for EPOCHS epochs. Generation is greedy, TOKENS bytes after PROMPT;
its cached form needs examples/tinylm/tinylm_step.tflite, which examples/tinylm/step.py writes (run here
when absent).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINYLM = ROOT / "examples" / "tinylm"
RESULTS = Path(__file__).with_name("tinylm.json")
CORES = {"M4": "mps2-an386", "M55": "mps3-an547"}
PROMPT, TOKENS, EPOCHS = "def ", 16, 10
VARIANTS = ("full,rank:16,rank:8,rank:logits=16,int4,embedding:row-int8,embedding:lowrank:16,"
            "embedding:pq:2,embedding:pq:8x16,embedding:hash:128,embedding:kronecker,"
            "int4+embedding:pq:8x16,rank:16+int4+embedding:pq:8x16")
# (name, model, extra arguments): the full window, the cached step model, compressed full-window variants
FORMS = [
    ("full window", "tinylm.keras", []),
    ("cached", "tinylm_step.tflite", ["--cache"]),
    ("rank:8 + pq:2", "tinylm.keras", ["--compress", "rank:8", "--embedding", "pq:2"]),
    ("int4 + pq:8x16", "tinylm.keras", ["--compress", "int4", "--embedding", "pq:8x16"]),
]


def tinycompress(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "tinycompress", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"tinycompress {' '.join(args)} failed (exit {proc.returncode}): "
                         f"{proc.stderr.strip()}")


def profile() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.json"
        tinycompress("profile", str(TINYLM / "tinylm.keras"), "--board", CORES["M4"], "--variants", VARIANTS,
                     "--data", str(TINYLM / "tinylm_heldout.npz"), "--calibration",
                     str(TINYLM / "tinylm_calibration.npz"), "--train", str(TINYLM / "tinylm_train.npz"),
                     "--epochs", str(EPOCHS), "--json", str(out))
        records = json.loads(out.read_text())["variants"]
    keep = ("variant", "flash", "sram", "instructions", "firmware", "host_float", "host_int8", "bit_exact",
            "embeddings")
    return [{k: r[k] for k in keep if k in r} for r in records]


def generate(model: Path, board: str, extra: list[str]) -> dict:
    tuned = ["--train", str(TINYLM / "tinylm_train.npz"), "--epochs", str(EPOCHS)] \
        if "--compress" in extra else []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "generate.json"
        tinycompress("generate", str(model), "--board", board, "--calibration",
                     str(TINYLM / "tinylm_calibration.npz"), "--prompt", PROMPT, "--tokens", str(TOKENS),
                     "--verify", "--json", str(out), *extra, *tuned)
        return json.loads(out.read_text())


def generation() -> list[dict]:
    if not (TINYLM / "tinylm_step.tflite").exists():
        subprocess.run([sys.executable, str(TINYLM / "step.py")], check=True, capture_output=True)
    rows = []
    for core, board in CORES.items():
        for name, model, extra in FORMS:
            doc = generate(TINYLM / model, board, extra)
            g, verification = doc["generation"], doc["generation"]["verification"]
            copies = (g["cache"] or {}).get("copy_instructions")
            rows.append({"core": core, "board": board, "form": name, "continuation": g["continuation"],
                         "instructions_per_token": g["instructions_per_token"],
                         "copy_instructions_per_token": sum(copies) / len(copies) if copies else None,
                         "flash": doc["flash"], "sram": doc["sram"],
                         "bit_exact": verification["steps"] == verification["matching"]})
            print(f"{core:4s} {name:16s} {rows[-1]['instructions_per_token']:>12,.0f} per token "
                  f"{doc['flash']['total']:>8,} B flash  {g['continuation']!r}", flush=True)
    return rows


def markdown(head: list[str], rows: list[list[str]]) -> str:
    """A table whose first and last columns are text, the others numbers (right-aligned)."""
    rule = ["---"] + ["---:"] * (len(head) - 2) + ["---"]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [head, rule, *rows])


def profile_table(rows: list[dict]) -> str:
    full = rows[0]
    head = ["variant", "flash", "vs full", "weights", "embedding", "SRAM", "instructions", "ppl firmware",
            "ppl float", "ppl int8", "vs full int8", "exact"]
    cells = []
    for r in rows:
        embedding = sum(e.get("bytes", 0) for e in r.get("embeddings") or [])
        cells.append([f"`{r['variant']}`", f"{r['flash']['total']:,}",
                      f"{full['flash']['total'] / r['flash']['total']:.2f}x", f"{r['flash']['weights']:,}",
                      f"{embedding:,}" if embedding else "", f"{r['sram']['total']:,}",
                      f"{r['instructions']:,.0f}",
                      f"{r['firmware']:.3f}", f"{r['host_float']:.3f}", f"{r['host_int8']:.3f}",
                      f"{100 * (r['firmware'] / full['firmware'] - 1):+.1f} %",
                      "yes" if r["bit_exact"] else "NO"])
    return markdown(head, cells)


def generation_table(rows: list[dict]) -> str:
    head = ["core, form", "instructions per token", "+ copies", "full window / this", "flash total",
            "SRAM total", "exact", "text"]
    full = {r["core"]: r["instructions_per_token"] for r in rows if r["form"] == "full window"}
    cells = []
    for r in rows:
        copies = r["copy_instructions_per_token"]
        cost = r["instructions_per_token"] + (copies or 0)
        cells.append([f"{r['core']}, {r['form']}", f"{r['instructions_per_token']:,.0f}",
                      f"{copies:,.0f}" if copies else "", f"{full[r['core']] / cost:.2f}x",
                      f"{r['flash']['total']:,}", f"{r['sram']['total']:,}",
                      "yes" if r["bit_exact"] else "NO", f"`{r['continuation']!r}`"])
    return markdown(head, cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the tables from tinylm.json")
    parser.add_argument("--part", choices=("profile", "generate", "both"), default="both")
    args = parser.parse_args()
    if not args.markdown:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results.update(prompt=PROMPT, tokens=TOKENS, epochs=EPOCHS, variants=VARIANTS)
        for part, measure in (("profile", profile), ("generate", generation)):
            if args.part in (part, "both"):
                results[part] = measure()
                RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    results = json.loads(RESULTS.read_text())
    for part, table in (("profile", profile_table), ("generate", generation_table)):
        if part in results:
            print(table(results[part]) + "\n")


if __name__ == "__main__":
    main()
