"""The one comparison of a stage's integer outputs with the reference.

Every check of the flow (the build's golden-model check and RTL simulation, and every stage of
``verify``) compares traces: ``{layer key: int array [N, ...]}`` with the keys of
:mod:`bireal_fpga.names`. Exact: ``np.array_equal`` on integers. A tally keeps only counts and
the first mismatch, so that any number of images can stream through in batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from bireal_fpga import names

Trace = Mapping[str, np.ndarray]


def mismatched(ref: Trace, got: Trace) -> list[int]:
    """The images (row indices) where any layer ``got`` has differs from ``ref``."""
    keys = [k for k in got if k in ref]
    if not keys:
        raise ValueError(
            f"nothing to compare: the stage gave {sorted(got)}, the reference {sorted(ref)}"
        )
    n = len(ref[keys[0]])
    bad = np.zeros(n, dtype=bool)
    for k in keys:
        a, b = np.asarray(ref[k]), np.asarray(got[k])
        if a.shape != b.shape:
            return list(range(n))
        bad |= (a.reshape(n, -1) != b.reshape(n, -1)).any(axis=1)
    return [int(i) for i in np.flatnonzero(bad)]


def first_difference(ref: Trace, got: Trace, image: int = 0, label: int | None = None) -> str:
    """Where image ``image`` first differs, in network order:
    ``"image I, layer L at (c, y, x): got != want"`` (``label``: the image's number to print)."""
    shown = image if label is None else label
    for key in names.network_order(k for k in got if k in ref):
        a, b = np.asarray(ref[key])[image], np.asarray(got[key])[image]
        if a.shape != b.shape:
            return f"image {shown}, layer {key}: shape {b.shape} != {a.shape}"
        if not np.array_equal(a, b):
            idx = tuple(int(i) for i in np.argwhere(a != b)[0])
            at = f" at {idx}" if idx else ""
            return f"image {shown}, layer {key}{at}: {int(b[idx])} != {int(a[idx])}"
    return f"image {shown}: no layer differs"


@dataclass
class Tally:
    """Counts of one stage over every batch, and its first mismatch."""

    n: int = 0
    mismatches: int = 0
    first_mismatch: str | None = None
    first_image: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def add(self, ref: Trace, got: Trace, offset: int) -> list[int]:
        """Count a batch whose first image is image ``offset``; returns its bad rows."""
        bad = mismatched(ref, got)
        self.n += len(next(iter(ref.values())))
        self.mismatches += len(bad)
        if bad and self.first_mismatch is None:
            self.first_image = offset + bad[0]
            self.first_mismatch = first_difference(ref, got, bad[0], offset + bad[0])
        return bad

    def to_dict(self) -> dict[str, object]:
        return {"n": self.n, "mismatches": self.mismatches, "first_mismatch": self.first_mismatch}
