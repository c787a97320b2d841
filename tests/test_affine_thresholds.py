"""Threshold units as exact affine maps: found where the thresholds are the steps of an affine
function, proved over the accumulator range, refused otherwise; used by the MVAU RTL."""

from __future__ import annotations

import numpy as np
import pytest

from bireal_fpga.arch.affine import affine_thresholds


def bn_thresholds(rng, channels: int, lo: int, hi: int, steps: int = 255) -> np.ndarray:
    """Thresholds of ``clamp(floor(a * acc + b + 1/2), 0, steps)`` (a BN + quantizer), exactly
    as the integer form derives them: the smallest accumulator reaching each level."""
    acc = np.arange(lo, hi + 1)
    rows = []
    for _ in range(channels):
        a = rng.uniform(0.05, 2.0) * steps / (hi - lo)
        b = rng.uniform(-0.3, 0.3) * steps - a * lo
        level = np.clip(np.floor(a * acc + b + 0.5), 0, steps).astype(np.int64)
        rows.append(
            [acc[level >= k][0] if (level >= k).any() else hi + 2**40 for k in range(1, steps + 1)]
        )
    return np.array(rows, dtype=np.float64)


@pytest.mark.parametrize(("lo", "hi"), [(0, 576), (0, 4608), (-3000, 2900)], ids=str)
def test_bn_thresholds_have_an_exact_affine_form(lo: int, hi: int) -> None:
    rng = np.random.default_rng(hi)
    t = bn_thresholds(rng, 16, lo, hi)
    form = affine_thresholds(t, lo, hi)
    assert form is not None
    acc = np.arange(lo, hi + 1)
    for ch, row in enumerate(t):
        want = (acc[:, None] >= row[None, :]).sum(1)  # FINN's multithreshold count
        assert np.array_equal(form.apply(acc, ch), want), ch


def test_non_affine_thresholds_are_refused() -> None:
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(0, 577, size=(4, 255)), axis=1).astype(np.float64)
    assert affine_thresholds(t, 0, 576) is None


def test_always_and_never_thresholds() -> None:
    """+-2^40 (always / never) and constant channels are exact too; a step pattern no affine
    map makes (a jump of 2, then of 3 four steps later) is refused."""
    big = 2.0**40
    t = np.array([[-big, 50, big], [-big, -big, big], [big, big, big]])
    form = affine_thresholds(t, 0, 100)
    assert form is not None
    acc = np.arange(0, 101)
    for ch, row in enumerate(t):
        assert np.array_equal(form.apply(acc, ch), (acc[:, None] >= row[None, :]).sum(1))
    assert affine_thresholds(np.array([[5, 5, 9, 9, 9, 200, big]]), 0, 100) is None


def test_tiny_binary_mvaus_use_the_affine_unit(tiny_folded) -> None:
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.rtl.layers import generate_layer

    model = tiny_folded
    binary = [
        n
        for n in model.graph.node
        if n.op_type.startswith("MVAU") and getCustomOp(n).get_nodeattr("binaryXnorMode")
    ]
    assert binary
    for node in binary:
        layer = generate_layer(model, node)
        names = [name for name, _ in layer.files]
        assert f"{node.name}_affine.mem" in names, names
        assert not any("_thr_g" in name for name in names)
        assert "bireal_affine_act.sv" in layer.library


def test_wide_accumulator_affine_form() -> None:
    """A 16-bit residual stream's downsample conv: 28-bit accumulators and 65535 BN levels
    (spacing ~4000). Its exact affine form needs more than the 34-bit multipliers of an 8-bit
    stream and products past int64 (the constraints are then evaluated exactly, in Python
    integers, on the candidates float64 picks); it is exact on every threshold, the value
    below it and random accumulators."""
    from bireal_fpga.integer.derive import thresholds_for

    rng = np.random.default_rng(5)
    lo, hi = -(2**27) + 11, 2**27 - 3
    steps = 2**16 - 1
    a = rng.uniform(0.8, 1.2, size=3) * steps / (hi - lo)
    b = rng.uniform(-0.2, 0.2, size=3) * steps + steps / 2 - a * (lo + hi) / 2
    t, flip = thresholds_for(a, b, 1.0, 0, steps)
    assert not flip.any() and np.abs(t).max() > 2**26
    form = affine_thresholds(t.astype(np.float64), lo, hi, max_mult_bits=48)
    assert form is not None and form.mult_bits > 34
    assert max(form.mult) * hi > 2**63  # the products pass int64
    for ch, row in enumerate(t):
        acc = np.concatenate([row, row - 1, rng.integers(lo, hi + 1, size=20_000)])
        acc = np.clip(acc, lo, hi)
        assert np.array_equal(form.apply(acc, ch), np.searchsorted(row, acc, side="right")), ch
    # one threshold moved by 1 is no longer an affine step function: refused
    bad = t.astype(np.float64).copy()
    bad[1, 30_000] += 1
    assert affine_thresholds(bad, lo, hi, max_mult_bits=48) is None


def test_binary_mvau_past_one_dsp() -> None:
    """A 16-bit stream's last-stage binary conv (popcount 0..4608, 65535 levels): its exact
    form needs a 27-bit multiplier, past one DSP48E2 (26 bits): the MVAU takes it (two DSPs
    per lane, against a table of 65535 thresholds per channel), proved over the whole range;
    a Thresholding node keeps the one-DSP bound and its tables. The narrower nodes keep the
    form they had (the smallest shift wins: same multipliers under any wider bound)."""
    from bireal_fpga.arch.affine import affine_form, mvau_affine, thresholding_affine
    from bireal_fpga.integer.derive import thresholds_for

    rng = np.random.default_rng(2)  # a draw whose channels need 27 bits (most need 25-26)
    steps = 2**16 - 1
    a = rng.uniform(0.8, 1.2, size=4) * steps / 4608
    b = rng.uniform(-0.1, 0.1, size=4) * steps + steps / 2 - a * 2304
    t, flip = thresholds_for(a, b, 1.0, 0, steps)
    assert not flip.any()
    form = mvau_affine(t.astype(np.float64), 4, 0, 4608, binary=True)
    assert form is not None and 26 < form.mult_bits <= 34
    acc = np.arange(0, 4609)
    for ch, row in enumerate(t):
        assert np.array_equal(form.apply(acc, ch), np.searchsorted(row, acc, side="right"))
    assert thresholding_affine(t.astype(np.float64), 4, 0, 4608) is None
    narrow = bn_thresholds(np.random.default_rng(3), 8, 0, 1152)
    assert affine_form(narrow, 0, 1152, True) == affine_form(narrow, 0, 1152, True, 26)
