"""The whole flow, top-down: load -> quantize -> lower -> plan -> emit -> build -> run -> report."""
from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .frontend import verify
from .target.boards import Board
from .target.build import build
from .compress.plan import Context, LayerStep, Plan
from .target.elfsize import elf_sizes
from .codegen.emit import DEFAULT_API, ModelCode, Project, check_api_names, emit_models
from .ops.common import flash_weight_bytes
from .frontend.data import check_int8_samples, check_labels, check_samples, graph_io
from .target.emulate import run_firmware
from .errors import EXIT_BUDGET, EXIT_MISMATCH, EXIT_USAGE, TinyCompressError
from .outputs import claim
from .ir import Graph
from .frontend.load import open_npz, read_tflite, read_tflite_file
from .ops import lower_layer
from .ops.dsp_forms import assign_dsp_forms
from .ops.scratch import assign_scratch, bind_scratch, kernel_scratch, writes_over_input
from .codegen.plan import ArenaPlan, choose_patches, plan_arena
from .analysis.report import Report, make_report

KERAS_SUFFIXES = (".keras", ".h5")


@dataclass
class Compression:
    """What the compress stage does: a plan of per-layer steps (compress/plan.py), and the data to
    fine-tune with after the plan's structural steps."""
    plan: Plan = field(default_factory=lambda: Plan([]))
    train: Path | None = None     # .npz with 'x' (and 'y') for fine-tuning after the KERAS steps
    epochs: int = 5
    vocab: list[str] | None = None           # token strings (line i is id i), for embedding:kronecker


@dataclass
class Compressed:
    """A plan applied: the int8 graph, what each step did to each layer, and the float Keras model the graph
    was converted from (after the KERAS steps and fine-tuning; None when the plan started from a graph)."""
    graph: Graph
    steps: list[LayerStep]
    model: object | None = None


def load_model(path: Path, calibration: Path | None = None, compression: Compression | None = None) -> Graph:
    """A full-int8 graph from a .tflite, or from a .keras model plus calibration data, with the
    compression plan applied."""
    return load_compressed(path, calibration, compression).graph


def load_compressed(path: Path, calibration: Path | None = None,
                    compression: Compression | None = None) -> Compressed:
    path, compression = Path(path), compression or Compression()
    if not path.exists():
        raise TinyCompressError(f"model file {path} does not exist")
    if path.suffix in KERAS_SUFFIXES:
        from .frontend import quantize
        if calibration is None:
            raise TinyCompressError(f"{path.name} is a Keras model: give calibration data with "
                                    "--calibration data.npz (samples under 'x': float32 features or token ids)")
        model = quantize.load_keras(path)
        calibration_x = quantize.load_calibration(calibration, quantize.keras_io(model))
        return apply_plan(model, compression, calibration_x, path.stem)
    _refuse_keras_steps(path.name, compression)
    from .frontend.floatio import fold_float_io, is_float_model
    graph = read_tflite_file(path)
    if is_float_model(graph):
        if calibration is None:
            raise TinyCompressError(f"{path.name} is a float model; give calibration data with "
                                    "--calibration data.npz to quantize it to int8, or a full-int8 .tflite")
        from .frontend import quantize
        calibration_x = quantize.load_calibration(calibration, graph_io(graph))
        tflite = quantize.float_tflite_to_int8(graph.source, calibration_x)
        graph = read_tflite(tflite, name=path.stem)
    graph = fold_float_io(graph)     # QUANTIZE at the input, DEQUANTIZE at the output: an int8 model
    _check_int8(graph)
    return apply_plan(graph, compression)


