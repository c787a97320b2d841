"""Board presets (``bireal_fpga/hw/boards/<NAME>.json``): the chip, the board's Vivado board
part and processing system, its AXI port width, its default clock, the model and target FPS
that ``make build BOARD=<NAME>`` builds, and the chip's resources."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

from bireal_fpga.errors import BiRealError
from bireal_fpga.hw_files import boards_dir


class BoardError(BiRealError):
    """Unknown board or a malformed board preset."""


PS_KINDS = ("zynq_ultra_ps_e", "processing_system7")


@dataclass(frozen=True)
class Board:
    """A board preset.

    Attributes:
        name: the board (``--board``, ``BOARD=``).
        part: the FPGA part (Vivado ``-part``).
        family: Yosys ``synth_xilinx`` family: ``xc7`` or ``xcup``.
        pynq_platform: PYNQ's platform name (``zynq``, ``zynq_us+``).
        clock_mhz: the default PL clock of the accelerator.
        board_part: Vivado's board part (board files; see ``bireal_fpga.vivado``).
        ps: the processing system IP: ``zynq_ultra_ps_e`` (Zynq UltraScale+) or
            ``processing_system7`` (Zynq-7000).
        axi_port_bits: data width of the PS's high-performance AXI slave port the DMAs use.
        default_model: what ``make build BOARD=<name>`` builds when no checkpoint or spec is
            given (a preset sized for the board until trained checkpoints ship).
        target_fps: the default target of folding for it (``"max"`` or frames per second).
        resources: the chip's LUT, FF, BRAM36, URAM, DSP.
        ps_config: explicit PS settings (Vivado ``CONFIG.*`` of the PS IP) used when the board
            files are not installed.
    """

    name: str
    part: str
    family: str
    pynq_platform: str
    clock_mhz: float
    board_part: str
    ps: str
    axi_port_bits: int
    default_model: str
    target_fps: int | str
    resources: dict[str, int]
    ps_config: dict[str, str] = field(default_factory=dict)


def board_names() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.json"))


def load_board(name: str) -> Board:
    """The preset for ``name`` (case-insensitive)."""
    for stem in board_names():
        if stem.lower() == name.lower():
            path = boards_dir() / f"{stem}.json"
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise BoardError(f"board preset '{path}' is malformed: {exc}") from None
            known = {f.name for f in fields(Board)}
            required = {f.name for f in fields(Board) if f.name != "ps_config"}
            for key in sorted(set(data) - known):
                raise BoardError(f"board preset '{path}': unknown field '{key}'")
            for key in sorted(required - set(data)):
                raise BoardError(f"board preset '{path}': the field '{key}' is missing")
            board = Board(**data)
            if board.ps not in PS_KINDS:
                raise BoardError(
                    f"board preset '{path}': ps '{board.ps}' is not one of {', '.join(PS_KINDS)}"
                )
            return board
    raise BoardError(f"unknown board '{name}' (known: {', '.join(board_names())})")
