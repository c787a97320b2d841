"""FIFO depths sized by simulation.

Every FIFO first gets a frame of words (more than any edge of a feed-forward frame pipeline can
hold back); the stitched design then runs frames with the input paced at the estimated
initiation interval, and each FIFO keeps its highest occupancy plus one (with that depth the
simulated run is reproduced cycle for cycle, so it neither deadlocks nor slows down). The run
must reach the steady state: while its measured interval is above the estimate, it is
repeated with twice the frames (up to all the frames given). Bi-Real-18-CIFAR needs 32: after
8 frames the pipeline still ran 4 % slow, and FIFOs sized from those 8 frames (shortcuts,
padding inputs) kept it 4 % below its estimated rate for good. The verification run afterwards
feeds the input at full rate; a FIFO found full in a stall there is doubled and the run
repeated (``grow_stalled``).
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
FIRST_SIZING_FRAMES = 8  # frames of the first sizing run (doubled until steady)
STEADY_TOLERANCE = 0.005  # a paced interval this close to the estimate is the steady state


def size_fifos(
    model: ModelWrapper, workdir: Path, images: np.ndarray, *, progress: bool = False
) -> tuple[ModelWrapper, dict[str, object]]:
    """``model`` (an RTL graph) with simulated FIFO depths, and a record of the sizing run.
    ``images``: the most frames the sizing may run (the first runs take fewer)."""
    initial = {n.name: frame_words(model, n.name) + 2 for n in fifo_nodes(model)}
    design = stitch(set_fifo_depths(model, initial), workdir / "rtl", progress=progress)
    sim = StitchedSim(design, workdir / "sim")
    n = min(FIRST_SIZING_FRAMES, len(images))
    runs: list[dict[str, object]] = []
    while True:
        label = f"fifo-sizing ({n} frames, paced)" if progress else None
        _, timing, result = sim.run(images[:n], paced=True, progress=label)
        runs.append({"frames": n, "interval_cycles": timing.interval})
        steady = timing.interval is None or timing.interval <= design.cycles * (
            1 + STEADY_TOLERANCE
        )
        if steady or n == len(images):
            break
        if progress:
            print(
                f"[fifo-sizing] {n} frames: {timing.interval:.0f} cycles/frame against "
                f"{design.cycles} estimated; again with {min(2 * n, len(images))}",
                flush=True,
            )
        n = min(2 * n, len(images))
    depths = {name: max(2, occ + 1) for name, occ in sorted(result.max_occupancy.items())}
    record: dict[str, object] = {
        "frames": n,
        "paced_interval_cycles": timing.interval,
        "steady": steady,
        "runs": runs,
        "depths": depths,
        "total_words": sum(depths.values()),
    }
    return set_fifo_depths(model, depths), record


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
