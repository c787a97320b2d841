"""Board presets (``hw/boards/<NAME>.json``): FPGA part, family, default clock, resources."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bireal_fpga.errors import BiRealError

BOARDS_DIR = Path(__file__).resolve().parents[1] / "hw" / "boards"


class BoardError(BiRealError):
    """Unknown board or a malformed board preset."""


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    family: str  # yosys synth_xilinx family: xc7 | xcup
    pynq_platform: str
    clock_mhz: float
    resources: dict[str, int]  # LUT, FF, BRAM36, URAM, DSP


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def load_board(name: str) -> Board:
    """The preset for ``name`` (case-insensitive)."""
    for stem in board_names():
        if stem.lower() == name.lower():
            path = BOARDS_DIR / f"{stem}.json"
            try:
                data = json.loads(path.read_text())
                return Board(**data)
            except (json.JSONDecodeError, TypeError) as exc:
                raise BoardError(f"board preset '{path}' is malformed: {exc}") from None
    raise BoardError(f"unknown board '{name}' (known: {', '.join(board_names())})")
