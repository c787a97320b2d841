"""Two integer products per DSP slice: where an MVAU packs them, decided once.

An integer MVAU multiplies each input element ``x`` by the weights of its PE lanes. Two lanes
``lo`` = 2q and ``hi`` = 2q + 1 see the same ``x``, so one multiplier can form both products
(the INT8 packing of Xilinx WP486): with a field of ``S`` bits,

    c = w_hi * 2**S + w_lo,        P = x * c = (x * w_hi) * 2**S + x * w_lo,

and ``x * w_lo`` is the low field read as a signed ``S``-bit number (``sext(P[S-1:0])``)
whenever it lies in ``[-2**(S-1), 2**(S-1))``; ``x * w_hi = (P >> S) + P[S-1]`` (an arithmetic
shift; the borrow the negative low product took from the high field given back). The MVAU adds
the low products of a step in one tree and the high ones (with the borrow bits) in another, so
its adders are those of the two lanes unpacked and only the multipliers halve.

``c`` is built from the weight memory by wiring alone: the high lane's stored weight is
``w_hi' = w_hi - [w_lo < 0]`` (the borrow of the sign-extended low weight taken in advance),
and ``c = {w_hi', S - W copies of w_lo's sign bit, w_lo}``. So the memory keeps its width
(``w_hi'`` fits the weight width when no weight is the most negative value of it, as with
Brevitas' narrow-range weights) and the generator only stores other values in the high lanes.

A pair is packed on UltraScale / UltraScale+ (:data:`PACK_FAMILIES`) when ``c`` (``W + S``
bits) fits 25 bits and ``x`` 18 (the multiplier ports, kept to DSP48E1's 25 x 18 although
DSP48E2's A port has 27): an ``UINT8`` input with narrow-range ``INT8`` weights (products in
[-32385, 32385]: S = 16, c 24 bits) packs, and so does an ``INT10`` one (S = 17, c 25 bits);
``INT12`` (S = 19) does not. Not on the 7-series: there yosys sums an MVAU's unpacked products
in the DSP48E1 cascade (the post-adders), which the split products cannot use, so packing
would trade DSPs for adder trees in LUTs (a PE 8 x SIMD 27 stem measured: 574 LUTs and 248
DSPs unpacked, 6,682 and 140 packed); on UltraScale+ yosys builds those trees in LUTs either
way (6,521 LUTs unpacked, 6,670 packed, DSPs 232 -> 124). The family comes from the folded
graph (:data:`FAMILY_PROP`, set where a graph is folded for a board) in the generator and from
the board in the cost model. An odd PE's last lane and every lane of a layer that does not
pack keep one multiplier per product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bireal_fpga.arch.widths import signed_bits

FAMILY_PROP = "bireal_fpga_dsp_family"  # metadata of a folded graph: its board's family
PACK_FAMILIES = ("xcu", "xcup")  # the families whose MVAUs pack (see the module docstring)
PACK_C_BITS = 25  # the multiplier port c must fit: DSP48E1's A (25 x 18); DSP48E2's is 27
PACK_X_BITS = 18  # ... and x: the B port


@dataclass(frozen=True)
class DspPacking:
    """Two lanes per multiplier with a low field of ``field_bits`` (the ``S`` above)."""

    field_bits: int
    weight_bits: int

    @property
    def c_bits(self) -> int:
        return self.weight_bits + self.field_bits


def input_bits(in_bits: int, in_signed: bool) -> int:
    """The signed width of an input element at the multiplier (a sign bit for unsigned)."""
    return in_bits + (0 if in_signed else 1)


def dsp_packing(
    in_bits: int,
    in_signed: bool,
    w_lo: int,
    w_hi: int,
    w_bits: int,
    pe: int,
    binary: bool,
    family: str | None,
) -> DspPacking | None:
    """The packing of an MVAU with input elements of ``in_bits`` (``in_signed``: the whole
    range of that type), integer weights in ``[w_lo, w_hi]`` stored in ``w_bits`` bits and PE lanes,
    on ``family``; None where its lanes keep one multiplier each (another family or none
    known, XNOR mode, one lane, a product field or ``c`` too wide, or a weight at the most
    negative value of its width)."""
    if family not in PACK_FAMILIES or binary or pe < 2 or w_bits < 1:
        return None
    if w_lo <= -(1 << (w_bits - 1)):  # w_hi - 1 would not fit the stored width
        return None
    if input_bits(in_bits, in_signed) > PACK_X_BITS:
        return None
    x_lo, x_hi = (
        (-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1) if in_signed else (0, (1 << in_bits) - 1)
    )
    ends = [x * w for x in (x_lo, x_hi) for w in (w_lo, w_hi)] + [0]
    field = signed_bits(min(ends), max(ends))
    if field <= w_bits or w_bits + field > PACK_C_BITS:
        return None
    return DspPacking(field_bits=field, weight_bits=w_bits)


def packed_pairs(pe: int, packing: DspPacking | None) -> int:
    """Lane pairs (2q, 2q + 1) that share multipliers."""
    return 0 if packing is None else pe // 2


def stored_weights(words: np.ndarray, pe: int, simd: int, packing: DspPacking | None) -> np.ndarray:
    """The weight memory's words (``words[step, p * SIMD + s]``, integers) with each packed
    pair's high lane holding ``w_hi - [w_lo < 0]`` (a copy; ``words`` itself where nothing
    packs)."""
    if packing is None:
        return words
    out = np.array(words, dtype=np.int64, copy=True)
    lanes = out.reshape(out.shape[0], pe, simd)
    pairs = pe // 2
    lo = lanes[:, 0 : 2 * pairs : 2, :]
    lanes[:, 1 : 2 * pairs : 2, :] -= (lo < 0).astype(np.int64)
    return lanes.reshape(out.shape)
