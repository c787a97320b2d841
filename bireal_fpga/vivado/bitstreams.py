"""The bitstream folder of a good Vivado run, and its publication to ``bitstreams/<BOARD>/``.

:func:`collect_bitstream` makes the build's ``bitstream/``::

    <base>.bit  <base>.hwh     one base name (PYNQ: Overlay("<base>.bit") reads <base>.hwh)
    weights.bin                the run-time weight load (only when the design has one)
    reports/                   Vivado's timing summary and utilization reports
    manifest.json              what it is (see :func:`collect_bitstream`)

:func:`publish_bitstream` copies such a folder to ``<dest_root>/<BOARD>/`` after checking its
manifest and hashes: into a temporary folder beside it first, then renamed into place, so that
``<BOARD>/`` is always either the old bitstream or the whole new one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from bireal_fpga import names
from bireal_fpga.boards import Board
from bireal_fpga.driver.errors import DriverError
from bireal_fpga.driver.files import BITSTREAM_FORMAT, check_bitstream, sha256_file
from bireal_fpga.vivado import WRITTEN_FOR, project_version
from bireal_fpga.vivado.errors import VivadoError
from bireal_fpga.vivado.project import SHELL_COPY, WEIGHTS_COPY
from bireal_fpga.vivado.run import VivadoResult

FORMAT = BITSTREAM_FORMAT
REPORTS_DIR = "reports"


def _load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise VivadoError(f"'{path}' is not {what} ({exc})") from None
    if not isinstance(data, dict):
        raise VivadoError(f"'{path}' is not {what}")
    return data


def collect_bitstream(
    result: VivadoResult,
    out_dir: Path,
    *,
    board: Board,
    model_sha256: str,
    shell_dir: Path | None = None,
) -> dict[str, Any]:
    """Copy the good run ``result`` into ``out_dir`` (created; must be new or empty) and write
    its ``manifest.json``; returns the manifest.

    The manifest holds: the files and their sha256 (bitstream, hwh, weights) and the model's
    (``model_sha256``); board, part, board part, whether the board files were used, PS; the PL
    clock asked for and the one the PS makes; the shell's streams (formats, shapes, DMA widths),
    its register map and build id; the DMAs and the address map; resources used and available
    and the slack, as Vivado reported them; the Vivado version (and whether the TCL was
    written for it); the project's version. ``shell_dir``: the build's ``shell/`` (default: the
    copy inside the Vivado project).
    """
    project = result.project
    if project.board != board.name:
        raise VivadoError(
            f"the Vivado project '{project.dir}' is for board '{project.board}', not '{board.name}'"
        )
    if len(model_sha256) != 64 or any(c not in "0123456789abcdef" for c in model_sha256):
        raise VivadoError(f"model_sha256 '{model_sha256}' is not a sha256 hex digest")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise VivadoError(f"'{out_dir}' is not empty: a bitstream folder is made new")
    shell_path = (Path(shell_dir) if shell_dir else project.dir) / (
        names.SHELL_MANIFEST if shell_dir else SHELL_COPY
    )
    shell = _load_json(shell_path, "a shell manifest")
    weights_src: Path | None = None
    if shell.get("weights"):
        name = str(shell["weights"].get("file") or WEIGHTS_COPY)
        weights_src = Path(shell_dir) / name if shell_dir else project.dir / WEIGHTS_COPY
        if not weights_src.is_file():
            raise VivadoError(
                f"the design loads its weights at run time but '{weights_src}' is missing"
            )
    base = project.base_name
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str | None] = {"bitstream": f"{base}.bit", "hwh": f"{base}.hwh"}
    shutil.copyfile(result.bitstream, out_dir / f"{base}.bit")
    shutil.copyfile(result.hwh, out_dir / f"{base}.hwh")
    files["weights"] = None
    if weights_src is not None:
        shutil.copyfile(weights_src, out_dir / WEIGHTS_COPY)
        files["weights"] = WEIGHTS_COPY
    (out_dir / REPORTS_DIR).mkdir()
    reports = []
    for rpt in result.reports:
        shutil.copyfile(rpt, out_dir / REPORTS_DIR / rpt.name)
        reports.append(f"{REPORTS_DIR}/{rpt.name}")
    sha = {k: sha256_file(out_dir / v) for k, v in files.items() if v}
    sha["model"] = model_sha256
    pdata = project.data
    actual_mhz = result.pl_clock_hz / 1e6 if result.pl_clock_hz else None
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "base_name": base,
        "files": {**files, "reports": reports},
        "sha256": sha,
        "board": board.name,
        "part": project.part,
        "board_part": pdata.get("board_part"),
        "board_files": result.board_files,
        "ps": pdata.get("ps"),
        "pynq_platform": board.pynq_platform,
        "clock": {"requested_mhz": pdata.get("clock_mhz"), "actual_mhz": actual_mhz},
        "build_id": shell.get("build_id"),
        "streams": {
            "image": shell.get("image"),
            "output": shell.get("output"),
            "weights": shell.get("weights"),
        },
        "control": shell.get("control"),
        "dma_length_bits": shell.get("dma_length_bits"),
        "dmas": pdata.get("dmas"),
        "address_map": pdata.get("address_map"),
        "resources": result.utilization.as_dict(),
        "timing": result.timing.as_dict(),
        "vivado_version": result.vivado_version,
        "vivado_version_known": result.version_known,
        "vivado_written_for": list(WRITTEN_FOR),
        "vivado_seconds": round(result.seconds, 1),
        "project_version": project_version(),
    }
    (out_dir / names.BITSTREAM_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def check_bitstream_dir(bitstream_dir: Path, board: str | None = None) -> dict[str, Any]:
    """The manifest of ``bitstream_dir`` after checking that it is whole: every file it names
    exists with its sha256, the board matches ``board`` (when given). The driver's check
    (:func:`bireal_fpga.driver.files.check_bitstream`), as a :class:`VivadoError`."""
    try:
        return check_bitstream(bitstream_dir, board)
    except DriverError as exc:
        raise VivadoError(str(exc)) from None


def publish_bitstream(bitstream_dir: Path, dest_root: Path, board: str) -> Path:
    """Copy the checked bitstream folder to ``<dest_root>/<board>/``, replacing an older one
    only once the new one is complete; returns ``<dest_root>/<board>``."""
    check_bitstream_dir(bitstream_dir, board)
    dest_root = Path(dest_root)
    dest_root.mkdir(parents=True, exist_ok=True)
    dest = dest_root / board
    incoming = dest_root / f".{board}.incoming-{os.getpid()}"
    retired = dest_root / f".{board}.old-{os.getpid()}"
    for leftover in (incoming, retired):
        if leftover.exists():
            shutil.rmtree(leftover)
    try:
        shutil.copytree(bitstream_dir, incoming)
        check_bitstream_dir(incoming, board)
        if dest.exists():
            dest.rename(retired)
        incoming.rename(dest)
    except BaseException:
        if retired.exists() and not dest.exists():
            retired.rename(dest)
        if incoming.exists():
            shutil.rmtree(incoming, ignore_errors=True)
        raise
    if retired.exists():
        shutil.rmtree(retired)
    return dest
