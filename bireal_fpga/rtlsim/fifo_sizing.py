"""FIFO depths sized by simulation.

Every FIFO first gets a frame of words (more than any edge of a feed-forward frame pipeline can
hold back); the stitched design then runs the same frames twice: with the input paced at the
estimated initiation interval, and at full rate. Each FIFO keeps its highest occupancy of the
two runs plus one, except the FIFOs upstream of the bottleneck layer (on a path from the input
to it): at full rate back-pressure, not the schedule, fills those, and they keep their paced
occupancy plus one. (The paced run alone undersized FIFOs downstream of the bottleneck: at full
rate the bottleneck runs in another phase, and Bi-Real-18-CIFAR ran 4 % below its estimated
rate, with shortcut and padding FIFOs full.) The verification run afterwards feeds the
input at full rate; a FIFO found full in a stall there is doubled and the run repeated
(``grow_stalled``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.rtl.prepare import frame_words
from bireal_fpga.rtl.stitch import Design, fifo_nodes, set_fifo_depths, stitch
from bireal_fpga.rtlsim.stitched import StitchedSim, Timing
from bireal_fpga.rtlsim.verilator_sim import SimResult, SimulationStalled

MAX_FIFO_GROWTH = 4  # stalled verification runs answered by doubling the full FIFOs


def size_fifos(
    model: ModelWrapper, workdir: Path, images: np.ndarray, *, progress: bool = False
) -> tuple[ModelWrapper, dict[str, object]]:
    """``model`` (an RTL graph) with simulated FIFO depths, and a record of the sizing run."""
    initial = {n.name: frame_words(model, n.name) + 2 for n in fifo_nodes(model)}
    design = stitch(set_fifo_depths(model, initial), workdir / "rtl", progress=progress)
    sim = StitchedSim(design, workdir / "sim")
    _, paced_timing, paced = sim.run(images, paced=True)
    _, full_timing, full = sim.run(images, occupancy=True, jobs=1)
    upstream = upstream_fifos(model, design.bottleneck)
    depths: dict[str, int] = {}
    raised: dict[str, int] = {}
    for name in sorted(paced.max_occupancy):
        occ = paced.max_occupancy[name]
        if name not in upstream and full.max_occupancy[name] > occ:
            occ = full.max_occupancy[name]
            raised[name] = occ + 1
        depths[name] = max(2, occ + 1)
    record: dict[str, object] = {
        "frames": len(images),
        "paced_interval_cycles": paced_timing.interval,
        "full_rate_interval_cycles": full_timing.interval,
        "depths": depths,
        "raised_by_full_rate": raised,  # FIFOs deeper than the paced run asked
        "total_words": sum(depths.values()),
    }
    return set_fifo_depths(model, depths), record


def upstream_fifos(model: ModelWrapper, node: str) -> set[str]:
    """The FIFOs on some path from the graph input to ``node``."""
    start = model.get_node_from_name(node)
    if start is None:
        raise ValueError(f"no node '{node}' in the graph")
    seen: set[str] = set()
    stack = [start]
    while stack:
        for tensor in stack.pop().input:
            producer = model.find_producer(tensor)
            if producer is not None and producer.name not in seen:
                seen.add(producer.name)
                stack.append(producer)
    return {n.name for n in fifo_nodes(model) if n.name in seen}


@dataclass
class GrownRun:
    """A verification run, after the FIFOs found full in stalls were doubled (``growth``: the
    new depths of each retry; the model and design are the grown ones)."""

    outputs: np.ndarray
    timing: Timing
    result: SimResult
    model: ModelWrapper
    design: Design
    growth: list[dict[str, int]] = field(default_factory=list)


def grow_stalled(
    model: ModelWrapper,
    design: Design,
    images: np.ndarray,
    sim_dir: Path,
    *,
    max_growth: int = MAX_FIFO_GROWTH,
) -> GrownRun:
    """Run ``images`` through ``design`` (stitched from ``model`` into ``design.rtl_dir``) at
    full rate; on a stall, double the FIFOs found full, re-stitch and run again, up to
    ``max_growth`` times (then the stall is raised, naming the stream)."""
    growth: list[dict[str, int]] = []
    for attempt in range(max_growth + 1):
        try:
            outputs, timing, result = StitchedSim(design, sim_dir).run(images)
            return GrownRun(outputs, timing, result, model, design, growth)
        except SimulationStalled as exc:
            if not exc.full or attempt == max_growth:
                raise
            depths = {
                n.name: 2 * int(getCustomOp(n).get_nodeattr("depth"))
                for n in fifo_nodes(model)
                if n.name in exc.full
            }
            model = set_fifo_depths(model, depths)
            rtl_dir = design.rtl_dir
            shutil.rmtree(rtl_dir)
            design = stitch(model, rtl_dir)
            growth.append(depths)
    raise AssertionError("unreachable")
