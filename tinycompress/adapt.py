"""`tinycompress adapt`: one frozen base, one low-rank adapter per task, one firmware holding them all.

For each task: the base with an adapter on the chosen Dense layers (compress/lora.py) trains A and B on the
task's labels, converts to full int8 with the base's calibration data (the task's .tflite, what TFLite Micro
verifies the firmware against), and lowers to the same calls as every other task. The firmware
(codegen/adapters.py) holds the base's calls and the adapted path once, and each adapter's own values in a
slot of the .tc_adapters section; each task runs in QEMU with its adapter selected, the base alone too.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .codegen import adapters as slots
from .errors import EXIT_MISMATCH, TinyCompressError
from .target.boards import Board

REPORT_VERSION = 1
VERIFY_SAMPLES = 100    # inputs a task without --eval is verified on: the first of its training samples


@dataclass
class TaskResult:
    name: str
    tflite: bytes
    lowered: object
    host_float: float | None = None
    firmware: float | None = None
    bit_exact: bool | None = None
    inferences: int = 0
    instructions: float | None = None
    stack_peak: int | None = None
    image: bytes = b""


@dataclass
class AdaptResult:
    model: str
    board: Board
    rank: int
    layers: list[str]
    base_weights: int
    base_firmware: dict = field(default_factory=dict)     # eval name -> the base's accuracy on it
    base_bit_exact: bool | None = None
    base_instructions: float | None = None
    base_stack_peak: int | None = None
    tasks: list[TaskResult] = field(default_factory=list)
    slot_address: int = 0
    layout: object = None
    adapted_constants: int = 0
    flash_total: int = 0

    arena: dict = field(default_factory=dict)

    def to_json(self) -> str:
        layout = self.layout
        document = {
            "version": REPORT_VERSION, "model": self.model, "board": self.board.name, "rank": self.rank,
            "layers": self.layers,
            "base": {"flash": {"weights": self.base_weights, "total": self.flash_total},
                     "firmware": self.base_firmware, "bit_exact": self.base_bit_exact,
                     "instructions": self.base_instructions, "stack_peak": self.base_stack_peak},
            "adapters": [{"name": t.name, "rank": self.rank, "flash": {"weights": len(t.image)},
                          "firmware": t.firmware, "host_float": t.host_float, "bit_exact": t.bit_exact,
                          "instructions": t.instructions, "inferences": t.inferences,
                          "stack_peak": t.stack_peak, "output": _quantization(t.lowered.graph),
                          "image": f"{t.name}.bin", "tflite": f"{t.name}.tflite"} for t in self.tasks],
            "adapted_path_constants": self.adapted_constants,
            "arena": self.arena,
            "slots": {"address": self.slot_address, "slot_bytes": layout.slot_bytes,
                      "header_bytes": layout.header_bytes, "payload_bytes": layout.payload_bytes,
                      "format_version": slots.VERSION, "layout_crc": layout.crc,
                      "layout": layout.description()},
        }
        return json.dumps(document, indent=2)


def _quantization(graph) -> dict | None:
    out = graph.output_tensor()
    return {"scale": float(out.scale[0]), "zero_point": int(out.zero_point[0])} if out.quantized else None


def parse_pairs(values: tuple[str, ...], flag: str) -> list[tuple[str, Path]]:
    """`NAME=FILE` options, names checked (slots.check_name) and unique."""
    pairs = []
    for value in values:
        name, equals, path = value.partition("=")
        if not equals or not path:
            raise TinyCompressError(f"{flag} {value}: write {flag} NAME=FILE.npz")
        pairs.append((slots.check_name(name), Path(path)))
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise TinyCompressError(f"{flag}: a task is named twice")
    return pairs


def _labels(path: Path, model) -> tuple[np.ndarray, np.ndarray]:
    from .pipeline import training_data
    x, y = training_data(path, model)
    if y is None or y.ndim != 1:
        raise TinyCompressError(f"{path}: an adapter trains on class labels: store them under 'y'")
    return x, y


def adapt(base_path: Path, tasks: list[tuple[str, Path]], rank: int, layer_names: list[str] | None,
          epochs: int, calibration: Path, board: Board, evals: list[tuple[str, Path]], out: Path,
          timeout: float | None = None) -> AdaptResult:
    from .compress import lora
    from .frontend import quantize
    from .frontend.load import read_tflite
    from .pipeline import KERAS_SUFFIXES, Compression, apply_plan, compile_graph
    if not tasks:
        raise TinyCompressError("give at least one --task NAME=TRAIN.npz")
    if len(tasks) > slots.MAX_ADAPTERS:
        raise TinyCompressError(f"at most {slots.MAX_ADAPTERS} tasks")
    unknown = sorted({n for n, _ in evals} - {n for n, _ in tasks})
    if unknown:
        raise TinyCompressError(f"--eval {unknown[0]}: no --task of that name")
    base_path = Path(base_path)
    if base_path.suffix not in KERAS_SUFFIXES:
        raise TinyCompressError(f"{base_path.name}: adapt trains adapters on a Keras model (.keras)")
    model = quantize.load_keras(base_path)
    calibration_x = quantize.load_calibration(calibration, quantize.keras_io(model))
    layers = lora.choose_layers(model, layer_names)
    lora.check_rank(model, layers, rank)
    data = {name: _labels(path, model) for name, path in tasks}       # refused before any training
    eval_data = {name: _labels(path, model) for name, path in evals}

    base_graph = apply_plan(model, Compression(), calibration_x, base_path.stem).graph
    base = slots.lower_graph(base_graph, board, adapted=False)
    results = []
    for name, _ in tasks:
        x, y = data[name]
        student = lora.train_adapter(lora.adapted_model(model, layers, rank), x, y, epochs)
        host = round(lora.float_accuracy(student, *eval_data[name]), 4) if name in eval_data else None
        tflite = quantize.keras_to_int8_tflite(student, calibration_x)
        graph = read_tflite(tflite, name=f"{base_path.stem}_{name}")
        results.append(TaskResult(name, tflite, slots.lower_graph(graph, board, adapted=True), host))
    first = results[0].lowered
    _check_io(base, first)
    for task in results[1:]:
        slots.check_same_structure(first, task.lowered, task.name)
    layout = slots.make_layout(first)
    code = slots.adapter_code(base, [t.lowered for t in results], [t.name for t in results], layout)
    code.base_arena = base.plan.size
    for task, image in zip(results, code.images):
        task.image = image

    def finish(project) -> None:
        d = project.directory
        (d / "base.tflite").write_bytes(base_graph.source)
        for task in results:
            (d / f"{task.name}.tflite").write_bytes(task.tflite)
            (d / f"{task.name}.bin").write_bytes(task.image)

    project = compile_graph(base_graph, board, out, base_path.name, finish=finish, adapters=code)
    result = AdaptResult(base_path.stem, board, rank, layers, sum(c.weight_bytes for c in base.calls),
                         tasks=results, layout=layout,
                         adapted_constants=sum(a.nbytes for _, a in code.arrays),
                         arena={"base": base.plan.size, "adapted": first.plan.size})
    _measure(project, base, result, evals, tasks, timeout)
    return result


def _check_io(base, task) -> None:
    a, b = base.graph.input_tensor(), task.graph.input_tensor()
    if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a.scale, b.scale) or \
            not np.array_equal(a.zero_point, b.zero_point):
        raise TinyCompressError("the adapted model's input is quantized unlike the base's; give the same "
                                "calibration data")
    if base.graph.output_tensor().nbytes != task.graph.output_tensor().nbytes:
        raise TinyCompressError("the adapted model's output differs in size from the base's")


def _measure(project, base, result: AdaptResult, evals, tasks, timeout) -> None:
    """Build once; run the base and every adapter in QEMU on their evaluation data, each checked against
    TFLite Micro on its own .tflite. The base runs on every task's data (its instructions: their mean)."""
    from .frontend.reference import tflm_outputs
    from .target.build import build
    from .target.elfsize import elf_sizes
    from .pipeline import load_inputs, predicted_classes
    elf = build(project)
    sizes = elf_sizes(elf)
    result.flash_total = sizes.flash
    result.slot_address = symbol_address(elf, "tc_adapter_slots")
    eval_paths = dict(evals)
    inputs = {}
    for name, path in tasks:
        source = eval_paths.get(name, path)
        x, y = load_inputs(source, base.graph, 0)
        if name not in eval_paths:
            x, y = x[:VERIFY_SAMPLES], None
        inputs[name] = (x, y)
    base_exact, ticks, stack = True, [], 0
    for name, (x, y) in inputs.items():
        run = run_adapter(elf, result.board, x, base.graph.output_tensor().nbytes, -1, timeout)
        base_exact &= bool((tflm_outputs(base.graph.source, x) == run.outputs).all())
        if y is not None:
            result.base_firmware[name] = _accuracy(predicted_classes(base.graph, run.outputs), y)
        ticks.append(run.ticks)
        stack = max(stack, run.stack_peak)
    result.base_bit_exact, result.base_stack_peak = base_exact, stack
    result.base_instructions = _instructions(result.board, np.concatenate(ticks))
    for index, task in enumerate(result.tasks):
        x, y = inputs[task.name]
        run = run_adapter(elf, result.board, x, base.graph.output_tensor().nbytes, index, timeout)
        task.bit_exact = bool((tflm_outputs(task.tflite, x) == run.outputs).all())
        task.inferences = len(x)
        task.instructions = _instructions(result.board, run.ticks)
        task.stack_peak = run.stack_peak
        if y is not None:
            task.firmware = _accuracy(predicted_classes(task.lowered.graph, run.outputs), y)


