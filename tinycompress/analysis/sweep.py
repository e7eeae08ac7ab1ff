"""The profile: every variant of a model, each a compression plan, built, run on the emulated board and
measured.

One driver for every method. For each variant: apply its plan (pipeline.apply_plan: the Keras steps,
fine-tuning when asked, int8 conversion, the graph steps), compile, build, run the whole evaluation set in
QEMU, and compare with the TFLite Micro interpreter on the variant's own .tflite. The uncompressed model
comes first: it is the reference every variant is compared with. Builds and emulator runs overlap with
the next variant's TensorFlow work on an executor (analysis/executors.py): a thread pool here, or a Ray
cluster. `auto` (analysis/auto.py) searches plans under budgets.
"""
from __future__ import annotations

import contextlib
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import numpy as np

from ..compress.plan import AUTO, FULL, Plan, methods, parse_plan
from ..errors import TinyCompressError
from ..frontend.load import open_npz, read_tflite
from ..outputs import claim, write_file
from .executors import Job, make_executor
from ..pipeline import Compressed, Compression, apply_plan, compile_graph, load_compressed, model_inputs
from ..target.boards import Board
from ..target.build import build
from ..target.elfsize import elf_sizes
from ..target.emulate import run_firmware
from ..frontend.reference import tflm_outputs

INT8 = "int8"   # the embedding shorthand's name for the uncompressed model
BUDGET_METRICS = (("min-accuracy", "accuracy"), ("max-error", "mse"), ("max-perplexity", "perplexity"))
BUDGET_HINT = {"accuracy": "use --min-accuracy (percent)", "mse": "use --max-error (mean squared error)",
               "perplexity": "use --max-perplexity (a language model's perplexity per token)"}
DEFAULT_RANKS = "4,8,16,32,full"


@dataclass
class Budgets:
    max_flash: int | None = None
    max_sram: int | None = None
    max_instructions: int | None = None
    min_accuracy: float | None = None     # fraction, classifiers only
    max_error: float | None = None        # mean squared error, regression and autoencoders
    max_perplexity: float | None = None   # perplexity per token, language models

    CHECKS = (("max-flash", lambda v: v.flash["total"], min), ("max-sram", lambda v: v.sram["total"], min),
              ("max-instructions", lambda v: v.instructions, min),
              ("min-accuracy", lambda v: v.firmware, max), ("max-error", lambda v: v.firmware, min),
              ("max-perplexity", lambda v: v.firmware, min))

    def limits(self) -> list[tuple[str, object, object, object]]:
        """(name, limit, the variant's figure, min or max: which way is better) of each budget set."""
        values = (self.max_flash, self.max_sram, self.max_instructions, self.min_accuracy, self.max_error,
                  self.max_perplexity)
        return [(name, limit, get, best) for (name, get, best), limit in zip(self.CHECKS, values)
                if limit is not None]

    def failures(self, v: "VariantResult") -> list[str]:
        return [name for name, limit, get, best in self.limits()
                if (get(v) > limit if best is min else get(v) < limit)]

    @property
    def any(self) -> bool:
        return any(x is not None for x in asdict(self).values())


@dataclass
class VariantResult:
    variant: str
    params: int                  # weights and biases of the float model (with the steps' stored values)
    macs: int
    flash: dict                  # total, weights (bytes, from the ELF)
    sram: dict                   # total, arena, stack_peak
    instructions: float          # mean per inference, from the emulator
    layers: list[dict]           # name, op, macs, instructions, flash_bytes
    metric: str                  # 'accuracy' (higher is better), 'mse' or 'perplexity' (lower is better)
    firmware: float              # the metric from the firmware's own outputs in QEMU
    host_float: float | None
    host_int8: float             # TFLite Micro interpreter on the host
    bit_exact: bool
    compression: float = 1.0     # the uncompressed model's int8 weights / these weights
    steps: list[dict] = field(default_factory=list)    # per layer and step: compress.plan.LayerStep
    plan: str = FULL             # the plan as a --compress spec
    larger_than_uncompressed: int = 0   # flash bytes above the uncompressed model's (0: not larger)
    tflite: str = ""
    project: str = ""
    budget_failures: list[str] = field(default_factory=list)
    kind: str = "plan"           # the option the variant came from: 'rank', 'embedding' or 'plan'
    embeddings: list[dict] = field(default_factory=list)   # per lookup: method, bytes, int8 table bytes
    note: str = ""               # auto: the budget that cannot be met, with the best figure reached
    search: list[dict] = field(default_factory=list)       # auto: every plan it measured, its Pareto front


