"""Parsers of Vivado's text reports: ``report_timing_summary`` (the Design Timing Summary table:
WNS, TNS, WHS, THS and their failing endpoints) and ``report_utilization`` (LUT, FF, BRAM36,
URAM, DSP: used and available).

Both formats have been stable across Vivado releases for years (the utilization tables gained a
``Prohibited`` column in 2020.x; columns are found by their headers, so both forms are read).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from bireal_fpga.vivado.errors import VivadoError

RESOURCES = ("LUT", "FF", "BRAM36", "URAM", "DSP")


@dataclass(frozen=True)
class Timing:
    """The Design Timing Summary of ``report_timing_summary`` (ns; ``inf``: nothing timed)."""

    wns_ns: float
    tns_ns: float
    whs_ns: float
    ths_ns: float
    setup_failing: int  # TNS Failing Endpoints
    hold_failing: int  # THS Failing Endpoints
    endpoints: int  # TNS Total Endpoints

    @property
    def constrained(self) -> bool:
        return math.isfinite(self.wns_ns) and math.isfinite(self.whs_ns)

    @property
    def met(self) -> bool:
        """Setup and hold met on every timed path (and something was timed)."""
        return self.constrained and self.wns_ns >= 0 and self.whs_ns >= 0

    def as_dict(self) -> dict[str, float | int | None]:
        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "wns_ns": num(self.wns_ns),
            "tns_ns": num(self.tns_ns),
            "whs_ns": num(self.whs_ns),
            "ths_ns": num(self.ths_ns),
            "setup_failing_endpoints": self.setup_failing,
            "hold_failing_endpoints": self.hold_failing,
            "endpoints": self.endpoints,
        }


def _number(text: str) -> float:
    t = text.strip().lower()
    if t in ("inf", "+inf", "infinity"):
        return math.inf
    if t in ("-inf", "-infinity"):
        return -math.inf
    return float(t)


def parse_timing_summary(text: str, *, source: str | Path = "timing report") -> Timing:
    """The Design Timing Summary of a ``report_timing_summary`` text."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "WNS(ns)" in line and "TNS(ns)" in line:
            heads = [h.strip() for h in re.split(r"\s{2,}", line.strip())]
            for row in lines[i + 1 : i + 4]:
                if not row.strip() or set(row.strip()) <= set("- "):
                    continue
                values = row.split()
                if len(values) < len(heads):
                    break
                try:
                    cols = dict(zip(heads, values, strict=False))
                    return Timing(
                        wns_ns=_number(cols["WNS(ns)"]),
                        tns_ns=_number(cols["TNS(ns)"]),
                        whs_ns=_number(cols["WHS(ns)"]),
                        ths_ns=_number(cols["THS(ns)"]),
                        setup_failing=int(cols["TNS Failing Endpoints"]),
                        hold_failing=int(cols["THS Failing Endpoints"]),
                        endpoints=int(cols["TNS Total Endpoints"]),
                    )
                except (KeyError, ValueError):
                    break
            break
    raise VivadoError(f"'{source}' has no Design Timing Summary table (WNS, TNS, WHS, THS)")


@dataclass(frozen=True)
class Utilization:
    """``report_utilization`` of the implemented design: used and available per resource
    (:data:`RESOURCES`; BRAM36 = RAMB36 + RAMB18 / 2)."""

    used: dict[str, float]
    available: dict[str, float]
    device: str | None = None

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        def num(x: float) -> float | int:
            return int(x) if float(x).is_integer() else x

        return {
            r: {"used": num(self.used[r]), "available": num(self.available[r])} for r in RESOURCES
        }


# site types, as each family's report names them (first found wins)
_ROWS: dict[str, tuple[str, ...]] = {
    "LUT": ("Slice LUTs", "CLB LUTs"),
    "FF": ("Register as Flip Flop", "Slice Registers", "CLB Registers"),
    "RAMB36": ("RAMB36/FIFO",),
    "RAMB18": ("RAMB18",),
    "URAM": ("URAM",),
    "DSP": ("DSPs",),
}


def _rows(text: str) -> dict[str, tuple[str, str]]:
    """Every ``| Site Type | Used | ... | Available | ... |`` row: name -> (used, available);
    the first row of a name wins."""
    rows: dict[str, tuple[str, str]] = {}
    used_col = avail_col = None
    for line in text.splitlines():
        s = line.strip()
        if not s.startswith("|"):
            continue
        cells = [c.strip() for c in s.strip("|").split("|")]
        if "Used" in cells:  # a table's header: only tables with "Available" count
            if "Available" in cells:
                used_col, avail_col = cells.index("Used"), cells.index("Available")
            else:
                used_col = avail_col = None
            continue
        if used_col is None or avail_col is None or len(cells) <= max(used_col, avail_col):
            continue
        name = cells[0].rstrip("*").strip()
        if name and name not in rows:
            rows[name] = (cells[used_col], cells[avail_col])
    return rows


def parse_utilization(text: str, *, source: str | Path = "utilization report") -> Utilization:
    """LUT, FF, BRAM36, URAM and DSP used and available in a ``report_utilization`` text."""
    rows = _rows(text)

    def value(kind: str, required: bool) -> tuple[float, float]:
        for name in _ROWS[kind]:
            if name in rows:
                used, avail = rows[name]
                try:
                    return float(used or 0), float(avail or 0)
                except ValueError:
                    raise VivadoError(
                        f"'{source}': the '{name}' row reads '{used}' / '{avail}'"
                    ) from None
        if required:
            names = " / ".join(f"'{n}'" for n in _ROWS[kind])
            raise VivadoError(f"'{source}' has no {names} row: not a utilization report")
        return 0.0, 0.0

    lut, ff, dsp = value("LUT", True), value("FF", True), value("DSP", True)
    r36, r18 = value("RAMB36", True), value("RAMB18", True)
    uram = value("URAM", False)
    used = {
        "LUT": lut[0],
        "FF": ff[0],
        "BRAM36": r36[0] + r18[0] / 2,
        "URAM": uram[0],
        "DSP": dsp[0],
    }
    available = {
        "LUT": lut[1],
        "FF": ff[1],
        "BRAM36": r36[1],
        "URAM": uram[1],
        "DSP": dsp[1],
    }
    device = None
    found = re.search(r"^\|\s*Device\s*:\s*(\S+)", text, re.MULTILINE)
    if found:
        device = found.group(1)
    return Utilization(used, available, device)
