"""Scratch memory of the optimized kernels, sized per layer for the board's core.

The planner places each layer's scratch in the arena, live only while that layer runs; the kernel
gets its address in its parameters, and takes its portable path when it has none (a core without
the DSP extension), so the generated code and the kernels cannot disagree.

- DSP extension (M4, M7, M33): six im2col columns widened to int16 (firmware/include/tc_dsp_gemm.h),
  staged as int8 first when the channels are no multiple of four, and each output channel's
  requantization parameters (12 bytes); with one to four input channels (first layers) the columns,
  the weights re-laid in the scratch, and a band of widened input rows (dsp_conv_band_bytes);
  FULLY_CONNECTED's input row, widened or as the pair form's words (the same bytes, ops/dsp_forms.py);
  a 3x3 depthwise layer's (stride 1 or 2) four padded int16 planes, a band of lines at a time
  (firmware/kernels/tc_depthwise_conv2d_s8.c).
- INT4 weights (ops/nibbles.py), DSP cores without Helium: as int8, with the depth in whole words of eight
  nibbles (FULLY_CONNECTED's row, CONV_2D's columns); depthwise int8's planes, or where the layer has not
  their shape each channel's fast requantization.
- Clustered weights (compress/cluster.py), DSP cores without Helium: FULLY_CONNECTED's input row in int16
  pairs and a table of 256 weight pairs; CONV_2D the int8 path's scratch, then PALETTE_ROWS rows of weights
  decoded to int8; depthwise (multiplier 1, channels a multiple
  of four) four channels' taps, decoded and widened.
- BATCH_MATMUL on either: one batch of a right-hand side with strided depth, as contiguous int8 columns.
- Helium (M55, M85): int8 columns and the bias with the input offset folded in
  (firmware/include/tc_mve_gemm.h, firmware/kernels/tc_conv2d_s8.c); depthwise int8 the DSP cores' planes.
"""
from __future__ import annotations

from ..target.boards import Board
from .common import KernelCall
from .nibbles import padded

INT16 = 2
INT32 = 4
DSP_QUANT = 12           # a tc_dsp_quant in firmware/include/tc_dsp.h
DSP_COLUMNS = 6          # TC_GEMM_COLUMNS in firmware/include/tc_dsp_gemm.h
DSP_PLANES_MAX = 4096    # TC_DW_PLANES_BYTES in firmware/include/tc_kernels.h
DSP_PLANES_LEAST = 9     # outputs per channel up to which the four-channels-per-position path is faster on
                         # the M4 (VWW's 3x3x128 depthwise: 7.6 instructions/MAC against the planes' 9.5)
PAIR_TABLE = 256         # tc_fully_connected_p4's int16 weight pair of each byte of indices
PALETTE_CHANNELS = 16    # TC_P4_CHANNELS in firmware/kernels/tc_depthwise_conv2d_s8.c
PALETTE_ROWS = 4         # TC_P4_ROWS in firmware/include/tc_palette.h
MVE_NO_MEMORY = 4        # a path that needs no memory still needs a scratch pointer to be taken


def _align4(n: int) -> int:
    return (n + 3) & ~3


def dsp_int4_scratch_bytes(p: dict, function: str) -> int:
    """The int4 kernels' DSP paths (tc_fully_connected_s4, tc_conv2d_s4): int16 columns as long as the
    weights' rows in the nibble form; conv's int8 staging where channels are no multiple of four and each
    output channel's fast requantization, as int8's."""
    if function == "tc_fully_connected_s4":
        return padded(p["input_depth"]) * INT16
    if function == "tc_conv2d_s4":
        _, k_h, k_w, in_c = p["filter"]
        depth = k_h * k_w * in_c
        staged = _align4(depth) if in_c % 4 else 0
        return DSP_COLUMNS * padded(depth) * INT16 + staged + p["filter"][0] * DSP_QUANT
    if function == "tc_depthwise_conv2d_s4" and p["depth_multiplier"] == 1 and p["output"][3] % 4 == 0:
        if depthwise_plane_shape(p):   # int8's planes, else nothing: the kernel tells them apart by the shape
            return dsp_depthwise_planes_bytes(p)
        return p["output"][3] * DSP_QUANT      # four channels per pass, each one's fast requantization
    return 0


