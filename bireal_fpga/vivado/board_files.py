"""Vivado board files of the board presets: which ship with Vivado, where the others come from
and where they go.

A board file (``board.xml`` + ``preset.xml`` in a folder per board and version) gives Vivado the
board part (``set_property board_part``) and the processing system's preset for the board
(``apply_board_preset``). Without it the project is made for the bare part, and the PS gets the
preset's explicit settings (``ps_config`` in ``hw/boards/<BOARD>.json``) and the project's own
(clock, AXI ports). That is enough for a PYNQ overlay: PYNQ boots the board with its own PS
configuration (DDR, MIO) and takes only the PL clocks and the address map from the ``.hwh``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bireal_fpga.boards import Board


@dataclass(frozen=True)
class BoardFiles:
    """Where a board part's board files come from.

    Attributes:
        board_part: Vivado's board part.
        folder: the board's folder inside a board repository (``<repo>/<folder>/<version>/``).
        ships_with_vivado: whether a default Vivado installation has them.
        source: where to get them.
    """

    board_part: str
    folder: str
    ships_with_vivado: bool
    source: str


KNOWN: dict[str, BoardFiles] = {
    b.board_part: b
    for b in (
        BoardFiles(
            "www.digilentinc.com:pynq-z1:part0:1.0",
            "pynq-z1",
            False,
            "https://github.com/cathalmccabe/pynq-z1_board_files/raw/master/pynq-z1.zip "
            "(linked from PYNQ's documentation, 'Board Settings')",
        ),
        BoardFiles(
            "tul.com.tw:pynq-z2:part0:1.0",
            "pynq-z2",
            False,
            "pynq-z2.zip on TUL's PYNQ-Z2 page, https://www.tulembedded.com/FPGA/"
            "ProductsPYNQ-Z2.html (linked from PYNQ's documentation, 'Board Settings')",
        ),
        BoardFiles(
            "avnet.com:ultra96v2:part0:1.2",
            "ultra96v2",
            False,
            "https://github.com/Avnet/bdf (Avnet's board definition files)",
        ),
        BoardFiles(
            "xilinx.com:kv260_som:part0:1.3",
            "kv260_som",
            False,
            "Vivado's board store (Tools > Vivado Store > Boards: 'Kria KV260 Vision AI Starter "
            "Kit'), or https://github.com/Xilinx/XilinxBoardStore (boards/Xilinx/kv260_som)",
        ),
        BoardFiles("xilinx.com:zcu104:part0:1.1", "zcu104", True, "installed with Vivado"),
    )
}

VIVADO_BOARDS_DIR = "data/boards/board_files"
"""Where board files go inside a Vivado installation (``$XILINX_VIVADO/<this>``)."""


def board_files(board: Board) -> BoardFiles:
    """The board files of ``board`` (an unknown board part: where it goes, source unknown)."""
    known = KNOWN.get(board.board_part)
    if known is not None:
        return known
    folder = board.board_part.split(":")[1] if board.board_part.count(":") >= 2 else board.name
    return BoardFiles(board.board_part, folder, False, "the board vendor")


def missing_message(board: Board, vivado_boards: str) -> str:
    """The warning for a Vivado without ``board``'s board files: exactly which are missing and
    where they go (``vivado_boards``: that Vivado's board file folder)."""
    bf = board_files(board)
    return (
        f"board files for {bf.board_part} ({board.name}) are not installed in this Vivado: get "
        f"them from {bf.source} and put the '{bf.folder}' board folder into {vivado_boards}/ ("
        f"giving "
        f"{vivado_boards}/{bf.folder}/<version>/board.xml), or into a folder passed to "
        f"prepare_project(board_repo_paths=...); building for the part {board.part} with "
        f"explicit PS settings instead"
    )
