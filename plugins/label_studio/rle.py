"""Label Studio brush RLE, vectorised.

Produces exactly the integers `label_studio_sdk.converter.brush.mask2rle` produces for a 0/255 mask (the
tests check this on random and real masks), but builds the bit stream with numpy instead of a Python loop per
run, which makes it one to two orders of magnitude faster on full-size masks.

The format (Label Studio's brush "rle"): a 32-bit element count (height * width * 4 RGBA bytes), 5 bits of
word size minus one (7), four 4-bit run-size classes (3, 4, 8, 16 bits, minus one), then per run of equal
bytes: a flag bit (0: single value, 1: series), 2 bits of size class, the run length minus one in that many
bits, and the 8-bit value. Runs longer than 65536 are split. The stream is padded with 1 to 8 zero bits.
"""

from __future__ import annotations

import numpy as np

_HEADER_SIZES = (3, 4, 8, 16)
_RUN_LIMIT = 1 << 16


def mask_to_brush_rle(mask: np.ndarray) -> list[int]:
    """Label Studio brush RLE of a boolean (or 0/non-zero) 2D mask, as RGBA with every channel 0 or 255."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2D, got shape {mask.shape}")
    flat = np.ascontiguousarray(mask, dtype=bool).ravel()
    total = flat.size * 4
    # Runs of equal pixels; each pixel is 4 equal bytes, so byte runs are pixel runs times 4.
    if flat.size:
        change = np.flatnonzero(flat[1:] != flat[:-1])
        ends = np.append(change, flat.size - 1)
        lengths = np.diff(np.append(-1, ends)).astype(np.int64) * 4
        values = np.where(flat[ends], 255, 0).astype(np.int64)
    else:
        lengths = values = np.zeros(0, dtype=np.int64)
    # Split runs over 65536 into full 65536 chunks plus the remainder, as the reference encoder does.
    chunks = np.maximum(1, -(-lengths // _RUN_LIMIT))
    run_of_chunk = np.repeat(np.arange(len(lengths)), chunks)
    first_chunk = np.cumsum(chunks) - chunks
    position = np.arange(len(run_of_chunk)) - first_chunk[run_of_chunk]
    last = position == chunks[run_of_chunk] - 1
    sizes = np.where(last, lengths[run_of_chunk] - _RUN_LIMIT * (chunks[run_of_chunk] - 1), _RUN_LIMIT)
    chunk_values = values[run_of_chunk]

    series = sizes > 1
    size_class = np.select([sizes <= 8, sizes <= 16, sizes <= 256], [0, 1, 2], 3)
    field = np.array(_HEADER_SIZES, dtype=np.int64)[size_class]
    length_bits = np.where(series, sizes - 1, 0)
    field = np.where(series, field, 3)  # a single value writes "0" "00" "000"
    code = (series.astype(np.int64) << (2 + field)) | (np.where(series, size_class, 0) << field) | length_bits
    code = (code << 8) | chunk_values
    width = 1 + 2 + field + 8

    header = (total << 21) | (7 << 16)  # 32 + 5 + 16 = 53 bits: count, word size - 1, size classes - 1
    for k, size in enumerate(_HEADER_SIZES):
        header |= (size - 1) << (12 - 4 * k)
    header_bits = _bits(np.array([header], dtype=np.uint64), np.array([53]))
    body_bits = _bits(code.astype(np.uint64), width)
    stream = np.concatenate([header_bits, body_bits])
    stream = np.concatenate([stream, np.zeros(8 - stream.size % 8, dtype=np.uint8)])
    return np.packbits(stream).astype(int).tolist()


def _bits(codes: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Concatenate the low `widths[i]` bits of each `codes[i]`, most significant first, as a 0/1 array."""
    if codes.size == 0:
        return np.zeros(0, dtype=np.uint8)
    widths = np.asarray(widths, dtype=np.int64)
    aligned = (codes << (64 - widths).astype(np.uint64)).astype(">u8")
    matrix = np.unpackbits(aligned.view(np.uint8).reshape(-1, 8), axis=1)
    keep = np.arange(64)[None, :] < widths[:, None]
    return matrix[keep]
