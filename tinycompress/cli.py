"""The command line: compile, run, boards.

Exit codes: 0 ok, 1 error, 2 usage, 3 does not fit the board, 4 output mismatch,
5 a required tool is missing. Tables and JSON go to stdout, messages to stderr.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from . import __version__
from .target.boards import DEFAULT_BOARD, Board, list_boards, load_board, load_board_file, require_emulated
from .errors import TinyCompressError
from .escape import one_line
from .outputs import check_paths, claim, write_file

MODEL = click.Path(path_type=Path, dir_okay=False)
DATA = click.Path(path_type=Path, dir_okay=False)
MAX_COUNT = 10_000      # random inputs of a run, test inputs of a flashed firmware: at most
COUNT = click.IntRange(1, MAX_COUNT)


def _board_option(fn):
    """--board NAME (from the catalog) or --board-file FILE.toml (a board of one's own), given to the
    command as one checked Board under `board`."""
    @functools.wraps(fn)
    def command(*args, board: str | None, board_file: Path | None, **kwargs):
        if board is not None and board_file is not None:
            raise click.UsageError("give --board or --board-file, not both")
        return fn(*args, board=load_board_file(board_file) if board_file is not None
                  else load_board(DEFAULT_BOARD if board is None else board), **kwargs)

    command = click.option("--board-file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE.toml",
                           help="A board file of your own, checked like the catalog's (see README.md).")(command)
    return click.option("--board", "-b", metavar="BOARD",
                        help=f"Target board from the catalog (see `tinycompress boards`)  [default: {DEFAULT_BOARD}]."
                        )(command)


def _compression_options(fn):
    fn = click.option("--vocab", type=DATA, metavar="FILE",
                      help="Token strings, one per line (line i is id i), for --embedding kronecker "
                           "(or under 'vocab' in --data).")(fn)
    fn = click.option("--embedding", metavar="METHOD",
                      help="Compress the embedding table: row-int8, lowrank:R, pq:M, hash:B or kronecker.")(fn)
    fn = click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1),
                      help="Fine-tuning epochs with --train.")(fn)
    fn = click.option("--train", type=DATA, metavar="NPZ",
                      help="Fine-tune after the plan's structural steps on 'x' with labels 'y', or by "
                           "distillation from the uncompressed model without labels.")(fn)
    fn = click.option("--energy", type=float, metavar="F",
                      help="Per-layer rank keeping this fraction of the squared singular values, e.g. 0.95.")(fn)
    fn = click.option("--rank", metavar="R",
                      help="Factorize Dense/Conv2D layers of a Keras model: one rank (16), 'full', "
                           "or per layer (dense_1=16,conv_2=8). Short for --compress rank:R.")(fn)
    fn = click.option("--compress", metavar="SPEC",
                      help="A compression plan, steps joined by '+': e.g. rank:16, energy:0.9, "
                           "prune:0.5+int4, embedding:pq:8 (see README.md).")(fn)
    return fn


def _compression(compress, rank, energy, train, epochs, embedding=None, vocab=None, data=None):
    """The compress stage's settings: --compress with the shorthands --rank, --energy and --embedding as
    steps of it; kronecker's token strings come from --vocab or the 'vocab' of --data."""
    from .compress.plan import methods, parse_plan
    from .pipeline import Compression
    plan = parse_plan(compress or "")
    shorthands = [("--rank", rank, "rank"), ("--energy", energy, "energy"),
                  ("--embedding", embedding, "embedding")]
    shorthands = [(flag, f"{name}:{value}") for flag, value, name in shorthands
                  if value is not None and not (name == "rank" and value == "full")]
    if rank is not None and energy is not None:
        raise TinyCompressError("give --rank or --energy, not both: both set the rank step")
    known = methods()
    for flag, step in shorthands:
        method = known[step.partition(":")[0]]
        if any(isinstance(s, method) for s in plan.steps):
            raise TinyCompressError(f"give {flag} or a {method.names[0]} step in --compress {compress}, "
                                    "not both")
        plan.steps += parse_plan(step).steps
    plan = parse_plan(plan.label) if shorthands else plan      # KERAS steps first again
    tokens = _tokens(vocab, data) if any(s.name == "embedding" for s in plan.steps) else None
    return Compression(plan, train, epochs, tokens)


def _tokens(vocab: Path | None, data: Path | None) -> list[str] | None:
    """The token strings: --vocab, else the 'vocab' array of the data .npz, else none."""
    from .compress.embeddings import read_vocab
    from .frontend.load import open_npz
    if vocab is not None:
        return read_vocab(vocab)
    if data is not None and "vocab" in (npz := open_npz(data, "data")):
        return [str(t) for t in npz["vocab"]]
    return None


def _kernel_options(fn):
    fn = click.option("--cmsis-nn", "cmsis_nn_dir", type=click.Path(path_type=Path, file_okay=False),
                      metavar="DIR", help="The CMSIS-NN checkout --kernels cmsis-nn builds with.")(fn)
    fn = click.option("--kernels", type=click.Choice(["tinycompress", "cmsis-nn"]), default="tinycompress",
                      show_default=True, help="Whose int8 kernels the layers call.")(fn)
    return fn


def _cmsis_nn(kernels: str, directory: Path | None) -> Path | None:
    from .codegen import cmsis_nn
    return cmsis_nn.checkout(directory) if kernels == "cmsis-nn" else None


def _timeout_option(fn):
    return click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                        help="How long the emulator may run, in seconds [default: 60 + 2 per input; 600 for "
                             "profile-functions' logged run; 300 for flash].")(fn)


