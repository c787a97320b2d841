"""The one place that prepares finn-plus for use as a library without Vivado."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_READY = False


def finn_ready(build_dir: Path | None = None) -> None:
    """Initialize finn-plus's settings (no Vivado needed) and give it a scratch folder.

    finn-plus reads ``FINN_BUILD_DIR`` once, when its settings are first made, and keeps it
    for the life of the process. So the scratch folder is a private temporary folder of this
    process (an inherited or earlier folder that has gone is replaced, or re-created once the
    settings hold it); ``build_dir`` is created for callers that keep files there.
    """
    global _READY
    if build_dir is not None:
        build_dir.mkdir(parents=True, exist_ok=True)
    if not _READY:
        if not os.path.isdir(os.environ.get("FINN_BUILD_DIR", "")):
            os.environ["FINN_BUILD_DIR"] = tempfile.mkdtemp(prefix="bireal-finn-")
        from finn.util.settings import initialize_dummy_settings

        initialize_dummy_settings()
        _READY = True
    from finn.util.settings import get_settings

    Path(get_settings().finn_build_dir).mkdir(parents=True, exist_ok=True)
