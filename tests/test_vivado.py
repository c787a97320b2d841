"""The Vivado back end without Vivado: the generated TCL evaluated in a real Tcl interpreter
(``tkinter.Tcl()``) against stand-ins of the Vivado commands, and a stand-in ``vivado``
executable on PATH that runs the same TCL the same way, fakes Vivado's outputs and records how it
was called. Through it the run, the version check, the slack check, the manifest, the
publication to ``bitstreams/<BOARD>/`` and every failure path run for real. Tests marked
``vivado`` build the tiny preset's bitstream with a real Vivado (skipped without one).

The stand-in knows the pins of the IP it fakes (as PG021, PG082, PG201, PG059, PG247 and PG164
name them) and which exist only with a setting (the DMA's S2MM channel, the PS's AXI ports, the
interconnects' port counts), so a pin the TCL names but the configured IP lacks is an error
here, as it would be in Vivado.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tkinter
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_VIVADO_FILE, FIXTURES, stand_in_vivado

from bireal_fpga import names
from bireal_fpga.boards import board_names, load_board
from bireal_fpga.tools import find_vivado
from bireal_fpga.vivado import WRITTEN_FOR, version_known
from bireal_fpga.vivado.bitstreams import (
    check_bitstream_dir,
    collect_bitstream,
    publish_bitstream,
    sha256_file,
)
from bireal_fpga.vivado.errors import VivadoError
from bireal_fpga.vivado.project import (
    BUILD_TCL,
    CREATE_TCL,
    PROJECT_JSON,
    load_project,
    prepare_project,
)
from bireal_fpga.vivado.reports import parse_timing_summary, parse_utilization
from bireal_fpga.vivado.run import read_result, run_vivado

MODEL_SHA = "ab" * 32

# ---- the stand-in Vivado (run in-process, and as the `vivado` executable) ------------------------

FAKE_VIVADO = FAKE_VIVADO_FILE.read_text()

_NS: dict[str, Any] = {"__name__": "fake_vivado"}
exec(compile(FAKE_VIVADO, "fake_vivado", "exec"), _NS)
FakeVivado = _NS["FakeVivado"]


# ---- a design and its shell, as the rtl and shell steps write them -------------------------------

SHELL_V = """module bireal_shell (
    input  wire ap_clk,
    input  wire ap_rst_n,
    input  wire [11:0] s_axi_ctrl_awaddr, input wire s_axi_ctrl_awvalid,
    output wire s_axi_ctrl_awready, input wire [31:0] s_axi_ctrl_wdata,
    input  wire [3:0] s_axi_ctrl_wstrb, input wire s_axi_ctrl_wvalid, output wire s_axi_ctrl_wready,
    output wire [1:0] s_axi_ctrl_bresp, output wire s_axi_ctrl_bvalid, input wire s_axi_ctrl_bready,
    input  wire [11:0] s_axi_ctrl_araddr, input wire s_axi_ctrl_arvalid,
    output wire s_axi_ctrl_arready, output wire [31:0] s_axi_ctrl_rdata,
    output wire [1:0] s_axi_ctrl_rresp, output wire s_axi_ctrl_rvalid, input wire s_axi_ctrl_rready,
    input  wire [31:0] s_axis_img_tdata, input wire s_axis_img_tvalid,
    output wire s_axis_img_tready, input wire s_axis_img_tlast,
    output wire [63:0] m_axis_out_tdata, output wire m_axis_out_tvalid,
    input  wire m_axis_out_tready, output wire m_axis_out_tlast,
    output wire [7:0] m_axis_out_tkeep{wgt}
);
    bireal_accel core ();
