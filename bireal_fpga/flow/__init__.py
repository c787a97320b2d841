"""The build flow: a table of steps that owns the build folder, and the checks of a build.

Python API (what ``bireal-fpga build`` / ``verify`` / ``sim`` call)::

    from bireal_fpga.flow import BuildConfig, build, verify

    result = build(BuildConfig("bireal18-cifar", board="ZCU104", out_dir="build/c18"))
    result.report["rtl"]["fps"], result.path("rtl")
    verify("build/c18", stages=["pytorch", "golden", "rtlsim"], n=1000, images="cifar/")

- :mod:`.config`  ``BuildConfig``: one frozen dataclass, JSON / YAML
- :mod:`.steps`   the steps ``step_<verb>(state, cfg) -> state`` and ``STEPS``, their table
- :mod:`.runner`  runs the table over a build folder: reuse by input hashes, resume, atomic
  outputs, the fit loop with Yosys
- :mod:`.verify`  the table of verification stages, streaming; ``simulate``
- :mod:`.compare` the one comparison of integer traces
"""

from bireal_fpga.flow.config import BuildConfig, load_config
from bireal_fpga.flow.runner import BuildResult
from bireal_fpga.flow.runner import run as build
from bireal_fpga.flow.state import BuildState, Step
from bireal_fpga.flow.steps import STEPS
from bireal_fpga.flow.verify import STAGES, Stage, simulate, verify

__all__ = [
    "STAGES",
    "STEPS",
    "BuildConfig",
    "BuildResult",
    "BuildState",
    "Stage",
    "Step",
    "build",
    "load_config",
    "simulate",
    "verify",
]
