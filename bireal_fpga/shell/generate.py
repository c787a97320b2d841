"""Generate the shell (``shell/``) of a stitched design: ``bireal_shell.v`` rendered from
:class:`ShellParams`, the control block ``bireal_shell_ctrl.v`` (``hw/rtl``) and
``shell.json``. The widths, the register map and the stream layout are decided in
:mod:`bireal_fpga.arch.shell`; this module only renders them."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bireal_fpga import names
from bireal_fpga.arch import shell as arch
from bireal_fpga.errors import BiRealError
from bireal_fpga.rtl.render import library_file, render
from bireal_fpga.rtl.stitch import WEIGHT_BUS_BITS, WEIGHTS_BIN, Design

MODULE = "bireal_shell"
WRAPPER_FILE = f"{MODULE}.v"
CTRL_FILE = "bireal_shell_ctrl.v"
IMAGE_PORT = "s_axis_img"
OUTPUT_PORT = "m_axis_out"
WEIGHT_PORT = "s_axis_wgt"
CTRL_PORT = "s_axi_ctrl"


class ShellError(BiRealError):
    """A design the shell cannot wrap."""


@dataclass(frozen=True)
class AxilPort:
    name: str  # after the s_axi_ctrl_ prefix
    dir: str  # "input " / "output"
    range: str  # "[11:0] " or ""


@dataclass(frozen=True)
class ShellParams:
    """What ``bireal_shell.v.j2`` is rendered from."""

    module: str
    core_top: str
    in_core_bits: int
    in_dma_bits: int
    in_words: int
    out_core_bits: int
    out_dma_bits: int
    out_words: int
    wgt_total: int  # beats of one weight load, 0 without run-time weights
    build_id: int
    freq_hz: int
    addr_bits: int = arch.CTRL_ADDR_BITS

    @property
    def busifs(self) -> list[str]:
        return [CTRL_PORT, IMAGE_PORT, OUTPUT_PORT] + ([WEIGHT_PORT] if self.wgt_total else [])

    @property
    def axil_ports(self) -> list[AxilPort]:
        a = f"[{self.addr_bits - 1}:0] "
        i, o = "input ", "output"
        return [
            AxilPort("awaddr", i, a),
            AxilPort("awvalid", i, ""),
            AxilPort("awready", o, ""),
            AxilPort("wdata", i, "[31:0] "),
            AxilPort("wstrb", i, "[3:0] "),
            AxilPort("wvalid", i, ""),
            AxilPort("wready", o, ""),
            AxilPort("bresp", o, "[1:0] "),
            AxilPort("bvalid", o, ""),
            AxilPort("bready", i, ""),
            AxilPort("araddr", i, a),
            AxilPort("arvalid", i, ""),
            AxilPort("arready", o, ""),
            AxilPort("rdata", o, "[31:0] "),
            AxilPort("rresp", o, "[1:0] "),
            AxilPort("rvalid", o, ""),
            AxilPort("rready", i, ""),
        ]


def shell_params(design: Design, *, build_id: int, clock_mhz: float) -> ShellParams:
    """The shell of ``design`` (its port widths decided by :func:`arch.dma_width`)."""
    try:
        in_dma = arch.dma_width(design.input.fmt.axi_width)
        out_dma = arch.dma_width(design.output.fmt.axi_width)
    except arch.ShellError as exc:
        raise ShellError(f"design '{design.top}': {exc}") from None
    return ShellParams(
        module=MODULE,
        core_top=design.top,
        in_core_bits=design.input.fmt.axi_width,
        in_dma_bits=in_dma,
        in_words=design.input.words,
        out_core_bits=design.output.fmt.axi_width,
        out_dma_bits=out_dma,
        out_words=design.output.words,
        wgt_total=design.weight_beats,
        build_id=build_id & 0xFFFFFFFF,
        freq_hz=round(clock_mhz * 1e6),
    )


def shell_manifest(
    p: ShellParams,
    design: Design,
    *,
    image_shape: tuple[int, int, int],
    clock_mhz: float,
    top1: bool = False,
) -> dict[str, Any]:
    """``shell.json``: what the Vivado project and a driver need to know of the shell."""

    out_elems = design.output.words * design.output.fmt.elems
    return {
        "module": p.module,
        "files": [WRAPPER_FILE, CTRL_FILE],
        "core_top": design.top,
        "core_sources": list(design.source_names),
        "core_data_files": list(design.data_names),
        "build_id": f"0x{p.build_id:08x}",
        "clock_mhz": clock_mhz,
        "image": arch.stream_entry(IMAGE_PORT, design.input.fmt, design.input.words, image_shape),
        # values: the class index (LabelSelect, a --top1 build) or the class scores
        "output": arch.stream_entry(
            OUTPUT_PORT, design.output.fmt, design.output.words, [out_elems]
        )
        | {"values": "top1" if top1 else "scores"},
        "weights": (
            {
                "port": WEIGHT_PORT,
                "bits": WEIGHT_BUS_BITS,
                "beats": p.wgt_total,
                "bytes": p.wgt_total * WEIGHT_BUS_BITS // 8,
                "file": "weights.bin",
            }
            if p.wgt_total
            else None
        ),
        "control": {
            "port": CTRL_PORT,
            "addr_bits": p.addr_bits,
            "data_bits": 32,
            "magic": f"0x{arch.MAGIC:08X}",
            "registers": [asdict(r) for r in arch.REGISTERS],
        },
        "dma_length_bits": arch.DMA_LENGTH_BITS,
    }


def write_shell(
    design: Design,
    out: Path,
    *,
    build_id: int,
    clock_mhz: float,
    image_shape: tuple[int, int, int],
    top1: bool = False,
) -> ShellParams:
    """Write the shell of ``design`` into ``out`` (``bireal_shell.v``, ``bireal_shell_ctrl.v``,
    ``shell.json``; with run-time weights also their load image ``weights.bin``). ``top1``:
    the design outputs the best class index, not scores."""
    p = shell_params(design, build_id=build_id, clock_mhz=clock_mhz)
    out.mkdir(parents=True, exist_ok=True)
    (out / WRAPPER_FILE).write_text(render("shell/bireal_shell.v.j2", s=p))
    shutil.copyfile(library_file(CTRL_FILE), out / CTRL_FILE)
    if p.wgt_total:
        shutil.copyfile(design.rtl_dir / WEIGHTS_BIN, out / "weights.bin")
    manifest = shell_manifest(p, design, image_shape=image_shape, clock_mhz=clock_mhz, top1=top1)
    manifest["params"] = asdict(p)
    (out / names.SHELL_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return p


def load_shell(folder: Path) -> dict[str, Any]:
    """The ``shell.json`` of a shell folder."""
    path = Path(folder) / names.SHELL_MANIFEST
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise ShellError(f"'{path}' is not a shell manifest ({exc})") from None


def params_of(manifest: dict[str, Any]) -> ShellParams:
    """The :class:`ShellParams` a ``shell.json`` was written from."""
    return ShellParams(**manifest["params"])