def _accuracy(predicted, labels) -> float | None:
    return None if predicted is None else round(float((predicted == labels).mean()), 4)


def _instructions(board: Board, ticks: np.ndarray) -> float | None:
    """The mean instructions per inference of the harness's ticks (total first, per layer after)."""
    if not len(ticks):
        return None
    return round(float(board.instructions(ticks.astype(np.float64))[:, 0].mean()), 1)


def run_adapter(elf: Path, board: Board, inputs: np.ndarray, output_bytes: int, index: int,
                timeout: float | None = None, qemu_args: tuple[str, ...] = (), expect_refusal: bool = False):
    """Run the firmware with adapter `index` selected (-1: the base alone); a refused slot is an error
    unless `expect_refusal`."""
    from .target.emulate import run_firmware
    run = run_firmware(elf, board, inputs, output_bytes, timeout=timeout, qemu_args=qemu_args,
                       files={"adapter.bin": np.array([index], "<i4").tobytes()})
    if run.adapter_refused and not expect_refusal:
        raise TinyCompressError(f"the firmware refused adapter slot {index} (status -{run.adapter_refused})")
    return run


def symbol_address(elf: Path, name: str) -> int:
    from elftools.elf.elffile import ELFFile
    with open(elf, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        found = symtab.get_symbol_by_name(name) if symtab is not None else None
    if not found:
        raise TinyCompressError(f"the firmware has no symbol {name}")
    return int(found[0]["st_value"])


def check_results(result: AdaptResult) -> None:
    """Exit 4 when the base or an adapter differs from TFLite Micro on its own .tflite."""
    inexact = (["the base"] if result.base_bit_exact is False else []) + \
        [t.name for t in result.tasks if t.bit_exact is False]
    if inexact:
        raise TinyCompressError(f"the firmware with {', '.join(inexact)} differs from the TFLite Micro "
                                "interpreter on its .tflite", EXIT_MISMATCH)


def format_table(result: AdaptResult) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f} %"
    rows = [("adapter", "rank", "flash (weights)", "firmware", "host float", "bit-exact", "instructions")]
    base_acc = ", ".join(f"{k} {pct(v)}" for k, v in result.base_firmware.items()) or "-"
    rows.append(("(base)", "-", f"{result.base_weights:,}", base_acc, "-",
                 {True: "yes", False: "NO", None: "-"}[result.base_bit_exact],
                 "-" if result.base_instructions is None else f"{result.base_instructions:,.0f}"))
    for t in result.tasks:
        rows.append((t.name, str(result.rank), f"{len(t.image):,}", pct(t.firmware), pct(t.host_float),
                     {True: "yes", False: "NO", None: "-"}[t.bit_exact],
                     "-" if t.instructions is None else f"{t.instructions:,.0f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"tinycompress adapt: {result.model} on {result.board.name}, rank {result.rank} on "
             f"{', '.join(result.layers)}; slots at 0x{result.slot_address:08x}, "
             f"{result.layout.slot_bytes} bytes each; arena {result.arena['base']:,} B base alone, "
             f"{result.arena['adapted']:,} B with an adapter; flash {result.flash_total:,} B", ""]
    for k, row in enumerate(rows):
        cells = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        lines.append("  " + "  ".join(cells))
        if k == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _read_report(directory: Path) -> tuple[list[str], slots.Layout, str]:
    """The adapters' names, the slot layout and the board of an `adapt` directory's adapters.json."""
    directory = Path(directory)
    report_path = directory / "adapters.json"
    if not report_path.is_file():
        raise TinyCompressError(f"{directory} has no adapters.json: give the -o directory of "
                                "tinycompress adapt")
    try:
        report = json.loads(report_path.read_text())
        names = [str(a["name"]) for a in report["adapters"]]
        description = report["slots"]["layout"]
        board_name = str(report["board"])
    except (ValueError, KeyError, TypeError):
        raise TinyCompressError(f"{report_path} is not an adapters report of tinycompress adapt") from None
    for name in names:
        slots.check_name(name)
    return names, slots.Layout.from_description(description), board_name


def _lower_task(directory: Path, name: str, board: Board, layout: slots.Layout):
    """DIR/NAME.tflite lowered as an adapted graph, refused unless it has the firmware's slot layout."""
    from .frontend.load import read_tflite_file
    lowered = slots.lower_graph(read_tflite_file(Path(directory) / f"{name}.tflite"), board, adapted=True)
    same = lowered.slots == layout.slot_calls and \
        slots.make_layout(lowered).description() == layout.description()
    if not same:
        raise TinyCompressError(f"{name}.tflite does not match the firmware's adapter layout")
    return lowered


def adapter_image(directory: Path, name: str) -> bytes:
    """One adapter's slot image, made again from DIR/NAME.tflite with the layout of DIR/adapters.json (the
    firmware's): refused when the .tflite does not fit that layout."""
    from .target.boards import load_board
    names, layout, board_name = _read_report(directory)
    if name not in names:
        raise TinyCompressError(f"{directory} has no adapter {name!r}; it has {', '.join(names)}")
    return slots.image(_lower_task(directory, name, load_board(board_name), layout), layout, name)


def load_adapters(directory: Path, base_graph, board: Board) -> slots.AdapterCode:
    """The adapted path and slots of an `adapt` directory, made again for `board` around `base_graph`, which
    must be the directory's base.tflite (`flash --adapters DIR`)."""
    names, layout, _ = _read_report(directory)
    base_file = Path(directory) / "base.tflite"
    if not base_file.is_file() or base_file.read_bytes() != base_graph.source:
        raise TinyCompressError(f"with --adapters {directory}, the model must be {base_file} (the base the "
                                "adapters were trained on, as adapt quantized it)")
    base = slots.lower_graph(base_graph, board, adapted=False)
    tasks = [_lower_task(directory, name, board, layout) for name in names]
    for name, task in zip(names[1:], tasks[1:]):
        slots.check_same_structure(tasks[0], task, name)
    code = slots.adapter_code(base, tasks, names, layout)
    code.base_arena = base.plan.size
    return code


def without_slots(elf: Path, dest: Path, address: int, length: int) -> Path:
    """A copy of the firmware whose flash image stops where the adapter slots begin: QEMU then loads the
    code and constants but leaves the slots to a `-device loader,file=...,addr=...` (the adapter region
    written on its own, as an update writes it). The slots must end the segment that holds them
    (firmware/linker/sections.ld places them last in flash)."""
    from elftools.elf.elffile import ELFFile
    data = bytearray(Path(elf).read_bytes())
    with open(elf, "rb") as f:
        parsed = ELFFile(f)
        for index, segment in enumerate(parsed.iter_segments()):
            start, size = segment["p_paddr"], segment["p_filesz"]
            if segment["p_type"] != "PT_LOAD" or not start <= address < start + size:
                continue
            if start + size != address + length:
                raise TinyCompressError("the adapter slots do not end their segment of the firmware")
            header = parsed["e_phoff"] + index * parsed["e_phentsize"]
            fields = parsed.structs.Elf_Phdr.parse(bytes(data[header:header + parsed["e_phentsize"]]))
            fields["p_filesz"] = fields["p_memsz"] = address - start
            data[header:header + parsed["e_phentsize"]] = parsed.structs.Elf_Phdr.build(fields)
            Path(dest).write_bytes(bytes(data))
            return Path(dest)
    raise TinyCompressError("the firmware has no loaded segment holding the adapter slots")