def _calibration_option(fn):
    return click.option("--calibration", type=DATA, metavar="NPZ",
                        help="Float samples under 'x' to quantize a Keras or float TFLite model to int8.")(fn)


def _build_options(fn):
    """What `run` and `profile-functions` build from: the project directory, quantization, compression, kernels."""
    fn = _calibration_option(_compression_options(_kernel_options(fn)))
    return click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False),
                        help="Keep the C project here.")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinycompress")
def cli():
    """Compile int8 neural networks to C for Arm Cortex-M and measure them in an emulator."""


@cli.command()
@click.argument("models", metavar="MODEL...", nargs=-1, required=True, type=MODEL)
@_board_option
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory for the C project: missing, empty, or an earlier project (then only the files "
                   "its manifest lists are replaced).")
@click.option("--name", "names", metavar="NAME[,NAME...]",
              help="Prefix of each model's C API (NAME_invoke, NAME_input, NAME_INPUT_BYTES, ...), one per "
                   "MODEL in order  [default for one model: tc_model].")
@click.option("--arena", type=click.Choice(["static", "external"]), default="static", show_default=True,
              help="static: each model's arena is a static array; external: NAME_invoke(arena) takes it from "
                   "the caller (NAME_ARENA_SIZE bytes aligned to NAME_ARENA_ALIGN).")
@_calibration_option
@_compression_options
@_kernel_options
def compile(models: tuple[Path, ...], board: Board, output: Path, names: str | None, arena: str,
            calibration: Path | None, compress, rank, energy, train, epochs, embedding, vocab, kernels,
            cmsis_nn_dir):
    """Write a self-contained C project for MODEL (.tflite or .keras) with a Makefile. Several models
    go into one project (with --name, one name each), sharing the kernels and runtime; the options
    apply to every model.

    \b
    Example:
      tinycompress compile examples/digits/digits_cnn.tflite --board mps2-an386 -o build/digits
      make -C build/digits          # firmware.elf, built with arm-none-eabi-gcc
      tinycompress compile kws.tflite vww.tflite --name kws,vww --arena external -o build/both
    """
    from .pipeline import check_model_names, compile_models
    names = check_model_names(names.split(",") if names is not None else None, len(models))
    for model in models:
        _check_paths(output, {}, model, calibration=calibration, train=train, vocab=vocab)
    project = compile_models(list(models), board, output, calibration,
                             _compression(compress, rank, energy, train, epochs, embedding, vocab),
                             _cmsis_nn(kernels, cmsis_nn_dir), names=names, external=arena == "external")
    layers = sum(len(m.calls) for m in project.models)
    arenas = " + ".join(f"{m.plan.size:,}" for m in project.models)
    click.echo(f"wrote {project.directory} ({len(project.models)} model{'s' * (len(project.models) > 1)}, "
               f"{layers} layers, arena {arenas} bytes{' (the caller gives it)' if project.external else ''}); "
               f"build it with: make -C {project.directory}", err=True)


@cli.command()
@click.argument("model", type=MODEL)
@_board_option
@click.option("--data", type=DATA, metavar="NPZ",
              help="Inputs under 'x' (float32 features or integer token ids) or 'x_int8' (int8), optional "
                   "labels under 'y'. Without it, random inputs.")
