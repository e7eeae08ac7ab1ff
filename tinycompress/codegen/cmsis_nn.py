"""--kernels cmsis-nn: which layers CMSIS-NN runs, and the scratch memory its optimized paths need.

Each supported layer calls an adapter in firmware/cmsis_nn/ with our parameter struct; a layer
CMSIS-NN has no function for (MEAN, RESHAPE, a broadcasting ADD, per-tensor convolutions) keeps
our kernel. The scratch sizes follow CMSIS-NN v7.0.0's get_buffer_size functions for the board's
core; each adapter checks its layer's need against the buffer at run time, so a size computed
wrongly here stops inference with an error instead of overwriting memory.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..target.boards import Board
from ..errors import EXIT_TOOL_MISSING, TinyCompressError
from ..ops.common import KernelCall

VERSION = "v7.0.0"
REPOSITORY = "https://github.com/ARM-software/CMSIS-NN"
ARCHIVE = f"{REPOSITORY}/archive/refs/tags/{VERSION}.zip"   # what real-board projects fetch through lib_deps
CLONE = f"git clone --depth 1 --branch {VERSION} {REPOSITORY}"

ADAPTERS = {
    "tc_fully_connected_s8": "tc_cmsis_fully_connected_s8",
    "tc_conv2d_s8": "tc_cmsis_conv2d_s8",
    "tc_depthwise_conv2d_s8": "tc_cmsis_depthwise_conv2d_s8",
    "tc_max_pool2d_s8": "tc_cmsis_max_pool2d_s8",
    "tc_avg_pool2d_s8": "tc_cmsis_avg_pool2d_s8",
    "tc_softmax_s8": "tc_cmsis_softmax_s8",
    "tc_add_s8": "tc_cmsis_add_s8",
}
CH_IN_BLOCK_MVE = 124            # arm_nnsupportfunctions.h: channels per block of the Helium depthwise kernel


def checkout(path: Path | None) -> Path:
    """The CMSIS-NN source tree given with --cmsis-nn, checked."""
    if path is None:
        raise TinyCompressError(f"--kernels cmsis-nn needs a CMSIS-NN {VERSION} checkout: get one with "
                                f"`{CLONE}` and pass --cmsis-nn CMSIS-NN", EXIT_TOOL_MISSING)
    path = Path(path).resolve()
    if not (path / "Include" / "arm_nnfunctions.h").is_file():
        raise TinyCompressError(f"{path} is not a CMSIS-NN checkout (no Include/arm_nnfunctions.h); "
                                f"get one with `{CLONE}`", EXIT_TOOL_MISSING)
    return path


def adapt(call: KernelCall) -> KernelCall:
    """The call through CMSIS-NN, or unchanged where CMSIS-NN cannot run it."""
    adapter = ADAPTERS.get(call.function)
    if adapter is None:
        return call
    p = call.params
    if call.function in ("tc_conv2d_s8", "tc_depthwise_conv2d_s8") and not p["requant"]["per_channel"]:
        return call
    if call.function == "tc_add_s8":
        walk = p["broadcast"]
        one_row = walk["shape"][-1] == p["size"] and walk["strides1"][-1] == walk["strides2"][-1] == 1
        if p["subtract"] or p["constant1"] != "NULL" or p["constant2"] != "NULL" or not one_row:
            return call   # broadcasting, a constant, or SUB: our kernel
    return replace(call, function=adapter)


def kernel_source(call: KernelCall) -> str:
    folder = "cmsis_nn" if call.function.startswith("tc_cmsis_") else "kernels"
    return f"firmware/{folder}/{call.source or call.function}.c"


def scratch_bytes(calls: list[KernelCall], board: Board) -> int:
    """The largest scratch buffer any CMSIS-NN call needs on this board's core."""
    core = "mve" if board.mve else "dsp" if board.dsp else "plain"
    return max([_need(c, core) for c in calls] + [0])


def _align(x: int, to: int) -> int:
    return (x + to - 1) // to * to


def _need(call: KernelCall, core: str) -> int:
    p = call.params
    if call.function == "tc_cmsis_conv2d_s8":
        return _conv_need(p, core)
    if call.function == "tc_cmsis_depthwise_conv2d_s8":
        _, kh, kw, out_c = p["filter"]
        in_c = p["input"][3]
        if core == "mve" and in_c == 1 and out_c > 1:       # run as a convolution, plus a transposed filter
            return _conv_need({**p, "filter": (out_c, kh, kw, 1)}, core) + kh * kw * out_c
        if p["depth_multiplier"] != 1 or p["input"][0] != 1 or (p["dilation_h"], p["dilation_w"]) != (1, 1):
            return 0
        if core == "mve":
            return 4 * CH_IN_BLOCK_MVE * kh * kw
        if (kh, kw) == (3, 3) and p["pad_top"] <= 1 and p["pad_left"] <= 1:
            return 0
        return in_c * kh * kw * 2 if core == "dsp" else 0
    if call.function == "tc_cmsis_avg_pool2d_s8":
        return 4 * p["input"][3] if core == "dsp" else 0
    return 0


def _conv_need(p: dict, core: str) -> int:
    out_c, kh, kw, in_c = p["filter"]
    if (kh, kw) == (1, 1) and (p["pad_top"], p["pad_left"]) == (0, 0) \
            and (p["dilation_h"], p["dilation_w"]) == (1, 1):
        return 0                                            # the 1x1 kernels need no im2col
    columns = kh * kw * in_c
    if core == "mve":
        return 4 * _align(columns, 16)                      # four im2col columns of whole 16-byte lanes
    return 2 * _align(columns, 4) * 2                       # two im2col columns of int16
