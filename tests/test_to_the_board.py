"""The way to the board in the build flow: per-board defaults, the two fit verdicts (the cost
model's after folding, Yosys's before Vivado), and a build without Vivado that runs every
step, leaves the Vivado project and ends with ``bitstream skipped: Vivado not found``."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ENV, assert_ok, cli, run

from bireal_fpga import names
from bireal_fpga.boards import PS_KINDS, BoardError, board_names, load_board
from bireal_fpga.flow import STEPS, BuildConfig, BuildState, Step, build
from bireal_fpga.flow.steps import DoesNotFit
from bireal_fpga.spec import PRESETS

QUIET = {"log": lambda _msg: None}


def env_without_vivado() -> dict[str, str]:
    path = [p for p in ENV["PATH"].split(os.pathsep) if not (Path(p) / "vivado").exists()]
    env = {k: v for k, v in ENV.items() if k != "XILINX_VIVADO"}
    return {**env, "PATH": os.pathsep.join(path)}


@pytest.mark.parametrize("name", board_names())
def test_every_board_names_its_defaults(name: str) -> None:
    board = load_board(name)
    assert board.part and board.board_part.count(":") == 3
    assert board.ps in PS_KINDS
    assert board.ps == ("processing_system7" if board.family == "xc7" else "zynq_ultra_ps_e")
    assert board.axi_port_bits == (64 if board.family == "xc7" else 128)
    assert board.default_model in PRESETS and board.clock_mhz > 0
    assert board.target_fps == "max" or int(board.target_fps) > 0
    # bireal18-cifar's 11 Mbit of binary weights do not fit the small chips' block RAM
    if board.resources["BRAM36"] * 36 * 1024 + board.resources["URAM"] * 288 * 1024 < 14e6:
        assert board.default_model != "bireal18-cifar"


def test_a_malformed_board_preset_names_the_field(tmp_path: Path, monkeypatch) -> None:
    import bireal_fpga.boards as boards

    data = json.loads((boards.boards_dir() / "ZCU104.json").read_text())
    (tmp_path / "X1.json").write_text(json.dumps({**data, "name": "X1", "colour": "red"}))
    del data["board_part"]
    (tmp_path / "X2.json").write_text(json.dumps({**data, "name": "X2"}))
    (tmp_path / "X3.json").write_text(
        json.dumps({**data, "name": "X3", "board_part": "a:b:c:d", "ps": "zynq"})
    )
    monkeypatch.setattr(boards, "boards_dir", lambda: tmp_path)
    with pytest.raises(BoardError, match="X1.json.*unknown field 'colour'"):
        load_board("X1")
    with pytest.raises(BoardError, match="X2.json.*'board_part' is missing"):
        load_board("X2")
    with pytest.raises(BoardError, match="X3.json.*ps 'zynq'"):
        load_board("X3")


@pytest.mark.parametrize("board", ["PYNQ-Z2", "ZCU104"])
def test_no_source_builds_the_boards_default_model(board: str, tmp_path: Path) -> None:
    """``make build BOARD=X`` passes no model and no target: the preset's are used."""
    out = tmp_path / "b"
    assert_ok(cli("build", "--board", board, "--out", out, "--to-step", "model"))
    preset = load_board(board)
    cfg = json.loads((out / names.CONFIG).read_text())
    assert cfg["source"] == preset.default_model
    assert cfg["target_fps"] == str(preset.target_fps)