@click.option("--count", default=10, show_default=True, type=COUNT, help="Random inputs to use without --data.")
@click.option("--verify", is_flag=True, help="Compare every output with the TFLite Micro interpreter; "
                                             "exit 4 on any difference.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              metavar="FILE", help="Write the report as JSON ('-' for stdout).")
@_build_options
@_timeout_option
@click.option("--cycles", is_flag=True, help="Add the cycle estimate on an emulated board (a real board "
              "always has it): one more, logged run of the first input.")
@click.option("--host", is_flag=True, hidden=True, help="Run the harness natively instead of in QEMU (tests).")
def run(model: Path, board: Board, data: Path | None, count: int, verify: bool, json_path: Path | None,
        output: Path | None, calibration: Path | None, compress, rank, energy, train, epochs, embedding,
        vocab, kernels, cmsis_nn_dir, timeout: float | None, cycles: bool, host: bool):
    """Build MODEL for a board, run it in QEMU and print flash, SRAM and instruction counts.

    A real board runs on its emulated stand-in (the same core) and the report adds estimated cycles and
    milliseconds at the board's clock, per layer too (a timing model, labelled as an estimate).

    \b
    Example:
      tinycompress run examples/digits/digits_cnn.tflite --board mps2-an386 \\
          --data examples/digits/digits_test.npz --verify --json report.json
      tinycompress run examples/digits/digits_cnn.keras --rank 4 \\
          --calibration examples/digits/digits_test.npz --data examples/digits/digits_test.npz
    """
    from .pipeline import VerificationError, run_model
    from .analysis.report import format_table
    _check_paths(output, {"--json": json_path}, model, data, calibration, train, vocab)
    try:
        report = run_model(model, board, data=data, verify=verify, out=output, cycles=cycles,
                           calibration=calibration, count=count, host=host,
                           compression=_compression(compress, rank, energy, train, epochs, embedding,
                                                    vocab, data),
                           cmsis_nn=_cmsis_nn(kernels, cmsis_nn_dir), timeout=timeout)
    except VerificationError as exc:
        report = exc.report
        _emit(report, json_path)
        raise
    _emit(report, json_path)
    if json_path is None or str(json_path) != "-":
        click.echo(format_table(report))


@cli.command()
@click.argument("model", type=MODEL)
@_board_option
@click.option("--prompt", required=True, metavar="TEXT", help="The text to continue.")
@click.option("--tokens", "steps", required=True, type=int, metavar="N", help="How many tokens to generate.")
@click.option("--verify", is_flag=True, help="Compare every step's logits with the TFLite Micro "
                                             "interpreter's on the same window; exit 4 on any difference.")
@click.option("--cache", is_flag=True, help="MODEL is a key/value-cached step model (.tflite): token [1, 1], "
              "position one-hot [1, T] and caches [1, H, T, D] in; logits [1, V] and each cache's new row "
              "[1, H, 1, D] out. One position's work per token; the positions must fit in T.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              metavar="FILE", help="Write the report and the tokens as JSON ('-' for stdout).")
@_build_options
@_timeout_option
@click.option("--host", is_flag=True, hidden=True, help="Run the harness natively, not in QEMU (tests).")
def generate(model: Path, board: Board, prompt: str, steps: int, verify: bool, cache: bool,
             json_path: Path | None,
             output: Path | None, calibration: Path | None, compress, rank, energy, train, epochs, embedding,
             vocab, kernels, cmsis_nn_dir, timeout: float | None, host: bool):
    """Generate N tokens after a prompt, greedily, in the firmware: it keeps the token window, feeds back
    each argmax, and reports the instructions per token, flash and SRAM.

    MODEL takes int32 token ids [1, T] and gives int8 logits [1, T, V] (a causal model; the window
    starts at position 0) or [1, V]. Tokens are the prompt's UTF-8 bytes, or with --vocab the longest
    matching tokens of a JSON list of token strings (id i is the i-th); the window slides once the
    prompt and the generated tokens exceed T. With --cache, MODEL is a key/value-cached step model
    (examples/tinylm/step.py makes one): the firmware keeps the caches and feeds one position per step.

    \b
    Example:
      tinycompress generate examples/tinylm/tinylm.keras --board mps2-an386 \\
          --calibration examples/tinylm/tinylm_calibration.npz --prompt "def " --tokens 16 --verify
      tinycompress generate examples/tinylm/tinylm_step.tflite --cache --board mps2-an386 \\
          --prompt "def " --tokens 16 --verify
    """
    from .analysis.generate import GenerationMismatch, Vocabulary, format_generation, generate as run_generate
    from .analysis.generate import check_request, read_vocabulary
    check_request(prompt, steps)
    _check_paths(output, {"--json": json_path}, model, None, calibration, train, vocab)
    tokens = read_vocabulary(vocab) if vocab is not None else None
    compression = _compression(compress, rank, energy, train, epochs, embedding)
    if tokens is not None and compression.vocab is None:
        compression.vocab = tokens           # kronecker's token strings
    try:
        result = run_generate(model, require_emulated(board, "generate"), prompt, steps,
                              Vocabulary(tokens, str(vocab)), verify=verify, out=output,
                              calibration=calibration, compression=compression,
                              cmsis_nn=_cmsis_nn(kernels, cmsis_nn_dir), timeout=timeout, host=host,
                              cache=cache)
    except GenerationMismatch as exc:
        if json_path is not None:
            _write_text(json_path, exc.generation.to_json())
        raise
    if json_path is not None:
        _write_text(json_path, result.to_json())
    if json_path is None or str(json_path) != "-":
        click.echo(format_generation(result))


for _param in generate.params:    # generate's --vocab is its tokenizer's (and kronecker's) JSON list
    if _param.name == "vocab":
        _param.help = ("A JSON list of token strings (id i is the i-th) to cut the prompt into, longest "
                       "match first, and to decode with (and kronecker's token strings) [default: bytes].")


def _emit(report, json_path: Path | None) -> None:
    if json_path is not None:
        _write_text(json_path, report.to_json())


def _write_text(path: Path, text: str) -> None:
    if str(path) == "-":
        click.echo(text)
    else:
        write_file(path, text + "\n")


def _check_paths(output: Path | None, reports: dict, model: Path, data: Path | None = None,
                 calibration: Path | None = None, train: Path | None = None, vocab: Path | None = None,
                 extra: dict[str, Path] | None = None) -> None:
    """Refuse outputs that would overwrite an input or each other (see outputs.check_paths)."""
    check_paths(output, reports, {"MODEL": model, "--data": data, "--calibration": calibration, "--train": train,
                                  "--vocab": vocab, **(extra or {})})


def _size(text: str | None) -> int | None:
    """'64KiB', '1MiB', '512k' or plain bytes."""
    if text is None:
        return None
    units = {"kib": 1024, "kb": 1024, "k": 1024, "mib": 1 << 20, "mb": 1 << 20, "m": 1 << 20, "b": 1, "": 1}
    number = text.strip().lower().rstrip("bkmi") or "0"
    unit = text.strip().lower()[len(number):]
    try:
        size = int(float(number) * units[unit])
    except (ValueError, KeyError, OverflowError):
        size = 0
    if size <= 0:
        raise click.BadParameter(f"{text!r} is not a size; write e.g. 64KiB, 1MiB or 65536")
    return size


@cli.command()
@click.argument("model", type=MODEL)
@_board_option
@click.option("--variants", metavar="LIST",
              help="Compression plans to build, comma-separated: 'full' (the uncompressed model), plans as "
                   "for --compress, and 'auto' (searched under the budgets), e.g. "
                   "full,int4,prune:0.5+int4,auto.")
@click.option("--ranks", metavar="LIST",
              help="Short for --variants of rank:R steps: global ranks, 'auto' and 'full'  "
                   "[default: 4,8,16,32,full]")
@click.option("--embeddings", metavar="LIST",
              help="Short for --variants of embedding steps beside the int8 table, e.g. "
                   "row-int8,lowrank:16,pq:8,hash:512,kronecker (MODEL may then be a .tflite).")
@click.option("--vocab", type=DATA, metavar="FILE",
              help="Token strings for kronecker, one per line (or under 'vocab' in --data).")
@click.option("--data", type=DATA, metavar="NPZ", required=True,
              help="Evaluation set: float32 inputs under 'x', class ids or targets under 'y' "
                   "(without 'y', an autoencoder is scored against its input).")
@_calibration_option
@click.option("--train", type=DATA, metavar="NPZ",
              help="Fine-tune each compressed variant on this data (labels 'y', or distillation without).")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1), help="Fine-tuning epochs.")
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False),
              help="Write profile.json, profile.csv, pareto.png and every variant's .tflite and C project here.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              metavar="FILE", help="Also write the JSON here ('-' for stdout).")
