"""FIFO depths sized by simulation.

Every FIFO first gets a frame of words (more than any edge of a feed-forward frame pipeline can
hold back); the stitched design then runs a few frames with the input paced at the estimated
initiation interval, and each FIFO keeps its highest occupancy plus one (with that depth the
simulated run is reproduced cycle for cycle, so it neither deadlocks nor slows down). The
verification run afterwards feeds the input at full rate; a FIFO found full in a stall there
is doubled and the run repeated (``grow_stalled``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from bireal_fpga.rtl.prepare import frame_words
from bireal_fpga.rtl.stitch import fifo_nodes, set_fifo_depths, stitch
from bireal_fpga.rtlsim.stitched import StitchedSim


def size_fifos(
    model: ModelWrapper, workdir: Path, images: np.ndarray, *, progress: bool = False
) -> tuple[ModelWrapper, dict[str, object]]:
    """``model`` (an RTL graph) with simulated FIFO depths, and a record of the sizing run."""
    initial = {n.name: frame_words(model, n.name) + 2 for n in fifo_nodes(model)}
    design = stitch(set_fifo_depths(model, initial), workdir / "rtl", progress=progress)
    sim = StitchedSim(design, workdir / "sim")
    _, timing, result = sim.run(images, paced=True)
    depths = {name: max(2, occ + 1) for name, occ in sorted(result.max_occupancy.items())}
    record: dict[str, object] = {
        "frames": len(images),
        "paced_interval_cycles": timing.interval,
        "depths": depths,
        "total_words": sum(depths.values()),
    }
    return set_fifo_depths(model, depths), record
