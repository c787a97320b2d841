"""An MVAU's integer datapath: its accumulator range, and its activation as an exact affine map.

**Accumulator range** (:func:`accumulator_range`): from the actual weights and the input type's
range (the sum of each channel's extreme products; an XNOR popcount counts 0..MW), so the
accumulator is as narrow as exactness allows. The generator builds that width and the cost
model prices it (from the graph's weights), so the folding is priced for the emitted hardware.

**Threshold units as exact integer affine maps.** A Bi-Real MVAU's thresholds quantize
``BN(acc)`` (an affine function of the accumulator) to the 8-bit residual: per channel 255
sorted thresholds. Stored as tables they cost more memory than the binary weights
(Bi-Real-18-CIFAR: ~13 Mbit against 11 Mbit of weights) and a comparator per binary-search
stage and lane. The same step function is, as a rule, ``clamp(floor((M * acc + C) / 2**S), 0,
N)`` for integers M >= 0, C and one shift S per node: one multiply-add per output lane. This
module finds such (M, C) and proves them exact (:func:`affine_thresholds`); :func:`mvau_affine`
is the form an MVAU uses, with the multiplier widths it may spend (one or two DSP48E2s, 27 x
18, per lane for the binary MVAUs' small accumulators; a few DSPs per lane for the integer
MVAUs: stem, downsample, few lanes and wide accumulators), and :func:`coefficient_bits` the
width of its ``{C, M}`` ROM words.

Exactness: with ``g(a) = floor((M a + C) / 2^S)`` non-decreasing, ``#{k : T_k <= a} ==
clamp(g(a), 0, N)`` for every ``a`` in ``[lo, hi]`` holds exactly when, for every k,
``g(T_k) >= k`` and ``g(T_k - 1) <= k - 1`` (thresholds inside the range), ``g(lo) >= k``
(thresholds at or below ``lo``) and ``g(hi) <= k - 1`` (above ``hi``): g then first reaches
level k at T_k. These linear constraints on (M, C) are what the search satisfies; ranges of up
to 2^20 accumulator values are also checked exhaustively.

FINN semantics: ``out = ActVal + #{k : T_k <= acc}`` with ``T`` sorted per channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bireal_fpga.arch.widths import signed_bits

MAX_SHIFT = 64
EXHAUSTIVE_MAX = 1 << 20
INT64_SAFE = 1 << 62  # below this, the constraints are evaluated in int64; above, exactly


@dataclass(frozen=True)
class AffineThresholds:
    shift: int
    mult: tuple[int, ...]  # per channel, >= 0
    offset: tuple[int, ...]  # per channel
    steps: int  # N: the counts run 0..N

    def apply(self, acc: np.ndarray, channel: int) -> np.ndarray:
        a = np.asarray(acc, dtype=np.int64)
        m, c = self.mult[channel], self.offset[channel]
        if m * int(np.abs(a).max(initial=0)) + abs(c) < INT64_SAFE:
            v = (m * a + c) >> self.shift
        else:  # a wide unit: Python integers
            v = np.array([(m * int(x) + c) >> self.shift for x in a.ravel()], dtype=object)
            v = np.clip(v, -1, self.steps + 1).astype(np.int64).reshape(a.shape)
        return np.clip(v, 0, self.steps)

    @property
    def mult_bits(self) -> int:
        return max(1, max(self.mult).bit_length())


def _extreme(k: np.ndarray, t: np.ndarray, m: int, shift: int, *, top: bool) -> int:
    """``max`` (``top``) or ``min`` of ``k 2^S - m t`` over the arrays ``k``, ``t``, exactly.

    In int64 where every term fits; else the float64 values ``k - (m / 2^S) t`` (whose error
    is below ``tol``) pick the few candidates that can be the extreme, and Python integers
    evaluate those: a wide unit (a 28-bit accumulator, a 45-bit multiplier) costs no more
    than a narrow one."""
    big = m * int(np.abs(t).max()) + (int(np.abs(k).max()) << shift)
    if big < INT64_SAFE:
        v = (k << shift) - m * t
        return int(v.max() if top else v.min())
    kf, tf = k.astype(np.float64), t.astype(np.float64)
    g = kf - (float(m) / 2.0**shift) * tf
    tol = 2.0**-48 * (float(m) / 2.0**shift * float(np.abs(tf).max()) + float(np.abs(kf).max()) + 1)
    pick = g >= g.max() - 2 * tol if top else g <= g.min() + 2 * tol
    vals = [(int(ki) << shift) - m * int(ti) for ki, ti in zip(k[pick], t[pick], strict=True)]
    return max(vals) if top else min(vals)


def _fit_channel(t: np.ndarray, lo: int, hi: int, shift: int, m_max: int) -> tuple[int, int] | None:
    """(M, C) meeting every constraint of the channel's thresholds ``t`` (int64, sorted,
    clipped to [lo - 1, hi + 1]), or None."""
    scale = 1 << shift
    k = np.arange(1, len(t) + 1, dtype=np.int64)
    inside = (t > lo) & (t <= hi)
    n_always = int((t <= lo).sum())
    never = t > hi
    k_never = int(k[never].min()) if never.any() else None
    ki, ti = k[inside], t[inside]
    if ki.size == 0:  # constant over the range: M = 0
        return 0, n_always * scale

    def c_range(m: int) -> tuple[int, int]:
        # k 2^S <= M T_k + C  ->  C >= k 2^S - M T_k;  M (T_k - 1) + C < k 2^S  ->
        # C <= k 2^S - M (T_k - 1) - 1
        c_lo = _extreme(ki, ti, m, shift, top=True)
        c_hi = _extreme(ki, ti - 1, m, shift, top=False) - 1
        if n_always:
            c_lo = max(c_lo, n_always * scale - m * lo)
        if k_never is not None:
            c_hi = min(c_hi, k_never * scale - m * hi - 1)
        return c_lo, c_hi

    def slack(m: int) -> int:
        c_lo, c_hi = c_range(m)
        return c_hi - c_lo  # concave in m: a max of lines minus a min of lines

    left, right = 0, m_max
    if ki.size >= 2:  # necessary bounds from the outer thresholds (T_f < T_l, k_f < k_l):
        # g(T_l) >= k_l, g(T_f - 1) <= k_f - 1  ->  M (T_l - T_f + 1) > (k_l - k_f) 2^S;
        # g(T_l - 1) <= k_l - 1, g(T_f) >= k_f  ->  M (T_l - T_f - 1) < (k_l - k_f) 2^S
        dk, dt = (int(ki[-1]) - int(ki[0])) << shift, int(ti[-1]) - int(ti[0])
        left = max(left, dk // (dt + 1))
        if dt > 1:
            right = min(right, -(-dk // (dt - 1)))
        if left > right:
            return None
    while right - left > 2:
        m1 = left + (right - left) // 3
        m2 = right - (right - left) // 3
        s1, s2 = slack(m1), slack(m2)
        if s1 < s2:
            left = m1 + 1
        elif s1 > s2:
            right = m2 - 1
        else:
            left, right = m1, m2
    best = max(range(left, right + 1), key=slack)
    c_lo, c_hi = c_range(best)
    if c_lo > c_hi:
        return None
    return best, c_lo


def _fit(t: np.ndarray, lo: int, hi: int, shift: int, m_max: int) -> list[tuple[int, int]] | None:
    out = []
    for row in t:
        fit = _fit_channel(row, lo, hi, shift, m_max)
        if fit is None:
            return None
        out.append(fit)
    return out


def affine_thresholds(
    thresholds: np.ndarray, acc_lo: int, acc_hi: int, *, max_mult_bits: int = 24
) -> AffineThresholds | None:
    """An exact affine form of ``thresholds`` ([channels, N], sorted rows) for accumulators in
    ``[acc_lo, acc_hi]``, multipliers below ``2**max_mult_bits``, the smallest shift; or None
    (the thresholds are not such a step function, or need wider multipliers)."""
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] == 0 or acc_hi < acc_lo:
        return None
    t = np.clip(np.ceil(t), acc_lo - 1, acc_hi + 1).astype(np.int64)
    if (np.diff(t, axis=1) < 0).any():
        return None
    m_max = (1 << max_mult_bits) - 1
    # the smallest shift that works (a larger shift needs larger multipliers): a channel that
    # fails ends the attempt at once, so the infeasible shifts cost little
    # M ~ 2^S / (threshold spacing) must be at least 1: smaller shifts cannot work, except for
    # channels constant over the range (M = 0), which any shift serves
    gaps = [
        (int(r[-1]) - int(r[0])) / (len(r) - 1)
        for r in (row[(row > acc_lo) & (row <= acc_hi)] for row in t)
        if len(r) >= 2
    ]
    first = max(0, int(np.floor(np.log2(min(gaps)))) - 1) if gaps and min(gaps) >= 1 else 0
    fits = None
    for shift in range(min(first, MAX_SHIFT), MAX_SHIFT + 1):
        fits = _fit(t, acc_lo, acc_hi, shift, m_max)
        if fits is not None:
            break
    if fits is None:
        return None
    hi_s = shift
    form = AffineThresholds(hi_s, tuple(m for m, _ in fits), tuple(c for _, c in fits), t.shape[1])
    if acc_hi - acc_lo < EXHAUSTIVE_MAX:
        acc = np.arange(acc_lo, acc_hi + 1, dtype=np.int64)
        for ch, row in enumerate(t):
            want = np.searchsorted(row, acc, side="right")
            if not np.array_equal(form.apply(acc, ch), want):
                raise AssertionError(f"affine thresholds wrong on channel {ch}")
    return form


# ---- the MVAU's use of it --------------------------------------------------------------------

# multiplier widths (the smallest shift that works is taken, so a node that fits a narrower
# multiplier gets the same form under these bounds): the binary MVAUs' small accumulators take
# one DSP48E2 (27 x 18) per lane up to 26-bit multipliers, two beyond (a 16-bit stream's last
# stage needs 27 bits); the integer MVAUs (stem, downsample: few lanes, wide accumulators) take
# a few DSPs per lane (a 16-bit stream's last downsample: 51 bits over 33-bit accumulators).
# Past these, the threshold tables (2**bits - 1 per channel) are used.
AFFINE_MAX_MULT_BITS = 34
AFFINE_MAX_MULT_BITS_INT = 56


def accumulator_range(w: np.ndarray, lo: int, hi: int, binary: bool) -> tuple[int, int]:
    """The smallest and largest accumulator over all channels and inputs in [lo, hi] of an
    MVAU with integer weights ``w`` of shape (MW, MH) (including 0: the accumulator starts
    there); an XNOR popcount (``binary``) counts 0..MW."""
    if binary:
        return 0, int(w.shape[0])
    w = np.asarray(w).astype(np.int64)  # integers held as float32: sum them exactly
    a, b = w * lo, w * hi
    acc_lo = np.minimum(a, b).sum(axis=0)
    acc_hi = np.maximum(a, b).sum(axis=0)
    return min(0, int(acc_lo.min())), max(0, int(acc_hi.max()))


def weight_bits(w: np.ndarray, binary: bool) -> int:
    """The width of an MVAU's stored weights: one bit in XNOR mode, else the two's complement
    width of the actual integer weights ``w`` (not of the weight type)."""
    if binary:
        return 1
    return signed_bits(min(0, int(w.min(initial=0))), max(0, int(w.max(initial=0))))


def affine_form(
    thresholds: np.ndarray, acc_lo: int, acc_hi: int, binary: bool, max_mult_bits: int = 0
) -> AffineThresholds | None:
    """The exact affine form the RTL would use for these thresholds (rows sorted first), with
    the multiplier width allowed for the MVAU's mode (or ``max_mult_bits``); None when there
    is none."""
    bits = max_mult_bits or (AFFINE_MAX_MULT_BITS if binary else AFFINE_MAX_MULT_BITS_INT)
    return affine_thresholds(np.sort(thresholds, axis=1), acc_lo, acc_hi, max_mult_bits=bits)


def mvau_affine(
    thresholds: np.ndarray | None,
    channels: int,
    acc_lo: int,
    acc_hi: int,
    binary: bool,
    max_mult_bits: int = 0,
) -> AffineThresholds | None:
    """The affine activation of an MVAU of ``channels`` output channels whose thresholds are
    ``thresholds`` ((channels or 1, N); one row is shared by every channel), or None (then the
    threshold tables are used): no constant thresholds, another shape, NaN, or no exact form
    within the multiplier width."""
    if thresholds is None:
        return None
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] not in (1, channels) or np.isnan(t).any():
        return None
    if t.shape[0] == 1:
        t = np.repeat(t, channels, axis=0)
    return affine_form(t, acc_lo, acc_hi, binary, max_mult_bits)


THRESHOLDING_AFFINE_MIN_STEPS = 16
"""A ``Thresholding`` node with at least this many thresholds per channel (and an exact affine
form) computes them as the MVAU does, one multiply-add per lane (``bireal_affine_act``): a
table of 16 or more thresholds per channel and its search cost more than one DSP per lane.
Fewer (a sign's one threshold) stay tables, so no multiplier replaces a comparator."""
THRESHOLDING_MAX_MULT_BITS = 26  # one DSP48E2 per lane, else the tables


def thresholding_affine(
    thresholds: np.ndarray | None, channels: int, lo: int, hi: int
) -> AffineThresholds | None:
    """The affine form a ``Thresholding`` node's generator uses (and its cost model prices),
    or None: fewer than :data:`THRESHOLDING_AFFINE_MIN_STEPS` thresholds, or no exact form
    over the input range ``[lo, hi]`` within one DSP's multiplier width."""
    if thresholds is None or np.asarray(thresholds).shape[-1] < THRESHOLDING_AFFINE_MIN_STEPS:
        return None
    return mvau_affine(thresholds, channels, lo, hi, True, THRESHOLDING_MAX_MULT_BITS)


def coefficient_bits(form: AffineThresholds) -> tuple[int, int]:
    """(M bits, C bits) of the affine ROM's ``{C, M}`` words: M unsigned, C two's complement."""
    m_bits = max(1, max(form.mult).bit_length())
    c_bits = signed_bits(min(0, min(form.offset)), max(0, max(form.offset)))
    return m_bits, c_bits
