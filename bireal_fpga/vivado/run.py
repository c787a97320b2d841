"""Running a prepared Vivado project and checking what came out.

:func:`run_vivado` runs ``build.tcl`` in a fresh work folder (kept after a failure for its logs)
with a time limit, passes its progress lines on, then :func:`read_result` checks the outcome:
the timing summary (a negative worst setup or hold slack fails), the exit status, the
``.bit`` and ``.hwh`` (both, one base name) and the utilization report; a Vivado version
outside :data:`bireal_fpga.vivado.WRITTEN_FOR` is said, not failed. Every failure is a
:class:`VivadoError` naming the reason, the report or log to read and the log's last lines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bireal_fpga.tools import require_vivado
from bireal_fpga.vivado import WRITTEN_FOR, version_known
from bireal_fpga.vivado.errors import VivadoError
from bireal_fpga.vivado.project import VivadoProject, load_project
from bireal_fpga.vivado.reports import (
    Timing,
    Utilization,
    parse_timing_summary,
    parse_utilization,
)

CONSOLE_LOG = "console.log"  # Vivado's stdout and stderr, as this module read them
TAIL_LINES = 20
_PROGRESS = re.compile(r"^(BIREAL(?:-WARNING|-ERROR)?: |ERROR: |CRITICAL WARNING: )")

Log = Callable[[str], None]


@dataclass(frozen=True)
class VivadoResult:
    """A good Vivado run (:func:`read_result` raised for every bad one).

    Attributes:
        project: the project that ran.
        work_dir: where it ran.
        bitstream, hwh: ``out/<base>.bit``, ``out/<base>.hwh``.
        reports: the timing and utilization reports.
        timing, utilization: what the reports say.
        vivado_version: ``version -short`` of the Vivado that ran.
        version_known: whether that version is one the TCL was written for.
        board_files: ``installed`` or ``missing`` (the part + explicit PS settings were used).
        pl_clock_hz: the PL clock the PS makes (None if Vivado did not say).
        log_path: the console log of the run.
        seconds: how long Vivado ran.
    """

    project: VivadoProject
    work_dir: Path
    bitstream: Path
    hwh: Path
    reports: tuple[Path, ...]
    timing: Timing
    utilization: Utilization
    vivado_version: str
    version_known: bool
    board_files: str
    pl_clock_hz: int | None
    log_path: Path
    seconds: float = 0.0


def _tail(path: Path, n: int = TAIL_LINES) -> list[str]:
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=n)]
    except OSError:
        return []


def _last_error(path: Path) -> str | None:
    """The reason the TCL gave for stopping (its last ``BIREAL-ERROR:`` line)."""
    found = None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("BIREAL-ERROR: "):
                    found = line[len("BIREAL-ERROR: ") :].strip()
    except OSError:
        return None
    return found


def _read_info(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_result(
    project_dir: Path,
    work_dir: Path,
    *,
    returncode: int,
    log_path: Path,
    log: Log | None = None,
    seconds: float = 0.0,
) -> VivadoResult:
    """Check what a run of the project in ``project_dir`` left in ``work_dir`` (also after a
    run by hand: ``returncode`` its exit status, ``log_path`` its log); raise
    :class:`VivadoError` unless it is a good bitstream."""
    project = load_project(project_dir)
    work_dir = Path(work_dir)
    tail = _tail(log_path)

    def fail(reason: str, path: Path | None = None) -> VivadoError:
        return VivadoError(reason, path=path or log_path, log_path=log_path, tail=tail)

    info = _read_info(project.output("info", work_dir))
    version = str(info.get("vivado_version") or "")
    timing_rpt = project.output("timing_report", work_dir)
    util_rpt = project.output("utilization_report", work_dir)
    timing: Timing | None = None
    if timing_rpt.is_file():
        timing = parse_timing_summary(timing_rpt.read_text(errors="replace"), source=timing_rpt)
        if not timing.constrained:
            raise fail("Vivado timed no path: the PL clock is not constrained", timing_rpt)
        if timing.wns_ns < 0:
            raise fail(
                f"timing not met: worst negative slack {timing.wns_ns:g} ns "
                f"({timing.setup_failing} failing endpoints); not a good bitstream",
                timing_rpt,
            )
        if timing.whs_ns < 0:
            raise fail(
                f"hold timing not met: worst hold slack {timing.whs_ns:g} ns "
                f"({timing.hold_failing} failing endpoints); not a good bitstream",
                timing_rpt,
            )
    if returncode != 0:
        reason = _last_error(log_path)
        raise fail(f"Vivado exited with status {returncode}" + (f": {reason}" if reason else ""))
    if timing is None:
        raise fail(f"Vivado wrote no timing summary '{timing_rpt}'")
    bit, hwh = project.output("bit", work_dir), project.output("hwh", work_dir)
    for path, what in ((bit, "bitstream"), (hwh, "hardware handoff")):
        if not path.is_file() or path.stat().st_size == 0:
            raise fail(f"Vivado exited with status 0 but the {what} '{path}' is missing")
    if not util_rpt.is_file():
        raise fail(f"Vivado wrote no utilization report '{util_rpt}'")
    utilization = parse_utilization(util_rpt.read_text(errors="replace"), source=util_rpt)
    known = version_known(version)
    if not known and log is not None:
        log(
            f"warning: Vivado {version or '(version unknown)'} is not one the TCL was written "
            f"for ({', '.join(WRITTEN_FOR)}); the bitstream passed every check regardless"
        )
    hier = project.output("utilization_hier_report", work_dir)
    reports = tuple(p for p in (timing_rpt, util_rpt, hier) if p.is_file())
    try:
        pl_hz: int | None = round(float(info["pl_clock_hz"]))
    except (KeyError, TypeError, ValueError):
        pl_hz = None
    return VivadoResult(
        project=project,
        work_dir=work_dir,
        bitstream=bit,
        hwh=hwh,
        reports=reports,
        timing=timing,
        utilization=utilization,
        vivado_version=version,
        version_known=known,
        board_files=str(info.get("board_files") or "unknown"),
        pl_clock_hz=pl_hz,
        log_path=log_path,
        seconds=seconds,
    )


def _kill(proc: subprocess.Popen[str]) -> None:
    """Stop Vivado and the runs it launched (its own process group, started by us)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def run_vivado(
    project_dir: Path,
    *,
    work_dir: Path,
    timeout_s: float,
    log: Log,
    jobs: int | None = None,
) -> VivadoResult:
    """Run the project in ``project_dir`` with Vivado (:func:`bireal_fpga.tools.find_vivado`)
    in ``work_dir`` (emptied first; kept afterwards), at most ``timeout_s`` seconds, with
    ``jobs`` parallel runs (default: the CPUs). Progress lines (the TCL's steps, Vivado's
    errors and critical warnings) go to ``log``. Raises :class:`VivadoError` for a failed or
    timed-out run, a negative slack or a missing ``.bit`` / ``.hwh``."""
    project = load_project(project_dir)
    exe = require_vivado()
    work_dir = Path(work_dir)
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    argv = project.argv(exe, jobs=jobs or os.cpu_count() or 1)
    console = work_dir / CONSOLE_LOG
    log(f"Vivado: {' '.join(argv)} (in {work_dir}, limit {timeout_s:g} s)")
    start = time.monotonic()
    with open(console, "w") as sink:
        proc = subprocess.Popen(
            argv,
            cwd=work_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                sink.write(line)
                sink.flush()
                text = line.rstrip("\n")
                if _PROGRESS.match(text):
                    log(text.removeprefix("BIREAL: "))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            reader.join(timeout=10)
            raise VivadoError(
                f"Vivado ran past its limit of {timeout_s:g} s and was stopped",
                path=console,
                log_path=console,
                tail=_tail(console),
            ) from None
        reader.join(timeout=30)
    seconds = time.monotonic() - start
    return read_result(
        project_dir, work_dir, returncode=returncode, log_path=console, log=log, seconds=seconds
    )