def apply_plan(model, compression: Compression, calibration_x: np.ndarray | None = None,
               name: str = "model") -> Compressed:
    """The plan on a Keras model: its KERAS steps in order, then fine-tuning when training data is given
    (labels, or distillation from `model`) on the model each GRAPH step's fine_tune_model hook makes
    (undone with fine_tuned), then int8 conversion with `calibration_x`, then its GRAPH steps in order.
    On an int8 Graph (from a .tflite): its GRAPH steps only."""
    plan = compression.plan
    context = Context(calibration=calibration_x, vocab=compression.vocab)
    for step in plan.steps:
        step.context = context
    if isinstance(model, Graph):
        _refuse_keras_steps(f"{model.name}.tflite", compression)
        return _graph_steps(Compressed(model, []), plan, context)
    from .frontend.quantize import keras_to_int8_tflite
    if compression.train is not None and not plan.empty:
        context.train_x, context.train_y = training_data(compression.train, model)
    student, steps = model, []
    for step in plan.keras_steps:
        student, done = step.apply_keras(student, context)
        steps += done
    if context.train_x is not None:
        from .compress.rank import fine_tune
        for step in plan.graph_steps:
            student = step.fine_tune_model(student)
        fine_tune(student, model, context.train_x, context.train_y, compression.epochs)
        for step in reversed(plan.graph_steps):
            student = step.fine_tuned(student)
    graph = read_tflite(keras_to_int8_tflite(student, calibration_x), name=name)
    return _graph_steps(Compressed(graph, steps, student), plan, context)


def _graph_steps(compressed: Compressed, plan: Plan, context: Context) -> Compressed:
    for step in plan.graph_steps:
        compressed.graph, done = step.apply_graph(compressed.graph, context)
        compressed.steps += done
    return compressed


def _refuse_keras_steps(name: str, compression: Compression) -> None:
    keras_steps = [s.label for s in compression.plan.keras_steps]
    if keras_steps or compression.train is not None:
        what = "fine-tuning with --train trains the float model" if not keras_steps else \
            f"{', '.join(keras_steps)} change{'s' * (len(keras_steps) == 1)} the float model"
        raise TinyCompressError(f"{name} is a .tflite: {what}; give the Keras model (.keras)")


def training_data(path: Path, model) -> tuple[np.ndarray, np.ndarray | None]:
    """Samples 'x' (float32 features or integer token ids) and optional targets 'y' for fine-tuning the
    Keras `model`, checked against it (a language model's: the next token at every position)."""
    from .frontend.data import check_labels, check_next_tokens, check_samples, is_language_model
    from .frontend.quantize import keras_io
    data = open_npz(path, "training data")
    if "x" not in data:
        raise TinyCompressError(f"{path} has no training samples under 'x' "
                                f"(it has {', '.join(data.files) or 'nothing'})")
    io = keras_io(model)
    x = check_samples(data["x"], io, f"{path}: 'x'")
    if "y" not in data:
        return x, None
    if is_language_model(io, data["y"]):     # the next token at every position
        return x, check_next_tokens(data["y"], io, len(x), f"{path}: 'y'")
    return x, check_labels(data["y"], io, len(x), f"{path}: 'y'")


def _check_int8(graph: Graph) -> None:
    from .ops.gather import is_embedding_lookup, table_and_ids
    for layer in graph.layers:
        ids = table_and_ids(layer, graph)[1] if is_embedding_lookup(layer, graph) else None
        for index in layer.inputs + layer.outputs:
            t = graph.tensor(index)
            if t is None or t.is_constant or index == ids:   # token ids are int32
                continue
            if layer.op == "ARG_MAX" and index in layer.outputs:   # int32 indices (ops/reduce.py checks the type)
                continue
            if t.dtype != "int8":
                verify.refuse_layer(layer, TinyCompressError(
                    f"layer {layer.name} ({layer.op}) has a {t.dtype} tensor {t.name}; only int8 activations "
                    "are supported: convert the model with full int8 quantization (int8 input and output)"))
                break


def check_fit(graph: Graph, calls: list, plan, board: Board) -> None:
    """Refuse before anything reaches C when the input, the output, the constants or the arena alone
    exceed the board."""
    weights = flash_weight_bytes(calls)
    ram = plan.size + board.stack_size
    for what, need, have, memory in (
            ("input", graph.input_tensor().nbytes, board.ram_size, "SRAM"),
            ("output", graph.output_tensor().nbytes, board.ram_size, "SRAM"),
            ("weights", weights, board.flash_size, "flash"),
            ("arena and stack", ram, board.ram_size, "SRAM")):
        if need > have:
            raise TinyCompressError(f"the model does not fit {board.name}: its {what} need{'s' * (what != 'weights')} "
                                    f"{need:,} bytes of {memory} but the board has {have:,}", EXIT_BUDGET)


