"""AXI-stream words as FINN packs them: element 0 of a word in its least significant bits,
each element in two's complement (unsigned types as they are, BINARY as one bit 0/1).

Decided here once for the generators (port widths), the simulators (stimuli and results) and a
board-side driver: this module needs numpy alone. :func:`finn_format` takes any object with
FINN ``DataType``'s methods (``name``, ``is_integer()``, ``bitwidth()``, ``signed()``) and
imports nothing of FINN.
"""

from __future__ import annotations

import functools
import math
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
    u = v.view(np.uint64) & np.uint64((1 << fmt.elem_bits) - 1)
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


# ---- vectorized byte packing (numpy only; numpy 1.21+ and 2.x) -------------------------------
#
# :func:`pack` / :func:`unpack` above are the reference (Python ints per word). The functions
# below give the same words as little-endian bytes, one row per word, without a Python loop per
# word: what a DMA buffer holds. Three ways, picked by the format (:func:`_plan`):
#
# - ``bytes``: elements of whole bytes (8, 16, ..., 64 bits): each element is the low
#   ``elem_bits / 8`` bytes of its little-endian two's complement;
# - ``groups``: ``g`` elements fill a uint64 (shift and or), and a group is whole bytes: the
#   whole word when it is at most 64 bits wide, else the fewest elements that end on a byte
#   boundary (``8 / gcd(elem_bits, 8)``), when they fit in 64 bits;
# - ``bits``: any other format, one byte per bit (``np.unpackbits`` / ``np.packbits``,
#   little bit order).

_U64 = np.dtype("<u8")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, eq=False)
class _Plan:
    way: str  # "bytes", "groups" or "bits"
    g: int  # groups: elements per group
    ng: int  # groups per word
    gb: int  # bytes per group (bytes: per element)
    shifts: np.ndarray  # groups: uint64 [g], element k at bit k * elem_bits
    lshifts: np.ndarray  # groups: uint64 [g], element k's top bit to bit 63
    mask: np.uint64  # the low elem_bits bits


