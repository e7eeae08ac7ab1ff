"""Constants stored in a form one core's kernel reads faster: FULLY_CONNECTED's pair form on DSP cores.

With one input column every weight is used once, so the matrix kernel's cost per weight is what it
takes to widen it. In the pair form (described in firmware/kernels/tc_fully_connected_s8.c) each weight
word's own int16 lanes are SMLAD operands, so four MACs need one SXTB16 instead of two, and four rows'
words lie side by side for one LDM. The form has the plain form's size. The generated weights file
holds both forms and the preprocessor keeps the one its build's kernel reads (TC_DSP), so a build of the
same project with -DTC_PORTABLE still gets the plain weights.
"""
from __future__ import annotations

import numpy as np

from ..target.boards import Board
from .common import KernelCall

ROWS_PER_BLOCK = 4       # rows one LDM fetches: pair_block4() in tc_fully_connected_s8.c
EXACT_LIMIT = 2 ** 23    # the accumulator holds 256 times the sum, so the sum must lie in [-2^23, 2^23)
ODD_OFFSET = 127         # the odd inputs enter as q - 127, so the bias adds back 127 x the odd weights


def pair_weights(weights: np.ndarray) -> np.ndarray | None:
    """[rows, depth] int8 weights in the pair form, flattened; None where the form cannot hold them."""
    rows, depth = weights.shape
    if depth % 4:
        return None
    stored = weights.astype(np.int64)
    stored[:, 1::2] -= weights[:, 0::2] < 0      # the borrow that makes each int16 lane s_even + 256 s_odd
    if stored.min() < -128:
        return None
    blocks = []
    for start in range(0, rows, ROWS_PER_BLOCK):
        block = stored[start:start + ROWS_PER_BLOCK]
        # [rows in block, groups, 4] -> [groups, rows in block, 4]: one group of the block's rows per LDM
        blocks.append(block.reshape(len(block), depth // 4, 4).transpose(1, 0, 2).reshape(-1))
    return np.concatenate(blocks)


def pair_bias(weights: np.ndarray, bias: np.ndarray) -> np.ndarray | None:
    """The pair form's bias: the folded bias plus 127 x each row's odd weights; None where some input
    could take a row's sum out of the exact range."""
    w = weights.astype(np.int64)
    bias = bias.astype(np.int64)
    highest = bias + np.maximum(127 * w, -128 * w).sum(axis=1)
    lowest = bias + np.minimum(127 * w, -128 * w).sum(axis=1)
    if highest.max() >= EXACT_LIMIT or lowest.min() < -EXACT_LIMIT:
        return None
    return bias + ODD_OFFSET * w[:, 1::2].sum(axis=1)


def quick_requantization(multipliers: np.ndarray, shifts: np.ndarray) -> bool:
    """Whether every row has the five-instruction requantization (tc_dsp_quant_fits in tc_dsp.h), the only
    one the pair form's kernel has."""
    return bool((multipliers >= 2 ** 30).all() and (shifts <= -1).all() and (shifts >= -23).all())


def assign_dsp_forms(calls: list[KernelCall], board: Board) -> None:
    """Give FULLY_CONNECTED layers the pair form on cores whose kernel reads it (DSP, no Helium)."""
    if not board.dsp or board.mve:
        return
    for call in calls:
        if call.function != "tc_fully_connected_s8":
            continue
        arrays = {a.name: a for a in call.arrays}
        weights, bias = arrays[call.params["weights"]], arrays[call.params["bias"]]
        plain = weights.values.reshape(call.params["output_depth"], call.params["input_depth"])
        pairs, pair_sums = pair_weights(plain), pair_bias(plain, bias.values)
        requant = call.params["requant"]
        multipliers, shifts = arrays[requant["multiplier"]].values, arrays[requant["shift"]].values
        if pairs is None or pair_sums is None or not quick_requantization(multipliers, shifts):
            continue
        weights.dsp_values = pairs
        weights.dsp_comment = (f"{weights.comment} in the pair form: blocks of four rows, interleaved by "
                               "groups of four")
        bias.dsp_values = pair_sums
        bias.dsp_comment = f"{bias.comment}, + 127 x the row's odd weights (the pair form)"
        call.params["dsp_pairs"] = 1
