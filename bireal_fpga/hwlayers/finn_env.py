"""The one place that prepares finn-plus for use as a library without Vivado."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_READY = False


def finn_ready(build_dir: Path | None = None) -> None:
    """Initialize finn-plus's settings (no Vivado needed) and give it a build folder.

    finn-plus reads ``FINN_BUILD_DIR`` for its scratch files (dataflow partitions); the
    default is a private temporary folder, or ``build_dir`` when given.
    """
    global _READY
    if build_dir is not None:
        build_dir.mkdir(parents=True, exist_ok=True)
        os.environ["FINN_BUILD_DIR"] = str(build_dir)
    elif not os.environ.get("FINN_BUILD_DIR"):
        os.environ["FINN_BUILD_DIR"] = tempfile.mkdtemp(prefix="bireal-finn-")
    if not _READY:
        from finn.util.settings import initialize_dummy_settings

        initialize_dummy_settings()
        _READY = True