def plan_layers(calls: list, graph: Graph, board: Board, over_inputs: bool = True) -> ArenaPlan:
    """Give each call its kernel's scratch for `board` and plan the arena: with `over_inputs`, layers over
    their own inputs where that lowers it (codegen/rows.py; off for CMSIS-NN's firmware, the comparison,
    planned as TFLite Micro plans)."""
    assign_scratch(calls, board)
    if not over_inputs:
        return plan_arena(calls, graph.tensors, graph.inputs, graph.outputs)
    return choose_patches(calls, graph.tensors, graph.inputs, graph.outputs,
                          lambda call: kernel_scratch(call, board), lambda call: writes_over_input(call, board))


def compile_model(model: Path, board: Board, out: Path, calibration: Path | None = None,
                  compression: Compression | None = None, cmsis_nn: Path | None = None) -> Project:
    """Write the C project for `model` into `out`, atomically: all of it or nothing."""
    return compile_models([model], board, out, calibration, compression, cmsis_nn)


def compile_models(models: list[Path], board: Board, out: Path, calibration: Path | None = None,
                   compression: Compression | None = None, cmsis_nn: Path | None = None,
                   names: list[str] | None = None, external: bool = False) -> Project:
    """Write one C project holding every model of `models` into `out`, atomically, each with its C API
    prefixed by its name in `names` (default: the one model's tc_model); with `external`, every invoke takes
    the arena from the caller."""
    names = check_model_names(names, len(models))
    graphs = [load_model(model, calibration, compression) for model in models]
    return compile_graphs([(g, Path(m).name, n) for g, m, n in zip(graphs, models, names)], board, out,
                          cmsis_nn=cmsis_nn, external=external)


def check_model_names(names: list[str] | None, count: int) -> list[str]:
    """The API names of `count` models: one each, checked (codegen/emit.check_api_names)."""
    if names is None:
        if count > 1:
            raise TinyCompressError(f"{count} models share one project: name each with --name "
                                    f"({','.join(f'm{i}' for i in range(count))}, say)", EXIT_USAGE)
        names = [DEFAULT_API]
    if len(names) != count:
        raise TinyCompressError(f"--name gives {len(names)} name{'s' * (len(names) != 1)} for {count} "
                                f"model{'s' * (count != 1)}: one name per model, in order", EXIT_USAGE)
    return check_api_names(names)


def lower_and_plan(graph: Graph, board: Board, cmsis_nn: Path | None = None, adapters=None):
    """A graph's kernel calls and its arena plan for `board`, checked against the board."""
    calls = [lower_layer(layer, graph) for layer in graph.layers]
    if cmsis_nn is not None:
        from .codegen.cmsis_nn import adapt
        calls = [adapt(c) for c in calls]
    assign_dsp_forms(calls, board)
    plan = plan_layers(calls, graph, board, over_inputs=cmsis_nn is None)
    bind_scratch(calls, plan.scratch)
    if adapters is not None:
        plan = replace(plan, size=max(plan.size, adapters.lowered.plan.size))
    check_fit(graph, calls, plan, board)
    return calls, plan


def compile_graph(graph: Graph, board: Board, out: Path, source_name: str, serial: bool = False,
                  finish: Callable[[Project], None] | None = None, cmsis_nn: Path | None = None,
                  generation: dict | None = None, adapters=None) -> Project:
    """Lower, plan and emit an int8 graph into `out`, atomically; `finish` adds to the project before
    it appears (the PlatformIO files), and a failure there leaves nothing behind either. With
    `cmsis_nn` (a checked CMSIS-NN checkout) the layers it supports call CMSIS-NN; with `generation`, the
    project also has the generation harness (emit_project); with `adapters` (codegen/adapters.AdapterCode),
    the adapted path and the adapter slots, in an arena large enough for either path."""
    return compile_graphs([(graph, source_name, DEFAULT_API)], board, out, serial=serial, finish=finish,
                          cmsis_nn=cmsis_nn, generation=generation, adapters=adapters)


