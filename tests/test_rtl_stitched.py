"""The stitched accelerator: RTL of a whole tiny Bi-Real net, FIFOs sized by simulation,
simulated by Verilator against the PyTorch integer form; CLI build --until rtl, verify
--stages rtlsim, sim; byte-identical regeneration; a stall is named, never hangs."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_error, assert_ok, cli
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.flow.records import artefact_digest
from bireal_fpga.flow.verify import random_images
from bireal_fpga.integer.forward import run_integer
from bireal_fpga.integer.params import IntegerNet
from bireal_fpga.rtl.stitch import fifo_nodes, load_design, set_fifo_depths, stitch
from bireal_fpga.rtlsim import fifo_sizing
from bireal_fpga.rtlsim.fifo_sizing import grow_stalled
from bireal_fpga.rtlsim.stitched import StitchedSim, compare_outputs
from bireal_fpga.rtlsim.verilator_sim import SimulationStalled


@pytest.fixture(scope="session")
def tiny_build(tiny_rtl: Path) -> Path:
    """``tiny`` built for PYNQ-Z2 down to the stitched RTL (no Yosys: see test_synth); shared,
    so simulations run in the tests' own folders."""
    return tiny_rtl


def test_build_until_rtl_report(tiny_build: Path) -> None:
    report = json.loads((tiny_build / "report.json").read_text())
    names = [s["name"] for s in report["stages"]]
    i = names.index("fifo-sizing")
    assert names[i : i + 5] == ["fifo-sizing", "rtl", "rtlsim", "synth", "fit-yosys"]
    assert report["rtl"]["resources"] is None and report["rtl"]["fits"] is None  # --no-synth
    rtl = report["rtl"]
    assert rtl["rtlsim"]["mismatches"] == 0 and rtl["rtlsim"]["n"] == 8
    est, meas = rtl["interval_cycles"]["estimated"], rtl["interval_cycles"]["measured"]
    # the pipeline reaches the slowest layer's interval (FIFOs sized by simulation)
    assert abs(meas - est) / est < 0.10, (meas, est)
    assert rtl["fps"]["measured"] == pytest.approx(rtl["clock_mhz"] * 1e6 / meas)
    assert rtl["bottleneck"]
    sizing = report["fifo_sizing"]
    depths = sizing["depths"]
    assert depths and all(d >= 2 for d in depths.values())
    assert sizing["steady"] and sizing["runs"][-1]["frames"] == sizing["frames"]
    manifest = json.loads((tiny_build / "rtl" / "manifest.json").read_text())
    assert manifest["top"] == "bireal_accel"
    for name in manifest["sources"] + manifest["data_files"]:
        assert (tiny_build / "rtl" / name).is_file(), name


def test_sizing_doubles_the_frames_until_steady(
    tiny_build: Path, tmp_path: Path, monkeypatch
) -> None:
    """A paced run whose interval is still above the estimate is repeated with twice the
    frames, up to all given (here never steady: the tolerance is negative)."""
    monkeypatch.setattr(fifo_sizing, "STEADY_TOLERANCE", -1.0)
    model = ModelWrapper(str(tiny_build / "rtl.onnx"))
    net = IntegerNet.load(tiny_build / "integer.npz")
    images = np.random.default_rng(4).integers(0, 256, (20, *net.input_shape), np.uint8)
    sized, record = fifo_sizing.size_fifos(model, tmp_path, images)
    assert [r["frames"] for r in record["runs"]] == [8, 16, 20]
    assert record["frames"] == 20 and record["steady"] is False
    assert all(getCustomOp(n).get_nodeattr("depth") >= 2 for n in fifo_nodes(sized))


def test_stitched_matches_pytorch_on_more_images_with_backpressure(
    tiny_build: Path, tmp_path: Path
) -> None:
    design = load_design(tiny_build / "rtl")
    net = IntegerNet.load(tiny_build / "integer.npz")
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(24, *net.input_shape), dtype=np.uint8)
    ref = run_integer(net, torch.from_numpy(images)).numpy()
    sim = StitchedSim(design, tiny_build / "sim")
    outputs, timing, _ = sim.run(images, stall=0.3, rundir=tmp_path / "run")
    compare_outputs(outputs, ref, "stitched RTL")
    assert timing.frames == 24


def test_relative_work_folder(tiny_build: Path, tmp_path: Path, monkeypatch) -> None:
    """`make build` passes a relative --out: the simulator, run inside its own folder, must
    still be found."""
    design = load_design(tiny_build / "rtl")
    net = IntegerNet.load(tiny_build / "integer.npz")
    images = np.random.default_rng(9).integers(0, 256, (2, *net.input_shape), dtype=np.uint8)
    monkeypatch.chdir(tmp_path)
    outputs, _, _ = StitchedSim(design, Path("rel") / "sim").run(images)
    compare_outputs(outputs, run_integer(net, torch.from_numpy(images)).numpy(), "relative")


