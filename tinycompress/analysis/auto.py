"""`auto`: per-layer compression steps chosen for the budgets and the metric, measured on the firmware.

1. Sensitivity. Every method whose `candidates` hook offers per-layer settings (compress/plan.py) is tried
   one layer and one setting at a time: the plan of that one step is applied, and the int8 model is scored
   on the evaluation set by the TFLite Micro interpreter on the host (fast, and the firmware's arithmetic
   bit for bit). Each candidate costs the metric it loses and saves the weight bytes its step reports.
2. A path of plans. From the uncompressed model, candidates are added cheapest first (the least metric lost
   per byte saved; a layer takes one method, a stronger setting replaces a milder one), each addition one
   more plan along a path that compresses more and more.
3. Measurement. Plans along the path are built and run in QEMU like every variant, by bisection: with size
   budgets (flash, SRAM, instructions) the first plan meeting them all, which loses the least; with only a
   metric floor, or no budget at all (the floor is then 1 point below the uncompressed model, 1 % more error
   for mse), the last plan keeping the floor, which is the smallest. Every measured plan is kept; the result
   is the best metric meeting every budget among them (their Pareto front is in `search`), or, when none
   does, the closest one with a note naming the budget that cannot be met and the best figure reached.
   On an executor measuring several variants at once (--jobs, a Ray cluster's CPUs), the plans the next
   rounds may reach start beside each one (`lookahead`); only those the bisection reaches are kept, so the
   result is the same at any width.
"""
from __future__ import annotations

import contextlib
import re
import shutil
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..compress.plan import AUTO, GRAPH, Plan, methods, parse_plan
from ..errors import TinyCompressError
from ..frontend.load import read_tflite
from ..frontend.reference import tflm_outputs
from ..pipeline import Compression, apply_plan, model_inputs
from .sweep import Budgets, Sweep, Variant, VariantResult, pareto

SENSITIVITY_SAMPLES = 500     # evaluation inputs the host interpreter scores each candidate on
MAX_ROUNDS = 7                # plans built and emulated by the bisection, at most
SIZE_BUDGETS = ("max-flash", "max-sram", "max-instructions")
EVERY = "*"                   # a candidate over every layer the method applies to (its spec names none)


@dataclass
class Candidate:
    method: type               # the Method subclass
    layer: str
    value: str | None
    loss: float                # metric lost on the host, >= 0 (accuracy points as a fraction, or added MSE)
    saved: int                 # weight bytes saved

    @property
    def cost(self) -> float:
        return max(self.loss, 0.0) / max(self.saved, 1)


def search(sweep: Sweep, variant: Variant, reference: VariantResult, budgets: Budgets) -> VariantResult:
    evaluation = sweep.evaluation
    floor = _floor(budgets, reference, evaluation.metric)
    candidates = sensitivities(sweep, _methods(variant.kind), reference)
    if not candidates:
        raise TinyCompressError("auto has nothing to try: no method offers per-layer steps for this model "
                                "(rank, prune, cp and int4 do, for Dense and convolution layers)")
    path = plan_path(candidates)
    measured: dict[int, VariantResult] = {}
    failed: set[int] = set()
    started: dict[int, Future] = {}
    depth = lookahead(getattr(sweep.executor, "width", 1))

    def planned(i: int) -> Variant:
        return Variant(AUTO, path[i], variant.kind, name=f"auto-{i}")

    def start(i: int) -> None:
        """Plan i handed to the executor, once (its TensorFlow work here, now)."""
        if i not in started:
            try:
                started[i] = sweep.build(planned(i))
            except TinyCompressError as exc:
                started[i] = Future()
                started[i].set_exception(exc)

    def measure(i: int) -> VariantResult | None:
        """Plan i built and run, or None when its steps do not combine (then it is dropped)."""
        if i not in measured and i not in failed:
            start(i)
            try:
                measured[i] = started[i].result()
            except TinyCompressError:
                failed.add(i)
        return measured.get(i)

    def sizes_ok(r: VariantResult) -> bool:
        return not set(budgets.failures(r)) & set(SIZE_BUDGETS)

    def keeps_floor(r: VariantResult) -> bool:
        return floor is None or not evaluation.better(floor, r.firmware)

    size_limited = any(name in SIZE_BUDGETS for name, *_ in budgets.limits())
    lo, hi = 0, len(path) - 1
    for _ in range(MAX_ROUNDS):
        if lo > hi:
            break
        mid = (lo + hi) // 2
        for i in ahead(lo, hi, depth):   # mid first, then the plans the next rounds may measure
            start(i)
        r = measure(mid)
        if r is None:         # try the plan before it instead
            hi = mid - 1 if mid > lo else hi
            lo = lo + 1 if mid == lo else lo
            continue
        if size_limited:      # the first plan meeting the size budgets: later plans only lose more
            lo, hi = (lo, mid - 1) if sizes_ok(r) else (mid + 1, hi)
        else:                 # the last plan keeping the floor: later plans are smaller
            lo, hi = (mid + 1, hi) if keeps_floor(r) else (lo, mid - 1)
    _discard(sweep.root, {planned(i).directory: f for i, f in started.items()
                          if i not in measured and i not in failed})
    results = list(measured.values())
    if not results:
        raise TinyCompressError("auto could not build any plan it tried: "
                                + ", ".join(path[i].label for i in sorted(failed)))
    good = [r for r in results if sizes_ok(r) and keeps_floor(r)]
    if good:
        best = max(good, key=lambda r: (r.firmware if evaluation.metric == "accuracy" else -r.firmware,
                                        -r.flash["total"])) if size_limited else \
            min(good, key=lambda r: (r.flash["total"], -r.firmware))
        note = ""
    else:
        best, note = _closest(results, budgets, floor, evaluation.metric, sizes_ok)
    front = pareto(results)
    search = [{"plan": r.plan, "flash": r.flash["total"], "sram": r.sram["total"],
               "instructions": r.instructions, "firmware": r.firmware, "pareto": any(r is f for f in front)}
              for r in sorted(results, key=lambda r: r.flash["total"])]
    return replace(best, variant=AUTO, note=note, search=search)