def compile_graphs(graphs: list[tuple[Graph, str, str]], board: Board, out: Path, serial: bool = False,
                   finish: Callable[[Project], None] | None = None, cmsis_nn: Path | None = None,
                   generation: dict | None = None, adapters=None, external: bool = False) -> Project:
    """compile_graph for one project of several models, (graph, source file name, API name) each: the
    kernels and runtime once, every model's files beside them (codegen/emit.emit_models)."""
    check_api_names([name for _, _, name in graphs])
    models = []
    for graph, source_name, name in graphs:
        calls, plan = lower_and_plan(graph, board, cmsis_nn, adapters if not models else None)
        models.append(ModelCode(graph, calls, plan, source_name, name))
    if len(models) > 1:
        check_fit_together(models, board, external)
    out = Path(out)
    with claim(out) as target:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-new-", dir=out.absolute().parent))
        try:
            project = emit_models(models, board, staging, serial=serial, cmsis_nn=cmsis_nn,
                                  generation=generation, adapters=adapters, external=external)
            if finish is not None:
                finish(project)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        target.replace_with(staging)
    project.directory = out
    return project


def check_fit_together(models: list[ModelCode], board: Board, external: bool) -> None:
    """Refuse models that fit the board one by one but not side by side: their weights together against
    flash, their static arenas together (the harness's one arena, external) and the stack against SRAM."""
    weights = sum(flash_weight_bytes(m.calls) for m in models)
    arenas = max(m.plan.size for m in models) if external else sum(m.plan.size for m in models)
    for what, need, have, memory in (("weights", weights, board.flash_size, "flash"),
                                     ("arenas and stack", arenas + board.stack_size, board.ram_size, "SRAM")):
        if need > have:
            raise TinyCompressError(f"the models do not fit {board.name} together: their {what} need "
                                    f"{need:,} bytes of {memory} but the board has {have:,}", EXIT_BUDGET)


@contextmanager
def project_directory(out: Path | None):
    """The user's -o directory, claimed (locked) for the whole run, or a temporary one removed afterwards."""
    if out is not None:
        with claim(out):
            yield Path(out)
        return
    with tempfile.TemporaryDirectory(prefix="tinycompress-") as tmp:
        yield Path(tmp) / "project"


def token_range(graph: Graph, tensor: int | None = None) -> int | None:
    """The vocabulary size when the model's input (or the input `tensor`) is token ids (int32), else
    None."""
    from .ops.gather import is_embedding_lookup, table_and_ids
    for layer in graph.layers:
        if is_embedding_lookup(layer, graph):
            table, ids = table_and_ids(layer, graph)
            if ids == (graph.inputs[0] if tensor is None else tensor):
                return graph.tensors[table].shape[0]
    return None


def model_inputs(graph: Graph, x: np.ndarray, source: str) -> np.ndarray:
    """Samples as the firmware reads them, (N, input bytes) int8: float32 features quantized with the input's
    scale (as a float-input model's QUANTIZE does: floatio.quantize), or int32 token ids; `x` is checked
    against the model's input first."""
    inp = graph.input_tensor()
    if inp.dtype not in ("int8", "int32"):
        raise TinyCompressError(f"the model's input is {inp.dtype}; only int8 inputs and int32 token ids are supported")
    x = check_samples(x, graph_io(graph), source)
    if inp.dtype == "int32":
        return x.astype("<i4").reshape(len(x), -1).view(np.int8)
    from .frontend.floatio import quantize    # the arithmetic of TFLite Micro's QUANTIZE, halves away from zero
    return quantize(x, float(inp.scale[0]), int(inp.zero_point[0])).reshape(len(x), -1)


def random_inputs(graph: Graph, count: int, seed: int = 0) -> np.ndarray:
    inp, rng = graph.input_tensor(), np.random.default_rng(seed)
    if inp.dtype == "int32":
        ids = rng.integers(0, token_range(graph) or 1, size=(count, inp.size)).astype(np.int32)
        return ids.astype("<i4").view(np.int8)
    return rng.integers(-128, 128, size=(count, inp.size), dtype=np.int8)