def test_output_mismatch_is_reported(tiny_build: Path, tmp_path: Path) -> None:
    design = load_design(tiny_build / "rtl")
    net = IntegerNet.load(tiny_build / "integer.npz")
    images = np.zeros((2, *net.input_shape), dtype=np.uint8)
    ref = run_integer(net, torch.from_numpy(images)).numpy()
    outputs, _, _ = StitchedSim(design, tiny_build / "sim").run(images, rundir=tmp_path / "r")
    ref[1, 3] += 1
    with pytest.raises(Exception, match=r"on 1 of 2 images; first: image 1, output 3"):
        compare_outputs(outputs, ref, "stitched RTL")


def test_rtl_regeneration_is_byte_identical(tiny_build: Path, tmp_path: Path) -> None:
    model = ModelWrapper(str(tiny_build / "rtl.onnx"))
    stitch(model, tmp_path / "again")
    cmp = filecmp.dircmp(tiny_build / "rtl", tmp_path / "again")
    assert not cmp.left_only and not cmp.right_only
    _, mismatch, errors = filecmp.cmpfiles(
        tiny_build / "rtl", tmp_path / "again", cmp.common_files, shallow=False
    )
    assert mismatch == [] and errors == []


def test_too_small_shortcut_fifo_stall_is_named(tiny_build: Path, tmp_path: Path) -> None:
    """The shortcut FIFO of the first block at depth 2 deadlocks the fork/join: the run ends
    with an error naming the full stream instead of hanging."""
    model = ModelWrapper(str(tiny_build / "rtl.onnx"))
    dup = next(n for n in model.graph.node if n.op_type.startswith("DuplicateStreams"))
    shortcut = next(n for n in fifo_nodes(model) if n.input[0] == dup.output[1])
    small = set_fifo_depths(model, {shortcut.name: 2})
    design = stitch(small, tmp_path / "rtl")
    images = np.zeros((2, *IntegerNet.load(tiny_build / "integer.npz").input_shape), np.uint8)
    named = rf"stalled after \d+ cycles: stream '{dup.output[1]}: {dup.name} -> "
    with pytest.raises(SimulationStalled, match=named):
        StitchedSim(design, tmp_path / "sim").run(images)
    with pytest.raises(SimulationStalled, match=named):  # parts run in parallel: the same
        StitchedSim(design, tmp_path / "sim").run(images, jobs=2)


def test_parallel_parts_equal_one_run(tiny_build: Path, tmp_path: Path) -> None:
    """The images split into 3 parts, simulated at once from reset each: the same outputs,
    the same latency and steady-state interval as one run; the cycles of every part are
    counted (each fills the pipeline again)."""
    design = load_design(tiny_build / "rtl")
    net = IntegerNet.load(tiny_build / "integer.npz")
    images = np.random.default_rng(11).integers(0, 256, (21, *net.input_shape), np.uint8)
    sim = StitchedSim(design, tiny_build / "sim")
    one, t1, _ = sim.run(images, jobs=1, rundir=tmp_path / "one")
    par, t3, r3 = sim.run(images, jobs=3, rundir=tmp_path / "par")
    assert np.array_equal(one, par)
    compare_outputs(par, run_integer(net, torch.from_numpy(images)).numpy(), "parallel")
    assert (t3.runs, t3.frames, len(t3.frame_end)) == (3, 21, 21)
    assert sorted(p.name for p in (tmp_path / "par").iterdir()) == ["part0", "part1", "part2"]
    assert t3.latency == t1.latency
    assert t1.interval is not None and t3.interval == pytest.approx(t1.interval, rel=0.02)
    assert r3.cycles == t3.cycles > t1.cycles
    assert len(r3.outputs["out0_V"]) == design.output.words * 21


def test_stalled_fifos_are_doubled_until_the_run_completes(
    tiny_build: Path, tmp_path: Path
) -> None:
    """The build's fallback: the first block's shortcut FIFO cut to depth 20 deadlocks the
    full-rate run; the FIFOs full at the stall are doubled and the run repeated until it
    completes, bit-exact."""
    model = ModelWrapper(str(tiny_build / "rtl.onnx"))
    dup = next(n for n in model.graph.node if n.op_type.startswith("DuplicateStreams"))
    shortcut = next(n for n in fifo_nodes(model) if n.input[0] == dup.output[1])
    small = set_fifo_depths(model, {shortcut.name: 20})
    design = stitch(small, tmp_path / "rtl")
    net = IntegerNet.load(tiny_build / "integer.npz")
    images = np.random.default_rng(3).integers(0, 256, (3, *net.input_shape), dtype=np.uint8)
    run = grow_stalled(small, design, images, tmp_path / "sim")
    assert run.growth and shortcut.name in run.growth[0], run.growth
    assert run.growth[0][shortcut.name] == 40
    compare_outputs(run.outputs, run_integer(net, torch.from_numpy(images)).numpy(), "grown")
    assert json.loads((tmp_path / "rtl" / "manifest.json").read_text())["top"] == "bireal_accel"
    with pytest.raises(SimulationStalled):  # no growth allowed: the stall is raised
        grow_stalled(small, stitch(small, tmp_path / "rtl2"), images, tmp_path / "s2", max_growth=0)


