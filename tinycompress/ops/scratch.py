"""Scratch memory of the DSP-extension kernels: im2col columns, sized per layer for the board.

The planner places each layer's scratch in the arena, live only while that layer runs; the kernel
gets its address in its parameters, and takes its portable path when it has none (a core without
the DSP extension), so the generated code and the kernels cannot disagree.
"""
from __future__ import annotations

from ..boards import Board
from .common import KernelCall

INT16 = 2


def _align4(n: int) -> int:
    return (n + 3) & ~3


def dsp_scratch_bytes(call: KernelCall) -> int:
    p = call.params
    if call.function == "tc_conv2d_s8":
        _, k_h, k_w, in_c = p["filter"]
        return 2 * _align4(k_h * k_w * in_c) * INT16      # two columns: two output positions per pass
    if call.function == "tc_fully_connected_s8":
        return _align4(p["input_depth"]) * INT16          # one input row, widened
    return 0


def assign_scratch(calls: list[KernelCall], board: Board) -> None:
    for call in calls:
        call.scratch_bytes = dsp_scratch_bytes(call) if board.dsp else 0


def bind_scratch(calls: list[KernelCall], offsets: dict[int, int]) -> None:
    """Point each kernel with scratch at its place in the arena (an address constant in flash)."""
    for step, call in enumerate(calls):
        if step in offsets:
            call.params["scratch"] = f"(int16_t *)(tc_arena + {offsets[step]})"
