"""The per-function instruction profile: QEMU's one-instruction-per-block log, counted per function."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import build_stand_in, needs_emulator

from tinycompress.target.boards import load_board
from tinycompress.target.build import build
from tinycompress.errors import EXIT_ERROR, TinyCompressError
from tinycompress.analysis.hotspots import format_table, hot_functions, profile_functions
from tinycompress.pipeline import compile_model, load_inputs

pytestmark = needs_emulator

ROOT = Path(__file__).resolve().parent.parent
SPIN = 25000

# A stand-in model: layer 0 is a call of spin(), which executes exactly 2 * n + 1 instructions
# (n times subs + bne, then bx lr); layer 1 adds one to every byte.
MODEL_C = """
#include "model.h"
#include "tc_profile.h"
static int8_t buffer[16];
int8_t *const tc_model_input = buffer;
int8_t *const tc_model_output = buffer;
__attribute__((naked, noinline)) void spin(uint32_t n)
{
    __asm__ volatile(".syntax unified\\n1: subs r0, r0, #1\\n\\tbne 1b\\n\\tbx lr");
}
tc_status tc_model_invoke(void)
{
    TC_PROFILE_BEGIN();
    spin(%d);
    TC_PROFILE_LAYER(0);
    for (int i = 0; i < 16; i++) {
        buffer[i] = (int8_t)(buffer[i] + 1);
    }
    TC_PROFILE_LAYER(1);
    return TC_OK;
}
"""


def build_double(board_name: str, tmp_path: Path):
    return build_stand_in(board_name, tmp_path, MODEL_C % SPIN)


def check_against_firmware(profile, board, layers: int):
    """The total against the firmware's own SysTick count of the same inference."""
    assert sum(f.instructions for f in profile.functions) == profile.instructions
    assert sum(f.share for f in profile.functions) == pytest.approx(1.0, abs=1e-9)
    assert [f.instructions for f in profile.functions] == sorted((f.instructions for f in profile.functions),
                                                                 reverse=True)
    # The firmware leaves out what its per-layer hooks spend between their two timer reads (the same
    # code for every layer) and times a couple of instructions around the call beyond its overhead
    # estimate; with those, the trace gives the firmware's own figure to the SysTick tick (one tick
    # of rounding per timer subtraction: the total, the overhead and one per layer).
    assert profile.timer_instructions is not None
    assert profile.untimed_instructions % layers == 0 and 0 < profile.untimed_instructions // layers < 40
    assert 0 <= profile.timed_around <= 8
    assert (profile.instructions - profile.untimed_instructions + profile.timed_around
            == profile.timer_instructions)
    assert abs(profile.timer_instructions - profile.firmware_instructions) <= board.instructions(layers + 2)
    assert abs(profile.discrepancy) <= 40 * layers + 8


@pytest.mark.parametrize("board_name", ["mps2-an386", "mps3-an547", "microbit"])
def test_a_known_loop_is_counted_exactly(board_name, tmp_path):
    board, elf = build_double(board_name, tmp_path)
    profile = profile_functions(elf, board, np.arange(16, dtype=np.int8))
    counts = {f.name: f.instructions for f in profile.functions}
    assert counts["spin"] == 2 * SPIN + 1
    assert profile.functions[0].name == "spin"
    assert set(counts) >= {"spin", "tc_model_invoke", "tc_profile_layer", "tc_profile_begin",
                           "tc_timer_ticks"}
    assert "main" not in counts and "Reset_Handler" not in counts      # only the inference
    assert profile.run_instructions > profile.instructions
    check_against_firmware(profile, board, layers=2)

    rows = hot_functions(elf, board, np.zeros(16, np.int8), top=2)
    assert len(rows) == 2 and rows[0][:2] == ("spin", 2 * SPIN + 1) and 0.9 < rows[0][2] < 1


def test_the_model_kernels_appear_and_add_up_to_the_firmware_count(zoo, tmp_path):
    model, data = zoo("digits_cnn")
    board = load_board("mps2-an386")
    project = compile_model(model, board, tmp_path / "project")
    elf = build(project)
    inputs, _ = load_inputs(data, project.graph, 1)
    profile = profile_functions(elf, board, inputs[0])
    names = {f.name for f in profile.functions}
    kernels = {c.function for c in project.calls}
    assert kernels <= names, kernels - names
    hottest = profile.functions[0]
    assert hottest.share > 0.1 and hottest.name in names - {"tc_profile_layer", "tc_timer_ticks"}
    check_against_firmware(profile, board, layers=len(project.calls))
    # Counting is deterministic, like the firmware's count.
    again = profile_functions(elf, board, inputs[0])
    assert [(f.name, f.instructions) for f in again.functions] \
        == [(f.name, f.instructions) for f in profile.functions]
    table = format_table(profile, "digits_cnn", top=3)
    assert "total" in table and f"{profile.instructions:,}" in table and "more functions" in table


def tc(*args):
    return subprocess.run([sys.executable, "-m", "tinycompress", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


@pytest.mark.slow    # several seconds; the fast tier keeps the main path, the full suite runs this
def test_cli_prints_the_table_and_json(zoo, tmp_path):
    model, data = zoo("digits_mlp")
    proc = tc("profile-functions", model, "--board", "mps2-an386", "--data", data, "--index", 3, "--top", 2,
              "--json", tmp_path / "functions.json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads((tmp_path / "functions.json").read_text())
    assert document["model"] == "digits_mlp" and document["board"] == "mps2-an386"
    assert "tc_fully_connected_s8" in {f["name"] for f in document["functions"]}
    assert sum(f["instructions"] for f in document["functions"]) == document["instructions"]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("tinycompress profile-functions: digits_mlp on mps2-an386")
    assert any(line.split()[:1] == ["total"] and f"{document['instructions']:,}" in line for line in lines)
    assert "firmware's own count" in proc.stdout

    quiet = tc("profile-functions", model, "--json", "-")
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["functions"]
    assert "Example" in tc("profile-functions", "--help").stdout


@pytest.mark.parametrize("args, fragment", [
    (["--board", "nucleo-l4r5zi"], "real board"),
    (["--index", "100000", "--data", "DATA"], "past the"),
])
def test_cli_errors_are_one_line(zoo, args, fragment):
    model, data = zoo("digits_mlp")
    proc = tc("profile-functions", model, *[data if a == "DATA" else a for a in args])
    assert proc.returncode == EXIT_ERROR
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr


def test_firmware_without_the_harness_is_refused(tmp_path):
    elf = tmp_path / "bare.elf"
    (tmp_path / "bare.c").write_text("void Reset_Handler(void) { for (;;) {} }\n"
                                     "__attribute__((section(\".vectors\"))) "
                                     "void *const v[2] = {0, Reset_Handler};\n")
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-o", str(elf),
                    str(tmp_path / "bare.c")], check=True, capture_output=True)
    with pytest.raises(TinyCompressError, match="has no function tc_model_invoke"):
        profile_functions(elf, load_board("mps2-an386"), b"\0")
    with pytest.raises(TinyCompressError, match="cannot read .* as an ELF"):
        profile_functions(tmp_path / "bare.c", load_board("mps2-an386"), b"\0")