@click.option("--max-flash", metavar="SIZE", help="Budget: flash, e.g. 64KiB.")
@click.option("--max-sram", metavar="SIZE", help="Budget: SRAM, e.g. 16KiB.")
@click.option("--max-instructions", type=click.IntRange(min=1), metavar="N",
              help="Budget: instructions per inference.")
@click.option("--min-accuracy", type=click.FloatRange(0, 100), metavar="PCT",
              help="Budget: firmware accuracy in percent (classifiers).")
@click.option("--max-error", type=click.FloatRange(min=0), metavar="MSE",
              help="Budget: the firmware's mean squared error (regression and autoencoders).")
@click.option("--max-perplexity", type=click.FloatRange(min=1), metavar="PPL",
              help="Budget: the firmware's perplexity per token on the held-out text (language models).")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Write JUnit XML: one test case per variant.")
@click.option("--jobs", "-j", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Variants built and emulated at once on this machine (--executor local).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where variants are built and emulated: this machine, or a Ray cluster (each variant "
                   "a task; pip install 'tinycompress[cluster]').")
@click.option("--ray-address", envvar="RAY_ADDRESS", metavar="HOST:PORT",
              help="The Ray cluster for --executor ray  [default: $RAY_ADDRESS]")
@_timeout_option
def profile(model, board, variants, ranks, embeddings, vocab, data, calibration, train, epochs, output,
            json_path, max_flash, max_sram, max_instructions, min_accuracy, max_error, max_perplexity, junit, jobs,
            executor, ray_address, timeout):
    """Build every variant of MODEL, run each in QEMU, and tabulate what each costs and buys.

    Exits 3 when budgets are given and no variant meets all of them (or auto cannot), 4 when a
    variant's firmware differs from the TFLite Micro interpreter.

    \b
    Example:
      tinycompress profile ad.keras --board mps2-an386 --ranks 4,8,16,32,full \\
          --data eval.npz -o build/profile --max-flash 200KiB --junit profile.xml
      tinycompress profile examples/digits/digits_cnn.keras --data examples/digits/digits_test.npz \\
          --variants full,rank:4,auto --max-flash 40KiB --min-accuracy 90
      tinycompress profile examples/text/text_classifier.keras --data examples/text/text_test.npz \\
          --embeddings row-int8,lowrank:16,pq:8,hash:512,kronecker
      RAY_ADDRESS=10.0.0.5:6379 tinycompress profile ad.keras --ranks 8,32,full \\
          --data eval.npz -o build/profile --executor ray
    """
    from .errors import EXIT_BUDGET, EXIT_MISMATCH
    from .analysis.sweep import Budgets, embedding_variants, plan_variants, rank_variants, run_sweep
    from .analysis.sweep_report import (format_table, to_json, variant_name, write_csv, write_junit,
                                        write_pareto)

    budgets = Budgets(_size(max_flash), _size(max_sram), max_instructions,
                      None if min_accuracy is None else min_accuracy / 100, max_error, max_perplexity)
    target = require_emulated(board, "profile")
    _check_paths(output, {"--json": json_path, "--junit": junit}, model, data, calibration, train, vocab)
    options = (("--variants", variants), ("--ranks", ranks), ("--embeddings", embeddings))
    given = [flag for flag, value in options if value is not None]
    if len(given) > 1:
        raise TinyCompressError(f"give one of {' and '.join(given)}: a profile builds one list of variants")
    chosen = plan_variants(variants) if variants is not None else \
        embedding_variants(embeddings) if embeddings is not None else rank_variants(ranks)
    with claim(output):
        results = run_sweep(model, target, chosen, data, output, calibration, train, epochs, budgets, jobs,
                            timeout, _tokens(vocab, data), executor, ray_address)
        name = Path(model).stem
        document = to_json(results, name, target.name)
        if output is not None:
            write_file(output / "profile.json", document + "\n")
            write_csv(results, output / "profile.csv")
            write_pareto(results, output / "pareto.png", f"{name} on {target.name}", budgets)
    if junit is not None:
        write_junit(results, junit, target.name)
    if json_path is not None:
        _write_text(json_path, document)
    if json_path is None or str(json_path) != "-":
        click.echo(format_table(results, name, target.name))
    inexact = [variant_name(v) for v in results if not v.bit_exact]
    if inexact:
        raise TinyCompressError(f"the firmware of {', '.join(inexact)} differs from the TFLite Micro "
                                "interpreter", EXIT_MISMATCH)
    auto = next((v for v in results if v.note), None)
    if auto is not None:
        raise TinyCompressError(f"auto: {auto.note}", EXIT_BUDGET)
    if budgets.any and all(v.budget_failures for v in results):
        raise TinyCompressError("no variant meets the budgets: " + _closest(results, budgets), EXIT_BUDGET)


def _closest(results, budgets) -> str:
    """Each failed budget with the best figure any variant reached."""
    from .analysis.sweep_report import variant_name
    parts = []
    for name, limit, get, best in budgets.limits():
        if not any(name in v.budget_failures for v in results):
            continue
        winner = best(results, key=get)
        value, unit = get(winner), " bytes" if name in ("max-flash", "max-sram") else ""
        shown = f"{100 * value:.2f} %" if name == "min-accuracy" else \
            f"{value:.4g}" if name in ("max-error", "max-perplexity") else f"{value:,.0f}{unit}"
        limit_shown = f"{100 * limit:.2f} %" if name == "min-accuracy" else \
            f"{limit:.4g}" if name in ("max-error", "max-perplexity") else f"{limit:,}{unit}"
        parts.append(f"--{name} {limit_shown} (best reachable: {shown}, {variant_name(winner)})")
    return "; ".join(parts)


@cli.command("profile-functions")
@click.argument("model", type=MODEL)
@_board_option
@click.option("--data", type=DATA, metavar="NPZ",
              help="Take the input from here: 'x' (float32) or 'x_int8'. Without it, a random int8 input "
                   "(the first one `run` uses).")
@click.option("--index", default=0, show_default=True, type=click.IntRange(min=0), help="Which input of --data.")
@click.option("--top", default=20, show_default=True, type=click.IntRange(min=0),
              help="Functions to list, the hottest first (0: all; the JSON always has all).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              metavar="FILE", help="Write the profile as JSON ('-' for stdout).")
@_build_options
@_timeout_option
def profile_functions_command(model: Path, board: Board, data: Path | None, index: int, top: int,
                              json_path: Path | None, output: Path | None, calibration: Path | None, compress,
                              rank, energy, train, epochs, embedding, vocab, kernels, cmsis_nn_dir,
                              timeout: float | None):
    """Run one inference of MODEL in QEMU, logging every instruction, and list the hottest functions.

    Counts the instructions of every function in the call of tc_model_invoke() (one inference,
    interrupts included), with their share of it, and checks the total against the firmware's own
    SysTick count of the same run.

    \b
    Example:
      tinycompress profile-functions examples/digits/digits_cnn.tflite --board mps2-an386 \\
          --data examples/digits/digits_test.npz --top 10
    """
    from .target.build import build
    from .analysis.hotspots import format_table, profile_functions
    from .pipeline import compile_graph, load_inputs, load_model, project_directory
    target = require_emulated(board, "profile-functions")
    _check_paths(output, {"--json": json_path}, model, data, calibration, train, vocab)
    compression = _compression(compress, rank, energy, train, epochs, embedding, vocab, data)
    graph = load_model(model, calibration, compression)
    inputs, _ = load_inputs(data, graph, min(index + 1, MAX_COUNT))   # bad data: refused before any build
    if index >= len(inputs):
        raise TinyCompressError(f"--index {index} is past the {len(inputs)} inputs in "
                                f"{data or 'the random inputs'}")
    with project_directory(output) as directory:
        project = compile_graph(graph, target, directory, Path(model).name,
                                cmsis_nn=_cmsis_nn(kernels, cmsis_nn_dir))
        result = profile_functions(build(project), target, inputs[index],
                                   **({} if timeout is None else {"timeout": timeout}))
    if json_path is not None:
        _write_text(json_path, result.to_json(project.graph.name))
    if json_path is None or str(json_path) != "-":
        click.echo(format_table(result, project.graph.name, top or None))


@cli.command()
@click.argument("model", type=MODEL)
@_board_option
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False),
              help="Directory for the PlatformIO project [default: build/MODEL-BOARD].")