def lookahead(width: int) -> int:
    """Rounds of the bisection started ahead of time on an executor measuring `width` variants at once: a
    round ahead takes 2 more (each half's middle), two rounds 6 more, so the deepest d with 2^(d+1) - 1 <=
    width. Only the plans the bisection reaches are kept, so the result is the same at any width."""
    depth = 0
    while 2 ** (depth + 2) - 1 <= width:
        depth += 1
    return depth


def ahead(lo: int, hi: int, depth: int) -> list[int]:
    """The plans the bisection over [lo, hi] measures in this round and, as each plan may go, the next
    `depth` rounds (when every plan builds): breadth first, this round's middle first."""
    found, level = [], [(lo, hi)]
    for _ in range(depth + 1):
        following = []
        for a, b in level:
            if a <= b:
                mid = (a + b) // 2
                found.append(mid)
                following += [(a, mid - 1), (mid + 1, b)]
        level = following
    return found


def _discard(root: Path, unused: dict[str, Future]) -> None:
    """Plans started ahead that the bisection did not reach (their directories under `root`): stopped if
    they have not begun, else waited for, and their directories removed, so the files are those of a search
    one plan at a time."""
    for directory, future in unused.items():
        if not future.cancel():
            with contextlib.suppress(TinyCompressError):
                future.result()
        shutil.rmtree(root / directory, ignore_errors=True)


def _floor(budgets: Budgets, reference: VariantResult, metric: str) -> float | None:
    """The metric every plan must keep: --min-accuracy, --max-error or --max-perplexity, else, with no budget
    at all, 1 point (1 % for mse and perplexity) from the uncompressed model, else none."""
    if metric == "accuracy" and budgets.min_accuracy is not None:
        return budgets.min_accuracy
    if metric == "mse" and budgets.max_error is not None:
        return budgets.max_error
    if metric == "perplexity" and budgets.max_perplexity is not None:
        return budgets.max_perplexity
    if budgets.any:
        return None
    return reference.firmware - 0.01 if metric == "accuracy" else reference.firmware * 1.01


def _methods(kind: str) -> list[type]:
    """The methods auto may use: rank only for --ranks auto, every method offering candidates otherwise."""
    found = list(dict.fromkeys(methods().values()))
    return [m for m in found if m.names[0] == "rank"] if kind == "rank" else found


