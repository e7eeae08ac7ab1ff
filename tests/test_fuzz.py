"""Fuzz: seeded mutants of the zoo's models (tests/fuzzing.py) through the pipeline as `run --verify` drives
it, host build. Each must end in a clean refusal (TinyCompressError, exit 1-5, one line, no "internal error")
or a run whose outputs equal the TFLite Micro interpreter's; tests/fuzz_corpus/ holds past failures."""
from __future__ import annotations

import collections
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

import fuzzing
from conftest import HAVE_EMULATOR

MUTANTS = 300
WORKERS = 2   # the builds and interpreter runs are child processes: two at a time

pytestmark = pytest.mark.skipif(not HAVE_EMULATOR, reason="gcc, make or arm-none-eabi-gcc missing")


@pytest.fixture(scope="module")
def sources(zoo):
    names = set(fuzzing.MODELS) | {case["model"] for case in fuzzing.corpus()}
    return {name: zoo(name)[0].read_bytes() for name in names}


def _failures(recipes, sources):
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda r: fuzzing.run_recipe(r, sources), recipes))
    failed = [f"{json.dumps(r)}\n  -> {o.kind}: {o.detail.strip()[-400:]}"
              for r, o in zip(recipes, outcomes) if not o.ok]
    return failed, collections.Counter(o.kind for o in outcomes)


@pytest.mark.slow   # about a minute: the fast tier keeps the corpus replay
def test_seeded_mutants_are_refused_or_verified(sources):
    recipes = [fuzzing.make_recipe(m, sources[m], seed)
               for seed in range(MUTANTS) for m in [fuzzing.MODELS[seed % len(fuzzing.MODELS)]]]
    failed, counts = _failures(recipes, sources)
    assert not failed, f"{len(failed)} of {MUTANTS} mutants failed:\n" + "\n".join(failed)
    # the mix exercises both ends: refusals, and mutants that still compile, run and match
    assert counts["refused"] >= MUTANTS // 3 and counts["verified"] >= MUTANTS // 10, counts


@pytest.mark.parametrize("case", fuzzing.corpus(), ids=lambda c: c["file"])
def test_corpus_regression(sources, case):
    failed, _ = _failures([case], sources)
    assert not failed, failed[0]