@click.option("--data", type=DATA, metavar="NPZ",
              help="Test inputs built into the firmware, under 'x' (float32) or 'x_int8'. "
                   "Without it, random int8 inputs.")
@click.option("--count", default=10, show_default=True, type=COUNT, help="How many test inputs the firmware runs.")
@click.option("--upload-port", metavar="PORT", help="The board's upload port, e.g. /dev/ttyACM0.")
@click.option("--no-upload", is_flag=True, help="Write the project and link it; do not upload "
                                                "(a real board then needs no network).")
@click.option("--port", metavar="PORT", help="A real board's serial port: after the upload, read its outputs "
              "there and report cycles and ms, as `validate` (exit 4 on a difference).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              metavar="FILE", help="Write the emulated run's report as JSON ('-' for stdout).")
@click.option("--adapters", "adapters_dir", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="Also hold the adapters of `tinycompress adapt -o DIR` (MODEL is then DIR/base.tflite).")
@click.option("--adapter", metavar="NAME",
              help="With --adapters: run the test inputs with this adapter selected (checked against "
                   "DIR/NAME.tflite).")
@_calibration_option
@_compression_options
@_kernel_options
@_timeout_option
def flash(model: Path, board: Board, output: Path | None, data: Path | None, count: int, upload_port: str | None,
          no_upload: bool, port: str | None, json_path: Path | None, adapters_dir: Path | None, adapter: str | None,
          calibration: Path | None,
          compress, rank, energy, train, epochs, embedding, vocab, kernels, cmsis_nn_dir,
          timeout: float | None):
    """Write a PlatformIO project for MODEL and run `pio run -t upload`.

    For an emulated board the upload runs the firmware in QEMU, offline, and fails unless every
    output equals the TFLite Micro interpreter's. For a real board it flashes the board; the
    firmware prints its results on the serial port (115200 baud). Either way the firmware is
    first linked with the Debian toolchain for the board's core and memory map.

    \b
    Example:
      tinycompress flash examples/digits/digits_cnn.tflite --board mps2-an386 \\
          --data examples/digits/digits_test.npz
      tinycompress flash examples/digits/digits_cnn.tflite --board nucleo-l4r5zi --upload-port /dev/ttyACM0
      pio device monitor -d build/digits_cnn-nucleo-l4r5zi -b 115200
      tinycompress flash build/adapters/base.tflite --adapters build/adapters --adapter shifted \\
          --board mps2-an386
    """
    from .pipeline import flash_model
    from .analysis.report import format_table
    target = board
    output = output or Path("build") / f"{Path(model).stem}-{target.name}"
    _check_paths(output, {"--json": json_path}, model, data, calibration, train, vocab,
                 extra={"--adapters": adapters_dir})
    changes = compress or rank or energy or embedding or train or kernels != "tinycompress"
    if adapters_dir is not None and changes:
        raise TinyCompressError("--adapters takes the base as adapt quantized it: give no compression, "
                                "training or --kernels option with it")
    options = dict(data=data, count=count, calibration=calibration, cmsis_nn=_cmsis_nn(kernels, cmsis_nn_dir),
                   compression=_compression(compress, rank, energy, train, epochs, embedding, vocab, data),
                   adapters=adapters_dir, adapter=adapter)
    if port is not None:
        if target.emulated or no_upload:
            raise click.UsageError("--port reads a real board after its upload (for an emulated board, or "
                                   "to read a port only, use `tinycompress validate`)")
        return _validate_on_board(model, target, output, port, False, upload_port, timeout or 120, json_path,
                                  **options)
    with claim(output):
        result = flash_model(model, target, output, upload=not no_upload, upload_port=upload_port,
                             timeout=timeout, **options)
    quiet = json_path is not None and str(json_path) == "-"
    if result.report is not None:
        _emit(result.report, json_path)
        if not quiet:
            click.echo(format_table(result.report))
    click.echo(f"linked with the Debian toolchain: {result.fit_line()}", err=True)
    directory = result.project.directory
    if result.uploaded and not target.emulated:
        click.echo(f"uploaded to {target.name}; read the results with: "
                   f"pio device monitor -d {directory} -b 115200, or check them against TFLite Micro with "
                   f"cycles and ms: tinycompress flash ... --port PORT", err=True)
    elif not result.uploaded:
        click.echo(f"wrote {directory}; upload with: pio run -d {directory} -e {result.environment} -t upload",
                   err=True)



@cli.command()
@click.argument("model", type=MODEL)
@_board_option
@click.option("--port", metavar="PORT", help="The board's serial port, e.g. /dev/ttyACM0 (required for a real "
                                             "board; an emulated board's upload makes a pseudo-terminal).")
@click.option("--data", type=DATA, metavar="NPZ", help="Test inputs, as for flash [default: random int8].")
@click.option("--count", default=10, show_default=True, type=COUNT, help="How many test inputs the firmware runs.")
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="Directory for the PlatformIO project [default: build/MODEL-BOARD].")
@click.option("--upload-port", metavar="PORT", help="The board's upload port, if PlatformIO cannot find it.")
@click.option("--no-upload", is_flag=True, help="Only read PORT (the board already runs this firmware: reset it).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              metavar="FILE", help="Write the comparison and measured figures as JSON ('-' for stdout).")
@click.option("--timeout", default=120.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="How long to wait for the firmware's last line once uploaded.")
def validate(model: Path, board: Board, port: str | None, data: Path | None, count: int, output: Path | None,
             upload_port: str | None, no_upload: bool, json_path: Path | None, timeout: float):
    """Flash MODEL, read its outputs from the serial port and compare them with TFLite Micro.

    Every output must equal the TFLite Micro interpreter's bit for bit (exit 4 otherwise, as
    `run --verify`). Reports what the firmware measured: cycles and ms on a real board (DWT
    CYCCNT; SysTick on the M0/M0+), instructions on an emulated one, whose upload runs QEMU with
    its console on a new pseudo-terminal, read as a board's port is.

    \b
    Example:
      tinycompress validate examples/digits/digits_cnn.tflite --board nucleo-l4r5zi --port /dev/ttyACM0 \\
          --data examples/digits/digits_test.npz
      tinycompress validate examples/digits/digits_cnn.tflite --board mps2-an386
    """
    output = output or Path("build") / f"{Path(model).stem}-{board.name}"
    _check_paths(output, {"--json": json_path}, model, data)
    if port is None and (no_upload or not board.emulated):
        raise click.UsageError(f"give --port: the serial port {board.name} prints on")
    if port is not None and board.emulated and not no_upload:
        raise click.UsageError("an emulated board's upload makes its own pseudo-terminal: give no --port, "
                               "or --no-upload to read PORT only")
    _validate_on_board(model, board, output, port, no_upload, upload_port, timeout, json_path,
                       data=data, count=count)


def _validate_on_board(model: Path, board: Board, output: Path, port: str | None, no_upload: bool,
                       upload_port: str | None, timeout: float, json_path: Path | None, **flash_options):
    """Write and build the flash project, upload it once `port` is open, read it back and compare (validate,
    and flash --port); exit 4 on any difference."""
    import json

    from .errors import EXIT_MISMATCH
    from .pipeline import flash_model
    from .target.flash import environments, run_platformio
    from .target.validate import cycle_estimate, validate_on_port
    with claim(output):
        result = flash_model(model, board, output, upload=False, **flash_options)
        env = environments(board)[0]
        upload = None
        if not no_upload and not board.emulated:
            def upload():
                run_platformio(result.project.directory, env, upload=True, upload_port=upload_port)
        checked = validate_on_port(board, result.project.directory, port, timeout, upload)
    checked.estimate = cycle_estimate(model, board, **flash_options)
    if json_path is not None:
        _write_text(json_path, json.dumps(checked.as_dict(), indent=2))
    for line in checked.lines():
        click.echo(line, err=json_path is not None and str(json_path) == "-")
    if checked.wrong:
        raise TinyCompressError(f"{len(checked.wrong)} of {len(checked.expected)} outputs on {checked.port} "
                                f"differ from the TFLite Micro interpreter (first: input {checked.wrong[0]}); "
                                f"see {result.project.directory / 'validate.log'}", EXIT_MISMATCH)

@cli.command()
@click.argument("model", type=MODEL)
@click.option("--task", "tasks", multiple=True, required=True, metavar="NAME=TRAIN.npz",
              help="A task: its name (letters, digits, '_', '-'; at most 15) and its training data, "
                   "samples 'x' and class labels 'y'. Repeat for each task.")
@click.option("--rank", required=True, type=click.IntRange(min=1), metavar="R", help="The adapters' rank.")
@click.option("--layers", metavar="L1,L2",
              help="The Dense or Conv2D layers to adapt [default: every Dense layer].")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(min=1),
              help="Training epochs of each adapter.")
