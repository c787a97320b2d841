"""bireal-fpga: Bi-Real Net to a bit-exact FPGA dataflow accelerator.

Pipeline, stage by stage (one subpackage each, each importing only those above it here):

- ``spec``       typed description of a Bi-Real-shaped network, presets
- ``quant``      ApproxSign, magnitude-aware binary weights, fixed-point residual quantizers
- ``models``     the Brevitas/PyTorch Bi-Real model built from a spec
- ``data``       dataset readers (CIFAR-10 batches, ImageFolder, JPEG npz, idx)
- ``train``      the paper's two-stage training algorithm, checkpoints, DDP
- ``integer``    the model's integer inference form (integer weights + thresholds)
- ``golden``     independent numpy integer reference (bit-packed XNOR-popcount)
- ``export``     QONNX export of the integer form (FINN's streamlined dialect)
- ``arch``       hardware decisions: memories, number and stream formats, activation forms
- ``driver``     the accelerator from Python on the board (pynq) or the simulation; numpy alone
- ``hwlayers``   FINN HW layers, own transformations, folding (priced by a cost model)
- ``execution``  FINN's python execution of a HW-layer graph
- ``rtl``        SystemVerilog of every layer and the stitched top (sources in ``hw/``)
- ``rtlsim``     Verilator: node checks, the stitched simulation, FIFO sizing
- ``synth``      Yosys resource estimates and the RTL cost model
- ``shell``      the board shell (AXI DMA streams, AXI-Lite control)
- ``vivado``     the Vivado project as TCL, running Vivado, the bitstream folder
- ``report``     report.html
- ``flow``       the build: a table of steps over one build folder; verify
- ``deploy``     the folder for the board: driver wheel, bitstream, simulation, notebooks
- ``cli``        the ``bireal-fpga`` command

Python API: ``bireal_fpga.build(BuildConfig(...))``, ``bireal_fpga.verify(folder, ...)``,
``bireal_fpga.simulate(folder, ...)`` (see :mod:`bireal_fpga.flow`). They are imported on
first use, so ``import bireal_fpga`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {"build", "verify", "simulate", "BuildConfig", "BuildResult", "STEPS", "STAGES"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from bireal_fpga import flow

        return getattr(flow, name)
    raise AttributeError(f"module 'bireal_fpga' has no attribute '{name}'")
