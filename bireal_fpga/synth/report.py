"""Yosys estimates of a stitched design: every layer synthesized on its own, for the board's
family; per-layer and total LUT / FF / CARRY / BRAM36 / URAM / DSP and a fits verdict.

The stitching adds only wires, so the design's total is the sum of its layers. These are
pre-place-and-route numbers from Yosys's ``synth_xilinx``, not Vivado's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bireal_fpga.boards import Board
from bireal_fpga.rtl.stitch import Design
from bireal_fpga.synth.yosys_estimate import (
    LayerSources,
    estimate_layers,
    fits,
    total,
    utilization,
)

KEYS = ("LUT", "FF", "CARRY", "BRAM36", "URAM", "DSP", "LUTRAM")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bireal-fpga" / "yosys"


def design_layers(design: Design) -> list[LayerSources]:
    layers = []
    for node, files in design.layer_files:
        srcs = tuple(Path(f) for f in files if f.endswith((".sv", ".v")))
        data = tuple(Path(f) for f in files if not f.endswith((".sv", ".v")))
        layers.append(LayerSources(node, srcs, data))
    return layers


def synth_design(
    design: Design, board: Board, *, jobs: int = 2, progress: bool | None = None
) -> tuple[dict[str, Any], bool]:
    """``({"total": {...}, "per_layer": {node: {...}}, "utilization": {...}}, fits)``."""
    per = estimate_layers(
        design.rtl_dir,
        design_layers(design),
        board.family,
        jobs=jobs,
        cache_dir=cache_dir(),
        progress=progress,
    )
    tot = total(per.values())
    ok = fits(tot, board.resources)
    resources = {
        "tool": "yosys synth_xilinx (pre place-and-route)",
        "family": board.family,
        "total": {k: tot.as_dict()[k] for k in KEYS},
        "per_layer": {n: {k: r.as_dict()[k] for k in KEYS} for n, r in per.items()},
        "utilization": utilization(tot, board.resources),
    }
    return resources, ok
