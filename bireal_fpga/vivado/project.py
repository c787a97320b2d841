"""The Vivado project as generated TCL: prepared without running any tool, finished by one
command where Vivado is installed.

:func:`prepare_project` writes a self-contained folder (the build's ``vivado/``)::

    src/                 the accelerator's SystemVerilog and memory images (rtl/), the shell
    create_project.tcl   project, sources, block design (PS, AXI DMAs, interconnects, clock,
                         reset, the shell as a module reference), address map, wrapper
    build.tcl            create_project.tcl, then synthesis, implementation, timing and
                         utilization reports, bitstream, the hardware handoff beside it
    shell.json           the shell's streams and register map (copied for the manifest)
    weights.bin          the run-time weight load (only when the design has one)
    project.json         what the project is and the command that finishes it

The TCL names no absolute path: Vivado runs in a work folder of its own (the build's
``vivado_work/``, the current folder of the command), reads the sources beside the TCL and
writes there: ``project/`` (the Vivado project), ``reports/``, ``out/<base>.bit`` and
``out/<base>.hwh`` (one base name: PYNQ's ``Overlay`` needs the ``.hwh`` beside the ``.bit``)
and ``build_info.json`` (Vivado version, board files used or not, PL clock, slack).
Same inputs, same bytes.

The TCL was written for Vivado 2022.2 to 2024.2 (:data:`bireal_fpga.vivado.WRITTEN_FOR`)
against UG835 / UG994 and the IP product guides (PG021 AXI DMA, PG082 processing_system7,
PG201 zynq_ultra_ps_e, PG247 SmartConnect, PG059 AXI Interconnect, PG164 proc_sys_reset);
it has not been run in a real Vivado by the project.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from bireal_fpga import names
from bireal_fpga.arch import shell as arch
from bireal_fpga.boards import Board
from bireal_fpga.hw_files import templates_dir
from bireal_fpga.rtl.stitch import StitchError, load_design
from bireal_fpga.vivado import WRITTEN_FOR, project_version
from bireal_fpga.vivado.board_files import (
    VIVADO_BOARDS_DIR,
    BoardFiles,
    board_files,
    missing_message,
)
from bireal_fpga.vivado.errors import VivadoError

PROJECT_JSON = "project.json"
CREATE_TCL = "create_project.tcl"
BUILD_TCL = "build.tcl"
SRC_DIR = "src"
SHELL_COPY = "shell.json"
WEIGHTS_COPY = "weights.bin"
FORMAT = "bireal-fpga vivado project 1"

# what Vivado writes in its work folder (relative to it)
OUTPUTS: dict[str, str] = {
    "project": "project",
    "reports": "reports",
    "timing_report": "reports/timing_summary.rpt",
    "utilization_report": "reports/utilization.rpt",
    "utilization_hier_report": "reports/utilization_hierarchical.rpt",
    "info": "build_info.json",
    "out": "out",
}
VIVADO_LOG = "vivado.log"
VIVADO_JOURNAL = "vivado.jou"

# exit codes of the TCL's own failures (a Tcl error in Vivado's batch mode exits with 1)
EXIT_RUN_FAILED = 2
EXIT_TIMING = 3
EXIT_NO_HWH = 4
EXIT_BOARD_FILES = 5
EXIT_DESIGN = 6
EXIT_NO_BIT = 7

# block design cell names (PYNQ's ip_dict keys them so)
PS_CELL = "ps"
SHELL_CELL = "shell"
DMA_IO_CELL = "dma_io"
DMA_WGT_CELL = "dma_wgt"
CTRL_IC_CELL = "ctrl_ic"
MEM_SC_CELL = "mem_sc"
RESET_CELL = "rst_pl"

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DMA_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)  # PG021: stream widths the AXI DMA offers
_VIVADO_BOARDS_TOKEN = "@VIVADO_BOARDS@"


@dataclass(frozen=True)
class PsPorts:
    """The pins of a processing system IP that the block design uses."""

    ip: str
    clock: str  # the PL clock output
    resetn: str  # its reset (active low)
    master: str  # the PS master the control registers hang on
    master_aclk: str
    slave: str  # the high-performance slave port the DMAs use
    slave_aclk: str
    ctrl_base: int  # where the master's window starts
    automation_rule: str


PS_PORTS: dict[str, PsPorts] = {
    "zynq_ultra_ps_e": PsPorts(
        ip="zynq_ultra_ps_e",
        clock="pl_clk0",
        resetn="pl_resetn0",
        master="M_AXI_HPM0_FPD",
        master_aclk="maxihpm0_fpd_aclk",
        slave="S_AXI_HP0_FPD",
        slave_aclk="saxihp0_fpd_aclk",
        ctrl_base=0xA000_0000,
        automation_rule="xilinx.com:bd_rule:zynq_ultra_ps_e",
    ),
    "processing_system7": PsPorts(
        ip="processing_system7",
        clock="FCLK_CLK0",
        resetn="FCLK_RESET0_N",
        master="M_AXI_GP0",
        master_aclk="M_AXI_GP0_ACLK",
        slave="S_AXI_HP0",
        slave_aclk="S_AXI_HP0_ACLK",
        ctrl_base=0x4000_0000,
        automation_rule="xilinx.com:bd_rule:processing_system7",
    ),
}


def _mhz(clock_mhz: float) -> str:
    return f"{clock_mhz:g}"


def ps_settings(ps: str, clock_mhz: float, port_bits: int) -> tuple[tuple[str, str], ...]:
    """The PS settings the project always makes (after the board preset or the fallback
    settings): one master for the control registers, one high-performance slave port of
    ``port_bits`` for the DMAs, PL clock 0 at ``clock_mhz``."""
    mhz = _mhz(clock_mhz)
    if ps == "zynq_ultra_ps_e":
        return (
            ("PSU__USE__M_AXI_GP0", "1"),  # M_AXI_HPM0_FPD: the control registers
            ("PSU__USE__M_AXI_GP1", "0"),  # M_AXI_HPM1_FPD: unused (its clock would dangle)
            ("PSU__USE__M_AXI_GP2", "0"),  # M_AXI_HPM0_LPD: unused
            ("PSU__USE__S_AXI_GP2", "1"),  # S_AXI_HP0_FPD: the DMAs
            ("PSU__SAXIGP2__DATA_WIDTH", str(port_bits)),
            ("PSU__FPGA_PL0_ENABLE", "1"),
            ("PSU__OVERRIDE__BASIC_CLOCK", "0"),
            ("PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ", mhz),
        )
    if ps == "processing_system7":
        return (
            ("PCW_USE_M_AXI_GP0", "1"),  # M_AXI_GP0: the control registers
            ("PCW_USE_S_AXI_HP0", "1"),  # S_AXI_HP0: the DMAs
            ("PCW_S_AXI_HP0_DATA_WIDTH", str(port_bits)),
            ("PCW_EN_CLK0_PORT", "1"),
            ("PCW_EN_RST0_PORT", "1"),
            ("PCW_FPGA0_PERIPHERAL_FREQMHZ", mhz),
        )
    raise VivadoError(f"unknown processing system '{ps}' (known: {', '.join(PS_PORTS)})")


@dataclass(frozen=True)
class DmaChannel:
    """One channel of an AXI DMA: its stream width, its memory-mapped width (at least the
    stream's and the PS port's: PG021 wants memory map >= stream) and its burst length (beats;
    no burst longer than 4 KiB)."""

    stream_bits: int
    mm_bits: int
    burst: int


@dataclass(frozen=True)
class Dma:
    """An AXI DMA in simple (register) mode: ``mm2s`` sends a buffer to a stream of the shell,
    ``s2mm`` (None: no such channel) writes one of its streams to memory."""

    cell: str
    mm2s: DmaChannel
    s2mm: DmaChannel | None
    mm2s_to: str  # the shell's stream the MM2S channel feeds
    s2mm_from: str | None  # the shell's stream the S2MM channel takes

    @property
    def config(self) -> tuple[tuple[str, str], ...]:
        """Its ``CONFIG.*`` values (PG021 names), in the order they are set."""
        items = [
            ("c_include_sg", "0"),  # simple mode: no scatter-gather engine
            ("c_sg_length_width", str(arch.DMA_LENGTH_BITS)),  # buffer length register bits
            ("c_sg_include_stscntrl_strm", "0"),
            ("c_addr_width", "32"),
            ("c_include_mm2s", "1"),
            ("c_m_axi_mm2s_data_width", str(self.mm2s.mm_bits)),
            ("c_m_axis_mm2s_tdata_width", str(self.mm2s.stream_bits)),
            ("c_mm2s_burst_size", str(self.mm2s.burst)),
            ("c_include_mm2s_dre", "0"),
            ("c_include_s2mm", "1" if self.s2mm else "0"),
        ]
        if self.s2mm:
            items += [
                ("c_m_axi_s2mm_data_width", str(self.s2mm.mm_bits)),
                ("c_s_axis_s2mm_tdata_width", str(self.s2mm.stream_bits)),
                ("c_s2mm_burst_size", str(self.s2mm.burst)),
                ("c_include_s2mm_dre", "0"),
            ]
        return tuple(items)

    @property
    def user_widths(self) -> tuple[str, ...]:
        """The width parameters set as the user's (``.VALUE_SRC USER``), so that parameter
        propagation from the connected shell does not change them."""
        keys = ["c_m_axi_mm2s_data_width", "c_m_axis_mm2s_tdata_width"]
        if self.s2mm:
            keys += ["c_m_axi_s2mm_data_width", "c_s_axis_s2mm_tdata_width"]
        return tuple(keys)

    @property
    def masters(self) -> tuple[str, ...]:
        """Its memory-mapped masters (to the PS's memory)."""
        return ("M_AXI_MM2S", "M_AXI_S2MM") if self.s2mm else ("M_AXI_MM2S",)

    @property
    def clocks(self) -> tuple[str, ...]:
        clocks = ["s_axi_lite_aclk", "m_axi_mm2s_aclk"]
        return tuple(clocks + (["m_axi_s2mm_aclk"] if self.s2mm else []))


@dataclass(frozen=True)
class AddressSegment:
    """A register window in the PS master's address map (fixed: a driver may rely on it)."""

    cell: str
    interface: str
    offset: int
    range: int

    @property
    def offset_hex(self) -> str:
        return f"0x{self.offset:08X}"

    @property
    def range_hex(self) -> str:
        return f"0x{self.range:08X}"


@dataclass(frozen=True)
class ProjectParams:
    """Everything the TCL templates are rendered from.

    Attributes:
        board, part, board_part, ps: from the board preset.
        clock_mhz: the PL clock asked of the PS (``pl_clk0`` / ``FCLK_CLK0``).
        axi_port_bits: the PS slave port's data width.
        base_name: the block design's name and the outputs' base name.
        ps_fallback: the preset's ``ps_config``, set only when the board files are missing.
        ps_config: the project's own PS settings (:func:`ps_settings`).
        require_board_files: stop when the board files are missing instead of falling back.
        board_repo_paths: more folders to look for board files in.
        board_files: where the board files come from.
        missing_board_files: the warning (or error) when they are missing.
        image_bits, output_bits, weight_bits: the shell's DMA stream widths (0: no weights).
        dmas: the AXI DMAs.
        address_map: the register windows of the control master.
        sources: the HDL sources in ``src/`` (SystemVerilog, then the shell's Verilog).
        data_files: the memory images in ``src/`` (``$readmemh`` by plain file name).
        shell_module: the module the block design instantiates.
    """

    board: str
    part: str
    board_part: str
    ps: str
    clock_mhz: float
    axi_port_bits: int
    base_name: str
    ps_fallback: tuple[tuple[str, str], ...]
    ps_config: tuple[tuple[str, str], ...]
    require_board_files: bool
    board_repo_paths: tuple[str, ...]
    board_files: BoardFiles
    missing_board_files: str
    image_bits: int
    output_bits: int
    weight_bits: int
    dmas: tuple[Dma, ...]
    address_map: tuple[AddressSegment, ...]
    sources: tuple[str, ...]
    data_files: tuple[str, ...]
    shell_module: str
    written_for: tuple[str, ...] = WRITTEN_FOR
    generator_version: str = field(default_factory=project_version)

    @property
    def ports(self) -> PsPorts:
        return PS_PORTS[self.ps]

    @property
    def bd_name(self) -> str:
        return self.base_name

    @property
    def mem_masters(self) -> tuple[str, ...]:
        """Every DMA master on the memory SmartConnect, in slave-port order."""
        return tuple(f"{d.cell}/{m}" for d in self.dmas for m in d.masters)

    @property
    def intf_nets(self) -> tuple[tuple[str, str], ...]:
        """Every interface connection (from, to)."""
        ps = PS_CELL
        nets = [(f"{ps}/{self.ports.master}", f"{CTRL_IC_CELL}/S00_AXI")]
        for i, seg in enumerate(self.address_map):
            nets.append((f"{CTRL_IC_CELL}/M{i:02d}_AXI", f"{seg.cell}/{seg.interface}"))
        for i, master in enumerate(self.mem_masters):
            nets.append((master, f"{MEM_SC_CELL}/S{i:02d}_AXI"))
        nets.append((f"{MEM_SC_CELL}/M00_AXI", f"{ps}/{self.ports.slave}"))
        for d in self.dmas:
            nets.append((f"{d.cell}/M_AXIS_MM2S", f"{SHELL_CELL}/{d.mm2s_to}"))
            if d.s2mm_from:
                nets.append((f"{SHELL_CELL}/{d.s2mm_from}", f"{d.cell}/S_AXIS_S2MM"))
        return tuple(nets)

    @property
    def clock_sinks(self) -> tuple[str, ...]:
        """Every clock pin on the PL clock."""
        pins = [
            f"{PS_CELL}/{self.ports.master_aclk}",
            f"{PS_CELL}/{self.ports.slave_aclk}",
            f"{RESET_CELL}/slowest_sync_clk",
            f"{SHELL_CELL}/ap_clk",
            f"{CTRL_IC_CELL}/ACLK",
            f"{CTRL_IC_CELL}/S00_ACLK",
            *(f"{CTRL_IC_CELL}/M{i:02d}_ACLK" for i in range(len(self.address_map))),
            f"{MEM_SC_CELL}/aclk",
        ]
        for d in self.dmas:
            pins += [f"{d.cell}/{c}" for c in d.clocks]
        return tuple(pins)

    @property
    def interconnect_resets(self) -> tuple[str, ...]:
        """Reset pins of the interconnects themselves (``interconnect_aresetn``)."""
        return (f"{CTRL_IC_CELL}/ARESETN", f"{MEM_SC_CELL}/aresetn")

    @property
    def peripheral_resets(self) -> tuple[str, ...]:
        """Reset pins of everything else (``peripheral_aresetn``)."""
        pins = [
            f"{SHELL_CELL}/ap_rst_n",
            f"{CTRL_IC_CELL}/S00_ARESETN",
            *(f"{CTRL_IC_CELL}/M{i:02d}_ARESETN" for i in range(len(self.address_map))),
        ]
        pins += [f"{d.cell}/axi_resetn" for d in self.dmas]
        return tuple(pins)


@dataclass(frozen=True)
class VivadoProject:
    """A prepared project folder, as described by its ``project.json``."""

    dir: Path
    data: Mapping[str, Any]

    @property
    def base_name(self) -> str:
        return str(self.data["base_name"])

    @property
    def board(self) -> str:
        return str(self.data["board"])

    @property
    def part(self) -> str:
        return str(self.data["part"])

    @property
    def build_tcl(self) -> Path:
        return self.dir / BUILD_TCL

    @property
    def default_work_dir(self) -> Path:
        """Where the printed command runs Vivado: ``vivado_work/`` beside the project."""
        return self.dir.parent / names.VIVADO_WORK

    def output(self, key: str, work_dir: Path) -> Path:
        """Where Vivado writes the output ``key`` of :data:`OUTPUTS` (or ``bit``, ``hwh``)."""
        if key in ("bit", "hwh"):
            return work_dir / OUTPUTS["out"] / f"{self.base_name}.{key}"
        return work_dir / OUTPUTS[key]

    def argv(self, vivado: str | Path = "vivado", *, jobs: int | None = None) -> list[str]:
        """Vivado's command line (run in the work folder)."""
        argv = [str(vivado), "-mode", "batch", "-notrace", "-log", VIVADO_LOG]
        argv += ["-journal", VIVADO_JOURNAL, "-source", str(self.build_tcl.resolve())]
        if jobs is not None:
            argv += ["-tclargs", str(jobs)]
        return argv

    def command_in(self, work_dir: Path | None = None) -> str:
        """The one shell command that finishes the project (Vivado on PATH)."""
        work = shlex.quote(str((work_dir or self.default_work_dir).resolve()))
        return f"mkdir -p {work} && cd {work} && " + shlex.join(self.argv())

    @property
    def command(self) -> str:
        """The one shell command that finishes the project, with its work folder
        ``vivado_work/`` beside it."""
        return self.command_in()


def load_project(project_dir: Path) -> VivadoProject:
    """The project prepared in ``project_dir``."""
    path = Path(project_dir) / PROJECT_JSON
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise VivadoError(f"'{path}' is not a prepared Vivado project ({exc})") from None
    if data.get("format") != FORMAT:
        raise VivadoError(f"'{path}' is not a Vivado project of this version ({FORMAT})")
    return VivadoProject(Path(project_dir), data)


# ---- preparation --------------------------------------------------------------------------------


def _burst(mm_bits: int) -> int:
    """The longest burst (PG021: 2 .. 256 beats) that stays within 4 KiB."""
    return max(2, min(256, 4096 // (mm_bits // 8)))


def _channel(stream_bits: int, port_bits: int) -> DmaChannel:
    mm = max(32, stream_bits, port_bits)
    return DmaChannel(stream_bits, mm, _burst(mm))


def _stream_bits(shell: Mapping[str, Any], key: str, field: str, path: Path) -> int:
    try:
        bits = int(shell[key][field])
    except (KeyError, TypeError, ValueError):
        raise VivadoError(f'\'{path}\': "{key}"."{field}" is missing') from None
    if bits not in _DMA_WIDTHS:
        raise VivadoError(
            f'\'{path}\': "{key}"."{field}" = {bits} is not an AXI DMA stream width '
            f"({', '.join(map(str, _DMA_WIDTHS))})"
        )
    return bits


def _check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise VivadoError(
            f"{what} '{name}' has characters the TCL does not quote (letters, digits, "
            f"'_', '.', '-' only)"
        )
    return name


def _tcl_word(value: str) -> str:
    """``value`` as one Tcl word in braces (values from the presets: no braces or
    backslashes)."""
    if any(c in value for c in "{}\\\n"):
        raise VivadoError(f"the value '{value}' cannot be written into the TCL")
    return "{" + value + "}"


def _tcl_string(value: str) -> str:
    """``value`` as the inside of a Tcl double-quoted string (nothing substituted)."""
    out = value
    for c in '\\"[]$':
        out = out.replace(c, "\\" + c)
    return out


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / "vivado")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["tcl"] = _tcl_word
    env.filters["tcl_string"] = _tcl_string
    return env


def render(template: str, p: ProjectParams) -> str:
    """``hw/templates/vivado/<template>`` rendered from ``p``."""
    return (
        _env()
        .get_template(template)
        .render(
            p=p,
            outputs=OUTPUTS,
            cells={
                "ps": PS_CELL,
                "shell": SHELL_CELL,
                "ctrl_ic": CTRL_IC_CELL,
                "mem_sc": MEM_SC_CELL,
                "reset": RESET_CELL,
            },
            exits={
                "run": EXIT_RUN_FAILED,
                "timing": EXIT_TIMING,
                "hwh": EXIT_NO_HWH,
                "board_files": EXIT_BOARD_FILES,
                "design": EXIT_DESIGN,
                "bit": EXIT_NO_BIT,
            },
            missing_board_files=_tcl_string(p.missing_board_files).replace(
                _tcl_string(_VIVADO_BOARDS_TOKEN), "$vivado_boards"
            ),
            vivado_boards_dir=VIVADO_BOARDS_DIR,
        )
    )


def project_params(
    *,
    board: Board,
    clock_mhz: float,
    shell: Mapping[str, Any],
    shell_path: Path,
    sources: Sequence[str],
    data_files: Sequence[str],
    base_name: str = "bireal",
    require_board_files: bool = False,
    board_repo_paths: Sequence[Path] = (),
) -> ProjectParams:
    """The project's parameters for ``board`` and the shell described by ``shell``
    (``shell.json``, read from ``shell_path``)."""
    if not _IDENT.match(base_name):
        raise VivadoError(f"base name '{base_name}' is not an identifier (letters, digits, '_')")
    if board.ps not in PS_PORTS:
        raise VivadoError(
            f"board '{board.name}': ps '{board.ps}' is not one of {', '.join(PS_PORTS)}"
        )
    if not clock_mhz > 0:
        raise VivadoError(f"board '{board.name}': PL clock {clock_mhz} MHz is not positive")
    for key, value in board.ps_config.items():
        _check_name(key, f"board '{board.name}' ps_config key")
        _tcl_word(str(value))
    image = _stream_bits(shell, "image", "dma_bits", shell_path)
    output = _stream_bits(shell, "output", "dma_bits", shell_path)
    weights = shell.get("weights")
    wbits = _stream_bits(shell, "weights", "bits", shell_path) if weights else 0
    for key in ("image", "output") + (("weights",) if weights else ()):
        _check_name(str(shell[key].get("port", "")), f'\'{shell_path}\' "{key}"."port"')
    port = board.axi_port_bits
    dmas = [
        Dma(
            DMA_IO_CELL,
            _channel(image, port),
            _channel(output, port),
            mm2s_to=str(shell["image"]["port"]),
            s2mm_from=str(shell["output"]["port"]),
        )
    ]
    if weights:
        dmas.append(Dma(DMA_WGT_CELL, _channel(wbits, port), None, str(weights["port"]), None))
    try:
        control = shell["control"]
        ctrl_port = _check_name(str(control["port"]), f'\'{shell_path}\' "control"."port"')
        ctrl_range = max(0x1000, 1 << int(control["addr_bits"]))
    except (KeyError, TypeError, ValueError):
        raise VivadoError(f'\'{shell_path}\': "control" has no "port" / "addr_bits"') from None
    if ctrl_range > 0x10000:
        raise VivadoError(f"'{shell_path}': a {ctrl_range}-byte control window is over 64 KiB")
    base = PS_PORTS[board.ps].ctrl_base
    segments = [AddressSegment(SHELL_CELL, ctrl_port, base, ctrl_range)]
    for i, d in enumerate(dmas, start=1):
        segments.append(AddressSegment(d.cell, "S_AXI_LITE", base + i * 0x1_0000, 0x1_0000))
    module = _check_name(str(shell.get("module", "")), f"'{shell_path}' \"module\"")
    return ProjectParams(
        board=board.name,
        part=board.part,
        board_part=board.board_part,
        ps=board.ps,
        clock_mhz=float(clock_mhz),
        axi_port_bits=port,
        base_name=base_name,
        ps_fallback=tuple((k, str(v)) for k, v in board.ps_config.items()),
        ps_config=ps_settings(board.ps, clock_mhz, port),
        require_board_files=require_board_files,
        board_repo_paths=tuple(str(Path(p).resolve()) for p in board_repo_paths),
        board_files=board_files(board),
        missing_board_files=missing_message(board, _VIVADO_BOARDS_TOKEN),
        image_bits=image,
        output_bits=output,
        weight_bits=wbits,
        dmas=tuple(dmas),
        address_map=tuple(segments),
        sources=tuple(sources),
        data_files=tuple(data_files),
        shell_module=module,
    )


def _copy(src: Path, dst_dir: Path, taken: dict[str, Path]) -> str:
    name = _check_name(src.name, "source file")
    if name in taken:
        raise VivadoError(f"two sources are named '{name}': '{taken[name]}' and '{src}'")
    if not src.is_file():
        raise VivadoError(f"source '{src}' does not exist")
    taken[name] = src
    shutil.copyfile(src, dst_dir / name)
    return name


def prepare_project(
    out_dir: Path,
    *,
    rtl_dir: Path,
    shell_dir: Path,
    board: Board,
    clock_mhz: float,
    base_name: str = "bireal",
    require_board_files: bool = False,
    board_repo_paths: Sequence[Path] = (),
) -> VivadoProject:
    """Write the Vivado project of the design in ``rtl_dir`` (``rtl/manifest.json``) and its
    shell in ``shell_dir`` (``shell.json``) for ``board`` into ``out_dir`` (created; must not
    exist or be empty). No tool runs.

    ``require_board_files``: stop in Vivado when the board's board files are missing (default:
    say which are missing and where they go, then build for the part with explicit PS
    settings). ``board_repo_paths``: more folders that hold board files.
    """
    out_dir = Path(out_dir)
    design = _load_design(Path(rtl_dir))
    shell_path = Path(shell_dir) / names.SHELL_MANIFEST
    try:
        shell = json.loads(shell_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise VivadoError(f"'{shell_path}' is not a shell manifest ({exc})") from None
    if shell.get("core_top") != design.top:
        raise VivadoError(
            f"'{shell_path}': core_top '{shell.get('core_top')}' is not the design's top "
            f"'{design.top}' ({Path(rtl_dir) / names.RTL_MANIFEST})"
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        raise VivadoError(f"'{out_dir}' is not empty: prepare a Vivado project in a new folder")
    src = out_dir / SRC_DIR
    src.mkdir(parents=True, exist_ok=True)
    taken: dict[str, Path] = {}
    hdl = [_copy(p, src, taken) for p in design.sources]
    shell_files = [str(f) for f in shell.get("files", [])]
    if not shell_files:
        raise VivadoError(f"'{shell_path}': \"files\" lists no shell sources")
    hdl += [_copy(Path(shell_dir) / f, src, taken) for f in shell_files]
    data = [_copy(p, src, taken) for p in design.data_files]
    p = project_params(
        board=board,
        clock_mhz=clock_mhz,
        shell=shell,
        shell_path=shell_path,
        sources=hdl,
        data_files=data,
        base_name=base_name,
        require_board_files=require_board_files,
        board_repo_paths=board_repo_paths,
    )
    shutil.copyfile(shell_path, out_dir / SHELL_COPY)
    weights = shell.get("weights")
    if weights:
        wfile = Path(shell_dir) / str(weights.get("file", WEIGHTS_COPY))
        if not wfile.is_file():
            raise VivadoError(f"the run-time weights '{wfile}' (shell.json \"weights\") are gone")
        shutil.copyfile(wfile, out_dir / WEIGHTS_COPY)
    (out_dir / CREATE_TCL).write_text(render("create_project.tcl.j2", p))
    (out_dir / BUILD_TCL).write_text(render("build.tcl.j2", p))
    data_json = project_json(p, out_dir.name, has_weights=bool(weights))
    (out_dir / PROJECT_JSON).write_text(json.dumps(data_json, indent=2) + "\n")
    return VivadoProject(out_dir, data_json)


def _load_design(rtl_dir: Path) -> Any:
    try:
        return load_design(rtl_dir)
    except StitchError as exc:
        raise VivadoError(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise VivadoError(
            f"'{rtl_dir / names.RTL_MANIFEST}' is not a stitched design manifest ({exc})"
        ) from None


def project_json(p: ProjectParams, dir_name: str, *, has_weights: bool) -> dict[str, Any]:
    """``project.json``: what the project is and the command that finishes it (relative to the
    project folder; :attr:`VivadoProject.command` is the absolute form)."""
    bf = p.board_files
    work = f"../{names.VIVADO_WORK}"
    build = f"../{dir_name}/{BUILD_TCL}"
    command = (
        f"mkdir -p {work} && cd {work} && vivado -mode batch -notrace -log {VIVADO_LOG} "
        f"-journal {VIVADO_JOURNAL} -source {build}"
    )
    return {
        "format": FORMAT,
        "what": (
            f"Vivado project of the bireal-fpga accelerator for {p.board} ({p.part}): block "
            f"design with {p.ps}, AXI DMAs in simple mode, the shell '{p.shell_module}'; "
            f"build.tcl runs synthesis, implementation, reports, bitstream and hardware handoff"
        ),
        "command": command,
        "command_cwd": "this folder",
        "board": p.board,
        "part": p.part,
        "board_part": p.board_part,
        "board_files": {
            "board_part": bf.board_part,
            "folder": bf.folder,
            "ships_with_vivado": bf.ships_with_vivado,
            "source": bf.source,
            "vivado_folder": VIVADO_BOARDS_DIR,
            "fallback": "error" if p.require_board_files else "part + explicit PS settings",
            "ps_fallback": dict(p.ps_fallback),
        },
        "ps": p.ps,
        "ps_config": dict(p.ps_config),
        "clock_mhz": p.clock_mhz,
        "axi_port_bits": p.axi_port_bits,
        "base_name": p.base_name,
        "block_design": p.bd_name,
        "dmas": [
            {
                "cell": d.cell,
                "mm2s": asdict(d.mm2s),
                "s2mm": asdict(d.s2mm) if d.s2mm else None,
                "mm2s_to": d.mm2s_to,
                "s2mm_from": d.s2mm_from,
                "length_bits": arch.DMA_LENGTH_BITS,
                "config": dict(d.config),
            }
            for d in p.dmas
        ],
        "address_map": [
            {
                "cell": a.cell,
                "interface": a.interface,
                "offset": a.offset_hex,
                "range": a.range_hex,
            }
            for a in p.address_map
        ],
        "sources": [f"{SRC_DIR}/{s}" for s in p.sources],
        "data_files": [f"{SRC_DIR}/{s}" for s in p.data_files],
        "shell": SHELL_COPY,
        "weights": WEIGHTS_COPY if has_weights else None,
        "outputs": {
            **OUTPUTS,
            "bit": f"{OUTPUTS['out']}/{p.base_name}.bit",
            "hwh": f"{OUTPUTS['out']}/{p.base_name}.hwh",
            "log": VIVADO_LOG,
        },
        "written_for": list(p.written_for),
        "generator_version": p.generator_version,
    }