@functools.lru_cache(maxsize=256)
def _plan(fmt: StreamFormat) -> _Plan:
    eb = fmt.elem_bits
    if not 1 <= eb <= 64 or fmt.elems < 1:
        raise StreamError(f"stream format {fmt} is not 1..64-bit elements, one or more a word")
    mask = np.uint64((1 << eb) - 1)
    none = np.zeros(0, np.uint64)
    if eb % 8 == 0:
        return _Plan("bytes", 1, fmt.elems, eb // 8, none, none, mask)
    g = fmt.elems if fmt.width <= 64 else 8 // math.gcd(eb, 8)
    if g * eb > 64:
        return _Plan("bits", 0, 0, 0, none, none, mask)
    k = np.arange(g, dtype=np.uint64)
    shifts = k * np.uint64(eb)
    lshifts = np.uint64(64) - (k + np.uint64(1)) * np.uint64(eb)
    for a in (shifts, lshifts):
        a.setflags(write=False)
    return _Plan("groups", g, _ceil_div(fmt.elems, g), _ceil_div(g * eb, 8), shifts, lshifts, mask)


def fit_bytes(rows: np.ndarray, nbytes: int) -> np.ndarray:
    """uint8 rows ``[words, k]`` cut or zero-padded to ``nbytes`` columns (what is cut must be
    padding: zeros)."""
    have = rows.shape[1]
    if have == nbytes:
        return rows
    if have > nbytes:
        return rows[:, :nbytes]
    out = np.zeros((rows.shape[0], nbytes), dtype=np.uint8)
    item = math.gcd(math.gcd(have, nbytes), 8)  # copy in the widest ints that tile both
    if rows.flags.c_contiguous and have // item <= 8:
        # a few columns: a strided copy each (a 2-D copy pays per short row), by blocks of
        # rows that stay in the cache
        src, dst = rows.view(f"u{item}"), out.view(f"u{item}")
        block = max(1, (1 << 20) // nbytes)
        for r in range(0, rows.shape[0], block):
            s, d = src[r : r + block], dst[r : r + block]
            for j in range(have // item):
                d[:, j] = s[:, j]
    else:
        out[:, :have] = rows
    return out


def _le_bytes(u: np.ndarray, nbytes: int) -> np.ndarray:
    """uint64 ``[..., k]`` -> their low ``nbytes`` little-endian bytes ``[..., k, nbytes]``."""
    le = np.ascontiguousarray(u, dtype=_U64).view(np.uint8)
    return le.reshape(*u.shape, 8)[..., :nbytes]


def _from_le(b: np.ndarray) -> np.ndarray:
    """Little-endian bytes ``[..., k]`` (k <= 8) -> uint64 ``[...]`` (a new array)."""
    k = b.shape[-1]
    full = np.zeros((*b.shape[:-1], 8), dtype=np.uint8)
    full[..., :k] = b
    return full.view(_U64).reshape(b.shape[:-1]).astype(np.uint64, copy=False)


def pack_bytes(values: np.ndarray, fmt: StreamFormat, beat: int | None = None) -> np.ndarray:
    """Rows of ``fmt.elems`` integer elements (any leading shape) -> uint8 ``[words, beat]``:
    row ``r`` holds ``pack(values, fmt)[r]`` in little-endian order, zero-padded to ``beat``
    bytes (default ``fmt.axi_width // 8``, FINN's bytes per word). Raises as :func:`pack` on
    values outside the stream type."""
    plan = _plan(fmt)
    beat = fmt.axi_width // 8 if beat is None else int(beat)
    if beat * 8 < fmt.width:
        raise StreamError(f"a {fmt.width}-bit word does not fit in {beat} bytes")
    v = np.asarray(values)
    if v.dtype == np.bool_:
        v = v.astype(np.uint8)
    elif v.dtype.kind not in "iu":
        v = v.astype(np.int64)
    v = v.reshape(-1, fmt.elems)
    if v.size:
        lo, hi = int(v.min()), int(v.max())
        if lo < fmt.lo or hi > fmt.hi:
            raise StreamError(f"values [{lo}, {hi}] outside the stream type [{fmt.lo}, {fmt.hi}]")
    rows, eb = v.shape[0], fmt.elem_bits
    if plan.way == "bytes":  # the low bytes of each element's two's complement
        nb = plan.gb
        if v.dtype.itemsize < nb:
            v = v.astype(np.int64)
        le = np.ascontiguousarray(v, dtype=v.dtype.newbyteorder("<")).view(np.uint8)
        b = le.reshape(rows, fmt.elems, v.dtype.itemsize)[..., :nb].reshape(rows, fmt.elems * nb)
        return np.ascontiguousarray(fit_bytes(b, beat))
    u = v.astype(np.int64).view(np.uint64) & plan.mask
    if plan.way == "groups":  # shift and or into uint64s of whole bytes
        g, ng = plan.g, plan.ng
        if ng * g != fmt.elems:
            u = np.concatenate([u, np.zeros((rows, ng * g - fmt.elems), np.uint64)], axis=1)
        words = np.bitwise_or.reduce(u.reshape(rows, ng, g) << plan.shifts, axis=2)
        b = _le_bytes(words, plan.gb).reshape(rows, ng * plan.gb)
        return np.ascontiguousarray(fit_bytes(b, beat))
    # bits: one byte per bit, element 0 first, each element least significant bit first
    bits = np.unpackbits(_le_bytes(u, _ceil_div(eb, 8)), axis=-1, bitorder="little")
    b = np.packbits(bits[..., :eb].reshape(rows, fmt.width), axis=-1, bitorder="little")
    return np.ascontiguousarray(fit_bytes(b, beat))


def _extend(u: np.ndarray, fmt: StreamFormat) -> np.ndarray:
    """uint64 elements (in their low ``elem_bits``) -> int64, sign-extended where signed."""
    eb = fmt.elem_bits
    if fmt.signed:
        s = 64 - eb
        return (u << np.uint64(s)).view(np.int64) >> np.int64(s) if s else u.view(np.int64)
    if eb == 64 and u.size and int(u.max()) >> 63:
        raise StreamError("64-bit unsigned stream values beyond int64")
    return u.view(np.int64)


def unpack_bytes(raw: np.ndarray, fmt: StreamFormat) -> np.ndarray:
    """uint8 ``[words, beat]`` (each row a word's little-endian bytes, beyond the word's
    width ignored) -> int64 ``[words, fmt.elems]`` as :func:`unpack` gives them."""
    plan = _plan(fmt)
    raw = np.asarray(raw, dtype=np.uint8)
    if raw.ndim != 2 or raw.shape[1] * 8 < fmt.width:
        raise StreamError(f"rows of bytes of shape {raw.shape} do not hold {fmt.width}-bit words")
    rows, eb = raw.shape[0], fmt.elem_bits
    if plan.way == "bytes":
        nb = plan.gb
        b = raw[:, : fmt.elems * nb].reshape(rows, fmt.elems, nb)
        if nb in (1, 2, 4) or (nb == 8 and fmt.signed):  # numpy's own ints extend them
            kind = "i" if fmt.signed else "u"
            vals = np.ascontiguousarray(b).view(np.dtype(f"<{kind}{nb}"))
            return vals.reshape(rows, fmt.elems).astype(np.int64)
        return _extend(_from_le(b), fmt)
    if plan.way == "groups":
        # element k of a group: shifted left to put its top bit at bit 63, then right by
        # 64 - elem_bits (arithmetic where signed: that extends the sign)
        ng, g, gb = plan.ng, plan.g, plan.gb
        x = _from_le(fit_bytes(raw, ng * gb).reshape(rows, ng, gb))[..., None] << plan.lshifts
        s = 64 - eb
        vals = x.view(np.int64) >> np.int64(s) if fmt.signed else (x >> np.uint64(s)).view(np.int64)
        return np.ascontiguousarray(vals.reshape(rows, ng * g)[:, : fmt.elems])
    # bits
    nbits = _ceil_div(eb, 8) * 8
    bits = np.unpackbits(raw[:, : fmt.axi_width // 8], axis=-1, bitorder="little")
    padded = np.zeros((rows, fmt.elems, nbits), dtype=np.uint8)
    padded[..., :eb] = bits[:, : fmt.width].reshape(rows, fmt.elems, eb)
    return _extend(_from_le(np.packbits(padded, axis=-1, bitorder="little")), fmt)
