"""Stage 5, emit: render the lowered, planned model into a self-contained C project.

Everything generated comes from templates/; this module only prepares values:
C initializers for the parameter structs and rows of constants for the arrays.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from .. import __version__
from ..target.boards import Board
from ..target.clocks import CLOCK_FLAGS, clock_sources, clock_values
from ..errors import EXIT_USAGE, TinyCompressError
from ..escape import FILTERS, c_identifier, one_line, safe_text
from ..ir import Graph
from ..ops.common import ConstArray, KernelCall, flash_weight_bytes, shared_arrays
from .patches import patch_steps
from .rows import band_calls
from .plan import ArenaPlan, chained
from .adapters import VERSION as ADAPTER_VERSION
from ..resources import data_dir

VALUES_PER_ROW = {1: 16, 2: 12, 4: 8}  # int8 rows of 16, int16 of 12, int32 of 8: about 100 columns
DEFAULT_API = "tc_model"        # the prefix of a model's C API without --name
API_NAME_CHARS = 32             # the longest --name: the symbols add up to 30 characters to it
ARENA_ALIGN = 16                # the arena's alignment, static or the caller's (NAME_ARENA_ALIGN)
ARENAS = ("static", "external")

# firmware/runtime files beside the model and its kernels: the file harness (emulator and host) ...
HARNESS_SOURCES = ["harness.c", "tc_report.c"]
TARGET_SOURCES = ["startup.c", "timer_systick.c", "semihosting.c"]
HOST_SOURCES = ["platform_host.c"]
# ... the generation harness of `tinycompress generate` (templates/generate.c.j2 beside it) ...
GENERATE_SOURCES = ["tc_report.c"]
# ... and the serial harness of the PlatformIO project, whose console depends on the board.
SERIAL_SOURCES = ["harness_serial.c", "tc_report.c"]
CONSOLE_SOURCES = {
    "semihosting": ["startup.c", "timer_systick.c", "semihosting.c"],
    "uart-stm32": ["startup.c", "timer_cycles.c", "console_uart_stm32.c", "console_print.c"],
    "uart-nrf52": ["startup.c", "timer_cycles.c", "console_uart_nrf52.c", "console_print.c"],
    "arduino": ["console_arduino.cpp"],   # built by PlatformIO against the Arduino core
}


@dataclass
class ModelCode:
    """One model of a project: its graph lowered and planned, and the prefix of its C API (`api`_invoke,
    `API`_INPUT_BYTES, ...). A project of one model writes model.h, model.c, model_weights.h and
    model_weights.c; a project of several writes NAME_model.h, NAME_model.c, NAME_weights.h and
    NAME_weights.c for each, and a model.h that includes every NAME_model.h."""
    graph: Graph
    calls: list[KernelCall]
    plan: ArenaPlan
    source_name: str
    api: str = DEFAULT_API

    def files(self, several: bool) -> dict[str, str]:
        stem, weights = ((f"{self.api}_model", f"{self.api}_weights") if several
                         else ("model", "model_weights"))
        return {"h_file": f"{stem}.h", "c_file": f"{stem}.c", "weights_h_file": f"{weights}.h",
                "weights_c_file": f"{weights}.c"}

    def weight_prefix(self, several: bool) -> str:
        """What the model's constant arrays are prefixed with: nothing for the one model of today's API."""
        return "" if self.api == DEFAULT_API and not several else f"{self.api}_"


@dataclass
class Project:
    """What emit wrote: the directory and the facts later stages need (those of its first model)."""
    directory: Path
    graph: Graph
    calls: list[KernelCall]
    plan: ArenaPlan
    board: Board
    cmsis_nn: Path | None = None     # the CMSIS-NN checkout the layers it supports call
    adapted_calls: list[KernelCall] = field(default_factory=list)   # the adapted path's (adapters.py)
    models: list[ModelCode] = field(default_factory=list)           # every model, the first is the above
    external: bool = False           # --arena external: the harness's arena is tc_harness_arena

    @property
    def weight_symbols(self) -> list[str]:
        prefix = self.models[0].weight_prefix(len(self.models) > 1) if self.models else ""
        return [prefix + a.name for c in self.calls for a in c.arrays]

    @property
    def arena_symbol(self) -> str:
        """The symbol of the arena the harness runs the first model in."""
        api = self.models[0].api if self.models else DEFAULT_API
        return "tc_harness_arena" if self.external else f"{api}_arena"


def c_init(value, indent: int = 0) -> str:
    """A Python value as a C initializer: dicts become designated initializers."""
    pad = "    " * (indent + 1)
    if isinstance(value, dict):
        fields = ",\n".join(f"{pad}.{k} = {c_init(v, indent + 1)}" for k, v in value.items())
        return "{\n" + fields + ",\n" + "    " * indent + "}"
    if isinstance(value, (tuple, list)):
        return "{" + ", ".join(c_init(v, indent) for v in value) + "}"
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return "INT32_MIN" if v == -(2 ** 31) else str(v)
    return str(value)


def c_rows(array: ConstArray, dsp: bool = False) -> str:
    """The array's values as initializer rows; with `dsp`, its DSP form (ops/dsp_forms.py)."""
    per_row = VALUES_PER_ROW[array.itemsize]
    values = [str(int(v)) if int(v) != -(2 ** 31) else "INT32_MIN"
              for v in (array.dsp_values if dsp else array.values)]
    rows = (", ".join(values[i:i + per_row]) for i in range(0, len(values), per_row))
    return ",\n".join("    " + r for r in rows)


