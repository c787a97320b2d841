"""The Vivado back end: the project as generated TCL (:mod:`.project`, no tool runs), the run
with its checks (:mod:`.run`, :mod:`.reports`), and the bitstream folder with its manifest
(:mod:`.bitstreams`).

The TCL is rendered from ``hw/templates/vivado/*.tcl.j2`` and was written against Vivado's
documented commands (UG835, UG994) and IP parameters (PG021 AXI DMA, PG082 processing_system7,
PG201 zynq_ultra_ps_e) for the versions in :data:`WRITTEN_FOR`; nobody on the project has run
it in a real Vivado yet. IP versions are not hard-coded: each IP is the newest of its name in
the running Vivado's catalog (``get_ipdefs``).
"""

from __future__ import annotations

from importlib import metadata

WRITTEN_FOR: tuple[str, ...] = ("2022.2", "2023.1", "2023.2", "2024.1", "2024.2")
"""The Vivado versions the TCL was written for (not tested: no Vivado on the project's
machines). Another version still runs; the build then says so."""


def version_known(version: str | None) -> bool:
    """Whether ``version`` (``version -short``: ``2023.2`` or an update ``2023.2.1``) is one of
    :data:`WRITTEN_FOR`."""
    if not version:
        return False
    return ".".join(version.strip().split(".")[:2]) in WRITTEN_FOR


def project_version() -> str:
    """bireal-fpga's version (the installed distribution's; "unknown" outside an install)."""
    try:
        return metadata.version("bireal-fpga")
    except metadata.PackageNotFoundError:
        return "unknown"
