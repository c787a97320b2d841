"""AXI-stream words as FINN packs them: element 0 of a word in its least significant bits,
each element in two's complement (unsigned types as they are, BINARY as one bit 0/1).

Decided here once for the generators (port widths), the simulators (stimuli and results) and a
board-side driver: this module needs numpy alone. :func:`finn_format` takes any object with
FINN ``DataType``'s methods (``name``, ``is_integer()``, ``bitwidth()``, ``signed()``) and
imports nothing of FINN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bireal_fpga.errors import BiRealError


class StreamError(BiRealError, ValueError):
    """A stream type the RTL cannot carry, or values outside a stream's type."""


class DataTypeLike(Protocol):
    """What :func:`finn_format` reads of a FINN / QONNX ``DataType``."""

    @property
    def name(self) -> str: ...

    def is_integer(self) -> bool: ...

    def bitwidth(self) -> int: ...

    def signed(self) -> bool: ...


@dataclass(frozen=True)
class StreamFormat:
    elem_bits: int
    signed: bool
    elems: int  # elements per word

    @property
    def width(self) -> int:
        return self.elem_bits * self.elems

    @property
    def axi_width(self) -> int:
        """The width at an AXI boundary: a multiple of 8 bits, as FINN pads it."""
        return (self.width + 7) // 8 * 8

    @property
    def lo(self) -> int:
        return -(1 << (self.elem_bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.elem_bits - 1)) - 1 if self.signed else (1 << self.elem_bits) - 1


def finn_format(dtype: DataTypeLike, elems: int) -> StreamFormat:
    """The stream format of a FINN ``DataType`` (integer types only)."""
    name = str(dtype.name)
    if not dtype.is_integer():
        raise StreamError(f"stream data type {name} is not an integer type")
    bits = int(dtype.bitwidth())
    signed = bool(dtype.signed()) and name != "BIPOLAR"
    return StreamFormat(bits, signed, elems)


def pack(values: np.ndarray, fmt: StreamFormat) -> list[int]:
    """Rows of ``fmt.elems`` integer elements (any leading shape) -> one int per word."""
    v = np.asarray(values).astype(np.int64).reshape(-1, fmt.elems)
    if v.size and (v.min() < fmt.lo or v.max() > fmt.hi):
        raise StreamError(
            f"values [{v.min()}, {v.max()}] outside the stream type [{fmt.lo}, {fmt.hi}]"
        )
    mask = (1 << fmt.elem_bits) - 1
    u = (v & mask).astype(np.uint64)
    words: list[int] = []
    if fmt.width <= 64:
        shifts = (np.arange(fmt.elems, dtype=np.uint64) * np.uint64(fmt.elem_bits))[None, :]
        packed = np.bitwise_or.reduce(u << shifts, axis=1) if fmt.elems else u[:, 0]
        return [int(x) for x in packed]
    for row in u:
        w = 0
        for i, e in enumerate(row.tolist()):
            w |= int(e) << (i * fmt.elem_bits)
        words.append(w)
    return words


def unpack(words: list[int], fmt: StreamFormat) -> np.ndarray:
    """Words -> int64 array ``[len(words), fmt.elems]`` (sign-extended where signed)."""
    mask = (1 << fmt.elem_bits) - 1
    out = np.empty((len(words), fmt.elems), dtype=np.int64)
    for r, w in enumerate(words):
        for i in range(fmt.elems):
            e = (w >> (i * fmt.elem_bits)) & mask
            if fmt.signed and e >> (fmt.elem_bits - 1):
                e -= 1 << fmt.elem_bits
            out[r, i] = e
    return out