def load_inputs(data: Path | None, graph: Graph, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs as the firmware reads them, (N, input bytes) int8, and optional labels, from an .npz (or random);
    every array is checked against the model (tinycompress/frontend/data.py)."""
    if data is None:
        return random_inputs(graph, count, seed), None
    npz = open_npz(data, "data")
    if "x_int8" in npz:
        x = check_int8_samples(npz["x_int8"], graph_io(graph), f"{data}: 'x_int8'")
    elif "x" in npz:
        x = model_inputs(graph, npz["x"], f"{data}: 'x'")
    else:
        raise TinyCompressError(f"{data} has no inputs: store them under 'x' (float32, or int token ids) or "
                                f"'x_int8' (it has {', '.join(npz.files) or 'nothing'})")
    y = check_labels(npz["y"], graph_io(graph), len(x), f"{data}: 'y'") if "y" in npz else None
    return x, y


def run_model(model: Path, board: Board, data: Path | None = None, verify: bool = False,
              out: Path | None = None, calibration: Path | None = None, count: int = 10,
              host: bool = False, compression: Compression | None = None, cmsis_nn: Path | None = None,
              timeout: float | None = None, cycles: bool = False) -> Report:
    """Compile, build, run in the emulator (for at most `timeout` seconds, default_timeout() without it) and
    report; with verify, compare with TFLite Micro. A real board runs on its emulated stand-in
    (`emulated_by`) and the report adds the cycle estimate at the real board's clock (analysis/cycles.py),
    as `cycles` does on an emulated board."""
    from .analysis.cycles import add_estimate, stand_in
    real, board = board, stand_in(board, host)
    graph = load_model(model, calibration, compression)
    inputs, labels = load_inputs(data, graph, count)     # bad data is refused before anything is built
    with project_directory(out) as directory:
        project = compile_graph(graph, board, directory, Path(model).name, cmsis_nn=cmsis_nn)
        executable = build(project, host=host)
        sizes = elf_sizes(build(project)) if host else elf_sizes(executable)
        result = run_firmware(executable, board, inputs, project.graph.output_tensor().nbytes, host=host,
                              timeout=timeout)
        report = make_report(project, sizes, None if host else result)
        if not host and (cycles or real is not board):
            add_estimate(report, executable, board, real, inputs[0])
        predicted = predicted_classes(project.graph, result.outputs)
        if labels is not None and labels.ndim == 1 and predicted is not None:
            report.accuracy = float((predicted == labels).mean())
        if verify:
            report.verification = verify_outputs(project.graph, data, inputs, result, report)
            from .frontend.reference import tflm_arena
            report.arena["tflite_micro"] = tflm_arena(project.graph.source)["total"]
    return report


def predicted_classes(graph: Graph, outputs: np.ndarray) -> np.ndarray | None:
    """Each inference's class from the firmware's output bytes (N, output bytes): the largest score of an
    int8 output, or the value of a one-element int32 output (an ARG_MAX at the end); None when neither."""
    out = graph.output_tensor()
    if out.dtype == "int32":
        values = outputs.view("<i4").reshape(len(outputs), -1)
        return values[:, 0] if values.shape[1] == 1 else None
    return outputs.argmax(axis=1) if outputs.shape[1] > 1 else None


def reference_float_inputs(graph: Graph, data: Path | None, inputs: np.ndarray) -> np.ndarray:
    """The float32 inputs of a float-input model for TFLite Micro, (N, input bytes) as bytes: the features
    of --data 'x' (which quantize to `inputs`), else `inputs` dequantized (quantizing them back gives
    `inputs` exactly: the quotient stays within 2^-17 of the integer)."""
    from .frontend.floatio import dequantize, reference_inputs
    scale, zero_point = float(graph.input_tensor().scale[0]), int(graph.input_tensor().zero_point[0])
    npz = open_npz(data, "data") if data is not None else None
    if npz is not None and "x_int8" not in npz and "x" in npz:
        x = check_samples(npz["x"], graph_io(graph), f"{data}: 'x'").reshape(len(inputs), -1)
    else:
        x = dequantize(inputs, scale, zero_point)
    return np.ascontiguousarray(reference_inputs(x, scale), "<f4").view(np.int8)


def verify_outputs(graph: Graph, data: Path | None, inputs: np.ndarray, result, report: Report) -> dict:
    """Compare the firmware's outputs with TFLite Micro's, bit for bit: the int8 bytes, or for a model whose
    file gave float32, the floats of the firmware's own tc_model_output_float against the interpreter's
    on that file."""
    from .frontend.reference import tflm_outputs
    float_io = graph.float_io
    if float_io is not None and float_io.output:
        feed = reference_float_inputs(graph, data, inputs) if float_io.input else inputs
        expected = tflm_outputs(float_io.source, feed).view("<f4")
        got = result.float_outputs
        same = expected.view(np.uint32) == got.view(np.uint32)
    else:
        if float_io is not None and float_io.input:   # float in, int8 out: the file as given
            expected = tflm_outputs(float_io.source, reference_float_inputs(graph, data, inputs))
        else:
            expected = tflm_outputs(graph.source, inputs)
        got = result.outputs
        same = expected == got
    matching = int(same.all(axis=1).sum())
    verification = {"inferences": len(inputs), "matching": matching}
    if float_io is not None and float_io.output:
        verification["outputs"] = "float32"
    if matching != len(inputs):
        report.verification = verification
        first = int(np.argmax(~same.all(axis=1)))
        raise VerificationError(report, first, expected[first], got[first])
    return verification


class VerificationError(TinyCompressError):
    def __init__(self, report: Report, index: int, expected: np.ndarray, got: np.ndarray):
        v = report.verification
        diff = np.abs(expected.astype(np.float64) - got.astype(np.float64)).max()
        diff = f"{diff:g}" if expected.dtype.kind == "f" else int(diff)
        super().__init__(f"{v['inferences'] - v['matching']} of {v['inferences']} outputs differ from the "
                         f"TFLite Micro interpreter (first: input {index}, largest difference {diff})",
                         EXIT_MISMATCH)
        self.report = report


def flash_model(model: Path, board: Board, out: Path, data: Path | None = None, count: int = 10,
                calibration: Path | None = None, compression: Compression | None = None,
                upload: bool = True, upload_port: str | None = None, cmsis_nn: Path | None = None,
                timeout: float | None = None, adapters: Path | None = None, adapter: str | None = None):
    """Write the PlatformIO project into `out`, link it with the Debian toolchain, then build and upload it
    with PlatformIO: into QEMU for an emulated board (checked against TFLite Micro), or to the real board.
    With `adapters` (the directory of `tinycompress adapt`), the firmware also holds its adapters; the
    test inputs run on the base alone, or with `adapter` (a name) selected, checked against its .tflite."""
    from .target.flash import FlashResult, environments, flash_report, link_serial, run_platformio, write_platformio_project
    from .frontend.reference import tflm_outputs

    graph = load_model(model, calibration, compression)
    code, index, reference = None, None, graph.source
    if adapters is not None:
        from .adapt import load_adapters
        code = load_adapters(adapters, graph, board)
    if adapter is not None:
        if code is None or adapter not in code.names:
            known = f" (it has {', '.join(code.names)})" if code is not None else ""
            raise TinyCompressError(f"--adapter {adapter}: give --adapters DIR of an adapt run with that "
                                    f"task{known}")
        index = code.names.index(adapter)
        reference = (Path(adapters) / f"{adapter}.tflite").read_bytes()
    inputs, _ = load_inputs(data, graph, count)
    inputs = inputs[:count]
    expected = tflm_outputs(reference, inputs)
    source = f"{len(inputs)} inputs from {Path(data).name}" if data else f"{len(inputs)} random inputs (seed 0)"
    sizes = {}

    def finish(project: Project) -> None:
        write_platformio_project(project, inputs, expected, source, timeout, index)
        sizes["link"] = link_serial(project)     # refuses, with both numbers, a model that does not fit

    project = compile_graph(graph, board, out, Path(model).name, serial=True, finish=finish,
                            cmsis_nn=cmsis_nn, adapters=code)
    env = environments(board)[0]
    result = FlashResult(project, env.name, sizes["link"])
    if env.emulated:
        run_platformio(project.directory, env, upload=upload)
        if upload:
            elf = project.directory / ".pio" / "build" / env.name / "firmware.elf"
            result.report = flash_report(project, elf, project.directory / "serial.log", len(inputs))
            result.report.verification = {"inferences": len(inputs), "matching": len(inputs)}
            result.uploaded = True
    elif upload:
        run_platformio(project.directory, env, upload=True, upload_port=upload_port)
        result.uploaded = True
    return result