@click.option("--eval", "evals", multiple=True, metavar="NAME=EVAL.npz",
              help="Held-out data of a task ('x', 'y'): the firmware's and the float model's accuracy.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              metavar="FILE", help="Also write the report here ('-' for stdout); DIR/adapters.json always.")
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory for the C project, adapters.json, each task's .tflite and slot image.")
@_board_option
@_calibration_option
@_timeout_option
def adapt(model: Path, tasks: tuple[str, ...], rank: int, layers: str | None, epochs: int,
          evals: tuple[str, ...], json_path: Path | None, output: Path, board: Board,
          calibration: Path | None, timeout: float | None):
    """Train one low-rank adapter per task on a frozen Keras base and build one firmware with all of them.

    Each adapted Dense layer runs as FC(x; W0) + FC(FC(x; A); B) with one int8 ADD; the base is quantized
    once, each adapter's values go to a slot of the firmware's .tc_adapters section, and
    tc_model_select_adapter(i) picks one (-1: the base alone). Every adapter runs in QEMU and is compared
    with TFLite Micro on its task's .tflite; exits 4 on any difference.

    \b
    Example:
      tinycompress adapt digits_mlp.keras --task digits=digits.npz --task shifted=shifted.npz \\
          --rank 4 --layers dense_2 --calibration calib.npz --board mps2-an386 \\
          --eval digits=digits_eval.npz --eval shifted=shifted_eval.npz -o build/adapters
    """
    from .adapt import adapt as run_adapt, check_results, format_table, parse_pairs
    task_pairs, eval_pairs = parse_pairs(tasks, "--task"), parse_pairs(evals, "--eval")
    if calibration is None:
        raise TinyCompressError("give --calibration data.npz: the base and every adapter are quantized "
                                "with it")
    _check_paths(output, {"--json": json_path}, model, None, calibration, None, None,
                 extra={f"--task {n}": p for n, p in task_pairs} | {f"--eval {n}": p for n, p in eval_pairs})
    names = [n.strip() for n in layers.split(",")] if layers is not None else None
    with claim(output):
        result = run_adapt(model, task_pairs, rank, names, epochs, calibration,
                           require_emulated(board, "adapt"), eval_pairs, output, timeout)
        document = result.to_json()
        write_file(output / "adapters.json", document + "\n")
    if json_path is not None:
        _write_text(json_path, document)
    if json_path is None or str(json_path) != "-":
        click.echo(format_table(result))
    check_results(result)


@cli.command("adapter-image")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.argument("name")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), required=True,
              metavar="FILE.bin", help="Where to write the slot image.")
