"""INT4 weights: TFLite's packing as read from the .tflite, and the nibble form the firmware stores.

TFLite (and TFLite Micro's UnpackDenseInt4IntoInt8) packs a tensor's values two to a byte over the whole
flattened tensor, element 2i in the low nibble. The firmware stores them by rows instead, so each kernel
finds a row's values in whole words whatever the depth (firmware/include/tc_int4.h):

    a row of values in words of WORD = 8, zero-padded to a whole word; in word j, value 8j + i (i < 4) is
    the high nibble of byte i and value 8j + 4 + i its low nibble.

A word masked with 0xF0F0F0F0 then holds 16 times values 8j..8j+3 in its bytes, and shifted left by four
and masked, 16 times values 8j+4..8j+7: SXTB16 widens them in the order the DSP kernels' int16 columns use
(tc_dsp.h's SMLAD order), with no shift per value. Rows are FULLY_CONNECTED's and CONV_2D's output
channels (their KH x KW x C_in values in TFLite's order) and DEPTHWISE_CONV_2D's taps (the channels).
"""
from __future__ import annotations

import numpy as np

WORD = 8                       # values per 32-bit word: TC_S4_WORD in firmware/include/tc_int4.h
# |sum| of 16 w x over a row stays below 2^31 (|w| <= 8, |x + input offset| <= 255): the kernels' accumulators
MAX_DEPTH = (2 ** 31 - 1) // (16 * 8 * 255)


def unpack_tflite(packed: np.ndarray, shape) -> np.ndarray:
    """TFLite's packed INT4 bytes as int8 values of `shape` (element 2i in the low nibble)."""
    count = int(np.prod(shape, dtype=np.int64))
    b = np.asarray(packed, np.uint8).reshape(-1)
    low = ((b & 0xF).astype(np.int8) << 4) >> 4
    high = b.astype(np.int8) >> 4
    return np.stack([low, high], axis=1).reshape(-1)[:count].reshape(shape)


def pack_tflite(values: np.ndarray) -> np.ndarray:
    """Values in [-8, 7], flattened, in TFLite's packing: the inverse of unpack_tflite."""
    v = (np.asarray(values, np.int64).reshape(-1) & 0xF).astype(np.uint8)
    if v.size % 2:
        v = np.append(v, np.uint8(0))
    return (v[0::2] | (v[1::2] << 4)).astype(np.uint8)


def padded(depth: int) -> int:
    """A row's values in whole words."""
    return -(-depth // WORD) * WORD


def nibble_rows(values: np.ndarray) -> np.ndarray:
    """[rows, depth] int values in [-8, 7] in the nibble form, as int8 bytes (rows x padded(depth) / 2)."""
    rows, depth = values.shape
    v = np.zeros((rows, padded(depth)), np.int64)
    v[:, :depth] = values
    words = v.reshape(rows, -1, 2, 4)                       # [rows, words, half (high, low), byte]
    packed = ((words[:, :, 0, :] & 0xF) << 4) | (words[:, :, 1, :] & 0xF)
    return packed.reshape(-1).astype(np.uint8).view(np.int8)


def from_nibble_rows(packed: np.ndarray, rows: int, depth: int) -> np.ndarray:
    """The inverse of nibble_rows: [rows, depth] int8 values."""
    b = np.asarray(packed).view(np.uint8).reshape(rows, -1, 4).astype(np.uint8)
    high = b.astype(np.int8) >> 4
    low = (b << 4).astype(np.int8) >> 4
    return np.concatenate([high, low], axis=2).reshape(rows, -1)[:, :depth]


def row_view(op: str, values: np.ndarray) -> np.ndarray:
    """A weight tensor's values as the rows the firmware stores: [C_out, rest] for FULLY_CONNECTED and
    CONV_2D, [taps, channels] for DEPTHWISE_CONV_2D."""
    if op == "DEPTHWISE_CONV_2D":
        return values.reshape(-1, values.shape[-1])
    return values.reshape(values.shape[0], -1)
