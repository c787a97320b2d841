"""Exact thresholds of an imported "accumulator -> scale -> BatchNorm -> quantizer" chain.

An imported conv computes, per output channel ``c``, the real number

    z(acc) = ((acc * c_in + bias - mean) * gamma / sqrt(var + eps)) + beta

of its integer accumulator ``acc`` (``c_in``: input scale times weight scale, > 0), and the
quantizer after it outputs ``clamp(R(z / s), lo, hi)`` (``R`` the QONNX rounding mode). Every
number in the file is a float, so each is an exact rational; only the square root is not.
The thresholds ``T_k = min{acc : clamp(R(z(acc)/s), lo, hi) >= k}`` are found in float64 and
then decided exactly wherever float64 is not certain: ``R(x) >= k`` is ``x >= b_k`` or
``x > b_k`` for a rational boundary ``b_k`` (:func:`boundary`), and ``u >= r * sqrt(v)`` is
decided by signs and squares of rationals (:func:`sign_minus_root`). No boundary moves, on
ties included (QONNX's ``ROUND`` rounds half to even, and so do these thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

BIG = 2**40  # beyond any accumulator: "never" / "always" thresholds (as integer/derive.py)
_EXACT_RANGE = 2**34  # thresholds beyond this are unreachable: no exact check needed
_MARGIN = 1e-9  # relative float64 margin below which a comparison is decided exactly

ROUNDING_MODES = ("ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN", "FLOOR", "CEIL", "UP", "DOWN")


def boundary(k: int, mode: str) -> tuple[Fraction, bool]:
    """``(b, inclusive)`` with ``R(x) >= k  <=>  x >= b`` (inclusive) or ``x > b``, for the
    QONNX rounding mode ``mode`` (``qonnx.custom_op.general.intquant.resolve_rounding_mode``)."""
    half = Fraction(k) - Fraction(1, 2)
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):  # x = k - 1/2 rounds to the even one of k-1, k
        return half, k % 2 == 0
    if mode == "HALF_UP":  # half away from zero
        return half, k >= 1
    if mode == "HALF_DOWN":  # half toward zero
        return half, k <= 0
    if mode == "FLOOR":
        return Fraction(k), True
    if mode == "CEIL":
        return Fraction(k - 1), False
    if mode == "UP":  # away from zero: sign(x) * ceil(|x|)
        return (Fraction(k - 1), False) if k >= 1 else (Fraction(k), True)
    if mode == "DOWN":  # toward zero
        return (Fraction(k), True) if k >= 1 else (Fraction(k - 1), False)
    raise ValueError(f"unknown rounding mode {mode!r} (known: {', '.join(ROUNDING_MODES)})")


def sign_minus_root(u: Fraction, r: Fraction, v: Fraction) -> int:
    """The sign of ``u - r * sqrt(v)`` (``v > 0``), exactly."""
    if u >= 0 and r <= 0:
        return 0 if (u == 0 and r == 0) else 1
    if u < 0 and r > 0:
        return -1
    a, b = u * u, r * r * v
    d = (a > b) - (a < b)
    return d if u >= 0 else -d


@dataclass(frozen=True)
class Chain:
    """Per output channel: ``z(acc) = (acc * c_in + bias - mean) * gamma / sqrt(var + eps)
    + beta`` (without a BN: ``mean = beta = eps = 0``, ``gamma = var = 1``), ``c_in`` the
    product of ``c_in_factors`` (input scale, weight scale, 1/4 of a sum pool); then the
    quantizer: scale ``s``, levels ``[lo, hi]``, rounding ``mode``. Values as float64 arrays
    ``[C]`` (or scalars) holding the file's numbers exactly; products and sums of them are
    formed in rationals where it matters."""

    c_in_factors: tuple[np.ndarray, ...]
    bias: np.ndarray
    mean: np.ndarray
    gamma: np.ndarray
    var: np.ndarray
    eps: float
    beta: np.ndarray
    s: float
    lo: int
    hi: int
    mode: str


def thresholds(chain: Chain) -> tuple[np.ndarray, np.ndarray]:
    """``(T, flip)``: int64 ``T [C, hi - lo]`` with
    ``clamp(R(z(acc)/s), lo, hi) = lo + #{k : sign * acc >= T[c, k]}``, ``sign = -1`` where
    ``flip[c]`` (a negative BN gain: the channel's weights are to be negated)."""
    g = np.asarray(chain.gamma, dtype=np.float64)
    flip = g < 0
    levels = np.arange(chain.lo + 1, chain.hi + 1)
    n_ch = g.shape[0]
    bounds = [boundary(int(k), chain.mode) for k in levels]
    b_float = np.array([float(b) for b, _ in bounds])
    t = np.empty((n_ch, levels.size), dtype=np.int64)
    for c in range(n_ch):
        t[c] = _channel(chain, c, bounds, b_float)
    return t, flip


def _channel(
    ch: Chain, c: int, bounds: list[tuple[Fraction, bool]], b_float: np.ndarray
) -> np.ndarray:
    gamma, beta = float(ch.gamma[c]), float(ch.beta[c])
    var = float(ch.var[c]) + ch.eps
    c_in = float(np.prod([np.broadcast_to(f, ch.gamma.shape)[c] for f in ch.c_in_factors]))
    offset = float(ch.bias[c]) - float(ch.mean[c])
    if gamma == 0.0:  # constant output R(beta / s)
        out = np.empty(len(bounds), dtype=np.int64)
        for i, (b, inclusive) in enumerate(bounds):
            x = Fraction(beta) / Fraction(ch.s)
            out[i] = -BIG if (x >= b if inclusive else x > b) else BIG
        return out
    # in acc' = sign * acc: u(acc') = acc' * c_in * |gamma| + offset * gamma, increasing
    slope, icept = c_in * abs(gamma), offset * gamma
    root = np.sqrt(var)
    r = b_float * ch.s - beta  # condition: u >= r * sqrt(var)
    est = np.ceil((r * root - icept) / slope)
    est = np.clip(np.nan_to_num(est, nan=BIG, posinf=BIG, neginf=-BIG), -BIG, BIG)
    out = est.astype(np.int64)
    far = np.abs(est) >= _EXACT_RANGE  # unreachable by any accumulator
    out[far] = np.where(est[far] > 0, BIG, -BIG)
    t = est
    scale = np.abs(r * root) + abs(icept) + np.abs(slope * t) + 1e-300
    above = (slope * t + icept - r * root) / scale
    below = (slope * (t - 1) + icept - r * root) / scale
    unsure = ~far & ~((above > _MARGIN) & (below < -_MARGIN))
    if unsure.any():  # float64 is not certain here: decide in rationals
        exact = _Exact(ch, c)
        for i in (int(j) for j in np.flatnonzero(unsure)):
            b, inclusive = bounds[i]
            ti = int(out[i])
            while exact.holds(ti - 1, b, inclusive):
                ti -= 1
            while not exact.holds(ti, b, inclusive):
                ti += 1
            out[i] = ti
    return out


class _Exact:
    """The exact condition ``R(z(acc')/s) >= k`` of one channel, in rationals."""

    def __init__(self, ch: Chain, c: int) -> None:
        gamma = Fraction(float(ch.gamma[c]))
        c_in = Fraction(1)
        for f in ch.c_in_factors:
            c_in *= Fraction(float(np.broadcast_to(f, ch.gamma.shape)[c]))
        self.slope = c_in * abs(gamma)
        self.icept = (Fraction(float(ch.bias[c])) - Fraction(float(ch.mean[c]))) * gamma
        self.var = Fraction(float(ch.var[c])) + Fraction(ch.eps)
        self.beta = Fraction(float(ch.beta[c]))
        self.s = Fraction(ch.s)

    def holds(self, acc: int, b: Fraction, inclusive: bool) -> bool:
        u = self.slope * acc + self.icept
        d = sign_minus_root(u, b * self.s - self.beta, self.var)
        return d >= 0 if inclusive else d > 0
