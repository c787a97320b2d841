"""The accelerator from Python, on the board (PYNQ) or over the simulation: one API.

Needs numpy alone (PYNQ 3.x images: Python 3.10, numpy 1.2x; and numpy 2); pynq is imported
only when the board backend opens a bitstream::

    from bireal_fpga.driver import Accelerator
    acc = Accelerator.open("deploy", backend="auto")   # board if pynq finds one, else sim
    scores = acc.run(images)        # uint8 [N, H, W, C] -> int64 [N, classes]
    labels = acc.run(images, top1=True)
    print(acc.stats)                # FPS and latency: wall clock and the cycle counter

The folder is a build folder, a ``bireal-fpga deploy`` folder, or (board) a bitstream folder
(:mod:`.files`). Every failure is a :class:`DriverError` with a one-line message; a DMA that
does not finish by its deadline is a :class:`DmaTimeoutError` naming the channel and its
status registers.
"""

from __future__ import annotations

from typing import Any

from bireal_fpga.driver.accelerator import Accelerator, RunStats, check_images
from bireal_fpga.driver.backends import pick_backend
from bireal_fpga.driver.errors import DmaTimeoutError, DriverError, InputError


def SimAccelerator(folder: Any, **options: Any) -> Accelerator:  # noqa: N802 (a constructor)
    """``Accelerator.open(folder, backend="sim", ...)``."""
    return Accelerator.open(folder, backend="sim", **options)


__all__ = [
    "Accelerator",
    "DmaTimeoutError",
    "DriverError",
    "InputError",
    "RunStats",
    "SimAccelerator",
    "check_images",
    "pick_backend",
]