def sensitivities(sweep: Sweep, classes: list[type], reference: VariantResult) -> list[Candidate]:
    """Every (method, layer, setting) the methods offer, scored alone on the host."""
    evaluation = sweep.evaluation
    n = min(len(evaluation.x), SENSITIVITY_SAMPLES)
    x = model_inputs(sweep.graph, evaluation.x[:n], "the evaluation data")
    sub = replace(evaluation, x=evaluation.x[:n], y=None if evaluation.y is None else evaluation.y[:n])
    base = _host_score(sweep.graph, x, sub)
    found = []
    for cls in classes:
        model = sweep.graph if cls.stage == GRAPH else sweep.model
        if model is None:
            continue
        offered = cls.candidates(model)
        if cls.stage == GRAPH and sweep.model is not None and offered:
            # The converter names graph layers anew at each conversion (dense_1_2, then dense_1_1): after
            # KERAS steps only the step over every layer, without names, still applies.
            offered = {EVERY: [None]}
        for layer, values in offered.items():
            for value in values:
                plan = parse_plan(_spec(cls, {layer: value}))
                try:
                    if cls.stage == GRAPH:
                        done = apply_plan(read_tflite(sweep.graph.source, name=sweep.graph.name),
                                          Compression(plan, vocab=sweep.vocab))
                    else:
                        done = apply_plan(sweep.model, Compression(plan, vocab=sweep.vocab),
                                          sweep.calibration, sweep.name)
                except TinyCompressError:
                    continue
                saved = sum((s.bytes_before or 0) - (s.bytes_after or 0) for s in done.steps)
                if saved <= 0:
                    continue
                score = _host_score(done.graph, x, sub)
                loss = base - score if evaluation.metric == "accuracy" else score - base
                found.append(Candidate(cls, layer, value, loss, saved))
    return found


def _host_score(graph, x: np.ndarray, evaluation) -> float:
    out = graph.output_tensor()
    q = tflm_outputs(graph.source, x)
    if out.quantized:
        return evaluation.score(float(out.scale[0]) * (q.astype(np.float32) - int(out.zero_point[0])))
    return evaluation.score(q.view("<i4").astype(np.float32))


def plan_path(candidates: list[Candidate]) -> list[Plan]:
    """Plans of more and more steps, the cheapest bytes first: plan i has the i + 1 cheapest additions. A
    layer takes one KERAS method (its structure changes) and may also take GRAPH methods; a stronger setting
    of the same method on a layer replaces a milder one (a candidate saving fewer bytes is skipped)."""
    chosen: dict[tuple[type, str], Candidate] = {}
    path = []
    for c in sorted(candidates, key=lambda c: (c.cost, -c.saved)):
        held = chosen.get((c.method, c.layer))
        if held is not None and held.saved >= c.saved:
            continue
        if any(_clash(c.method, c.layer, method, layer)
               for method, layer in chosen if method is not c.method):
            continue
        chosen[(c.method, c.layer)] = c
        steps = []
        for method in dict.fromkeys(k[0] for k in chosen):
            settings = {k[1]: v.value for k, v in chosen.items() if k[0] is method}
            steps.append(_spec(method, settings))
        path.append(parse_plan("+".join(steps)))
    return path


def _spec(method: type, settings: dict) -> str:
    return method.names[0] if EVERY in settings else method.spec_for(settings)


def _base(layer: str) -> str:
    """A graph layer's Keras name: the converter adds '_1' and the like."""
    return re.sub(r"_\d+$", "", layer)


def _clash(a: type, layer_a: str, b: type, layer_b: str) -> bool:
    """Two methods that may not both change one layer: two KERAS methods, or a GRAPH method on a layer a
    KERAS method replaces by new layers (rank, cp)."""
    if EVERY in (layer_a, layer_b) or _base(layer_a) != _base(layer_b):
        return False
    if a.stage != GRAPH and b.stage != GRAPH:
        return True
    keras_method = a if a.stage != GRAPH else b
    return keras_method.stage != GRAPH and not keras_method.keeps_names


def _closest(results, budgets: Budgets, floor, metric: str, sizes_ok) -> tuple[VariantResult, str]:
    """The plan closest to the budgets, and which budget cannot be met with the best figure reached."""
    fitting = [r for r in results if sizes_ok(r)]
    if fitting:   # the size budgets are met, the floor is not: the best metric among those
        best = max(fitting, key=lambda r: r.firmware if metric == "accuracy" else -r.firmware)
        shown = f"{100 * best.firmware:.2f} %" if metric == "accuracy" else f"{best.firmware:.4g}"
        limit = f"{100 * floor:.2f} %" if metric == "accuracy" else f"{floor:.4g}"
        flag = {"accuracy": "--min-accuracy", "mse": "--max-error",
                "perplexity": "--max-perplexity"}[metric] if budgets.any else \
            "the uncompressed model's figure within 1 point,"
        return best, f"{flag} {limit} cannot be met within the other budgets (best reached: {shown})"
    best = min(results, key=lambda r: r.flash["total"])
    over = [n for n in budgets.failures(best) if n in SIZE_BUDGETS]
    figures = {"max-flash": f"{best.flash['total']:,} bytes", "max-sram": f"{best.sram['total']:,} bytes",
               "max-instructions": f"{best.instructions:,.0f} instructions"}
    return best, "; ".join(f"--{n} cannot be met (best reached: {figures[n]})" for n in over)
