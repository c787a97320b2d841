"""Resource estimation: Yosys per layer (:mod:`.yosys_estimate`, :mod:`.report`) and a fast
analytic model of the RTL for the folding search (:mod:`.cost_model`: ``RtlCostModel``).
The resource record itself is :class:`bireal_fpga.arch.resources.Resources`."""

from bireal_fpga.synth.yosys_estimate import (
    LayerReport,
    LayerSources,
    YosysError,
    estimate_layers,
    estimate_reports,
    layer_sources,
    sources_from_files,
)

__all__ = [
    "LayerReport",
    "LayerSources",
    "YosysError",
    "estimate_layers",
    "estimate_reports",
    "layer_sources",
    "sources_from_files",
]