def dsp_palette_scratch_bytes(p: dict, function: str) -> int:
    """The clustered kernels' DSP paths (firmware/kernels/tc_*_s8.c, the `_p4` functions)."""
    if function == "tc_fully_connected_p4":
        return padded(p["input_depth"]) * INT16 + PAIR_TABLE * INT32    # the input in pairs, the byte table
    if function == "tc_conv2d_p4":
        _, k_h, k_w, in_c = p["filter"]
        return dsp_conv_bytes(p) + _align4(PALETTE_ROWS * k_h * k_w * in_c)
    if function == "tc_depthwise_conv2d_p4" and p["depth_multiplier"] == 1 and p["output"][3] % 4 == 0:
        quads = min(p["output"][3], PALETTE_CHANNELS) // 4        # a block of channels' taps, by fours,
        return quads * p["filter"][1] * p["filter"][2] * 2 * INT32   # as two int16 pairs each
    return 0


def dsp_conv_bytes(p: dict) -> int:
    """tc_conv2d_s8's DSP path: six im2col columns of int16, the int8 staging where groups of four straddle
    pixels (channels no multiple of four), each output channel's fast requantization."""
    _, k_h, k_w, in_c = p["filter"]
    columns = DSP_COLUMNS * _align4(k_h * k_w * in_c) * INT16
    staged = _align4(k_h * k_w * in_c) if in_c % 4 else 0
    return columns + staged + p["filter"][0] * DSP_QUANT


BAND_SCRATCH_MAX = 8192  # TC_BAND_SCRATCH_MAX in firmware/kernels/tc_conv2d_s8.c


