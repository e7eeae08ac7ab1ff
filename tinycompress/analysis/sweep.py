"""The per-rank profile: every factorization variant built, run on the emulated board and measured.

For each variant: factorize the Keras model (and fine-tune when asked),
quantize to int8, compile, build, run the whole evaluation set in QEMU, and
compare with the TFLite Micro interpreter. Builds and emulator runs overlap
with the next variant's TensorFlow work on a thread pool.
"""
from __future__ import annotations

import contextlib
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import numpy as np

from ..target.boards import Board
from ..target.build import build
from ..compress.rank import FULL, parse_rank
from ..target.elfsize import elf_sizes
from ..compress.embeddings import EmbeddingSpec, compress_embeddings, embedding_summary
from ..target.emulate import run_firmware
from ..errors import EXIT_BUDGET, TinyCompressError
from ..frontend.load import open_npz, read_tflite
from ..outputs import claim, write_file
from ..pipeline import Compression, compile_graph, compress_keras, model_inputs
from ..frontend.reference import tflm_outputs


@dataclass
class Budgets:
    max_flash: int | None = None
    max_sram: int | None = None
    max_instructions: int | None = None
    min_accuracy: float | None = None     # fraction, classifiers only

    def failures(self, v: "VariantResult") -> list[str]:
        checks = [("max-flash", self.max_flash, v.flash["total"], lambda a, b: a <= b),
                  ("max-sram", self.max_sram, v.sram["total"], lambda a, b: a <= b),
                  ("max-instructions", self.max_instructions, v.instructions, lambda a, b: a <= b),
                  ("min-accuracy", self.min_accuracy, v.firmware, lambda a, b: a >= b)]
        return [name for name, limit, value, ok in checks if limit is not None and not ok(value, limit)]

    @property
    def any(self) -> bool:
        return any(x is not None for x in asdict(self).values())


@dataclass
class VariantResult:
    variant: str
    params: int                  # weights and biases of the float model
    macs: int
    flash: dict                  # total, weights (bytes, from the ELF)
    sram: dict                   # total, arena, stack_peak
    instructions: float          # mean per inference, from the emulator
    layers: list[dict]           # name, op, macs, instructions
    metric: str                  # 'accuracy' (higher is better) or 'mse' (lower is better)
    firmware: float              # the metric from the firmware's own outputs in QEMU
    host_float: float
    host_int8: float             # TFLite Micro interpreter on the host
    bit_exact: bool
    compression: float = 1.0     # unfactorized int8 weights / these weights
    factorization: list[dict] = field(default_factory=list)
    tflite: str = ""
    project: str = ""
    budget_failures: list[str] = field(default_factory=list)
    kind: str = "rank"           # what the sweep varies: 'rank' or 'embedding'
    embeddings: list[dict] = field(default_factory=list)   # per lookup: method, bytes, int8 table bytes


@dataclass
class Evaluation:
    """The evaluation set and how outputs are scored."""
    x: np.ndarray
    y: np.ndarray | None
    timeout: float | None = None   # seconds the emulator may take over the set (--timeout), else the default

    @property
    def metric(self) -> str:
        return "accuracy" if self.y is not None and np.issubdtype(self.y.dtype, np.integer) else "mse"

    def score(self, outputs: np.ndarray) -> float:
        outputs = outputs.reshape(len(self.x), -1)
        if self.metric == "accuracy":   # scores per class, or one class index per inference (ARG_MAX)
            predicted = outputs.argmax(axis=1) if outputs.shape[1] > 1 else outputs[:, 0]
            return float((predicted == self.y.reshape(-1)).mean())
        target = (self.x if self.y is None else self.y).reshape(len(self.x), -1)
        return float(np.mean((outputs - target) ** 2))


def load_evaluation(path: Path) -> Evaluation:
    data = open_npz(path, "evaluation data")
    if "x" not in data:
        raise TinyCompressError(f"{path} needs float32 inputs under 'x' to profile variants "
                                f"(it has {', '.join(data.files) or 'nothing'})")
    x = np.asarray(data["x"])   # float32 features, or integer token ids
    return Evaluation(x if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32),
                      np.asarray(data["y"]) if "y" in data else None)