endmodule
"""
SHELL_WGT = """,
    input  wire [63:0] s_axis_wgt_tdata, input wire s_axis_wgt_tvalid,
    output wire s_axis_wgt_tready, input wire s_axis_wgt_tlast"""


def _port(port: str, tensor: str, bits: int, signed: bool, elems: int, words: int) -> dict:
    return {
        "port": port,
        "tensor": tensor,
        "axi_width": bits * elems,
        "elem_bits": bits,
        "signed": signed,
        "elems": elems,
        "words": words,
        "folded_shape": [1, words, elems],
    }


def make_design(root: Path, *, weights: bool = False) -> tuple[Path, Path]:
    """``rtl/`` (manifest, two .sv, two memory images) and ``shell/`` (shell.json, a stub
    ``bireal_shell.v`` with the shell's ports) under ``root``."""
    rtl, shell = root / "rtl", root / "shell"
    rtl.mkdir(parents=True)
    shell.mkdir()
    (rtl / "bireal_accel.sv").write_text("module bireal_accel (); MVAU_0 u (); endmodule\n")
    (rtl / "MVAU_0.sv").write_text(
        'module MVAU_0 (); logic [7:0] m [4]; initial $readmemh("MVAU_0_weights.mem", m);\n'
        "endmodule\n"
    )
    (rtl / "MVAU_0_weights.mem").write_text("00\n01\n02\n03\n")
    (rtl / "Add_0_const.hex").write_text("7f\n")
    manifest = {
        "top": "bireal_accel",
        "input": _port("in0_V", "global_in", 8, False, 3, 256),
        "output": _port("out0_V", "scores", 20, True, 2, 2),
        "sources": ["MVAU_0.sv", "bireal_accel.sv"],
        "data_files": ["MVAU_0_weights.mem", "Add_0_const.hex"],
        "fifos": [],
        "layers": [],
        "taps": [],
        "weights": {"layers": []},
    }
    (rtl / names.RTL_MANIFEST).write_text(json.dumps(manifest))
    (shell / "bireal_shell.v").write_text(SHELL_V.replace("{wgt}", SHELL_WGT if weights else ""))
    (shell / "bireal_shell_ctrl.v").write_text("module bireal_shell_ctrl (); endmodule\n")
    registers = [
        {"name": "CTRL", "offset": 0, "access": "w", "doc": "bit 0 START"},
        {"name": "STATUS", "offset": 4, "access": "r", "doc": "BUSY, DONE"},
    ]
    sj = {
        "module": "bireal_shell",
        "files": ["bireal_shell.v", "bireal_shell_ctrl.v"],
        "core_top": "bireal_accel",
        "build_id": "0x1a2b3c4d",
        "clock_mhz": 100.0,
        "image": {
            "port": "s_axis_img",
            "dma_bits": 32,
            "core_bits": 24,
            "words_per_image": 256,
            "format": {"elem_bits": 8, "signed": False, "elems": 3},
            "shape": [16, 16, 3],
        },
        "output": {
            "port": "m_axis_out",
            "dma_bits": 64,
            "core_bits": 40,
            "words_per_image": 2,
            "format": {"elem_bits": 20, "signed": True, "elems": 2},
            "shape": [4],
        },
        "weights": (
            {"port": "s_axis_wgt", "bits": 64, "beats": 4, "file": "weights.bin"}
            if weights
            else None
        ),
        "control": {"port": "s_axi_ctrl", "addr_bits": 12, "data_bits": 32, "registers": registers},
        "dma_length_bits": 26,
    }
    if weights:
        (shell / "weights.bin").write_bytes(bytes(range(32)))
    (shell / names.SHELL_MANIFEST).write_text(json.dumps(sj, indent=2))
    return rtl, shell


def prepared(tmp: Path, board: str, *, weights: bool = False, **kw: Any):
    rtl, shell = make_design(tmp / "design", weights=weights)
    build = tmp / "build"
    project = prepare_project(
        build / names.VIVADO,
        rtl_dir=rtl,
        shell_dir=shell,
        board=load_board(board),
        clock_mhz=kw.pop("clock_mhz", load_board(board).clock_mhz),
        **kw,
    )
    return project, build, shell


def evaluate(project, work: Path, *, installed: bool, mode: str = "ok", version: str = "2023.2"):
    """build.tcl evaluated by the in-process stand-in in ``work``: (fake, exit status)."""
    work.mkdir(parents=True, exist_ok=True)
    parts = (load_board(project.board).board_part,) if installed else ()
    fake = FakeVivado(work, mode=mode, version=version, board_parts=parts, fixtures=FIXTURES)
    cwd = os.getcwd()
    try:
        code = fake.run(project.build_tcl, ("2",))
    finally:
        os.chdir(cwd)
    return fake, code


BOARDS = board_names()

# ---- the prepared folder -------------------------------------------------------------------------


def test_prepare_writes_a_self_contained_deterministic_folder(tmp_path: Path) -> None:
    a, _, _ = prepared(tmp_path / "a", "PYNQ-Z2")
    b, _, _ = prepared(tmp_path / "b", "PYNQ-Z2")
    files_a = sorted(p.relative_to(a.dir) for p in a.dir.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.dir) for p in b.dir.rglob("*") if p.is_file())
    assert files_a == files_b
    assert {str(p) for p in files_a} >= {
        CREATE_TCL,
        BUILD_TCL,
        PROJECT_JSON,
        "shell.json",
        "src/MVAU_0.sv",
        "src/bireal_accel.sv",
        "src/bireal_shell.v",
        "src/bireal_shell_ctrl.v",
        "src/MVAU_0_weights.mem",
        "src/Add_0_const.hex",
    }
    for rel in files_a:
        assert (a.dir / rel).read_bytes() == (b.dir / rel).read_bytes(), f"{rel} differs"
    for tcl in (a.dir / CREATE_TCL, a.dir / BUILD_TCL):
        text = tcl.read_text()
        assert str(tmp_path) not in text, f"{tcl.name} names an absolute path"
    data = json.loads((a.dir / PROJECT_JSON).read_text())
    assert data["command"].endswith("-source ../vivado/build.tcl")
    assert a.command == (
        f"mkdir -p {a.dir.parent / names.VIVADO_WORK} && cd {a.dir.parent / names.VIVADO_WORK}"
        f" && vivado -mode batch -notrace -log vivado.log -journal vivado.jou -source "
        f"{a.dir / BUILD_TCL}"
    )
    assert load_project(a.dir).command == a.command
    assert data["board_files"]["ships_with_vivado"] is False
    assert "tulembedded" in data["board_files"]["source"]


