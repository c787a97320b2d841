"""The one writer of ``$readmemh`` memory images (weights, thresholds, affine coefficients,
constants, the run-time weight beats, the simulators' stimuli).

An image holds one word per line, as lower-case hexadecimal zero-padded to ``ceil(width / 4)``
digits (at least one), every line ending in a newline; an empty memory is the empty text. A
word is one row of elements, each ``bits`` wide in two's complement, element 0 in the least
significant bits (FINN's packing, :mod:`.streams`). Rows of narrow elements (up to 62 bits, the
values held in int64) are formatted with numpy; wider elements (Python integers, e.g. an
integer MVAU's ~80-bit ``{C, M}`` words or 64-bit bus beats) exactly, one row at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bireal_fpga.errors import BiRealError

VECTOR_MAX_BITS = 62  # elements this wide are formatted with numpy (int64 arithmetic)
_CHUNK_BITS = 1 << 22  # bits formatted per numpy step (bounds the temporary arrays)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


class ImageError(BiRealError, ValueError):
    """Values a memory image cannot hold (not integers, or outside the element width)."""


def memory_image(values: np.ndarray | Sequence[int], bits: int) -> str:
    """The image of ``values``: one word per row (a 1-D ``values`` is one element per word),
    element ``i`` of a row at bits ``i * bits``. Every value must fit ``bits`` bits as a signed
    or an unsigned number."""
    if bits < 1:
        raise ImageError(f"memory image element width {bits} < 1")
    v = values if isinstance(values, np.ndarray) else np.array(list(values), dtype=object)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise ImageError(f"memory image values of shape {v.shape}: expected rows of elements")
    rows, elems = v.shape
    if rows == 0:
        return ""
    if elems == 0:
        raise ImageError("memory image rows without elements")
    if v.dtype != object and v.dtype.kind not in "iub":
        raise ImageError(f"memory image values of type {v.dtype}: expected integers")
    lo, hi = -(1 << (bits - 1)), (1 << bits) - 1
    vmin, vmax = int(v.min()), int(v.max())
    if vmin < lo or vmax > hi:
        raise ImageError(f"memory image values [{vmin}, {vmax}] do not fit {bits} bits")
    if bits <= VECTOR_MAX_BITS:
        return _vector_image(v.astype(np.int64), bits)
    return _exact_image(v, bits)


def write_hex(path: Path, words: np.ndarray | Sequence[int], width: int) -> None:
    """Write already packed ``width``-bit words (one per line) as a memory image."""
    Path(path).write_text(memory_image(np.array(list(words), dtype=object), width))


def _digits(width: int) -> int:
    return max(1, (width + 3) // 4)


def _exact_image(v: np.ndarray, bits: int) -> str:
    mask = (1 << bits) - 1
    digits = _digits(bits * v.shape[1])
    lines = []
    for row in v:
        w = 0
        for i, e in enumerate(row):
            w |= (int(e) & mask) << (i * bits)
        lines.append(f"{w:0{digits}x}\n")
    return "".join(lines)


def _vector_image(v: np.ndarray, bits: int) -> str:
    rows, elems = v.shape
    width = bits * elems
    digits = _digits(width)
    u = v & np.int64((1 << bits) - 1)
    step = max(1, _CHUNK_BITS // (digits * 4))
    out = []
    for r0 in range(0, rows, step):
        part = u[r0 : r0 + step]
        if width <= 63:  # the whole word in one int64
            shifts = np.arange(elems, dtype=np.int64) * bits
            word = np.bitwise_or.reduce(part << shifts[None, :], axis=1)
            nibbles = (word[:, None] >> (4 * np.arange(digits - 1, -1, -1, dtype=np.int64))) & 15
        else:  # bit by bit: (rows, width) bits, padded to whole digits, read 4 at a time
            n = part.shape[0]
            bitarr = ((part[:, :, None] >> np.arange(bits, dtype=np.int64)) & 1).astype(np.uint8)
            bitarr = bitarr.reshape(n, width)
            pad = digits * 4 - width
            if pad:
                bitarr = np.concatenate([bitarr, np.zeros((n, pad), dtype=np.uint8)], axis=1)
            nibbles = (bitarr.reshape(n, digits, 4) @ np.array([1, 2, 4, 8], dtype=np.uint8))[
                :, ::-1
            ]
        chars = _HEX[nibbles.astype(np.intp)]
        lines = np.concatenate(
            [chars, np.full((chars.shape[0], 1), ord("\n"), dtype=np.uint8)], axis=1
        )
        out.append(lines.tobytes().decode("ascii"))
    return "".join(out)