AUTO = "auto"
AUTO_ROUNDS = 6  # build-and-measure rounds before auto gives up tightening


def parse_variants(text: str) -> list[str]:
    variants = [v.strip() for v in text.split(",") if v.strip()]
    for v in variants:
        if v != AUTO:
            parse_rank(v)  # a clear error for anything that is not a rank, 'full' or 'auto'
    if not variants:
        raise TinyCompressError("--ranks needs at least one rank, e.g. 4,8,16,full")
    return variants


def run_profile(model_path: Path, board: Board, variants: list[str], data: Path, out: Path | None = None,
                calibration: Path | None = None, train: Path | None = None, epochs: int = 5,
                budgets: Budgets = Budgets(), jobs: int = 2, timeout: float | None = None) -> list[VariantResult]:
    from ..frontend.data import check_labels, check_samples
    from ..frontend.quantize import keras_io, load_calibration, load_keras

    model = load_keras(model_path)
    evaluation = load_evaluation(data)
    evaluation.timeout = timeout
    evaluation.x = check_samples(evaluation.x, keras_io(model), f"{data}: 'x'")
    if evaluation.y is not None:
        evaluation.y = check_labels(evaluation.y, keras_io(model), len(evaluation.x), f"{data}: 'y'")
    calib = load_calibration(calibration, keras_io(model)) if calibration else evaluation.x
    if budgets.min_accuracy is not None and evaluation.metric != "accuracy":
        raise TinyCompressError("--min-accuracy needs class labels under 'y' in the evaluation data")
    if AUTO in variants and budgets.max_flash is None and budgets.max_instructions is None:
        raise TinyCompressError("--ranks auto needs a budget to aim for: --max-flash or --max-instructions")
    # The unfactorized model comes first: it is the reference, and auto starts from its measurements.
    order = [FULL] + [v for v in variants if v not in (FULL, AUTO)]
    with tempfile.TemporaryDirectory(prefix="tinycompress-profile-") as tmp:
        root = Path(out) if out is not None else Path(tmp)
        with ThreadPoolExecutor(max_workers=jobs) as pool, _progress(order) as bar:
            pending = []
            for label in bar:
                pending.append(_variant(label, parse_rank(label), model, train, epochs, evaluation, calib, root,
                                        board, pool, model_path))
            results = [f.result() for f in pending]
            if AUTO in variants:
                measure = lambda label, spec: _variant(  # noqa: E731
                    label, spec, model, train, epochs, evaluation, calib, root, board, pool, model_path).result()
                results.append(_auto(model, results[0], budgets, measure))
    reference = results[0].flash["weights"]
    for r in results:
        r.compression = round(reference / r.flash["weights"], 3) if r.flash["weights"] else 0.0
        r.budget_failures = budgets.failures(r)
    by_label = {r.variant: r for r in results}
    return [by_label[v] for v in dict.fromkeys(variants)]


INT8 = "int8"   # the embedding sweep's reference: the uncompressed int8 table


