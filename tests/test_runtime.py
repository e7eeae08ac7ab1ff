"""The bare-metal runtime on every emulated board, with hand-written stand-ins for a model."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import build_stand_in, needs_emulator

from tinycompress.target.boards import list_boards
from tinycompress.target.emulate import run_firmware
from tinycompress.errors import TinyCompressError

pytestmark = needs_emulator

BOARDS = [b.name for b in list_boards() if b.emulated]
LOOP_ITERATIONS = 100000


# Layer 0 adds one to every byte; layer 1 is a loop of exactly 2 * LOOP_ITERATIONS instructions
# (subs + bne), so its ticks must convert to that many instructions.
MODEL_C = """
#include "model.h"
#include "tc_profile.h"
static int8_t buffer[16];
int8_t *const tc_model_input = buffer;
int8_t *const tc_model_output = buffer;
tc_status tc_model_invoke(void)
{
    TC_PROFILE_BEGIN();
    for (int i = 0; i < 16; i++) {
        buffer[i] = (int8_t)(buffer[i] + 1);
    }
    TC_PROFILE_LAYER(0);
    uint32_t n = %d;
    __asm__ volatile(".syntax unified\\n1: subs %%0, %%0, #1\\n\\tbne 1b" : "+l"(n) :: "cc");
    TC_PROFILE_LAYER(1);
    %s
    return TC_OK;
}
"""

FAULT = "*(volatile uint32_t *)0xFFFFFFF0u = 1;  /* no memory there */"


def build_double(board_name: str, tmp_path, extra: str = ""):
    return build_stand_in(board_name, tmp_path, MODEL_C % (LOOP_ITERATIONS, extra))


@pytest.mark.parametrize("board_name", BOARDS)
def test_harness_runs_and_counts_instructions_exactly(board_name, tmp_path):
    board, elf = build_double(board_name, tmp_path)
    inputs = np.arange(3 * 16, dtype=np.int64).astype(np.int8).reshape(3, 16)
    result = run_firmware(elf, board, inputs, 16)
    assert np.array_equal(result.outputs, (inputs.astype(np.int16) + 1).astype(np.int8))
    assert result.ticks.shape == (3, 3)
    loop = board.instructions(result.ticks[:, 2])
    # The loop's own 2 * N instructions, give or take the dozen around the profiling hook.
    assert np.all(np.abs(loop - 2 * LOOP_ITERATIONS) < 16), loop
    again = run_firmware(elf, board, inputs, 16)
    assert np.array_equal(result.ticks, again.ticks)
    assert 0 < result.stack_peak < result.stack_size == board.stack_size


# 1 KiB more of stack, written in full: the inference's measured stack must grow by exactly that.
DEEP = """volatile uint32_t deep[256];
    for (int i = 0; i < 256; i++) {
        deep[i] = (uint32_t)i;
    }"""


@pytest.mark.parametrize("board_name", BOARDS)
def test_harness_measures_the_inference_stack(board_name, tmp_path):
    """stack_inference is the stack an inference uses below the harness's call, painted again before each
    one: the stand-in's frame alone (a few words), then 1,024 bytes more with a 1 KiB local array."""
    inputs, runs = np.zeros((2, 16), np.int8), {}
    for name, extra in (("shallow", ""), ("deep", DEEP)):
        (tmp_path / name).mkdir()
        board, elf = build_double(board_name, tmp_path / name, extra)
        runs[name] = run_firmware(elf, board, inputs, 16)
    shallow, deep = runs["shallow"], runs["deep"]
    assert 0 < shallow.stack_inference <= 64 and shallow.stack_inference < shallow.stack_peak
    assert deep.stack_inference - shallow.stack_inference in range(1024, 1024 + 16)
    assert deep.stack_inference < deep.stack_peak < deep.stack_size


def test_fault_is_reported_in_one_line(tmp_path):
    board, elf = build_double("mps2-an386", tmp_path, extra=FAULT)
    with pytest.raises(TinyCompressError, match="faulted in QEMU .*HardFault"):
        run_firmware(elf, board, np.zeros((1, 16), np.int8), 16)


def test_timeout_is_reported(tmp_path):
    board, elf = build_double("mps2-an386", tmp_path)
    with pytest.raises(TinyCompressError, match="past its 0.01 s timeout .*--timeout SECONDS"):
        run_firmware(elf, board, np.zeros((1, 16), np.int8), 16, timeout=0.01)
