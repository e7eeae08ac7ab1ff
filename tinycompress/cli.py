"""The command line: compile, run, boards.

Exit codes: 0 ok, 1 error, 2 usage, 3 does not fit the board, 4 output mismatch,
5 a required tool is missing. Tables and JSON go to stdout, messages to stderr.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import __version__
from .boards import DEFAULT_BOARD, list_boards, load_board
from .errors import TinyCompressError

MODEL = click.Path(path_type=Path, dir_okay=False)
DATA = click.Path(path_type=Path, dir_okay=False)


def _board_option(fn):
    return click.option("--board", "-b", default=DEFAULT_BOARD, show_default=True, metavar="BOARD",
                        help="Target board (see `tinycompress boards`).")(fn)


def _calibration_option(fn):
    return click.option("--calibration", type=DATA, metavar="NPZ",
                        help="Float samples under 'x' to quantize a Keras or float TFLite model to int8.")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinycompress")
def cli():
    """Compile int8 neural networks to C for Arm Cortex-M and measure them in an emulator."""


@cli.command()
@click.argument("model", type=MODEL)
@_board_option
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory for the C project (replaced if it is an earlier tinycompress project).")
@_calibration_option
def compile(model: Path, board: str, output: Path, calibration: Path | None):
    """Write a self-contained C project for MODEL (.tflite or .keras) with a Makefile.

    \b
    Example:
      tinycompress compile examples/digits/digits_cnn.tflite --board mps2-an386 -o build/digits
      make -C build/digits          # firmware.elf, built with arm-none-eabi-gcc
    """
    from .pipeline import compile_model
    project = compile_model(model, load_board(board), output, calibration)
    click.echo(f"wrote {project.directory} ({len(project.calls)} layers, arena {project.plan.size:,} bytes); "
               f"build it with: make -C {project.directory}", err=True)


@cli.command()
@click.argument("model", type=MODEL)
@_board_option
@click.option("--data", type=DATA, metavar="NPZ",
              help="Inputs under 'x' (float32) or 'x_int8' (int8), optional labels under 'y'. "
                   "Without it, random int8 inputs.")
@click.option("--count", default=10, show_default=True, help="Random inputs to use without --data.")
@click.option("--verify", is_flag=True, help="Compare every output with the TFLite Micro interpreter; "
                                             "exit 4 on any difference.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              metavar="FILE", help="Write the report as JSON ('-' for stdout).")
@click.option("--output", "-o", type=click.Path(path_type=Path, file_okay=False),
              help="Keep the C project here.")
@_calibration_option
@click.option("--host", is_flag=True, hidden=True, help="Run the harness natively instead of in QEMU (tests).")
def run(model: Path, board: str, data: Path | None, count: int, verify: bool, json_path: Path | None,
        output: Path | None, calibration: Path | None, host: bool):
    """Build MODEL for a board, run it in QEMU and print flash, SRAM and instruction counts.

    \b
    Example:
      tinycompress run examples/digits/digits_cnn.tflite --board mps2-an386 \\
          --data examples/digits/digits_test.npz --verify --json report.json
    """
    from .pipeline import VerificationError, run_model
    from .report import format_table
    try:
        report = run_model(model, load_board(board), data=data, verify=verify, out=output,
                           calibration=calibration, count=count, host=host)
    except VerificationError as exc:
        report = exc.report
        _emit(report, json_path)
        raise
    _emit(report, json_path)
    if json_path is None or str(json_path) != "-":
        click.echo(format_table(report))


def _emit(report, json_path: Path | None) -> None:
    if json_path is None:
        return
    if str(json_path) == "-":
        click.echo(report.to_json())
    else:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(report.to_json() + "\n")


@cli.command()
def boards():
    """List the boards tinycompress can target.

    \b
    Example:
      tinycompress boards
    """
    rows = [("board", "core", "clock", "flash", "SRAM", "emulator")]
    for b in list_boards():
        rows.append((b.name, b.core + (" (FPU)" if b.fpu != "none" else ""), f"{b.clock_hz / 1e6:g} MHz",
                     f"{b.flash_size // 1024} KiB", f"{b.ram_size // 1024} KiB",
                     f"qemu {b.qemu_machine}" if b.emulated else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except TinyCompressError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug of ours: one line, the traceback only on request
        if os.environ.get("TINYCOMPRESS_DEBUG"):
            raise
        click.echo(f"error: internal error {type(exc).__name__}: {exc} "
                   "(rerun with TINYCOMPRESS_DEBUG=1 for the traceback, and please report it)", err=True)
        sys.exit(1)
