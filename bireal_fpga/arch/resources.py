"""FPGA resources of a layer or a design, their sum, and whether they fit a board.

One record for every estimate (the analytic cost model, FINN's models through the folding,
Yosys): the keys are the boards' (``hw/boards/*.json``), so a total compares directly with a
board's resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Resources:
    """FPGA resources of one layer or a whole design (keys as in ``hw/boards/*.json``)."""

    LUT: int = 0  # LUT6 sites, logic + memory
    FF: int = 0
    CARRY: int = 0
    BRAM36: float = 0.0  # RAMB18 = 0.5
    URAM: int = 0
    DSP: int = 0
    LUTRAM: int = 0  # of LUT, those used as memory (LUTRAM, SRL); informative

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def times(self, n: int) -> Resources:
        """``n`` of these (e.g. one memory per lane)."""
        return Resources(
            LUT=self.LUT * n,
            FF=self.FF * n,
            CARRY=self.CARRY * n,
            BRAM36=self.BRAM36 * n,
            URAM=self.URAM * n,
            DSP=self.DSP * n,
            LUTRAM=self.LUTRAM * n,
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# the resources a board budget names (CARRY and LUTRAM are not budgeted)
BOARD_KEYS = ("LUT", "FF", "BRAM36", "URAM", "DSP")


def total(resources: Iterable[Resources]) -> Resources:
    """The sum of per-layer resources."""
    out = Resources()
    for r in resources:
        out = out + r
    return out


def fits(total: Resources, board_resources: Mapping[str, float]) -> bool:
    """Whether ``total`` fits the board's resources (a key the board lacks counts as 0)."""
    return all(getattr(total, k) <= board_resources.get(k, 0) for k in BOARD_KEYS)


def utilization(total: Resources, board_resources: Mapping[str, float]) -> dict[str, float]:
    """Used / available per board resource (inf where the board has none but some are used)."""
    out = {}
    for k in BOARD_KEYS:
        used, avail = float(getattr(total, k)), float(board_resources.get(k, 0))
        out[k] = used / avail if avail else (0.0 if used == 0 else float("inf"))
    return out
