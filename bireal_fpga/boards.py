"""Board presets (``bireal_fpga/hw/boards/<NAME>.json``): part, family, clock, resources."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bireal_fpga.errors import BiRealError
from bireal_fpga.hw_files import boards_dir


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
    return sorted(p.stem for p in boards_dir().glob("*.json"))


def load_board(name: str) -> Board:
    """The preset for ``name`` (case-insensitive)."""
    for stem in board_names():
        if stem.lower() == name.lower():
            path = boards_dir() / f"{stem}.json"
            try:
                data = json.loads(path.read_text())
                return Board(**data)
            except (json.JSONDecodeError, TypeError) as exc:
                raise BoardError(f"board preset '{path}' is malformed: {exc}") from None
    raise BoardError(f"unknown board '{name}' (known: {', '.join(board_names())})")