@dataclass
class Variant:
    """One variant to build: its label in the table, its plan (None: auto), the option it came from."""
    label: str
    plan: Plan | None
    kind: str = "plan"
    name: str | None = None     # its directory's name when not the label's (auto's candidates)

    @property
    def directory(self) -> str:
        return f"{self.kind}-{(self.name or self.label).replace(':', '-')}"


def rank_variants(text: str | None) -> list[Variant]:
    """--ranks: global ranks, 'full' and 'auto' (over ranks only)."""
    from ..compress.rank import parse_rank
    labels = [v.strip() for v in (DEFAULT_RANKS if text is None else text).split(",") if v.strip()]
    if not labels:
        raise TinyCompressError("--ranks needs at least one rank, e.g. 4,8,16,32,full")
    for v in labels:
        if v != AUTO:
            parse_rank(v)   # a clear error for anything that is not a rank, 'full' or 'auto'
    return [Variant(v, None if v == AUTO else parse_plan("" if v == FULL else f"rank:{v}"), "rank")
            for v in labels]


def embedding_variants(text: str) -> list[Variant]:
    """--embeddings: the uncompressed int8 table, then one variant per method."""
    from ..compress.embeddings import parse_embeddings
    return [Variant(INT8, Plan([]), "embedding")] + [
        Variant(s.label, parse_plan(f"embedding:{s.label}"), "embedding") for s in parse_embeddings(text)]


def plan_variants(text: str) -> list[Variant]:
    """--variants: plans separated by commas, `full` and `auto`. A comma inside a step's per-layer list
    (rank:a=8,b=4 or int4:a,b) continues the plan: a new one starts with 'full', 'auto' or a method name."""
    known = set(methods())
    plans: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        word = piece.split("+")[0].partition(":")[0].strip()
        if plans and word not in known and piece not in (FULL, AUTO):
            plans[-1] += "," + piece
        else:
            plans.append(piece)
    if not plans:
        raise TinyCompressError("--variants needs at least one plan, e.g. full,int4,prune:0.5+int4,auto")
    return [Variant(p, None if p == AUTO else parse_plan(p)) for p in dict.fromkeys(plans)]


def perplexity(logits: np.ndarray, targets: np.ndarray) -> float:
    """exp of the mean cross-entropy, in nats, of the next tokens `targets` (N, T) under the logits (N, T, V)
    (any shape holding N * T rows of V): every position of every window counts once, the first included
    (it predicts from one token). The softmax and its log are taken in float64 on the logits as given:
    the float model's, or an int8 model's dequantized, scale * (q - zero_point)."""
    targets = np.asarray(targets).reshape(-1).astype(np.int64)
    logits = np.asarray(logits, np.float64).reshape(len(targets), -1)
    top = logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    return float(np.exp(np.mean(log_norm - logits[np.arange(len(targets)), targets])))


