"""Shared fixtures: the model zoo (built once, cached) and skips for missing tools."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

HAVE_EMULATOR = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make"))
# model.h of a hand-written stand-in model (two layers, 16 bytes in and out) for harness tests.
STAND_IN_MODEL_H = """
#include <stdint.h>
#include "tc_types.h"
#define TC_MODEL_INPUT_BYTES 16
#define TC_MODEL_OUTPUT_BYTES 16
#define TC_MODEL_LAYER_COUNT 2
extern int8_t *const tc_model_input;
extern int8_t *const tc_model_output;
tc_status tc_model_invoke(void);
"""

def build_stand_in(board_name: str, tmp_path: Path, model_c: str, cflags: tuple = ()):
    """Link the harness around a hand-written model.c (with STAND_IN_MODEL_H), with extra `cflags`;
    (board, ELF)."""
    import subprocess

    from tinycompress.target.boards import load_board
    from tinycompress.codegen.emit import HARNESS_SOURCES, TARGET_SOURCES, _environment
    from tinycompress.resources import data_dir

    board = load_board(board_name)
    (tmp_path / "model.h").write_text(STAND_IN_MODEL_H)
    (tmp_path / "tc_harness_model.h").write_text('#include "model.h"\n')   # the harness's model: this one
    (tmp_path / "model.c").write_text(model_c)
    memory = _environment().get_template("memory.ld.j2")   # with the quoting filters
    (tmp_path / "memory.ld").write_text(memory.render(board=board, stack_size=board.stack_size, banner=""))
    fw = data_dir("firmware")
    runtime = [fw / "runtime" / name for name in HARNESS_SOURCES + TARGET_SOURCES]
    elf = tmp_path / "firmware.elf"
    subprocess.run(["arm-none-eabi-gcc", *board.cflags, "-O2", "-DTC_PROFILE", *cflags, f"-I{tmp_path}",
                    f"-I{fw / 'include'}", f"-I{fw / 'runtime'}", str(tmp_path / "model.c"),
                    *map(str, runtime), "-nostartfiles", "-Wl,--gc-sections",
                    f"-T{fw / 'linker' / 'cortex_m.ld'}", f"-L{tmp_path}", f"-L{fw / 'linker'}",
                    "--specs=nano.specs", "--specs=nosys.specs", "-o", str(elf)], check=True)
    return board, elf


needs_emulator = pytest.mark.skipif(not HAVE_EMULATOR,
                                    reason="arm-none-eabi-gcc, make or qemu-system-arm missing")


@pytest.fixture(scope="session")
def zoo():
    """A function name -> (tflite path, npz path), building each model on first use."""
    import modelzoo

    out = TESTS / ".models"

    def get(name: str) -> tuple[Path, Path]:
        tflite = modelzoo.build(name, out)
        return tflite, tflite.with_suffix(".npz")

    return get


def firmware_vs_tflm(model, board_name: str, data: Path, tmp_path: Path, reference: bytes | None = None,
                     min_inputs: int = 1):
    """Compile `model` (a .tflite path, or a graph as a GRAPH step leaves it) for the board, run the inputs of
    `data` in QEMU and assert the outputs are TFLite Micro's on `reference` (default: the model's .tflite)
    byte for byte; the project."""
    import numpy as np

    from tinycompress.target.boards import load_board
    from tinycompress.target.build import build
    from tinycompress.target.emulate import run_firmware
    from tinycompress.pipeline import compile_graph, compile_model, load_inputs
    from tinycompress.frontend.reference import tflm_outputs

    board = load_board(board_name)
    if isinstance(model, (str, Path)):
        project = compile_model(model, board, tmp_path / board_name)
    else:
        project = compile_graph(model, board, tmp_path / board_name, model.name)
    inputs, _ = load_inputs(data, project.graph, count=0)
    assert len(inputs) >= min_inputs
    result = run_firmware(build(project), board, inputs, project.graph.output_tensor().nbytes)
    expected = tflm_outputs(reference or project.graph.source, inputs)
    wrong = np.flatnonzero(~(expected == result.outputs).all(axis=1))
    assert wrong.size == 0, (f"{wrong.size} of {len(inputs)} differ; first input {wrong[0]}: expected "
                             f"{expected[wrong[0]].tolist()} got {result.outputs[wrong[0]].tolist()}")
    return project


def zoo_graph(zoo, name: str):
    """The zoo model's graph as loaded, and its last layer."""
    from tinycompress.frontend.load import read_tflite
    graph = read_tflite(zoo(name)[0].read_bytes())
    return graph, graph.layers[-1]