def test_every_tcl_file_parses_as_tcl(tmp_path: Path) -> None:
    """Each generated file is complete Tcl: every command (split by Tcl itself) closes."""
    for board in BOARDS:
        project, _, _ = prepared(tmp_path / board, board, weights=True)
        for name in (CREATE_TCL, BUILD_TCL):
            text = (project.dir / name).read_text()
            interp = tkinter.Tcl()
            interp.setvar("script", text)
            assert interp.eval("info complete $script") == "1", f"{board} {name}"


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("installed", [True, False], ids=["board-files", "fallback"])
def test_block_design_for_each_board(tmp_path: Path, board: str, installed: bool) -> None:
    b = load_board(board)
    project, build, _ = prepared(tmp_path, board)
    fake, code = evaluate(project, build / names.VIVADO_WORK, installed=installed)
    assert code == 0, fake.calls[-3:]
    # part, board part (or the fallback)
    assert fake.project["part"] == b.part
    assert fake.project["board_part"] == (b.board_part if installed else None)
    ps = fake.props["ps"]
    fallback = {f"CONFIG.{k}": v for k, v in b.ps_config.items()}
    if installed or not fallback:
        assert not any(k in ps and ps[k] != v for k, v in fallback.items() if not installed)
    else:
        assert {k: ps[k] for k in fallback} == fallback
    # the PS: newest IP version, ports, the PL clock
    kinds = {c: v.get("vlnv", v.get("ref")) for c, v in fake.cells.items()}
    latest = {"zynq_ultra_ps_e": "3.5", "processing_system7": "5.5"}[b.ps]
    assert kinds["ps"] == f"xilinx.com:ip:{b.ps}:{latest}"
    mhz = f"{b.clock_mhz:g}"
    if b.ps == "processing_system7":
        assert ps["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"] == mhz
        assert ps["CONFIG.PCW_S_AXI_HP0_DATA_WIDTH"] == str(b.axi_port_bits)
        auto = ps["automation_config"]
        assert auto["make_external"] == "FIXED_IO, DDR"
        assert auto["apply_board_preset"] == ("1" if installed else "0")
        clk, master, slave, base = "FCLK_CLK0", "M_AXI_GP0", "S_AXI_HP0", 0x4000_0000
    else:
        assert ps["CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == mhz
        assert ps["CONFIG.PSU__SAXIGP2__DATA_WIDTH"] == str(b.axi_port_bits)
        assert ps.get("automation") == ("xilinx.com:bd_rule:zynq_ultra_ps_e" if installed else None)
        clk, master, slave, base = "pl_clk0", "M_AXI_HPM0_FPD", "S_AXI_HP0_FPD", 0xA000_0000
    # the IP
    assert kinds["dma_io"] == "xilinx.com:ip:axi_dma:7.1"
    assert kinds["shell"] == "bireal_shell"
    assert kinds["ctrl_ic"] == "xilinx.com:ip:axi_interconnect:2.1"
    assert kinds["mem_sc"] == "xilinx.com:ip:smartconnect:1.0"
    assert "dma_wgt" not in kinds
    dma = {k.removeprefix("CONFIG."): v for k, v in fake.props["dma_io"].items()}
    assert dma["c_include_sg"] == "0" and dma["c_sg_length_width"] == "26"
    assert dma["c_m_axis_mm2s_tdata_width"] == "32" and dma["c_s_axis_s2mm_tdata_width"] == "64"
    for ch in ("mm2s", "s2mm"):
        mm, stream = int(dma[f"c_m_axi_{ch}_data_width"]), 32 if ch == "mm2s" else 64
        assert mm >= max(stream, b.axi_port_bits), ch
        assert int(dma[f"c_{ch}_burst_size"]) * mm // 8 <= 4096
        assert dma[f"c_{'m_axis_mm2s' if ch == 'mm2s' else 's_axis_s2mm'}_tdata_width.VALUE_SRC"]
    # connections: streams, control, memory, one clock everywhere, resets
    nets = set(fake.intf_nets)
    assert ("dma_io/M_AXIS_MM2S", "shell/s_axis_img") in nets
    assert ("shell/m_axis_out", "dma_io/S_AXIS_S2MM") in nets
    assert (f"ps/{master}", "ctrl_ic/S00_AXI") in nets
    assert ("mem_sc/M00_AXI", f"ps/{slave}") in nets
    clock_net = next(n for n in fake.nets if n[0] == f"ps/{clk}")
    for cell in ("shell", "dma_io", "mem_sc", "ctrl_ic", "rst_pl"):
        want = {
            f"{cell}/{p}"
            for p in fake.pins(cell, False)
            if "aclk" in p.lower() or p in ("ap_clk", "slowest_sync_clk")
        }
        assert want <= set(clock_net), f"{cell}: {want - set(clock_net)} not on the PL clock"
    assert {f"ps/{p}" for p in fake.pins("ps", False) if "aclk" in p.lower()} <= set(clock_net)
    reset_pins = {p for n in fake.nets if n[0].startswith("rst_pl/") for p in n[1:]}
    want_resets = {"shell/ap_rst_n", "dma_io/axi_resetn", "ctrl_ic/ARESETN", "mem_sc/aresetn"}
    assert want_resets <= reset_pins
    # the address map: fixed offsets, aligned, in the master's window
    fixed = [a for a in fake.addresses if a["offset"]]
    assert [(a["segs"], int(a["offset"], 16), int(a["range"], 16)) for a in fixed] == [
        (["shell/s_axi_ctrl/reg0"], base, 0x1000),
        (["dma_io/S_AXI_LITE/Reg"], base + 0x1_0000, 0x1_0000),
    ]
    assert all(a["space"] == "ps/Data" for a in fixed)
    assert fake.addresses[-1] == {"space": None, "offset": None, "range": None, "segs": []}
    # sources: every referenced file exists; memory images typed so $readmemh finds them
    assert fake.files and all(Path(f).is_file() for f in fake.files)
    names_added = {Path(f).name for f in fake.files}
    assert {"MVAU_0.sv", "bireal_shell.v", "MVAU_0_weights.mem", "Add_0_const.hex"} <= names_added
    mem = [f for f in fake.files if f.endswith((".mem", ".hex"))]
    set_types = [c for c in fake.calls if c[0] == "set_property" and "FILE_TYPE" in c[1]]
    assert set_types and set(mem) <= set(fake.split(set_types[0][1][-1]))
    # outputs, side by side with one base name; build_info
    work = build / names.VIVADO_WORK
    assert (work / "out/bireal.bit").is_file() and (work / "out/bireal.hwh").is_file()
    info = json.loads((work / "build_info.json").read_text())
    assert info["status"] == "done"
    assert info["board_files"] == ("installed" if installed else "missing")
    assert info["vivado_version"] == "2023.2"
    assert float(info["wns_ns"]) == 1.418
    assert abs(float(info["pl_clock_hz"]) - b.clock_mhz * 1e6) < b.clock_mhz * 1e6 * 1e-4


def test_block_design_with_run_time_weights(tmp_path: Path) -> None:
    project, build, _ = prepared(tmp_path, "ZCU104", weights=True)
    assert (project.dir / "weights.bin").read_bytes() == bytes(range(32))
    fake, code = evaluate(project, build / names.VIVADO_WORK, installed=True)
    assert code == 0
    wgt = {k.removeprefix("CONFIG."): v for k, v in fake.props["dma_wgt"].items()}
    assert wgt["c_include_s2mm"] == "0" and wgt["c_include_mm2s"] == "1"
    assert wgt["c_m_axis_mm2s_tdata_width"] == "64" and wgt["c_m_axi_mm2s_data_width"] == "128"
    assert wgt["c_include_sg"] == "0" and wgt["c_sg_length_width"] == "26"
    assert ("dma_wgt/M_AXIS_MM2S", "shell/s_axis_wgt") in fake.intf_nets
    assert fake.props["ctrl_ic"]["CONFIG.NUM_MI"] == "3"
    assert fake.props["mem_sc"]["CONFIG.NUM_SI"] == "3"
    offsets = [int(a["offset"], 16) for a in fake.addresses if a["offset"]]
    assert offsets == [0xA000_0000, 0xA001_0000, 0xA002_0000]


def test_missing_board_files_say_which_and_where(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project, build, _ = prepared(tmp_path / "a", "Ultra96-V2")
    fake, code = evaluate(project, build / names.VIVADO_WORK, installed=False)
    assert code == 0
    out = capfd.readouterr().out
    warning = next(line for line in out.splitlines() if line.startswith("BIREAL-WARNING"))
    assert "avnet.com:ultra96v2:part0:1.2" in warning and "github.com/Avnet/bdf" in warning
    assert "<Vivado installation>/data/boards/board_files/ultra96v2/<version>/board.xml" in warning
    assert fake.props["ps"]["CONFIG.PSU__PSS_REF_CLK__FREQMHZ"] == "33.333"
    strict, build2, _ = prepared(tmp_path / "b", "PYNQ-Z1", require_board_files=True)
    fake, code = evaluate(strict, build2 / names.VIVADO_WORK, installed=False)
    assert code == 5
    err = [line for line in capfd.readouterr().out.splitlines() if "BIREAL-ERROR" in line]
    assert err and "www.digilentinc.com:pynq-z1:part0:1.0" in err[0]
    assert not (build2 / names.VIVADO_WORK / "out" / "bireal.bit").exists()


def test_tcl_failures_stop_vivado_with_a_reason(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    for mode, code, words in (
        ("slack", 3, "worst negative slack -0.734"),
        ("nohwh", 4, "no hardware handoff"),
        ("synth_error", 2, "synthesis failed"),
    ):
        project, build, _ = prepared(tmp_path / mode, "PYNQ-Z2")
        work = build / names.VIVADO_WORK
        fake, got = evaluate(project, work, installed=True, mode=mode)
        assert got == code, mode
        out = capfd.readouterr().out
        assert words in out, (mode, out[-500:])
        info = json.loads((work / "build_info.json").read_text())
        assert info["status"] == "failed" and words in info["error"]
        assert not (work / "out/bireal.bit").exists() or mode == "nohwh"


def test_prepare_refuses_what_it_cannot_build(tmp_path: Path) -> None:
    rtl, shell = make_design(tmp_path / "d")
    board = load_board("PYNQ-Z2")
    sj = json.loads((shell / "shell.json").read_text())
    bad = dict(sj, core_top="other_top")
    (shell / "shell.json").write_text(json.dumps(bad))
    with pytest.raises(VivadoError, match="core_top 'other_top'"):
        prepare_project(tmp_path / "v1", rtl_dir=rtl, shell_dir=shell, board=board, clock_mhz=100)
    bad = json.loads(json.dumps(sj))
    bad["image"]["dma_bits"] = 24
    (shell / "shell.json").write_text(json.dumps(bad))
    with pytest.raises(VivadoError, match=r'"image"."dma_bits" = 24'):
        prepare_project(tmp_path / "v2", rtl_dir=rtl, shell_dir=shell, board=board, clock_mhz=100)
    bad = dict(sj, weights={"port": "s_axis_wgt", "bits": 64, "beats": 4, "file": "weights.bin"})
    (shell / "shell.json").write_text(json.dumps(bad))
    with pytest.raises(VivadoError, match="weights.bin"):
        prepare_project(tmp_path / "v3", rtl_dir=rtl, shell_dir=shell, board=board, clock_mhz=100)
    (shell / "shell.json").write_text(json.dumps(sj))
    (tmp_path / "v4").mkdir()
    (tmp_path / "v4" / "x").write_text("")
    with pytest.raises(VivadoError, match="not empty"):
        prepare_project(tmp_path / "v4", rtl_dir=rtl, shell_dir=shell, board=board, clock_mhz=100)
    with pytest.raises(VivadoError, match="base name"):
        prepare_project(
            tmp_path / "v5",
            rtl_dir=rtl,
            shell_dir=shell,
            board=board,
            clock_mhz=100,
            base_name="my design",
        )
    with pytest.raises(VivadoError, match="manifest"):
        prepare_project(
            tmp_path / "v6", rtl_dir=tmp_path, shell_dir=shell, board=board, clock_mhz=100
        )


# ---- reports -------------------------------------------------------------------------------------


def test_timing_summary_parser() -> None:
    met = parse_timing_summary((FIXTURES / "timing_summary_met.rpt").read_text())
    assert (met.wns_ns, met.tns_ns, met.whs_ns, met.ths_ns) == (1.418, 0.0, 0.021, 0.0)
    assert (met.setup_failing, met.hold_failing, met.endpoints) == (0, 0, 18822)
    assert met.met
    bad = parse_timing_summary((FIXTURES / "timing_summary_failed.rpt").read_text())
    assert (bad.wns_ns, bad.tns_ns, bad.setup_failing) == (-0.734, -52.118, 143)
    assert not bad.met
    unconstrained = (
        (FIXTURES / "timing_summary_met.rpt")
        .read_text()
        .replace("      1.418        0.000", "        inf        0.000", 1)
    )
    assert not parse_timing_summary(unconstrained).constrained
    with pytest.raises(VivadoError, match="no Design Timing Summary"):
        parse_timing_summary("Timing Summary Report\n", source="x.rpt")


def test_utilization_parser() -> None:
    z7 = parse_utilization((FIXTURES / "utilization_xc7.rpt").read_text())
    assert z7.used == {"LUT": 3911, "FF": 5031, "BRAM36": 4.5, "URAM": 0, "DSP": 2}
    assert z7.available == {"LUT": 53200, "FF": 106400, "BRAM36": 140, "URAM": 0, "DSP": 220}
    assert z7.device == "7z020clg400-1"
    zu = parse_utilization((FIXTURES / "utilization_xcup.rpt").read_text())
    assert zu.used == {"LUT": 21434, "FF": 27543, "BRAM36": 41.5, "URAM": 8, "DSP": 0}
    assert zu.available["URAM"] == 96 and zu.available["BRAM36"] == 312
    assert zu.as_dict()["BRAM36"] == {"used": 41.5, "available": 312}
    with pytest.raises(VivadoError, match="'Slice LUTs' / 'CLB LUTs'"):
        parse_utilization((FIXTURES / "utilization_hierarchical.rpt").read_text(), source="h")


# ---- the run, through a stand-in `vivado` on PATH ------------------------------------------------


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``vivado`` executable first on PATH (the stand-in above); returns its record file."""
    record = stand_in_vivado(tmp_path, monkeypatch)
    assert find_vivado() == tmp_path / "bin" / "vivado"
    return record


def finish(project, build: Path, dest: Path, board: str, shell: Path, lines: list[str]):
    """What the flow's bitstream step does: run, collect, publish."""
    result = run_vivado(
        project.dir, work_dir=build / names.VIVADO_WORK, timeout_s=120, log=lines.append, jobs=2
    )
    manifest = collect_bitstream(
        result,
        build / names.BITSTREAM,
        board=load_board(board),
        model_sha256=MODEL_SHA,
        shell_dir=shell,
    )
    return result, manifest, publish_bitstream(build / names.BITSTREAM, dest, board)


@pytest.mark.parametrize("board", ["PYNQ-Z2", "ZCU104"])
def test_run_collect_publish(tmp_path: Path, stand_in: Path, board: str) -> None:
    project, build, shell = prepared(tmp_path, board, weights=board == "ZCU104")
    lines: list[str] = []
    dest = tmp_path / "bitstreams"
    result, manifest, published = finish(project, build, dest, board, shell, lines)
    # how Vivado was called: batch mode, build.tcl of the project, in the work folder
    (call,) = [json.loads(line) for line in stand_in.read_text().splitlines()]
    work = build / names.VIVADO_WORK
    assert call["cwd"] == str(work)
    assert call["argv"][:2] == ["-mode", "batch"]
    assert call["source"] == str((project.dir / BUILD_TCL).resolve()) and call["source_exists"]
    assert call["argv"][-2:] == ["-tclargs", "2"]
    assert call["files"] and all(f["exists"] for f in call["files"])
    assert all(f["path"].startswith(str(project.dir)) for f in call["files"][:4])
    # progress was streamed
    assert any(line.startswith("synthesis") for line in lines)
    assert any(line.startswith("done:") for line in lines)
    assert not any("warning: Vivado" in line for line in lines)
    # the bitstream folder and the manifest
    out = build / names.BITSTREAM
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["bireal.bit", "bireal.hwh", "manifest.json", "reports"]
        + (["weights.bin"] if board == "ZCU104" else [])
    )
    b = load_board(board)
    assert manifest["board"] == board and manifest["part"] == b.part
    assert manifest["board_part"] == b.board_part
    assert manifest["board_files"] == ("installed" if board == "ZCU104" else "missing")
    assert manifest["sha256"]["bitstream"] == sha256_file(out / "bireal.bit")
    assert manifest["sha256"]["hwh"] == sha256_file(out / "bireal.hwh")
    assert manifest["sha256"]["model"] == MODEL_SHA
    assert manifest["clock"]["requested_mhz"] == b.clock_mhz
    assert abs(manifest["clock"]["actual_mhz"] - b.clock_mhz) < 0.01
    assert manifest["streams"]["image"]["dma_bits"] == 32
    assert manifest["streams"]["image"]["shape"] == [16, 16, 3]
    assert manifest["streams"]["output"]["format"] == {"elem_bits": 20, "signed": True, "elems": 2}
    assert manifest["control"]["registers"][0]["name"] == "CTRL"
    assert manifest["timing"]["wns_ns"] == 1.418 and manifest["timing"]["whs_ns"] == 0.021
    assert manifest["resources"]["LUT"]["used"] == (3911 if board == "PYNQ-Z2" else 21434)
    assert manifest["vivado_version"] == "2023.2" and manifest["vivado_version_known"]
    assert manifest["project_version"]
    assert manifest["address_map"][0]["cell"] == "shell"
    if board == "ZCU104":
        assert manifest["sha256"]["weights"] == sha256_file(shell / "weights.bin")
        assert [d["cell"] for d in manifest["dmas"]] == ["dma_io", "dma_wgt"]
    # published as a whole
    assert published == dest / board
    assert check_bitstream_dir(published, board) == manifest
    assert sorted(p.name for p in dest.iterdir()) == [board]
    assert json.loads((out / "manifest.json").read_text()) == manifest


@pytest.mark.parametrize(
    ("mode", "words", "report"),
    [
        ("slack", "timing not met: worst negative slack -0.734 ns", "timing_summary.rpt"),
        ("nohwh", "no hardware handoff (.hwh) of block design bireal", "console.log"),
        ("exit1", "Vivado exited with status 1", "console.log"),
        ("lost_hwh", "hardware handoff", "console.log"),
        ("synth_error", "synthesis failed (synth_1: synth_design ERROR", "console.log"),
    ],
)
def test_failed_runs_raise_and_publish_nothing(
    tmp_path: Path,
    stand_in: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    words: str,
    report: str,
) -> None:
    project, build, shell = prepared(tmp_path, "PYNQ-Z2")
    dest = tmp_path / "bitstreams"
    monkeypatch.setenv("FAKE_VIVADO_MODE", mode)
    with pytest.raises(VivadoError) as err:
        finish(project, build, dest, "PYNQ-Z2", shell, [])
    e = err.value
    assert words in e.summary, e.summary
    assert e.path is not None and e.path.name == report and e.path.is_file()
    assert "--- the last" in str(e) and e.tail, "the log's tail belongs in the message"
    if mode == "exit1":
        assert any("license" in line for line in e.tail)
    assert not dest.exists(), "a failed run published something"
    assert not (build / names.BITSTREAM).exists()
    assert (build / names.VIVADO_WORK / "console.log").is_file(), "the work folder is kept"


def test_other_vivado_version_warns_and_still_builds(
    tmp_path: Path, stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VIVADO_MODE", "version")
    project, build, shell = prepared(tmp_path, "PYNQ-Z2")
    lines: list[str] = []
    result, manifest, published = finish(project, build, tmp_path / "bs", "PYNQ-Z2", shell, lines)
    assert result.vivado_version == "2021.1" and not result.version_known
    assert manifest["vivado_version"] == "2021.1" and manifest["vivado_version_known"] is False
    said = [line for line in lines if "2021.1" in line]
    assert any(line.startswith("BIREAL-WARNING: Vivado 2021.1") for line in said)
    assert any(line.startswith("warning: Vivado 2021.1") for line in said)
    assert published.is_dir()
    assert version_known("2023.2.1") and not version_known("2021.1") and "2024.2" in WRITTEN_FOR


def test_timeout_stops_vivado(tmp_path: Path, stand_in: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_VIVADO_MODE", "hang")
    project, build, _ = prepared(tmp_path, "PYNQ-Z2")
    with pytest.raises(VivadoError, match="ran past its limit of 2 s") as err:
        run_vivado(project.dir, work_dir=build / "w", timeout_s=2, log=lambda _: None)
    assert "stand-in" in str(err.value)


def test_read_result_checks_slack_before_trusting_outputs(tmp_path: Path) -> None:
    """Outputs that all exist with exit status 0 are still refused on a negative slack."""
    project, build, _ = prepared(tmp_path, "ZCU104")
    work = build / names.VIVADO_WORK
    fake, code = evaluate(project, work, installed=True)
    assert code == 0
    log = work / "console.log"
    log.write_text("line\n" * 30)
    assert read_result(project.dir, work, returncode=0, log_path=log).timing.met
    shutil.copyfile(FIXTURES / "timing_summary_failed.rpt", work / "reports/timing_summary.rpt")
    with pytest.raises(VivadoError, match="worst negative slack -0.734") as err:
        read_result(project.dir, work, returncode=0, log_path=log)
    assert len(err.value.tail) == 20
    shutil.copyfile(FIXTURES / "timing_summary_met.rpt", work / "reports/timing_summary.rpt")
    (work / "out/bireal.bit").unlink()
    with pytest.raises(VivadoError, match="bitstream .* is missing"):
        read_result(project.dir, work, returncode=0, log_path=log)


def test_publish_replaces_whole_and_refuses_damage(tmp_path: Path, stand_in: Path) -> None:
    project, build, shell = prepared(tmp_path, "PYNQ-Z2")
    dest = tmp_path / "bitstreams"
    (dest / "PYNQ-Z2").mkdir(parents=True)
    (dest / "PYNQ-Z2" / "stale.bit").write_text("old")
    finish(project, build, dest, "PYNQ-Z2", shell, [])
    assert not (dest / "PYNQ-Z2" / "stale.bit").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["PYNQ-Z2"]
    out = build / names.BITSTREAM
    with pytest.raises(VivadoError, match="for 'PYNQ-Z2', not 'ZCU104'"):
        publish_bitstream(out, dest, "ZCU104")
    (out / "bireal.hwh").write_text("changed")
    before = sha256_file(dest / "PYNQ-Z2" / "bireal.hwh")
    with pytest.raises(VivadoError, match="does not match the sha256"):
        publish_bitstream(out, dest, "PYNQ-Z2")
    assert sha256_file(dest / "PYNQ-Z2" / "bireal.hwh") == before
    assert sorted(p.name for p in dest.iterdir()) == ["PYNQ-Z2"]


# ---- a real build (Vivado installed) -------------------------------------------------------------


def _vivado_or_skip() -> None:
    if find_vivado() is None:
        pytest.skip("Vivado is not installed here (no 'vivado' on PATH, no $XILINX_VIVADO)")


@pytest.mark.vivado
@pytest.mark.slow
@pytest.mark.parametrize("board", ["PYNQ-Z2", "ZCU104"])
def test_tiny_bitstream_with_vivado(tmp_path: Path, board: str) -> None:
    _vivado_or_skip()
    from bireal_fpga.flow import BuildConfig, build

    out = tmp_path / "build"
    bitstreams = tmp_path / "bitstreams"
    build(BuildConfig("tiny", board, str(out), synth=False, bitstream_dir=str(bitstreams)))
    published = bitstreams / board
    manifest = check_bitstream_dir(published, board)
    assert manifest["timing"]["wns_ns"] >= 0 and manifest["timing"]["whs_ns"] >= 0
    assert (published / "bireal.bit").stat().st_size > 100_000
    assert (published / "bireal.hwh").read_text().lstrip().startswith("<?xml")
    assert manifest["part"] == load_board(board).part
    assert manifest["resources"]["LUT"]["used"] > 0


@pytest.mark.slow
def test_prepare_on_the_tiny_build(tiny_rtl: Path, tmp_path: Path) -> None:
    """The project of the real tiny build (rtl/ and shell/ from the flow) evaluates cleanly."""
    if not (tiny_rtl / names.SHELL / names.SHELL_MANIFEST).is_file():
        pytest.skip("the tiny build has no shell/ (the shell step is not in this flow yet)")
    project = prepare_project(
        tmp_path / names.VIVADO,
        rtl_dir=tiny_rtl / names.RTL,
        shell_dir=tiny_rtl / names.SHELL,
        board=load_board("PYNQ-Z2"),
        clock_mhz=100,
    )
    fake, code = evaluate(project, tmp_path / "work", installed=False)
    assert code == 0
    assert all(Path(f).is_file() for f in fake.files)
    assert set(project.data["sources"]) >= {f"src/{n}" for n in ("bireal_shell.v",)}


def test_stand_in_is_python() -> None:
    """The stand-in's text compiles (it is also run as the `vivado` executable)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; compile(sys.stdin.read(), 'vivado', 'exec')"],
        input=FAKE_VIVADO,
        text=True,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr


# ---- the flow's bitstream step, with the stand-in ------------------------------------------------


def test_the_flow_builds_and_publishes_the_bitstream(
    tiny_rtl: Path, tmp_path: Path, stand_in: Path
) -> None:
    """The whole build where a `vivado` is installed (the stand-in): every step before the
    bitstream is reused from the session build, the bitstream step runs Vivado on the
    project the flow prepared, checks it, publishes to ``bitstreams/<BOARD>/``, and the
    report says the build is complete."""
    from bireal_fpga.flow import BuildConfig, build

    folder = tmp_path / "b"
    shutil.copytree(tiny_rtl, folder, symlinks=True)
    dest = tmp_path / "bitstreams"
    cfg = BuildConfig(
        "tiny", "PYNQ-Z2", str(folder), n_check=8, synth=False, bitstream_dir=str(dest)
    )
    report = build(cfg, log=lambda _m: None).report
    ran = [s["name"] for s in report["stages"] if not s["reused"]]
    assert ran == ["bitstream"] and report["complete"] is True and "skipped" not in report
    assert report["vivado"]["status"] == "done" and report["vivado"]["version"] == "2023.2"
    assert report["vivado"]["timing"]["wns_ns"] == 1.418
    manifest = check_bitstream_dir(dest / "PYNQ-Z2", "PYNQ-Z2")
    assert manifest["sha256"]["model"] == sha256_file(folder / names.MODEL)
    shell = json.loads((folder / names.SHELL / names.SHELL_MANIFEST).read_text())
    assert manifest["streams"]["image"]["dma_bits"] == shell["image"]["dma_bits"]
    assert (folder / names.BITSTREAM / "bireal.bit").is_file()
    (call,) = [json.loads(line) for line in stand_in.read_text().splitlines()]
    assert call["cwd"] == str((folder / names.VIVADO_WORK).resolve()) or call["cwd"] == str(
        folder / names.VIVADO_WORK
    )


@pytest.mark.parametrize("mode", ["slack", "nohwh", "exit1"])
def test_a_failed_vivado_run_ends_the_build_and_publishes_nothing(
    tiny_rtl: Path, tmp_path: Path, stand_in: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The CLI on a failing Vivado run: exit 2, the log's tail and then one error line naming
    the reason and the file to read; nothing in bitstreams/, no bitstream/ in the build, the
    work folder kept for its logs."""
    monkeypatch.setenv("FAKE_VIVADO_MODE", mode)
    folder = tmp_path / "b"
    shutil.copytree(tiny_rtl, folder, symlinks=True)
    dest = tmp_path / "bitstreams"
    argv = ["build", "tiny", "--board", "PYNQ-Z2", "--out", folder, "--n", 8, "--no-synth"]
    proc = subprocess.run(
        [sys.executable, "-m", "bireal_fpga", *map(str, argv), "--bitstreams", str(dest)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(folder / names.VIVADO_WORK) in last, last
    assert "  | " in proc.stderr  # the log's tail
    assert not dest.exists() and not (folder / names.BITSTREAM).exists()
    assert (folder / names.VIVADO_WORK).is_dir()
    report = json.loads((folder / names.REPORT).read_text())
    assert report["missing_stages"] == ["bitstream"]
