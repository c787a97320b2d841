"""Resource estimation: Yosys per layer (:mod:`.yosys_estimate`) and a fast analytic model for
the folding search (:mod:`.cost_model`)."""

from bireal_fpga.synth.yosys_estimate import (
    LayerReport,
    LayerSources,
    Resources,
    YosysError,
    estimate_layers,
    estimate_reports,
    fits,
    layer_sources,
    sources_from_files,
    total,
    utilization,
)

__all__ = [
    "LayerReport",
    "LayerSources",
    "Resources",
    "YosysError",
    "estimate_layers",
    "estimate_reports",
    "fits",
    "layer_sources",
    "sources_from_files",
    "total",
    "utilization",
]
