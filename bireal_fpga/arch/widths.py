"""Integer widths: the fewest bits (and the signedness) that hold a range of integers.

Every datapath width of the RTL (weights, accumulators, threshold compares, affine
coefficients) is derived from the values it must hold by these two functions, in the
generators and in the cost model alike.
"""

from __future__ import annotations


def bits_for_range(lo: int, hi: int) -> tuple[int, bool]:
    """The fewest bits (and signedness) holding every integer in [lo, hi]."""
    if lo >= 0:
        return max(1, int(hi).bit_length()), False
    return max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1, True


def signed_bits(lo: int, hi: int) -> int:
    """The width of a signed (two's complement) number holding [lo, hi]."""
    bits, signed = bits_for_range(lo, hi)
    return bits if signed else bits + 1
