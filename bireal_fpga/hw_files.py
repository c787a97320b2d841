"""The hardware sources shipped inside the package (``bireal_fpga/hw``), found through
:mod:`importlib.resources`, so that a wheel install works as well as an editable one.

``hw/boards``     board presets (JSON)
``hw/cppsim``     C-simulation stand-ins for Vitis headers (``ap_axi_sdata.h``, ...)
``hw/rtl``        the layer modules (SystemVerilog)
``hw/templates``  jinja2 templates: per-node wrappers, the top, the testbench, the Yosys script
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path


@cache
def hw_dir() -> Path:
    """The ``hw`` folder of the installed package (a real folder: the package is never zipped)."""
    return Path(str(files("bireal_fpga") / "hw"))


def boards_dir() -> Path:
    return hw_dir() / "boards"


def rtl_dir() -> Path:
    return hw_dir() / "rtl"


def templates_dir() -> Path:
    return hw_dir() / "templates"


def cppsim_dir() -> Path:
    return hw_dir() / "cppsim"


def notebooks_dir() -> Path | None:
    """The Jupyter notebooks (``notebooks/`` of the repository, beside the package: the README's
    and the Docker image's installs are from a clone); None where they are not installed."""
    d = Path(str(files("bireal_fpga"))).resolve().parent / "notebooks"
    return d if d.is_dir() else None