def test_verify_and_sim_cli(tiny_build: Path) -> None:
    before = artefact_digest(tiny_build / "sim")
    run = cli("verify", tiny_build, "--stages", "pytorch,golden,rtlsim", "--n", 12, "--json")
    assert_ok(run)
    result = json.loads(run.stdout)
    for stage in ("pytorch", "golden", "rtlsim"):
        assert result["stages"][stage] == {"n": 12, "mismatches": 0, "first_mismatch": None}
    assert result["rtlsim_timing"]["frames"] == 12
    run = cli("sim", tiny_build, "--n", 3, "--json")
    assert_ok(run)
    sim = json.loads(run.stdout)
    assert len(sim["outputs"]) == 3 and len(sim["outputs"][0]) == 10
    assert sim["timing"]["frames"] == 3 and sim["fps"] > 0
    net = IntegerNet.load(tiny_build / "integer.npz")
    images = random_images(net.input_shape, 3, seed=0).batch(0, 3)
    ref = run_integer(net, torch.from_numpy(images)).numpy()
    assert np.array_equal(np.array(sim["outputs"]), ref)
    assert artefact_digest(tiny_build / "sim") == before  # runs go to scratch folders


@pytest.fixture
def loaded_build(tiny_loaded: Path) -> Path:
    return tiny_loaded


def test_runtime_loaded_weights_stitched(loaded_build: Path) -> None:
    """The weight bus in the stitched top: loaded first, then bit-exact against PyTorch; the
    manifest lists each layer's beats and the load image exists as hex and binary."""
    manifest = json.loads((loaded_build / "rtl" / "manifest.json").read_text())
    w = manifest["weights"]
    assert w["port"] == "wgt_V" and w["bits"] == 64 and len(w["layers"]) == 2
    assert [d["first_beat"] for d in w["layers"]] == [0, w["layers"][0]["beats"]]
    assert w["beats"] == sum(d["beats"] for d in w["layers"])
    assert (loaded_build / "rtl" / w["binary"]).stat().st_size == 8 * w["beats"]
    assert len((loaded_build / "rtl" / w["file"]).read_text().split()) == w["beats"]
    top = (loaded_build / "rtl" / "bireal_accel.sv").read_text()
    assert "wgt_V_TDATA" in top and ".WGT_BASE(0)" in top
    run = cli("verify", loaded_build, "--stages", "rtlsim", "--n", 6, "--json")
    assert_ok(run)
    result = json.loads(run.stdout)
    assert result["stages"]["rtlsim"] == {"n": 6, "mismatches": 0, "first_mismatch": None}


def test_corrupted_weights_name_the_first_differing_layer(
    loaded_build: Path, tmp_path: Path
) -> None:
    """The second block's binary conv weights inverted on the weight bus: verify replays the
    first bad image with the layer outputs recorded and names blocks.1 (blocks.0 is right)."""
    bad = tmp_path / "tiny"
    shutil.copytree(loaded_build, bad, ignore=shutil.ignore_patterns("sim"))
    w = json.loads((bad / "rtl" / "manifest.json").read_text())["weights"]
    second = w["layers"][1]
    path = bad / "rtl" / w["file"]
    beats = path.read_text().split()
    for i in range(second["first_beat"], second["first_beat"] + second["beats"]):
        beats[i] = f"{int(beats[i], 16) ^ (2**64 - 1):016x}"
    path.write_text("".join(b + "\n" for b in beats))
    run = cli("verify", bad, "--stages", "rtlsim", "--n", 4, "--json")
    assert run.returncode == 1, run.stderr
    result = json.loads(run.stdout)
    first = result["stages"]["rtlsim"]["first_mismatch"]
    assert result["stages"]["rtlsim"]["mismatches"] > 0
    assert ", layer blocks.1 at (" in first, first


def test_sim_without_rtl_is_an_error(tiny_hw: Path) -> None:
    assert_error(cli("sim", tiny_hw, "--n", 1), f"build '{tiny_hw}' has no RTL")