def run_embedding_profile(model_path: Path, board: Board, specs: list[EmbeddingSpec], data: Path,
                          out: Path | None = None, calibration: Path | None = None, vocab: list[str] | None = None,
                          train: Path | None = None, epochs: int = 5, budgets: Budgets = Budgets(),
                          jobs: int = 2, timeout: float | None = None) -> list[VariantResult]:
    """The uncompressed int8 model and one variant per embedding method, each built, run on the whole
    evaluation set in QEMU and checked against the TFLite Micro interpreter on its decoded table. With
    `train` (a Keras model), each method's float parts are fine-tuned with the network first."""
    from ..frontend.load import read_tflite_file
    evaluation = load_evaluation(data)
    evaluation.timeout = timeout
    if budgets.min_accuracy is not None and evaluation.metric != "accuracy":
        raise TinyCompressError("--min-accuracy needs class labels under 'y' in the evaluation data")
    model_path = Path(model_path)
    host_float, params = None, None
    if model_path.suffix in (".keras", ".h5"):
        from ..frontend.quantize import keras_io, keras_to_int8_tflite, load_calibration, load_keras
        model = load_keras(model_path)
        host_float = evaluation.score(model.predict(evaluation.x, batch_size=64, verbose=0))
        params = _params(model)
        calib = load_calibration(calibration, keras_io(model)) if calibration else evaluation.x
        graph = read_tflite(keras_to_int8_tflite(model, calib), name=model_path.stem)
    elif train is not None:
        raise TinyCompressError(f"{model_path.name} is a .tflite: fine-tuning with --train needs the Keras model")
    else:
        from ..frontend.floatio import fold_float_io
        graph = fold_float_io(read_tflite_file(model_path))   # float ends off: the int8 model inside
        params = sum(t.size for t in graph.tensors if t.is_constant)

    def variant(spec: EmbeddingSpec):
        """(graph, float score) of one method: fitted to the int8 table, or fine-tuned and converted anew."""
        if train is None:
            return compress_embeddings(graph, spec, vocab), host_float
        from ..compress.embedding_tune import tune_embedding
        from ..pipeline import training_data
        tuned, parts = tune_embedding(model, spec, vocab, *training_data(train, model), epochs)
        tuned_graph = read_tflite(keras_to_int8_tflite(tuned, calib), name=model_path.stem)
        score = evaluation.score(tuned.predict(evaluation.x, batch_size=64, verbose=0))
        return compress_embeddings(tuned_graph, spec, vocab, parts), score

    with tempfile.TemporaryDirectory(prefix="tinycompress-profile-") as tmp:
        root = Path(out) if out is not None else Path(tmp)
        by_label = {s.label: s for s in specs}
        with ThreadPoolExecutor(max_workers=jobs) as pool, _progress([INT8, *by_label], "embedding") as bar:
            pending = []
            for label in bar:   # TensorFlow here, builds and QEMU on the pool
                g, score = (graph, host_float) if label == INT8 else variant(by_label[label])
                directory = root / f"embedding-{label.replace(':', '-')}"
                write_file(directory / "model.tflite", g.source)
                pending.append(pool.submit(_measure, label, g, board, directory, evaluation, score, [],
                                           params, "embedding"))
            results = [f.result() for f in pending]
    reference = results[0].flash["weights"]
    for r in results:
        r.compression = round(reference / r.flash["weights"], 3) if r.flash["weights"] else 0.0
        r.budget_failures = budgets.failures(r)
        # the model's parameters, with the table's replaced by the values the method stores
        r.params = params - sum(e["vocab_size"] * e["width"] - e["values"] for e in r.embeddings)
    return results


def _variant(label: str, spec, model, train, epochs, evaluation: Evaluation, calib, root: Path, board: Board,
             pool, model_path: Path):
    """Compress, fine-tune and quantize here (TensorFlow), then build and emulate on the pool."""
    from ..frontend.quantize import keras_to_int8_tflite

    student, decisions = compress_keras(model, Compression(spec, train if label != FULL else None, epochs))
    host_float = evaluation.score(student.predict(evaluation.x, batch_size=64, verbose=0))
    tflite = keras_to_int8_tflite(student, calib)
    directory = root / f"rank-{label}"
    write_file(directory / "model.tflite", tflite)
    graph = read_tflite(tflite, name=f"{Path(model_path).stem}-rank-{label}")
    return pool.submit(_measure, label, graph, board, directory, evaluation, host_float,
                       [asdict(d) for d in decisions], _params(student))


