"""INT4 weights: TFLite's packing as read from the .tflite, and the nibble form the firmware stores.

TFLite (and TFLite Micro's UnpackDenseInt4IntoInt8) packs a tensor's values two to a byte over the whole
flattened tensor, element 2i in the low nibble. The firmware stores them by rows instead, so each kernel
finds a row's values in whole words whatever the depth. The nibble form (firmware/include/tc_int4.h
states the same definition):

- a value v in [-8, 7] is the nibble v + 8 (offset binary, in [0, 15]);
- a row lies in words of WORD = 8 values, zero values (nibbles 8) padding it to a whole word; in word j,
  value 8j + i (i < 4) is the high nibble of byte i and value 8j + 4 + i its low nibble;
- rows come in blocks of `block` rows (FULLY_CONNECTED ROWS_PER_BLOCK, the others one), a block's rows
  interleaved word by word: word j of row b + r, in the block of L rows from row b, is word
  b x words + j x L + r. The last block has the rows left over.

Palette indices (compress/cluster.py, firmware/include/tc_palette.h) take the same words, blocks of one
row, with no offset: nibble_rows(indices, offset=0).

Nibble p of a word (bits 4p..4p+3) so holds value 8j + (4, 0, 5, 1, 6, 2, 7, 3)[p], and the word shifted
right by 0, 4, 8, 12 and masked with 0x000F000F gives int16 lanes (v4, v6), (v0, v2), (v5, v7), (v1, v3)
plus 8: the DSP kernels' int16 column words (tc_dsp.h's SMLAD order) with one AND each and no sign
extension, 8 times the column's sum taken off once per column. Kernels that want the signed values take
word ^ 0x88888888 (the two's complement nibbles): masked with 0xF0F0F0F0 it holds 16 times values
8j..8j+3 in its bytes, shifted left by four first 16 times 8j+4..8j+7. Rows are FULLY_CONNECTED's and
CONV_2D's output channels (their KH x KW x C_in values in TFLite's order) and DEPTHWISE_CONV_2D's taps
(the channels).
"""
from __future__ import annotations

import numpy as np

WORD = 8                       # values per 32-bit word: TC_S4_WORD in firmware/include/tc_int4.h
ROWS_PER_BLOCK = 4             # FULLY_CONNECTED's rows per block: TC_S4_FC_BLOCK in tc_int4.h
OFFSET = 8                     # a value's nibble is value + OFFSET
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


def block_of(op: str) -> int:
    """Rows per block of an operator's nibble form."""
    return ROWS_PER_BLOCK if op == "FULLY_CONNECTED" else 1


def _blocks(rows: int, block: int):
    """(first row, rows) of each block."""
    return [(b, min(block, rows - b)) for b in range(0, rows, block)]


def nibble_rows(values: np.ndarray, block: int = 1, offset: int = OFFSET) -> np.ndarray:
    """[rows, depth] int values in [-8, 7] in the nibble form, as int8 bytes (rows x padded(depth) / 2).
    offset=0 stores values in [0, 15] as they are: the palette indices of compress/cluster.py."""
    rows, depth = values.shape
    v = np.zeros((rows, padded(depth)), np.int64)
    v[:, :depth] = values
    v += offset
    words = v.reshape(rows, -1, 2, 4)                       # [rows, words, half (high, low), byte]
    packed = (words[:, :, 0, :] << 4) | words[:, :, 1, :]   # [rows, words, 4 bytes]
    out = [packed[b:b + n].transpose(1, 0, 2).reshape(-1) for b, n in _blocks(rows, block)]
    return np.concatenate(out).astype(np.uint8).view(np.int8)


def from_nibble_rows(packed: np.ndarray, rows: int, depth: int, block: int = 1,
                     offset: int = OFFSET) -> np.ndarray:
    """The inverse of nibble_rows: [rows, depth] int8 values."""
    b = np.asarray(packed).view(np.uint8).reshape(-1, 4).astype(np.int64)
    words = b.shape[0] // rows
    by_row = np.concatenate([b[s * words:(s + n) * words].reshape(words, n, 4).transpose(1, 0, 2)
                             for s, n in _blocks(rows, block)])
    values = np.concatenate([by_row >> 4, by_row & 0xF], axis=2) - offset
    return values.reshape(rows, -1)[:, :depth].astype(np.int8)


def row_view(op: str, values: np.ndarray) -> np.ndarray:
    """A weight tensor's values as the rows the firmware stores: [C_out, rest] for FULLY_CONNECTED and
    CONV_2D, [taps, channels] for DEPTHWISE_CONV_2D."""
    if op == "DEPTHWISE_CONV_2D":
        return values.reshape(-1, values.shape[-1])
    return values.reshape(values.shape[0], -1)