def test_a_design_beyond_the_chip_stops_after_folding(tmp_path: Path) -> None:
    """bireal-small-cifar at 40,000 FPS needs several times the xc7z020's DSPs by the cost
    model: the build stops right after folding with the resource table and the largest
    consumer, before FIFO sizing, simulation and Yosys."""
    out = tmp_path / "b"
    proc = cli(
        "build", "bireal-small-cifar", "--board", "PYNQ-Z2", "--out", out, "--target-fps", 40000
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: the design does not fit PYNQ-Z2 by the rtl cost model")
    assert "largest consumer MVAU_hls_" in lines[-1]
    assert any("DSP" in ln and "220" in ln and "%" in ln for ln in lines[:-1])  # the table
    assert (out / names.FOLDED).is_file() and not (out / names.RTL_GRAPH).exists()
    report = json.loads((out / names.REPORT).read_text())
    assert report["stages"][-1]["name"] == "folding" and "fifo-sizing" in report["missing_stages"]


def test_yosys_saying_no_fit_stops_before_the_shell_and_vivado(tiny_hw: Path, tmp_path: Path):
    """Yosys overturns the cost model's verdict (stood in for by a step reporting 2x the
    board's LUTs) and no refolding is allowed: the build stops at fit-yosys, naming the
    resource and the largest consumer; no shell, no Vivado project."""

    def step_synth(state: BuildState, cfg: BuildConfig) -> BuildState:
        per_layer = {
            n: {"LUT": 2.0 * state.board.resources["LUT"] / 2, "BRAM36": 0.0}
            for n in ("MVAU_hls_0", "MVAU_hls_1")
        }
        per_layer["MVAU_hls_1"]["LUT"] += 1
        total = {"LUT": sum(v["LUT"] for v in per_layer.values()), "BRAM36": 0.0}
        record = {"resources": {"total": total, "per_layer": per_layer}, "fits": False}
        state.output(names.SYNTH).write_text(json.dumps(record))
        return state.with_report(rtl={"resources": record["resources"], "fits": False})

    stand_in = Step("synth", step_synth, reads=(names.FOLDED,), writes=(names.SYNTH,))
    rows = {s.name: s for s in STEPS}
    table = [
        *[rows[n] for n in ("model", "integer", "golden-check", "qonnx", "hw", "specialize")],
        *[rows[n] for n in ("folding", "fit-estimate")],
        stand_in,
        *[rows[n] for n in ("fit-yosys", "shell", "vivado")],
    ]
    folder = tmp_path / "b"
    shutil.copytree(tiny_hw, folder)
    cfg = BuildConfig("tiny", "PYNQ-Z2", str(folder), fit_iterations=0)
    with pytest.raises(DoesNotFit, match=r"Yosys: .*LUT 106,401 of 53,200 .*MVAU_hls_1"):
        build(cfg, steps=table, **QUIET)
    assert not (folder / names.SHELL).exists() and not (folder / names.VIVADO).exists()


def test_without_vivado_every_step_runs_and_the_build_ends_well(tiny_rtl: Path, tmp_path):
    """A build where Vivado is not installed: every step before it is done (here reused from
    the session build), the Vivado project is ready, the command that finishes it is printed,
    the last line is ``bitstream skipped: Vivado not found``, and the exit status is 0; the
    report says what was skipped and why."""
    folder = tmp_path / "b"
    shutil.copytree(tiny_rtl, folder, symlinks=True)
    argv = ["build", "tiny", "--board", "PYNQ-Z2", "--out", folder, "--n", 8, "--no-synth"]
    proc = run(
        [sys.executable, "-m", "bireal_fpga", *argv, "--bitstreams", tmp_path / "bits"],
        env=env_without_vivado(),
    )
    assert_ok(proc)
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == "bitstream skipped: Vivado not found"
    assert any("the Vivado project is ready" in ln for ln in lines)
    assert any(ln.startswith("[build] to finish it where Vivado is installed:") for ln in lines)
    report = json.loads((folder / names.REPORT).read_text())
    assert report["skipped"] == [{"name": "bitstream", "reason": "Vivado not found"}]
    assert report["complete"] is False and report["missing_stages"] == ["bitstream"]
    assert report["vivado"]["status"] == "skipped"
    reused = {s["name"]: s["reused"] for s in report["stages"]}
    assert all(reused[s] for s in reused if s != "bitstream"), reused
    assert (folder / names.VIVADO).is_dir() and any((folder / names.VIVADO).glob("*.tcl"))
    assert not (folder / names.BITSTREAM).exists() and not (tmp_path / "bits").exists()
    assert (folder / names.REPORT_HTML).is_file()
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["skipped"] == report["skipped"]
