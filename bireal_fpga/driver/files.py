"""The files a driver opens, and their checks: a build folder, a deployment folder or a
bitstream folder.

Layout (the build and ``bireal-fpga deploy`` write the same two subfolders)::

    FOLDER/bitstream/        <base>.bit, <base>.hwh, manifest.json (sha256 of each), weights.bin
    FOLDER/shell_sim/        sim (the compiled Verilator model of shell + accelerator),
                             shell.json, sim.json (sha256 of each file), the memory images,
                             weights.bin

``FOLDER`` may also be a bitstream folder itself (``bitstreams/<BOARD>/``: the board only).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bireal_fpga import names
from bireal_fpga.driver.errors import DriverError

BITSTREAM_FORMAT = "bireal-fpga bitstream 1"
SIM_FORMAT = "bireal-fpga shell simulation 1"
SIM_MANIFEST = "sim.json"  # in shell_sim/
SIM_EXE = "sim"  # in shell_sim/
WEIGHTS = "weights.bin"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DriverError(f"'{path}' is missing: no {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DriverError(f"'{path}' is not {what} ({exc})") from None
    if not isinstance(data, dict):
        raise DriverError(f"'{path}' is not {what}")
    return data


def _check_file(folder: Path, name: object, sha: object, what: str) -> Path:
    path = Path(folder) / str(name)
    if not path.is_file():
        raise DriverError(f"'{path}' is missing from the {what}")
    if sha256_file(path) != sha:
        raise DriverError(f"'{path}' does not match the sha256 of its manifest")
    return path


def check_bitstream(folder: Path, board: str | None = None) -> dict[str, Any]:
    """The manifest of the bitstream folder ``folder`` after checking that it is whole: every
    file it names exists with its sha256; its board is ``board`` (when given)."""
    folder = Path(folder)
    path = folder / names.BITSTREAM_MANIFEST
    manifest = load_json(path, "a bitstream manifest")
    if manifest.get("format") != BITSTREAM_FORMAT:
        raise DriverError(f"'{path}' is not a {BITSTREAM_FORMAT} manifest")
    if board is not None and manifest.get("board") != board:
        raise DriverError(
            f"'{folder}' holds a bitstream for '{manifest.get('board')}', not '{board}'"
        )
    files: Mapping[str, Any] = manifest.get("files") or {}
    sha: Mapping[str, Any] = manifest.get("sha256") or {}
    for key in ("bitstream", "hwh", "weights"):
        name = files.get(key)
        if key != "weights" and not name:
            raise DriverError(f"'{path}': the manifest names no {key}")
        if name:
            _check_file(folder, name, sha.get(key), "bitstream folder")
    bit, hwh = Path(str(files["bitstream"])), Path(str(files["hwh"]))
    if bit.stem != hwh.stem:
        raise DriverError(f"'{folder}': {bit} and {hwh} do not share one base name")
    return manifest


def sim_manifest(
    shell: Mapping[str, Any], files: Mapping[str, str], board: str, interval_cycles: int
) -> dict[str, Any]:
    """``shell_sim/sim.json``: what the simulation folder holds (``files``: name -> sha256;
    the build writes it); ``interval_cycles``: the design's cycles per image (the
    simulation's deadlines are counted in cycles)."""
    return {
        "format": SIM_FORMAT,
        "board": board,
        "build_id": shell["build_id"],
        "clock_mhz": shell["clock_mhz"],
        "interval_cycles": int(interval_cycles),
        "exe": SIM_EXE,
        "sha256": dict(sorted(files.items())),
    }


def check_sim(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``sim.json``, ``shell.json``) of the simulation folder ``folder`` after checking that
    every file is there with its sha256 and that both describe one build."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DriverError(f"'{folder}' is missing: no shell simulation (build through shell-sim)")
    path = folder / SIM_MANIFEST
    manifest = load_json(path, "a shell-simulation manifest")
    if manifest.get("format") != SIM_FORMAT:
        raise DriverError(f"'{path}' is not a {SIM_FORMAT} manifest")
    sha: Mapping[str, Any] = manifest.get("sha256") or {}
    for name in (SIM_EXE, names.SHELL_MANIFEST):
        if name not in sha:
            raise DriverError(f"'{path}' lists no '{name}'")
    for name, digest in sha.items():
        _check_file(folder, name, digest, "shell simulation")
    shell = load_json(folder / names.SHELL_MANIFEST, "a shell manifest")
    if shell.get("build_id") != manifest.get("build_id"):
        raise DriverError(
            f"'{folder / names.SHELL_MANIFEST}' is of build {shell.get('build_id')}, "
            f"'{path}' of {manifest.get('build_id')}"
        )
    for name in shell.get("core_data_files", []):
        if name not in sha:
            raise DriverError(f"'{path}' lists no memory image '{name}' of the design")
    if shell.get("weights") and WEIGHTS not in sha:
        raise DriverError(f"'{path}' lists no '{WEIGHTS}' (the design loads weights at run time)")
    return manifest, shell


@dataclass(frozen=True)
class Folder:
    """Where the bitstream (``bitstream``) and the simulation (``sim``) of one build are;
    either may be absent (None)."""

    root: Path
    bitstream: Path | None
    sim: Path | None


def locate(folder: str | Path) -> Folder:
    """The bitstream and simulation folders inside ``folder`` (a build, a deployment, or a
    bitstream folder)."""
    root = Path(folder)
    if not root.is_dir():
        raise DriverError(f"'{root}' is not a folder")
    if (root / names.BITSTREAM_MANIFEST).is_file() and not (root / names.SHELL_SIM).is_dir():
        return Folder(root, root, None)
    bit = root / names.BITSTREAM
    sim = root / names.SHELL_SIM
    if not bit.is_dir() and not sim.is_dir():
        raise DriverError(
            f"'{root}' holds neither {names.BITSTREAM}/ nor {names.SHELL_SIM}/: not a build, "
            "deployment or bitstream folder"
        )
    return Folder(root, bit if bit.is_dir() else None, sim if sim.is_dir() else None)
