"""Fuzz the pipeline with N seeded mutants of the zoo's models and report how each ended.

    PYTHONPATH=. .venv/bin/python scripts/fuzz.py [N] [--start SEED] [--save]

Every mutant must end in a clean refusal or a verified run (tests/fuzzing.py); --save keeps each failure
as a recipe in tests/fuzz_corpus/, which tests/test_fuzz.py replays.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fuzzing  # noqa: E402
import modelzoo  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=1000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--save", action="store_true", help="keep failures in tests/fuzz_corpus/")
    args = parser.parse_args()
    sources = {m: modelzoo.build(m).read_bytes() for m in fuzzing.MODELS}
    counts, failures, began = collections.Counter(), [], time.time()
    for seed in range(args.start, args.start + args.count):
        model = fuzzing.MODELS[seed % len(fuzzing.MODELS)]
        recipe = fuzzing.make_recipe(model, sources[model], seed)
        outcome = fuzzing.run_recipe(recipe, sources)
        counts[outcome.kind] += 1
        if not outcome.ok:
            failures.append((recipe, outcome))
            print(f"seed {seed} ({model}): {outcome.kind}: {outcome.detail.strip().splitlines()[-1][:200]}",
                  flush=True)
            if args.save:
                fuzzing.save_to_corpus(recipe, outcome)
    print(f"{args.count} mutants in {time.time() - began:.0f} s: " +
          ", ".join(f"{counts[k]} {k}" for k in fuzzing.GOOD + fuzzing.FAILURES))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