def dsp_conv_band_bytes(p: dict) -> int:
    """tc_conv2d_s8's DSP path for first layers (band_geometry_of() in tc_conv2d_s8.c): one to four input
    channels, no dilation. Six int16 columns of the depth with each kernel row's run padded to even and the
    whole to four, the weights in that layout where anything is padded, each output channel's fast
    requantization, and the band of widened input rows: those any six neighbouring output positions read,
    each padded row one value longer.
    0 where the path does not apply (more channels, dilation, larger than BAND_SCRATCH_MAX)."""
    out_c, k_h, k_w, in_c = p["filter"]
    out_w = p["output"][2]
    if in_c > 4 or p["dilation_h"] != 1 or p["dilation_w"] != 1:
        return 0
    words = (k_w * in_c + 1) // 2
    depth4 = _align4(k_h * 2 * words)
    padded = 2 * words != k_w * in_c or depth4 != k_h * 2 * words
    copied = out_c * depth4 if padded else 0      # else the kernel reads the weights as they are
    length = ((out_w - 1) * p["stride_w"] + k_w) * in_c + 2 & ~1
    rows = (1 + 4 // out_w) * p["stride_h"] + k_h
    size = DSP_COLUMNS * depth4 * INT16 + copied + out_c * DSP_QUANT + rows * length * INT16
    return size if size <= BAND_SCRATCH_MAX else 0


def dsp_fully_connected_bytes(p: dict) -> int:
    """tc_fully_connected_s8's DSP path: one input row, widened (or the pair form's words)."""
    return _align4(p["input_depth"]) * INT16


def batch_matmul_columns_bytes(p: dict) -> int:
    """A right-hand side read with strided depth (scores @ v), one batch of it as contiguous columns
    [N, K]."""
    if p["rhs_depth_stride"] == 1 or p["constant_rhs"] != "NULL":
        return 0
    return _align4(p["cols"] * p["depth"])


def dsp_scratch_bytes(call: KernelCall) -> int:
    p = call.params
    if call.function == "tc_batch_matmul_s8":
        return batch_matmul_columns_bytes(p)
    if call.function.endswith("_s4"):
        return dsp_int4_scratch_bytes(p, call.function)
    if call.function.endswith("_p4"):
        return dsp_palette_scratch_bytes(p, call.function)
    if call.function == "tc_conv2d_s8":
        return dsp_conv_band_bytes(p) or dsp_conv_bytes(p)
    if call.function == "tc_fully_connected_s8":
        return dsp_fully_connected_bytes(p)
    if call.function == "tc_depthwise_conv2d_s8" and p["output"][1] * p["output"][2] > DSP_PLANES_LEAST:
        return dsp_depthwise_planes_bytes(p)
    return 0


def depthwise_plane_shape(p: dict) -> bool:
    """Whether a depthwise layer has the planes' shape: planes_apply() in tc_depthwise_conv2d_s8.c."""
    _, k_h, k_w, _ = p["filter"]
    return (p["depth_multiplier"] == 1 and p["output"][3] % 4 == 0 and (k_h, k_w) == (3, 3)
            and p["stride_h"] in (1, 2) and p["stride_w"] in (1, 2)
            and p["dilation_h"] == p["dilation_w"] == 1)


def dsp_depthwise_planes_bytes(p: dict) -> int:
    """A 3x3 depthwise layer of stride 1 or 2 (multiplier 1, channels a multiple of four) runs on four padded
    int16 planes, lines along the longer output axis, read four outputs at a time past their end, staged in
    bands of as many output lines as fit DSP_PLANES_MAX with their halo (planes_of() in
    tc_depthwise_conv2d_s8.c); where not even one line fits, the layer keeps the per-position path."""
    return depthwise_planes(p)[2]


def depthwise_planes(p: dict) -> tuple[int, int, int]:
    """A depthwise layer's planes as planes_of() in tc_depthwise_conv2d_s8.c lays them out: (output lines
    per band, output lines, bytes of scratch), bytes 0 where the layer has not their shape or not one line
    fits."""
    if not depthwise_plane_shape(p):
        return 0, 0, 0
    _, out_h, out_w, _ = p["output"]
    along_x = out_w >= out_h
    length, lines = (out_w, out_h) if along_x else (out_h, out_w)
    step, line_step = (p["stride_w"], p["stride_h"]) if along_x else (p["stride_h"], p["stride_w"])
    pitch = step * 4 * -(-length // 4) + 2
    most = DSP_PLANES_MAX // (4 * pitch * INT16)      # plane lines that fit
    if most < 3:
        return 0, lines, 0
    band = min(lines, (most - 3) // line_step + 1)
    return band, lines, 4 * ((band - 1) * line_step + 3) * pitch * INT16


def writes_over_input(call: KernelCall, board: Board) -> bool:
    """Whether the kernel can write its output over its own input, at the same bytes: the planes' path of
    an int8 depthwise layer (DSP and Helium cores) whose planes take every line in one band stages four
    channels' whole planes before it writes those four channels' outputs, and an output byte is its own
    channel's (multiplier 1): planes_over_input in tc_depthwise_conv2d_s8.c. The same project built
    without the path (TC_PORTABLE, the host) stages one channel's plane at a time in the same scratch
    (over_input_portable there)."""
    p = call.params
    if call.function != "tc_depthwise_conv2d_s8" or p["input"][0] != 1 or not kernel_scratch(call, board):
        return False                   # no scratch: the kernel takes no planes (planes_apply)
    band, lines, size = depthwise_planes(p)
    return size > 0 and band >= lines


def mve_im2col_columns(depth: int) -> int:
    """Output positions per matrix call on the im2col path: im2col_columns() in tc_conv2d_s8.c."""
    return min(max(512 // depth, 4), 16)


def mve_scratch_bytes(call: KernelCall) -> int:
    p = call.params
    if call.function == "tc_batch_matmul_s8":
        return batch_matmul_columns_bytes(p)
    if call.function == "tc_conv2d_s8":
        out_c, k_h, k_w, in_c = p["filter"]
        # the input pixels are the columns
        pointwise = k_h == k_w == 1 and p["pad_top"] == p["pad_left"] == 0
        if pointwise and p["stride_h"] == p["stride_w"] == 1 and p["output"][2] == p["input"][2]:
            return MVE_NO_MEMORY                   # one matrix call: the kernel folds the input offset itself
        folded_bias = out_c * INT32                # bias + input offset x weight sums, for many matrix calls
        depth = k_h * k_w * in_c
        return folded_bias + (0 if pointwise else mve_im2col_columns(depth) * depth)
    if call.function == "tc_fully_connected_s8":
        return MVE_NO_MEMORY                       # the bias holds the input offset; the input is the column
    if call.function == "tc_depthwise_conv2d_s8":
        return dsp_depthwise_planes_bytes(p)       # the DSP cores' planes, four outputs in the int32 lanes
    return 0


def kernel_scratch(call: KernelCall, board: Board) -> int:
    """The bytes of scratch `call`'s kernel takes on `board`'s core."""
    return mve_scratch_bytes(call) if board.mve else dsp_scratch_bytes(call) if board.dsp else 0


def assign_scratch(calls: list[KernelCall], board: Board) -> None:
    for call in calls:
        call.scratch_bytes = kernel_scratch(call, board)


def bind_scratch(calls: list[KernelCall], offsets: dict[int, int]) -> None:
    """Point each kernel with scratch at its place in the arena (an address constant in flash)."""
    from ..codegen import patches
    from ..codegen.rows import bind
    for step, call in enumerate(calls):
        if step in offsets:
            pointer = f"(int16_t *)(tc_arena + {offsets[step]})"
            if call.patches is not None:
                call.patches = patches.bind(call.patches, pointer)
            elif call.rows is not None and call.rows.band_rows:
                call.rows = bind(call.rows, pointer)
            else:
                call.params["scratch"] = pointer