@dataclass
class Evaluation:
    """The evaluation set and how outputs are scored: accuracy for class ids, perplexity for a language
    model's next tokens (its logits at every position, `language_model`), else mean squared error."""
    x: np.ndarray
    y: np.ndarray | None
    timeout: float | None = None   # seconds the emulator may take over the set (--timeout), else the default
    language_model: bool = False   # y: the next token at every position (N, T); outputs (1, T, V) logits

    @property
    def metric(self) -> str:
        if self.language_model:
            return "perplexity"
        return "accuracy" if self.y is not None and np.issubdtype(self.y.dtype, np.integer) else "mse"

    def score(self, outputs: np.ndarray) -> float:
        if self.metric == "perplexity":
            return perplexity(outputs, self.y)
        outputs = outputs.reshape(len(self.x), -1)
        if self.metric == "accuracy":   # scores per class, or one class index per inference (ARG_MAX)
            predicted = outputs.argmax(axis=1) if outputs.shape[1] > 1 else outputs[:, 0]
            return float((predicted == self.y.reshape(-1)).mean())
        target = (self.x if self.y is None else self.y).reshape(len(self.x), -1)
        return float(np.mean((outputs - target) ** 2))

    def better(self, a: float, b: float) -> bool:
        return a > b if self.metric == "accuracy" else a < b


def load_evaluation(path: Path) -> Evaluation:
    """'x' and the labels: 'y', or a language model's next tokens under 'next' (or 'y')."""
    data = open_npz(path, "evaluation data")
    if "x" not in data:
        raise TinyCompressError(f"{path} needs float32 inputs under 'x' to profile variants "
                                f"(it has {', '.join(data.files) or 'nothing'})")
    x = np.asarray(data["x"])   # float32 features, or integer token ids
    label = "y" if "y" in data else "next" if "next" in data else None
    return Evaluation(x if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32),
                      np.asarray(data[label]) if label else None)


@dataclass
class Sweep:
    """What every variant of one profile shares: the model (Keras, or the int8 graph of a .tflite), its
    calibration and evaluation data, and where and how variants are built."""
    name: str
    model: object | None          # the Keras model, None for a .tflite
    graph: object                 # the uncompressed int8 graph
    calibration: np.ndarray | None
    evaluation: Evaluation
    board: Board
    root: Path
    executor: object              # executors.LocalExecutor or RayExecutor: measures each variant
    train: Path | None = None
    epochs: int = 5
    vocab: list[str] | None = None

    path: Path | None = None      # the model's file: a Ray worker applies Keras plans from its bytes

    def build(self, variant: Variant):
        """Apply the plan (TensorFlow), then build and emulate on the executor: a Future of the result. An
        executor that `prepares` (Ray) takes plans of the Keras model whole, TensorFlow work included."""
        directory = self.root / variant.directory
        if getattr(self.executor, "prepares", False) and self.path is not None and self.tensorflow(variant):
            return self.executor.prepare_and_measure(variant, self, directory)
        compressed, host_float, params = prepare(self, variant)
        write_file(directory / "model.tflite", compressed.graph.source)
        return self.executor.measure(Job(variant, compressed, self.board, directory, self.evaluation,
                                         host_float, params))

    def tensorflow(self, variant: Variant) -> bool:
        """Whether the variant's plan runs TensorFlow: Keras steps, fine-tuning or an int8 conversion."""
        plan = variant.plan
        return self.model is not None and bool(plan.keras_steps or (self.train is not None and not plan.empty))

    def compression(self, variant: Variant) -> Compression:
        plan = variant.plan
        return Compression(plan, self.train if not plan.empty else None, self.epochs, self.vocab)


def prepare(sweep, variant: Variant) -> tuple[Compressed, float | None, int]:
    """A variant's plan applied (on the driver, or on a Ray worker with a Sweep of its own): the compressed
    model, the float model's metric on the host, and its parameters."""
    compression = sweep.compression(variant)
    if not sweep.tensorflow(variant):
        # the graph steps alone: on a fresh copy of the uncompressed graph, no conversion again
        compressed = apply_plan(read_tflite(sweep.graph.source, name=sweep.graph.name), compression)
        float_model = sweep.model
    else:
        compressed = apply_plan(sweep.model, compression, sweep.calibration, sweep.name)
        float_model = compressed.model
    host_float = None if float_model is None else \
        sweep.evaluation.score(float_model.predict(sweep.evaluation.x, batch_size=64, verbose=0))
    compressed.graph.name = f"{sweep.name}-{variant.directory}"
    params = (_params(float_model) if float_model is not None else _constants(sweep.graph)) - sum(
        s.params_before - s.params_after for s in compressed.steps if _graph_step(s.method))
    return compressed, host_float, params


