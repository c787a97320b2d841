"""How a simulation watches a FIFO inside the stitched design: the public handshake signals
around it.

The stitcher (:mod:`bireal_fpga.rtl.stitch`) knows which top-level signals carry each FIFO's
input and output handshakes and records them in the design's manifest; the simulator's
testbench (:mod:`bireal_fpga.rtlsim.verilator_sim`) samples them to measure occupancy and to
name the stream that stalled.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Monitor:
    """An internal FIFO, watched through its (public) in/out handshake signals."""

    label: str  # the FIFO node
    in_valid: str
    in_ready: str
    out_valid: str
    out_ready: str
    stream: str = ""  # the tensor it carries, producer -> consumer (for messages)