def slot_rows(data: bytes, per_row: int = 16) -> str:
    """Bytes as rows of hexadecimal initializers (an adapter slot's image)."""
    rows = (", ".join(f"0x{b:02x}" for b in data[i:i + per_row]) for i in range(0, len(data), per_row))
    return ",\n".join("        " + r for r in rows)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=False, lstrip_blocks=False)
    env.filters["c_init"] = c_init
    env.filters["c_rows"] = c_rows
    env.filters["c_float"] = lambda x: float(np.float32(x)).hex() + "f"   # exact: a hexadecimal float literal
    env.filters["slot_rows"] = slot_rows
    env.filters.update(FILTERS)
    return env


def banner_text(board: Board, source_name: str | None = None) -> str:
    """The first line of every generated file, as safe text: the model's file name may hold anything."""
    source = f" from {source_name}" if source_name is not None else ""
    return safe_text(f"Generated by tinycompress {__version__}{source} for {board.name}. Do not edit.")


def check_api_names(names: list[str]) -> list[str]:
    """The prefixes of the models' C APIs (--name), checked: C identifiers of at most API_NAME_CHARS
    characters, not starting with _ (reserved in C) nor tc_ (the kernels and runtime's own, but for the
    default tc_model), distinct even in upper case (the macros), and none the start of another followed by
    _ (a's array b_conv_bias would be a_b's conv_bias)."""
    for name in names:
        text = one_line(repr(name))
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) or \
                len(name) > API_NAME_CHARS:
            raise TinyCompressError(f"--name {text} is not a C identifier of at most {API_NAME_CHARS} "
                                    "characters (a letter, then letters, digits and _)", EXIT_USAGE)
        if name.lower() != DEFAULT_API and (name.lower().startswith("tc_") or name.lower() == "tc"):
            raise TinyCompressError(f"--name {text}: names starting tc_ belong to tinycompress's kernels and "
                                    "runtime; choose another", EXIT_USAGE)
    for i, a in enumerate(names):
        for b in names[:i] + names[i + 1:]:
            if (a.upper() == b.upper() or b.upper().startswith(a.upper() + "_")):
                raise TinyCompressError(f"--name {one_line(a)} and {one_line(b)} would share symbols (one "
                                        "equals or starts the other, ignoring case); choose distinct names",
                                        EXIT_USAGE)
    return names


def check_identifiers(calls: list[KernelCall]) -> None:
    """Every name model.c and model_weights.c declare is a C identifier (load._name_layers makes them so)."""
    for call in calls:
        c_identifier(call.layer.name)
        for array in call.arrays:
            c_identifier(array.name)


def kernel_args(call: KernelCall, graph: Graph, plan: ArenaPlan) -> str:
    """The tensors a kernel call passes after its parameters: one arena pointer each, or, where the call
    takes a list (CONCATENATION's inputs, SPLIT's outputs), one compound literal array of them."""
    def pointer(t: int, const: str) -> str:   # int32 tensors: token ids in, ARG_MAX's indices out
        if graph.tensors[t].dtype == "int32":
            return f"({const}int32_t *)(tc_arena + {plan.offsets[t]})"
        return f"tc_arena + {plan.offsets[t]}"

    ins = [pointer(t, "const ") for t in call.inputs]
    outs = [pointer(t, "") for t in call.outputs]
    if call.input_list:
        ins = ["(const int8_t *const[]){" + ", ".join(ins) + "}"]
    if call.output_list:
        outs = ["(int8_t *const[]){" + ", ".join(outs) + "}"]
    return ", ".join(ins + outs)