def adapter_image_command(directory: Path, name: str, output: Path):
    """Write adapter NAME of an `adapt` directory as one slot image (header, payload, CRC-32).

    The image is made again from DIR/NAME.tflite with the firmware's slot layout (DIR/adapters.json); write
    it over any slot of the firmware's .tc_adapters section (each slot is TC_ADAPTER_SLOT_BYTES).

    \b
    Example:
      tinycompress adapter-image build/adapters shifted -o shifted.bin
    """
    from .adapt import adapter_image
    data = adapter_image(directory, name)
    write_file(output, data)
    click.echo(f"wrote {output} ({len(data):,} bytes: adapter {name})", err=True)


@cli.command()
@click.argument("model", type=MODEL)
@click.option("--board", "-b", metavar="BOARD",
              help="Also check that the weights and the arena fit this board from the catalog.")
@click.option("--board-file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE.toml",
              help="The same for a board file of your own.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              metavar="FILE", help="Write the same as JSON ('-' for stdout).")
@_calibration_option
def inspect(model: Path, board: str | None, board_file: Path | None, json_path: Path | None,
            calibration: Path | None):
    """Show MODEL as tinycompress will run it, without compiling: layers, operators, shapes, quantization,
    MACs, parameter bytes, the estimated arena, and every layer it cannot run, with the reason.

    Exits 1 when a layer cannot run, 3 when --board is given and the model does not fit it.

    \b
    Example:
      tinycompress inspect examples/digits/digits_cnn.tflite
      tinycompress inspect model.tflite --board nucleo-l4r5zi --json report.json
    """
    from .errors import EXIT_BUDGET
    from .analysis.inspection import format_text, inspect_model, refusal_message
    if board is not None and board_file is not None:
        raise click.UsageError("give --board or --board-file, not both")
    target = load_board_file(board_file) if board_file is not None else \
        (load_board(board) if board is not None else None)
    _check_paths(None, {"--json": json_path}, model, calibration=calibration)
    result = inspect_model(model, target, calibration)
    if json_path is not None:
        _write_text(json_path, result.to_json())
    if json_path is None or str(json_path) != "-":
        click.echo(format_text(result))
    if result.refused:
        raise TinyCompressError(refusal_message(result))
    if result.fit is not None and not result.fit["fits"]:
        raise TinyCompressError(f"the model does not fit {result.fit['name']}: " + "; ".join(
            f"its {c['what']} need {c['bytes']:,} bytes of {c['memory']} but the board has {c['available']:,}"
            for c in result.fit["checks"] if not c["fits"]), EXIT_BUDGET)


@cli.command()
def boards():
    """List the boards tinycompress can target.

    \b
    Example:
      tinycompress boards
    """
    rows = [("board", "core", "clock", "flash", "SRAM", "kind", "PlatformIO", "emulated by")]
    for b in list_boards():
        pio = f"{b.platformio['platform']}/{b.platformio['board']}" if b.platformio else "local (offline)"
        rows.append((b.name, b.core + (" (FPU)" if b.fpu != "none" else ""), f"{b.clock_hz / 1e6:g} MHz",
                     f"{b.flash_size // 1024} KiB", f"{b.ram_size // 1024} KiB",
                     f"emulated (qemu {b.qemu_machine})" if b.emulated else "real", pio,
                     b.emulated_by or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except TinyCompressError as exc:
        click.echo(f"error: {one_line(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.message = one_line(exc.message)   # it may quote a file name
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug of ours: one line, the traceback only on request
        if os.environ.get("TINYCOMPRESS_DEBUG"):
            raise
        click.echo(f"error: internal error {type(exc).__name__}: {one_line(str(exc))} "
                   "(rerun with TINYCOMPRESS_DEBUG=1 for the traceback, and please report it)", err=True)
        sys.exit(1)