def _graph_step(method: str) -> bool:
    from ..compress.plan import GRAPH
    known = methods()
    return method in known and known[method].stage == GRAPH


def run_sweep(model_path: Path, board: Board, variants: list[Variant], data: Path, out: Path | None = None,
              calibration: Path | None = None, train: Path | None = None, epochs: int = 5,
              budgets: Budgets = Budgets(), jobs: int = 2, timeout: float | None = None,
              vocab: list[str] | None = None, executor: str = "local",
              ray_address: str | None = None) -> list[VariantResult]:
    """Every variant built, run on the whole evaluation set in QEMU and checked against TFLite Micro; the
    results in the order asked, each with its budget failures and its compression against the uncompressed
    model (built first whether asked or not). `executor`: 'local' (`jobs` variants at once on this
    machine) or 'ray' (Ray tasks on the cluster at `ray_address`)."""
    runner = make_executor(executor, jobs, ray_address)   # Ray missing: said before any work
    evaluation = load_evaluation(data)
    evaluation.timeout = timeout
    model_path = Path(model_path)
    model, graph, calib = _load(model_path, calibration, evaluation)
    for name, *_ in budgets.limits():
        metric = dict(BUDGET_METRICS).get(name)
        if metric is not None and metric != evaluation.metric:
            raise TinyCompressError(f"--{name} is a budget on {metric}, but the profile measures "
                                    f"{evaluation.metric}: " + BUDGET_HINT[evaluation.metric])
    if model is None and any(v.plan is not None and v.plan.keras_steps for v in variants):
        raise TinyCompressError(f"{model_path.name} is a .tflite: variants that change the float model "
                                "(rank, energy, prune, cp) need the Keras model (.keras)")
    # the uncompressed reference, in the directory of the option the sweep came from (rank-full)
    implicit = Variant(FULL, Plan([]), variants[0].kind if variants else "plan")
    reference = next((v for v in variants if v.plan is not None and v.plan.empty), implicit)
    order = [reference] + [v for v in variants if v.plan is not None and not v.plan.empty]
    with tempfile.TemporaryDirectory(prefix="tinycompress-profile-") as tmp, runner:
        root = Path(out) if out else Path(tmp)
        sweep = Sweep(model_path.stem, model, graph, calib, evaluation, board, root, runner, train, epochs,
                      vocab, model_path)
        with _progress([v.label for v in order]) as bar:
            pending = [sweep.build(v) for v, _ in zip(order, bar)]
        results = gather(pending)
        for auto in (v for v in variants if v.plan is None):
            from .auto import search
            results.append(search(sweep, auto, results[0], budgets))
    finish(results, budgets)
    by_label = {r.variant: r for r in results}
    return [by_label[v.label] for v in variants]


def gather(pending: list) -> list[VariantResult]:
    """Every variant's result, in order, once all have ended; the variants that failed reported together
    (one alone: its own error, as it was raised)."""
    results, failures = [], []
    for future in pending:
        try:
            results.append(future.result())
        except TinyCompressError as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise TinyCompressError(f"{len(failures)} variants failed: " + "; ".join(map(str, failures)),
                                failures[0].exit_code)
    return results


def finish(results: list[VariantResult], budgets: Budgets) -> None:
    """Compare each variant with the uncompressed model (the first result) and with the budgets."""
    reference = results[0]
    for r in results:
        weights = reference.flash["weights"]
        r.compression = round(weights / r.flash["weights"], 3) if r.flash["weights"] else 0.0
        r.larger_than_uncompressed = max(0, r.flash["total"] - reference.flash["total"])
        r.budget_failures = budgets.failures(r)


def pareto(results: list[VariantResult], cost=lambda r: r.flash["total"]) -> list[VariantResult]:
    """The results no other beats on the cost and the metric at once, cheapest first (a tie kept once)."""
    sign = -1 if results and results[0].metric == "accuracy" else 1
    front, best = [], None
    for r in sorted(results, key=lambda r: (cost(r), sign * r.firmware)):
        if best is None or sign * r.firmware < best:
            front.append(r)
            best = sign * r.firmware
    return front


