"""What a build step read and wrote, as hashes: the basis of reuse and of resuming.

Each completed step leaves ``.flow/<step>.json`` in the build folder:
``{"step", "key", "outputs": {artefact: sha256}, "report", "seconds"}``. ``key`` is the hash of
everything the step read: its name, the package (version and a digest of its code and hardware
sources), the config fields it uses (``source`` and ``folding_config`` by content), the board
preset fields it uses, and the recorded hashes of its input artefacts. A rerun reuses a step
when its key is unchanged and its outputs on disk still have the recorded hashes (a
hand-edited or corrupted artefact is rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bireal_fpga import __version__
from bireal_fpga.errors import BiRealError

RECORD_FORMAT = 1
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def artefact_digest(path: Path) -> str | None:
    """sha256 of a file, or of a folder (every file's relative path and bytes, in sorted
    order; symlinks by their target text); None if it does not exist."""
    if path.is_symlink():
        return hashlib.sha256(b"link:" + os.readlink(path).encode()).hexdigest()
    if path.is_file():
        return file_digest(path)
    if not path.is_dir():
        return None
    h = hashlib.sha256(b"dir")
    for sub in sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink()):
        rel = sub.relative_to(path).as_posix()
        h.update(rel.encode() + b"\0")
        h.update((artefact_digest(sub) or "").encode() + b"\0")
    return h.hexdigest()


@cache
def code_digest() -> str:
    """The package version and a digest of its Python code and hardware sources: a step's
    results are reused only by the code that made them."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".sv", ".v", ".j2", ".json", ".tcl"):
            if "__pycache__" in path.parts:
                continue
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(path.read_bytes())
    return f"{__version__}+{h.hexdigest()[:16]}"


def digest(value: Any) -> str:
    """sha256 of a JSON-serializable value (keys sorted)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Record:
    step: str
    key: str
    outputs: dict[str, str | None]
    report: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "step": self.step,
            "key": self.key,
            "outputs": self.outputs,
            "report": self.report,
            "seconds": self.seconds,
        }


class RecordError(BiRealError):
    """A step record that cannot be read (it is then treated as absent)."""


def read_record(path: Path) -> Record | None:
    """The record at ``path``, or None when absent or unreadable (the step then reruns)."""
    try:
        data = json.loads(path.read_text())
        if data.get("format") != RECORD_FORMAT:
            return None
        return Record(
            data["step"], data["key"], dict(data["outputs"]), data["report"], data["seconds"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_json_atomic(path: Path, data: Any) -> None:
    """``path`` appears with the whole content or not at all."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
