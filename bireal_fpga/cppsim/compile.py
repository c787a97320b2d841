"""The project's g++ command for FINN's generated cppsim sources, cached by content.

A node's source folder (``execute_<op>.cpp`` and the parameter headers finn-plus writes beside
it) is compiled with finn-plus's cnpy, against finn-hlslib, the C-simulation ``ap_types`` of
hls4ml and this project's stand-ins for Vitis-only headers (``hw/cppsim``), C++17 ``-O2``,
``-lz`` and no Xilinx library. The executable is published into ``cache_dir("cppsim")`` under
the digest of the sources, the flags, the compiler and the header folders' contents, so an
unchanged node is never compiled twice, in any build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from bireal_fpga.errors import BiRealError
from bireal_fpga.hw_files import cppsim_dir
from bireal_fpga.tools import (
    ToolNotFound,
    cache_dir,
    find_finn_hlslib,
    find_gxx,
    gxx_version,
    hls_headers,
)

SOURCE_SUFFIXES = (".cpp", ".h", ".hpp")
"""The files of a node's source folder that are compiled or included (others are data)."""

CXX_FLAGS = ("-std=c++17", "-O2", "-w")
PRELUDE = "bireal_cppsim.h"
"""This project's header included before every source (``g++ -include``)."""


class CompileError(BiRealError):
    """g++ rejected a generated cppsim source."""


def cnpy_dir() -> Path:
    """finn-plus's ``templates/npy2stream`` (cnpy and the npy <-> stream helpers), located
    without importing finn."""
    spec = find_spec("finn")
    for root in list(spec.submodule_search_locations or []) if spec else []:
        d = Path(root) / "templates" / "npy2stream"
        if (d / "cnpy.cpp").is_file():
            return d
    raise ToolNotFound(
        "finn-plus's templates/npy2stream (cnpy) not found: pip install --no-deps finn-plus==1.6.1"
    )


def _tree_digest(folders: Sequence[Path]) -> str:
    """The contents of the headers and sources under ``folders`` (finn-hlslib's testbenches,
    ``tb/``, left out)."""
    h = hashlib.sha256()
    for folder in folders:
        for f in sorted(folder.rglob("*")):
            rel = f.relative_to(folder)
            if f.is_file() and f.suffix in SOURCE_SUFFIXES and rel.parts[0] != "tb":
                h.update(str(rel).encode())
                h.update(f.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Toolchain:
    """g++ and the include folders of cppsim (found by :mod:`bireal_fpga.tools`)."""

    gxx: Path
    finn_hlslib: Path
    hls_headers: Path
    standins: Path
    cnpy: Path

    @property
    def include_dirs(self) -> list[Path]:
        # the compat stand-ins last, so that a finn-hlslib with its own flatten.hpp wins
        return [
            self.standins,
            self.finn_hlslib,
            self.hls_headers,
            self.cnpy,
            self.standins / "compat",
        ]

    def compile_flags(self) -> list[str]:
        return [*CXX_FLAGS, "-include", PRELUDE, *(f"-I{d}" for d in self.include_dirs)]

    def command(
        self, sources: Sequence[Path], exe: Path, cnpy_obj: Path | None = None
    ) -> list[str]:
        """g++ compiling ``sources`` with cnpy (its object file, or ``cnpy.cpp``) into ``exe``."""
        cnpy = cnpy_obj or self.cnpy / "cnpy.cpp"
        return [
            str(self.gxx),
            *self.compile_flags(),
            *(str(s) for s in sources),
            str(cnpy),
            "-lz",
            "-o",
            str(exe),
        ]

    @property
    def digest(self) -> str:
        """What the executables depend on besides their own sources."""
        return _toolchain_digest(self)


@cache
def _toolchain_digest(tc: Toolchain) -> str:
    h = hashlib.sha256(" ".join(CXX_FLAGS).encode())
    h.update(gxx_version().encode())
    h.update(_tree_digest([tc.finn_hlslib, tc.hls_headers, tc.standins, tc.cnpy]).encode())
    return h.hexdigest()


_CNPY_LOCK = threading.Lock()


def cnpy_object(tc: Toolchain) -> Path:
    """cnpy compiled once per toolchain (it is more than half of a node's compile time), in
    the cache; compiled beside a temporary file and published by a rename."""
    cached = cache_dir("cppsim") / f"cnpy-{tc.digest[:20]}.o"
    with _CNPY_LOCK:
        if cached.is_file():
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.partial")
        cmd = [str(tc.gxx), *tc.compile_flags(), "-c", str(tc.cnpy / "cnpy.cpp"), "-o", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(f"cnpy does not compile: {proc.stderr.strip()[-300:]}")
        os.replace(tmp, cached)
        return cached


def toolchain() -> Toolchain:
    """The toolchain of this machine, or :class:`ToolNotFound` naming the missing piece."""
    return Toolchain(find_gxx(), find_finn_hlslib(), hls_headers(), cppsim_dir(), cnpy_dir())


def sources_of(src_dir: Path) -> list[Path]:
    return sorted(p for p in src_dir.iterdir() if p.is_file() and p.suffix in SOURCE_SUFFIXES)


def source_digest(src_dir: Path, tc: Toolchain) -> str:
    h = hashlib.sha256(tc.digest.encode())
    for f in sources_of(src_dir):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:20]


def _publish(exe: Path, cached: Path) -> None:
    """Move a compiled executable into the shared cache (atomically: a rename)."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.partial")
    shutil.copy2(exe, tmp)
    os.replace(tmp, cached)


def compile_node_sources(src_dir: Path, tc: Toolchain | None = None) -> Path:
    """The executable of the cppsim sources in ``src_dir`` (``.cpp`` compiled, headers
    included from there): from the cache, else compiled and published there. A rejected
    source raises :class:`CompileError` with g++'s first error; its log is
    ``src_dir/compile.log``."""
    tc = tc or toolchain()
    cached = cache_dir("cppsim") / source_digest(src_dir, tc) / "node_model"
    if cached.is_file():
        return cached
    cpp = [s for s in sources_of(src_dir) if s.suffix == ".cpp"]
    if not cpp:
        raise CompileError(f"no .cpp source in {src_dir}")
    with tempfile.TemporaryDirectory(prefix="cppsim-") as tmp:
        exe = Path(tmp) / "node_model"
        try:
            obj: Path | None = cnpy_object(tc)
        except OSError:  # a read-only cache: cnpy compiled with the node
            obj = None
        cmd = [*tc.command(cpp, exe, obj), f"-I{src_dir}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=src_dir)
        log = src_dir / "compile.log"
        log.write_text(" ".join(cmd) + "\n\n" + proc.stdout + proc.stderr)
        if proc.returncode != 0:
            first = next(
                (ln for ln in proc.stderr.splitlines() if "error" in ln),
                f"g++ exited {proc.returncode}",
            )
            raise CompileError(f"cppsim compile of {src_dir.name} failed: {first} (see {log})")
        try:
            _publish(exe, cached)
        except OSError:  # a read-only or full cache: keep the executable beside the sources
            kept = src_dir / "node_model.bin"
            shutil.copy2(exe, kept)
            return kept
    return cached


def compile_many(
    src_dirs: Sequence[Path], *, jobs: int | None = None, tc: Toolchain | None = None
) -> list[Path]:
    """:func:`compile_node_sources` of each folder, ``jobs`` at a time (default: the CPUs);
    the executables in the same order."""
    tc = tc or toolchain()
    jobs = max(1, jobs or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda d: compile_node_sources(d, tc), src_dirs))
