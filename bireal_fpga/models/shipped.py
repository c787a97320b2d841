"""The shipped models: trained, packed checkpoints listed in ``models/manifest.json``.

The manifest (at the repository root, beside the package) is a JSON list of entries::

    {"name": "bireal-small-cifar-c10", "boards": ["PYNQ-Z2", "PYNQ-Z1"],
     "path": "models/bireal-small-cifar-c10.pt", "sha256": "<64 hex digits>",
     "top1_float": 0.861, "top1_int": 0.861, "dataset": "CIFAR-10",
     "disagreements": 0, "card": "models/bireal-small-cifar-c10.md"}

``path`` is a packed checkpoint (``bireal-fpga pack``) and ``card`` (optional) its model card;
both relative to the repository root, without ``..``. ``top1_float`` / ``top1_int``: test
top-1 of the float and the integer form, in ``[0, 1]``; ``disagreements`` (optional): test
images whose top-1 differs between the two forms. Names are unique, boards are board presets
(:func:`bireal_fpga.boards.board_names`), and a board is listed by at most one entry: that
entry is the board's shipped model (:func:`shipped_for_board`).

A malformed manifest raises :class:`ManifestError`, one line naming the manifest file, the
entry and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path, PurePosixPath
from typing import Any

from bireal_fpga.boards import board_names
from bireal_fpga.errors import BiRealError

REQUIRED = ("name", "boards", "path", "sha256", "top1_float", "top1_int", "dataset")
OPTIONAL = ("disagreements", "card")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestError(BiRealError):
    """A malformed shipped-models manifest, or a shipped file that is missing or altered."""


@dataclass(frozen=True)
class ShippedModel:
    """One manifest entry (paths relative to the repository root, ``/``-separated).

    Attributes:
        name: unique name of the model.
        boards: the board presets it is the shipped model of.
        path: its packed checkpoint.
        sha256: that file's SHA-256 (lowercase hex).
        top1_float: test top-1 of the float form, in ``[0, 1]``.
        top1_int: test top-1 of the integer inference form, in ``[0, 1]``.
        dataset: what it was trained and tested on (e.g. ``"CIFAR-10"``).
        disagreements: test images whose top-1 differs between the two forms (None: not
            given).
        card: its model card (``.md``), None where it has none.
    """

    name: str
    boards: tuple[str, ...]
    path: str
    sha256: str
    top1_float: float
    top1_int: float
    dataset: str
    disagreements: int | None = None
    card: str | None = None


def repo_root() -> Path:
    """The folder that holds the package (the repository root of a clone)."""
    return Path(str(files("bireal_fpga"))).resolve().parent


def default_manifest() -> Path:
    """``models/manifest.json`` of the repository root (absent in a wheel install)."""
    return repo_root() / "models" / "manifest.json"


def _relative_path(value: Any, err: Any) -> str:
    if not isinstance(value, str) or not value:
        raise err("must be a non-empty string")
    p = PurePosixPath(value)
    if "\\" in value or p.is_absolute() or ".." in p.parts:
        raise err(f"'{value}' must be a relative path ('/'-separated) without '..'")
    return value


def _entry(raw: Any, where: str, known_boards: list[str]) -> ShippedModel:
    """One validated entry; ``where`` names the manifest and the entry's index."""
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} must be a JSON object")
    name = raw.get("name")
    label = f"{where} ('{name}')" if isinstance(name, str) and name else where

    def err(field: str):
        return lambda msg: ManifestError(f"{label}: field '{field}' {msg}")

    for key in raw:
        if key not in REQUIRED + OPTIONAL:
            raise err(key)(f"is unknown (known: {', '.join(REQUIRED + OPTIONAL)})")
    for key in REQUIRED:
        if key not in raw:
            raise err(key)("is missing")
    for key in ("name", "dataset"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise err(key)("must be a non-empty string")
    boards = raw["boards"]
    if not isinstance(boards, list) or not boards or not all(isinstance(b, str) for b in boards):
        raise err("boards")("must be a non-empty list of board names")
    for b in boards:
        if b not in known_boards:
            raise err("boards")(f"names the unknown board '{b}' (known: {', '.join(known_boards)})")
    if len(set(boards)) != len(boards):
        raise err("boards")("lists a board twice")
    path = _relative_path(raw["path"], err("path"))
    if not path.endswith(".pt"):
        raise err("path")(f"'{path}' must be a packed checkpoint (.pt)")
    sha = raw["sha256"]
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise err("sha256")("must be 64 lowercase hex digits")
    tops: dict[str, float] = {}
    for key in ("top1_float", "top1_int"):
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
            raise err(key)(f"must be a number in [0, 1], got {v!r}")
        tops[key] = float(v)
    dis = raw.get("disagreements")
    if dis is not None and (isinstance(dis, bool) or not isinstance(dis, int) or dis < 0):
        raise err("disagreements")(f"must be an integer >= 0, got {dis!r}")
    card = raw.get("card")
    if card is not None:
        card = _relative_path(card, err("card"))
        if not card.endswith(".md"):
            raise err("card")(f"'{card}' must be a model card (.md)")
    return ShippedModel(
        name=raw["name"],
        boards=tuple(boards),
        path=path,
        sha256=sha,
        top1_float=tops["top1_float"],
        top1_int=tops["top1_int"],
        dataset=raw["dataset"],
        disagreements=dis,
        card=card,
    )


def load_manifest(path: str | Path) -> list[ShippedModel]:
    """The entries of the manifest ``path``, every field validated (module docstring).

    Raises:
        ManifestError: naming ``path``, the entry and the field: a missing file, invalid
            JSON, a missing / unknown / ill-typed field, an accuracy outside ``[0, 1]``, an
            unknown board, a board of two entries, a duplicate name, a path with ``..``.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest '{path}' does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest '{path}' is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ManifestError(f"manifest '{path}' must hold a JSON list of entries")
    known = board_names()
    entries: list[ShippedModel] = []
    names: set[str] = set()
    shipped_board: dict[str, str] = {}
    for i, raw in enumerate(data):
        entry = _entry(raw, f"manifest '{path}': entry {i}", known)
        where = f"manifest '{path}': entry {i} ('{entry.name}')"
        if entry.name in names:
            raise ManifestError(f"{where}: field 'name' repeats an earlier entry's name")
        for b in entry.boards:
            if b in shipped_board:
                raise ManifestError(
                    f"{where}: field 'boards' lists '{b}', already the board of "
                    f"'{shipped_board[b]}'"
                )
            shipped_board[b] = entry.name
        names.add(entry.name)
        entries.append(entry)
    return entries


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file (lowercase hex), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_shipped(entry: ShippedModel, root: str | Path) -> Path:
    """The checkpoint file of ``entry`` under ``root`` (the repository root), checked: it
    exists and has the entry's SHA-256; its model card, where it has one, exists.

    Raises:
        ManifestError: naming the entry, the field and the file.
    """
    root = Path(root)
    file = root / entry.path
    if not file.is_file():
        raise ManifestError(f"shipped model '{entry.name}': field 'path': '{file}' does not exist")
    got = sha256_of(file)
    if got != entry.sha256:
        raise ManifestError(
            f"shipped model '{entry.name}': field 'sha256': '{file}' has sha256 {got}, "
            f"the manifest {entry.sha256}"
        )
    if entry.card is not None and not (root / entry.card).is_file():
        raise ManifestError(
            f"shipped model '{entry.name}': field 'card': '{root / entry.card}' does not exist"
        )
    return file


def shipped_for_board(board: str, manifest: list[ShippedModel]) -> ShippedModel | None:
    """The entry that lists ``board`` (case-insensitive, as board presets are looked up);
    None where no entry does."""
    for entry in manifest:
        if any(b.lower() == board.lower() for b in entry.boards):
            return entry
    return None


def shipped_models() -> list[ShippedModel]:
    """The entries of this checkout's manifest (:func:`default_manifest`), validated; ``[]``
    where it has none (a wheel install)."""
    manifest = default_manifest()
    return load_manifest(manifest) if manifest.is_file() else []


def default_source(board: str) -> str:
    """What a build for ``board`` builds when given no source: the board's shipped checkpoint
    (verified, :func:`verify_shipped`) where the manifest lists one, else the model named by
    the board preset (``default_model``)."""
    from bireal_fpga.boards import load_board

    entry = shipped_for_board(board, shipped_models())
    if entry is not None:
        return str(verify_shipped(entry, repo_root()))
    return load_board(board).default_model