def _auto(model, full: "VariantResult", budgets: Budgets, measure) -> "VariantResult":
    """Per-layer ranks chosen greedily on estimates, then built and measured; tightened while over budget."""
    from ..compress.rank import RankSpec, greedy_ranks, layer_spectra

    spectra = layer_spectra(model)
    instructions_per_mac = full.instructions / max(full.macs, 1)
    margin = {"flash": 0, "instructions": 0.0}   # what the estimates missed, learnt from each measurement
    best = None
    for _ in range(AUTO_ROUNDS):
        def fits(saved_flash, saved_macs):
            flash_ok = budgets.max_flash is None or \
                full.flash["total"] - saved_flash + margin["flash"] <= budgets.max_flash
            instr_ok = budgets.max_instructions is None or \
                full.instructions - instructions_per_mac * saved_macs + margin["instructions"] <= budgets.max_instructions
            return flash_ok and instr_ok
        ranks = greedy_ranks(spectra, fits)
        if ranks is None:
            break
        result = measure(AUTO, RankSpec(per_layer=ranks))
        best = result
        over = budgets.failures(result)
        if not {"max-flash", "max-instructions"} & set(over):
            return result
        if budgets.max_flash is not None:
            margin["flash"] += max(0, result.flash["total"] - budgets.max_flash) + 64
        if budgets.max_instructions is not None:
            margin["instructions"] += max(0.0, result.instructions - budgets.max_instructions) * 1.05 + 1
    if best is None:
        raise TinyCompressError("no per-layer ranks reach the budgets: " + _lowest_estimate(spectra, full),
                                EXIT_BUDGET)
    return best


def _lowest_estimate(spectra, full: "VariantResult") -> str:
    saved = sum(s.flash(None) - s.flash(1) for s in spectra)
    return (f"even rank 1 everywhere leaves about {full.flash['total'] - saved:,} bytes of flash "
            f"(the unfactorized model has {full.flash['total']:,})")


def _progress(items: list[str], kind: str = "rank"):
    """A progress bar on stderr when a person is watching; nothing in logs and pipes."""
    stderr = click.get_text_stream("stderr")
    if not stderr.isatty():
        return contextlib.nullcontext(items)
    return click.progressbar(items, label="profiling variants", file=stderr,
                             item_show_func=lambda v: v and f"{kind} {v}")


def _params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.weights if "moving" not in w.path))


def _measure(label: str, graph, board: Board, directory: Path, evaluation: Evaluation, host_float: float | None,
             decisions: list[dict], params: int, kind: str = "rank") -> VariantResult:
    with claim(directory / "project"):      # held while make writes there too
        project = compile_graph(graph, board, directory / "project", f"{graph.name}.tflite")
        elf = build(project)
    sizes = elf_sizes(elf)
    out = graph.output_tensor()
    x = model_inputs(graph, evaluation.x, "the evaluation data")
    result = run_firmware(elf, board, x, out.nbytes, timeout=evaluation.timeout)
    reference = tflm_outputs(graph.source, x)
    if out.quantized:
        out_scale, out_zp = float(out.scale[0]), int(out.zero_point[0])
        dequantize = lambda q: out_scale * (q.astype(np.float32) - out_zp)  # noqa: E731
    else:   # ARG_MAX's int32 indices, as the bytes the firmware writes: the values themselves
        dequantize = lambda q: q.view("<i4").astype(np.float32)  # noqa: E731
    instructions = board.instructions(result.ticks.astype(np.float64))
    per_layer = instructions[:, 1:].mean(axis=0)
    weights = sum(sizes.symbols.get(name, 0) for name in project.weight_symbols)
    return VariantResult(
        variant=label, params=params, macs=sum(c.macs for c in project.calls),
        flash={"total": sizes.flash, "weights": weights},
        sram={"total": sizes.ram, "arena": project.plan.size, "stack_peak": result.stack_peak},
        instructions=round(float(instructions[:, 0].mean()), 1),
        layers=[{"name": c.layer.name, "op": c.layer.op, "macs": c.macs, "instructions": round(float(n), 1)}
                for c, n in zip(project.calls, per_layer)],
        metric=evaluation.metric, firmware=evaluation.score(dequantize(result.outputs)),
        host_float=host_float, host_int8=evaluation.score(dequantize(reference)),
        bit_exact=bool(np.array_equal(reference, result.outputs)), factorization=decisions,
        tflite=str(directory / "model.tflite"), project=str(project.directory), kind=kind,
        embeddings=embedding_summary(project.calls))
