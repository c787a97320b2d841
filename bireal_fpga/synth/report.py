"""Yosys estimates of a stitched design: every layer synthesized on its own, for the board's
family; per-layer and total LUT / FF / CARRY / BRAM36 / URAM / DSP and a fits verdict.

The stitching adds only wires, so the design's total is the sum of its layers. These are
pre-place-and-route numbers from Yosys's ``synth_xilinx``, not Vivado's.

Layers that are the same module up to their name and the contents of their memory images
(FIFOs and converters of one shape, the equal blocks of a stage) are synthesized once: a
memory's contents change its LUT count only where a small ROM is folded into logic. Each
report says how many layers were synthesized and how many shared a result.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from bireal_fpga.arch.resources import fits, total, utilization
from bireal_fpga.boards import Board
from bireal_fpga.rtl.stitch import Design
from bireal_fpga.synth.yosys_estimate import LayerSources, estimate_layers

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


def signature(rtl_dir: Path, layer: LayerSources) -> str:
    """The layer's sources with its own name blanked, and its memory images' shapes."""
    h = hashlib.sha256()
    for src in layer.sources:
        text = (Path(rtl_dir) / src).read_text()
        h.update(text.replace(layer.top, "@LAYER@").encode())
    for data in layer.data:
        lines = (Path(rtl_dir) / data).read_text().split()
        h.update(f"{len(lines)}x{len(lines[0]) if lines else 0};".encode())
    return h.hexdigest()


def synth_design(
    design: Design, board: Board, *, jobs: int = 2, progress: bool | None = None
) -> tuple[dict[str, Any], bool]:
    """``({"total": {...}, "per_layer": {node: {...}}, "utilization": {...}}, fits)``."""
    layers = design_layers(design)
    groups: dict[str, list[LayerSources]] = {}
    for layer in layers:
        groups.setdefault(signature(design.rtl_dir, layer), []).append(layer)
    reps = [members[0] for members in groups.values()]
    rep_res = estimate_layers(
        design.rtl_dir, reps, board.family, jobs=jobs, cache_dir=cache_dir(), progress=progress
    )
    per = {layer.top: rep_res[members[0].top] for members in groups.values() for layer in members}
    per = {layer.top: per[layer.top] for layer in layers}  # graph order
    tot = total(per.values())
    ok = fits(tot, board.resources)
    resources = {
        "tool": "yosys synth_xilinx (pre place-and-route)",
        "layers_synthesized": len(reps),
        "layers_sharing_a_result": len(layers) - len(reps),
        "family": board.family,
        "total": {k: tot.as_dict()[k] for k in KEYS},
        "per_layer": {n: {k: r.as_dict()[k] for k in KEYS} for n, r in per.items()},
        "utilization": utilization(tot, board.resources),
    }
    return resources, ok