def call_shapes(call: KernelCall, graph: Graph) -> str:
    """A call's input and output shapes, for its comment: `1x64x64, 1x64x1 -> 1x64x64`."""
    return " -> ".join(", ".join("x".join(map(str, graph.tensors[t].shape)) for t in group)
                       for group in (call.inputs, call.outputs))


def runtime_paths(names: list[str]) -> list[str]:
    return [f"firmware/runtime/{n}" for n in names]


def serial_link_sources(board: Board) -> list[str]:
    """What `make serial` links: the serial harness with the board's console, or with semihosting where
    the console needs a framework the Debian toolchain does not have (same core, same memory map)."""
    console = CONSOLE_SOURCES[board.console["driver"]]
    if any(name.endswith(".cpp") for name in console):
        console = CONSOLE_SOURCES["semihosting"]
    return runtime_paths(SERIAL_SOURCES + console + clock_sources(board)) + ["test_inputs.c"]


def arena_fields(params: dict) -> list[tuple[str, str]]:
    """The fields of a kernel's parameters that point into the arena (its scratch, ops/scratch.bind_scratch):
    with the caller's arena (--arena external), model.c sets them at each call."""
    return [(k, v) for k, v in params.items() if isinstance(v, str) and ARENA_REFERENCE.search(v)]


ARENA_REFERENCE = re.compile(r"\btc_arena\b")


def flash_params(params: dict) -> dict:
    """A kernel's parameters as the struct in flash holds them: with the caller's arena, the fields that point
    into it NULL (arena_fields; no other field may refer to it)."""
    late = dict(arena_fields(params))
    params = {k: "NULL" if k in late else v for k, v in params.items()}
    if ARENA_REFERENCE.search(repr(params)):
        raise ValueError("nested kernel parameters point into the arena: --arena external cannot set them")
    return params


def emit_project(graph: Graph, calls: list[KernelCall], plan: ArenaPlan, board: Board, out: Path,
                 source_name: str, serial: bool = False, cmsis_nn: Path | None = None,
                 generation: dict | None = None, adapters=None, api: str = DEFAULT_API,
                 external: bool = False) -> Project:
    """Write the C project of one model into `out`, which must not exist or be empty. With `serial`, the
    Makefile also links the serial harness (the PlatformIO project adds its test inputs); with `cmsis_nn` (a
    CMSIS-NN checkout), the Makefile builds it for the calls adapted to it (firmware/cmsis_nn/); with
    `generation` (integers only: context, vocab, last_only, pad, max_steps, max_prompt, checked by
    generate.check_signature), it writes generate.c and `make firmware_generate.elf` links it. With
    `adapters` (codegen/adapters.AdapterCode), model.c also holds the adapted path and the adapter slots.
    `api` prefixes the model's C API; with `external`, its invoke takes the arena from the caller."""
    return emit_models([ModelCode(graph, calls, plan, source_name, api)], board, out, serial=serial,
                       cmsis_nn=cmsis_nn, generation=generation, adapters=adapters, external=external)