def _load(model_path: Path, calibration: Path | None, evaluation: Evaluation):
    """(Keras model or None, uncompressed int8 graph, calibration samples or None), the evaluation set
    checked against the model; a language model (token windows in, logits at every position out, with
    next tokens to score) marked so."""
    from ..frontend.data import check_labels, check_next_tokens, check_samples, graph_io, is_language_model
    if model_path.suffix in (".keras", ".h5"):
        from ..frontend.quantize import keras_io, keras_to_int8_tflite, load_calibration, load_keras
        model = load_keras(model_path)
        io = keras_io(model)
        evaluation.x = check_samples(evaluation.x, io, "the evaluation data: 'x'")
        calib = load_calibration(calibration, io) if calibration else evaluation.x
        graph = read_tflite(keras_to_int8_tflite(model, calib), name=model_path.stem)
    else:
        model, calib = None, None
        graph = load_compressed(model_path, calibration).graph
        io = graph_io(graph)
    if evaluation.y is not None:
        evaluation.language_model = is_language_model(io, evaluation.y)
        if evaluation.language_model:
            evaluation.y = check_next_tokens(evaluation.y, io, len(evaluation.x),
                                             "the evaluation data: the next tokens")
        elif model is not None:
            evaluation.y = check_labels(evaluation.y, io, len(evaluation.x), "the evaluation data: 'y'")
    return model, graph, calib


def _progress(items: list[str]):
    """A progress bar on stderr when a person is watching; nothing in logs and pipes."""
    stderr = click.get_text_stream("stderr")
    if not stderr.isatty():
        return contextlib.nullcontext(items)
    return click.progressbar(items, label="profiling variants", file=stderr, item_show_func=lambda v: v)


def _params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.weights if "moving" not in w.path))


def _constants(graph) -> int:
    return sum(t.size for t in graph.tensors if t.is_constant)


def _measure(variant: Variant, compressed: Compressed, board: Board, directory: Path, evaluation: Evaluation,
             host_float: float | None, params: int) -> VariantResult:
    from .report import make_report
    graph = compressed.graph
    with claim(directory / "project"):      # held while make writes there too
        project = compile_graph(graph, board, directory / "project", f"{graph.name}.tflite")
        elf = build(project)
    x = model_inputs(graph, evaluation.x, "the evaluation data")
    out = graph.output_tensor()
    result = run_firmware(elf, board, x, out.nbytes, timeout=evaluation.timeout)
    report = make_report(project, elf_sizes(elf), result)
    reference = tflm_outputs(graph.source, x)
    if out.quantized:
        out_scale, out_zp = float(out.scale[0]), int(out.zero_point[0])
        dequantize = lambda q: out_scale * (q.astype(np.float32) - out_zp)  # noqa: E731
    else:   # ARG_MAX's int32 indices, as the bytes the firmware writes: the values themselves
        dequantize = lambda q: q.view("<i4").astype(np.float32)  # noqa: E731
    return VariantResult(
        variant=variant.label, params=params, macs=report.macs,
        flash={"total": report.flash["total"], "weights": report.flash["weights"]},
        sram={"total": report.sram["total"], "arena": report.arena["planned"],
              "stack_peak": result.stack_peak},
        instructions=report.instructions,
        layers=[{"name": l.name, "op": l.op, "macs": l.macs, "instructions": l.instructions,
                 "flash_bytes": l.params_bytes} for l in report.layers],
        metric=evaluation.metric, firmware=evaluation.score(dequantize(result.outputs)),
        host_float=host_float, host_int8=evaluation.score(dequantize(reference)),
        bit_exact=bool(np.array_equal(reference, result.outputs)),
        steps=[asdict(s) for s in compressed.steps], plan=variant.plan.label if variant.plan else AUTO,
        tflite=str(directory / "model.tflite"), project=str(project.directory), kind=variant.kind,
        embeddings=report.embeddings)