def emit_models(models: list[ModelCode], board: Board, out: Path, serial: bool = False,
                cmsis_nn: Path | None = None, generation: dict | None = None, adapters=None,
                external: bool = False) -> Project:
    """Write one C project holding every model of `models` (emit_project), with the kernels and the runtime
    once; the harness (make, make host, make run) runs the first model, or with make HARNESS=NAME another."""
    from . import cmsis_nn as cmsis
    check_api_names([m.api for m in models])
    first, several = models[0], len(models) > 1
    if (several or first.api != DEFAULT_API or external) and (serial or generation is not None
                                                              or adapters is not None):
        raise TinyCompressError("the serial, generation and adapter harnesses run one model of the default "
                                "API (no --name, no --arena external)")
    env = _environment()
    env.filters["arena_fields"] = arena_fields if external else (lambda params: [])
    env.filters["flash_params"] = flash_params if external else (lambda params: params)
    adapted_calls = adapters.lowered.calls if adapters is not None else []
    check_identifiers(adapted_calls)
    kernel_files: set[str] = set()
    all_calls = [c for m in models for c in m.calls] + adapted_calls
    cmsis_scratch = cmsis.scratch_bytes(all_calls, board) if cmsis_nn is not None else None
    common = dict(board=board, external=external, arena_align=ARENA_ALIGN,
                  cmsis_nn=str(cmsis_nn) if cmsis_nn is not None else None, cmsis_version=cmsis.VERSION,
                  cmsis_scratch=cmsis_scratch, adapter_version=ADAPTER_VERSION)
    out.mkdir(parents=True, exist_ok=True)
    rendered = []
    for index, model in enumerate(models):
        values = dict(common, **model_values(model, several, board, adapters if index == 0 else None),
                      defines_cmsis_scratch=index == 0)
        kernel_files |= values.pop("kernel_files")
        files = model.files(several)
        for template, name in [("model.h.j2", files["h_file"]), ("model.c.j2", files["c_file"]),
                               ("model_weights.h.j2", files["weights_h_file"]),
                               ("model_weights.c.j2", files["weights_c_file"])]:
            (out / name).write_text(env.get_template(template).render(**values))
        rendered.append(values)
    values = dict(rendered[0], models=rendered, several=several,
                  model_sources=[f for v in rendered for f in (v["c_file"], v["weights_c_file"])],
                  kernel_sources=sorted(kernel_files),
                  harness_sources=runtime_paths(HARNESS_SOURCES) + ["tc_harness_model.c"] * external,
                  target_sources=runtime_paths(TARGET_SOURCES + clock_sources(board)),
                  host_sources=runtime_paths(HOST_SOURCES),
                  serial_sources=serial_link_sources(board) if serial else [],
                  clock_flags=CLOCK_FLAGS if clock_sources(board) else (),
                  generate_sources=runtime_paths(GENERATE_SOURCES) if generation is not None else [],
                  stack_size=board.stack_size,
                  harness_arena=max(m.plan.size for m in models))
    if several:
        banner = banner_text(board, ", ".join(m.source_name for m in models))
        values.update(banner=f"/* {banner} */", banner_make=f"# {banner}")
    banner = values["banner"]
    if several:
        (out / "model.h").write_text(env.get_template("models.h.j2").render(**values))
    for template, name in [("tc_harness_model.h.j2", "tc_harness_model.h"), ("Makefile.j2", "Makefile"),
                           ("memory.ld.j2", "memory.ld")] + \
            ([("tc_harness_model.c.j2", "tc_harness_model.c")] if external else []) + \
            ([("tc_clock_config.h.j2", "tc_clock_config.h")] if clock_sources(board) else []):
        (out / name).write_text(env.get_template(template).render(**values, **clock_values(board)))
    (out / "input.bin").write_bytes(zero_input(first.graph))
    if generation is not None and generation.get("cache"):
        (out / "generate.c").write_text(env.get_template("generate_cache.c.j2").render(
            banner=banner, **cache_fields(generation, first.graph)))
    elif generation is not None:
        fields = {k: int(generation[k]) for k in ("context", "vocab", "pad", "max_steps", "max_prompt")}
        (out / "generate.c").write_text(env.get_template("generate.c.j2").render(
            banner=banner, last_only=bool(generation["last_only"]), **fields))
    _copy_runtime(out / "firmware", sorted(kernel_files), cmsis_nn is not None)
    return Project(out, first.graph, first.calls, first.plan, board, cmsis_nn, adapted_calls, list(models),
                   external)


def zero_input(graph: Graph) -> bytes:
    """One input whose every value is 0 (the input's zero point; token id 0), so `make run` runs at once."""
    inp = graph.input_tensor()
    if inp.quantized and inp.dtype == "int8":
        return np.full(inp.nbytes, int(inp.zero_point[0]), np.int8).tobytes()
    return bytes(inp.nbytes)


def model_values(model: ModelCode, several: bool, board: Board, adapters=None) -> dict:
    """What the model's templates render from (model.h.j2, model.c.j2, model_weights.*.j2), and the kernel
    sources it needs under `kernel_files`."""
    from . import cmsis_nn as cmsis
    graph, calls, plan = model.graph, model.calls, model.plan
    inp, outp = graph.input_tensor(), graph.output_tensor()
    check_identifiers(calls)
    banner = banner_text(board, model.source_name)
    float_io = graph.float_io
    float_input, float_output = bool(float_io and float_io.input), bool(float_io and float_io.output)
    adapted_calls = adapters.lowered.calls if adapters is not None else []
    shared = shared_arrays(calls)
    kernel_files = ({cmsis.kernel_source(c) for c in calls + adapted_calls}
                    | ({"firmware/kernels/tc_quantize_f32_s8.c"} if float_input else set())
                    | ({"firmware/kernels/tc_dequantize_s8_f32.c"} if float_output else set()))
    values = dict(
        banner=f"/* {banner} */", banner_make=f"# {banner}",
        api=model.api, API=model.api.upper(), weight_prefix=model.weight_prefix(several),
        **model.files(several),
        model_name=graph.name, calls=calls, plan=plan, input=inp, output=outp,
        inputs=[graph.tensors[t] for t in graph.inputs], outputs=[graph.tensors[t] for t in graph.outputs],
        input_scale=float(inp.scale[0]) if inp.quantized else None,
        input_zero_point=int(inp.zero_point[0]) if inp.quantized else None,
        output_scale=float(outp.scale[0]) if outp.quantized else None,   # ARG_MAX's int32 indices: none
        output_zero_point=int(outp.zero_point[0]) if outp.quantized else None,
        float_input=float_input, float_output=float_output,
        weight_bytes=flash_weight_bytes(calls, shared), shared=shared,
        dsp_forms=any(a.dsp_values is not None for c in calls for a in c.arrays),
        kernel_args=lambda call: kernel_args(call, graph, plan),
        rows={step: band_calls(call.layer.name, call.rows, plan.offsets[call.inputs[0]],
                               plan.offsets[call.outputs[0]], plan.scratch[step])
              for step, call in enumerate(calls) if call.rows is not None and call.rows.band_rows},
        patches={step: patch_steps(calls[step:end + 1], calls[step].patches, plan.offsets[call.inputs[0]],
                                   plan.offsets[calls[end].outputs[0]], plan.scratch[step])
                 for step, call in enumerate(calls) if call.patches is not None
                 for end in [call.patches.steps[1]]},
        in_patches={step: first for step, first in chained(calls).items() if step != first},
        tensor_shapes=lambda call: call_shapes(call, graph),
        adapters=adapters, kernel_files=kernel_files,
    )
    if adapters is not None:
        adapted = adapters.lowered
        check_identifiers(adapted.calls)
        values.update(
            adapter_args=lambda call: kernel_args(call, adapted.graph, adapted.plan),
            adapter_shapes=lambda call: call_shapes(call, adapted.graph))
    return values


def cache_fields(generation: dict, graph: Graph) -> dict:
    """The cached harness's values (cached.CacheSignature.fields), checked again here: integers in range,
    indices of the model's inputs and outputs, 256 int8 values per table."""
    ints = {k: int(generation[k]) for k in ("context", "vocab", "token", "position", "logits", "heads",
                                            "width", "hot", "cold", "max_steps")}
    caches, rows = [int(i) for i in generation["caches"]], [int(i) for i in generation["rows"]]
    zeros = [int(z) for z in generation["cache_zero"]]
    tables = [[int(v) for v in table] for table in generation["tables"]]
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    if not (all(0 <= i < n_in for i in caches + [ints["token"], ints["position"]])
            and all(0 <= i < n_out for i in rows + [ints["logits"]])
            and len(caches) == len(rows) == len(zeros) == len(tables) >= 1
            and all(len(t) == 256 and all(-128 <= v <= 127 for v in t) for t in tables)
            and all(-128 <= v <= 127 for v in zeros + [ints["hot"], ints["cold"]])
            and all(ints[k] >= 1 for k in ("context", "vocab", "heads", "width", "max_steps"))):
        raise ValueError("the cached generation harness's values are out of range")
    return dict(ints, caches=caches, rows=rows, cache_zero=zeros, tables=tables)


def _copy_runtime(dest: Path, kernel_files: list[str], cmsis_nn: bool = False) -> None:
    """Copy the headers, the runtime and only the kernels (and CMSIS-NN adapters) this model calls."""
    src = data_dir("firmware")
    for sub in ("include", "runtime", "linker"):
        shutil.copytree(src / sub, dest / sub, dirs_exist_ok=True)
    (dest / "kernels").mkdir(parents=True, exist_ok=True)
    if cmsis_nn:
        (dest / "cmsis_nn").mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / "cmsis_nn" / "tc_cmsis_nn.h", dest / "cmsis_nn" / "tc_cmsis_nn.h")
    for rel in kernel_files:
        shutil.copy2(src.parent / rel, dest.parent / rel)
