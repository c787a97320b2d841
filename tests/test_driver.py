"""The driver (``bireal_fpga.driver``): one API over the board (pynq) and the simulation.

- the simulation backend runs the build's compiled model of shell + accelerator
  (``shell_sim/``) with the byte buffers and register writes the board path produces: outputs
  == PyTorch's integer form for batches of 1, 7 and 100, in one or several DMA batches,
  under random back-pressure, scores and top-1, with run-time weights loaded at open;
- the board path (``driver/board.py``) unchanged on the pynq stand-in (``standins/pynq``,
  whose DMA is the same model): exact; a stalled DMA ends in the timeout error within its
  deadline, naming the channel and its DMASR;
- every bad input and every missing or mismatched file: one clear error;
- the driver needs numpy alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import STANDINS, pynq_stand_in

from bireal_fpga import names
from bireal_fpga.driver import (
    Accelerator,
    DmaTimeoutError,
    DriverError,
    InputError,
    SimAccelerator,
    pick_backend,
)
from bireal_fpga.integer.forward import integer_layers
from bireal_fpga.integer.params import IntegerNet


def images_and_reference(build: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random uint8 NHWC images and PyTorch's integer form of them (class scores)."""
    net = IntegerNet.load(build / names.INTEGER)
    c, h, w = net.input_shape
    x = np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
    return x, integer_layers(net, x.transpose(0, 3, 1, 2))[names.HEAD]


def first_difference(out: np.ndarray, ref: np.ndarray) -> str:
    bad = np.flatnonzero((out != ref).any(axis=1))
    return f"{len(bad)} images differ, first image {bad[0]}" if len(bad) else "equal"


# ---- the simulation backend -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "batch_size", "stall"), [(1, None, 0.0), (7, None, 0.3), (100, 40, 0.2)]
)
def test_sim_backend_is_exact(tiny_rtl: Path, n: int, batch_size: int | None, stall: float) -> None:
    x, ref = images_and_reference(tiny_rtl, n, seed=n)
    with SimAccelerator(tiny_rtl, batch_size=batch_size, stall=stall, seed=n) as acc:
        assert acc.backend == "sim" and acc.classes == ref.shape[1]
        out = acc.run(x)
        assert out.dtype == np.int64 and out.shape == ref.shape
        assert np.array_equal(out, ref), first_difference(out, ref)
        stats = acc.stats
        want_batches = -(-n // (batch_size or n))
        assert stats.images == n and len(stats.batches) == want_batches
        assert all(b.cycles > 0 and b.wall_s > 0 for b in stats.batches)
        assert stats.fps_cycles > 0 and stats.fps > 0
        top1 = acc.run(x, top1=True)
        assert np.array_equal(top1, np.argmax(ref, axis=1)) and top1.shape == (n,)
        one = acc.run(x[0])  # one image, (H, W, C)
        assert np.array_equal(one, ref[:1])


def test_sim_cycle_counter_agrees_with_the_design(tiny_rtl: Path) -> None:
    """Without back-pressure, a batch's CYCLES grow by the design's interval per image."""
    from bireal_fpga.rtl.stitch import load_design

    interval = load_design(tiny_rtl / names.RTL).cycles
    x, _ = images_and_reference(tiny_rtl, 24, seed=3)
    with SimAccelerator(tiny_rtl) as acc:
        acc.run(x[:8])
        c8 = acc.stats.cycles
        acc.run(x)
        c24 = acc.stats.cycles
    per_image = (c24 - c8) / 16
    assert per_image == pytest.approx(interval, rel=0.02), (per_image, interval)


@pytest.fixture(scope="module")
def loaded_sim_folder(tiny_loaded: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build folder of the run-time-weights design with ``shell/`` and ``shell_sim/``."""
    from bireal_fpga.rtl.stitch import load_design
    from bireal_fpga.rtlsim.shell_sim import ShellSim, write_sim_folder
    from bireal_fpga.shell.generate import write_shell

    work = tmp_path_factory.mktemp("driver_loaded")
    folder = work / "build"
    design = load_design(tiny_loaded / names.RTL)
    c, h, w = IntegerNet.load(tiny_loaded / names.INTEGER).input_shape
    shell = folder / names.SHELL
    write_shell(design, shell, build_id=0x5EED1D00, clock_mhz=100.0, image_shape=(h, w, c))
    sim = ShellSim(tiny_loaded / names.RTL, shell, work / "compile")
    write_sim_folder(folder / names.SHELL_SIM, sim.build(), sim, "ZCU104")
    shutil.copy(tiny_loaded / names.INTEGER, folder / names.INTEGER)
    return folder


def test_run_time_weights_are_loaded_at_open(loaded_sim_folder: Path) -> None:
    from bireal_fpga.arch import shell as arch

    x, ref = images_and_reference(loaded_sim_folder, 9, seed=9)
    with SimAccelerator(loaded_sim_folder, stall=0.2, batch_size=4) as acc:
        assert acc.describe()["run_time_weights"] is True
        total = acc.shell["weights"]["beats"]
        assert acc.port.read(arch.OFFSETS["WEIGHT_BEATS"]) == total > 0
        out = acc.run(x)
        assert np.array_equal(out, ref), first_difference(out, ref)
    # a weight load of the wrong length is refused before anything is sent
    wrong = loaded_sim_folder.parent / "wrong"
    shutil.copytree(loaded_sim_folder, wrong)
    sim = wrong / names.SHELL_SIM
    (sim / "weights.bin").write_bytes((sim / "weights.bin").read_bytes()[:-8])
    with pytest.raises(DriverError, match="weights.bin' does not match the sha256"):
        SimAccelerator(wrong)


@pytest.fixture(scope="module")
def loaded_board_folder(
    loaded_sim_folder: Path, tiny_loaded: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``loaded_sim_folder`` with ``bitstream/`` for ZCU104, as the flow's vivado and bitstream
    steps make it (the project prepared, the stand-in ``vivado`` run, the result collected):
    two DMAs, the second for the weights, and ``weights.bin`` in the manifest."""
    from conftest import stand_in_vivado

    from bireal_fpga.boards import load_board
    from bireal_fpga.vivado.bitstreams import collect_bitstream
    from bireal_fpga.vivado.project import prepare_project
    from bireal_fpga.vivado.run import run_vivado

    work = tmp_path_factory.mktemp("driver_loaded_board")
    folder = work / "build"
    shutil.copytree(loaded_sim_folder, folder)
    board = load_board("ZCU104")
    with pytest.MonkeyPatch.context() as mp:
        stand_in_vivado(work, mp)
        project = prepare_project(
            work / names.VIVADO,
            rtl_dir=tiny_loaded / names.RTL,
            shell_dir=folder / names.SHELL,
            board=board,
            clock_mhz=100.0,
        )
        result = run_vivado(project.dir, work_dir=work / "vw", timeout_s=120, log=lambda _m: None)
    collect_bitstream(
        result,
        folder / names.BITSTREAM,
        board=board,
        model_sha256="ab" * 32,
        shell_dir=folder / names.SHELL,
    )
    return folder


def test_board_path_loads_the_weights_over_their_dma(
    loaded_board_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bireal_fpga.arch import shell as arch

    pynq_stand_in(monkeypatch, loaded_board_folder / names.SHELL_SIM, stall="0.2 0.2")
    monkeypatch.setenv("BOARD", "ZCU104")  # as a ZCU104 PYNQ image names its board
    manifest = json.loads((loaded_board_folder / "bitstream" / "manifest.json").read_text())
    assert [d["cell"] for d in manifest["dmas"]] == ["dma_io", "dma_wgt"]
    x, ref = images_and_reference(loaded_board_folder, 9, seed=19)
    with Accelerator.open(loaded_board_folder, backend="board", batch_size=4) as acc:
        assert set(acc.port.channels) == {"img", "out", "wgt"}
        assert acc.port.channels["wgt"][0] == "dma_wgt"
        assert acc.port.read(arch.OFFSETS["WEIGHT_BEATS"]) == acc.shell["weights"]["beats"]
        out = acc.run(x)
        assert np.array_equal(out, ref), first_difference(out, ref)


def test_sim_stall_ends_in_the_timeout_error(tiny_rtl: Path) -> None:
    x, _ = images_and_reference(tiny_rtl, 3, seed=1)
    with SimAccelerator(tiny_rtl, stall=(0.0, 1.0), timeout_s=1.0) as acc:
        t0 = time.monotonic()
        with pytest.raises(DmaTimeoutError) as err:
            acc.run(x)
        took = time.monotonic() - t0
        assert took < 6.0, took
        msg = str(err.value)
        assert "a batch of 3 images" in msg and "out (result S2MM) active, 0 of 120 bytes" in msg
        assert "STATUS 0x5 (BUSY WEIGHTS_LOADED)" in msg and "IMAGES_DONE 0" in msg
        # the accelerator is still busy: the next run says so instead of hanging
        with pytest.raises(DriverError, match="a batch still runs"):
            acc.run(x)
    # without a wall-clock deadline the simulation's own, in cycles, ends it
    with SimAccelerator(tiny_rtl, stall=(0.0, 1.0)) as acc:
        with pytest.raises(DmaTimeoutError, match=r"did not finish within [\d,]+ cycles"):
            acc.run(x)


def test_a_top1_build_gives_the_class_itself(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A ``--top1`` build's hardware outputs the best class (LabelSelect): ``run`` gives it as
    ``[N, 1]``, ``top1=True`` as ``[N]``, equal to the integer form's top-1."""
    from bireal_fpga.flow import BuildConfig, build

    out = tmp_path_factory.mktemp("top1") / "build"
    cfg = BuildConfig(
        "tiny", "PYNQ-Z2", str(out), n_check=8, synth=False, top1=True, to_step="shell-sim"
    )
    build(cfg, log=lambda _m: None)
    net = IntegerNet.load(out / names.INTEGER)
    c, h, w = net.input_shape
    x = np.random.default_rng(4).integers(0, 256, size=(30, h, w, c), dtype=np.uint8)
    want = integer_layers(net, x.transpose(0, 3, 1, 2))[names.TOP1].reshape(-1)
    with SimAccelerator(out, batch_size=16) as acc:
        assert acc.outputs_top1 and acc.classes is None and "top1" in repr(acc)
        assert np.array_equal(acc.run(x), want[:, None])
        assert np.array_equal(acc.run(x, top1=True), want)


# ---- bad input --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_acc(tiny_rtl: Path):
    with SimAccelerator(tiny_rtl) as acc:
        yield acc


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda x: x.astype(np.float32), "dtype float32"),
        (lambda x: x.astype(np.int64), "dtype int64"),
        (lambda x: x.transpose(0, 3, 1, 2), "channels first? transpose"),
        (lambda x: x[..., :1], "with 1 channels"),
        (lambda x: np.concatenate([x, x[..., :1]], axis=3), "with 4 channels"),
        (lambda x: x[:, :8, :8], "of 8x8 pixels: the accelerator takes 16x16"),
        (lambda x: x[:, :, :, 0].reshape(len(x), -1), "expected (N, 16, 16, 3)"),
        (lambda x: x[:0], "no images"),
        (lambda x: x.tolist(), None),  # nested lists of ints become int64: a dtype error
    ],
)
def test_bad_images_are_refused_by_name(sim_acc: Accelerator, make, words: str | None) -> None:
    x = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(InputError) as err:
        sim_acc.run(make(x))
    assert "\n" not in str(err.value)
    assert words is None or words in str(err.value), str(err.value)
    # a refused input leaves the accelerator usable
    assert sim_acc.run(x).shape == (2, 10)


def test_bad_folders_and_files_are_named(tiny_rtl: Path, tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="is not a folder"):
        SimAccelerator(tmp_path / "nowhere")
    with pytest.raises(DriverError, match="holds neither bitstream/ nor shell_sim/"):
        SimAccelerator(tmp_path)
    with pytest.raises(DriverError, match="backend 'fpga' is not one of auto, board, sim"):
        Accelerator.open(tiny_rtl, backend="fpga")
    with pytest.raises(DriverError, match="holds no bitstream/"):
        Accelerator.open(tiny_rtl, backend="board")
    with pytest.raises(DriverError, match="takes stall and seed"):
        SimAccelerator(tiny_rtl, turbo=True)
    with pytest.raises(DriverError, match="batch_size 0"):
        SimAccelerator(tiny_rtl, batch_size=0)
    # a damaged simulation folder: missing executable, changed memory image, missing manifest
    for damage, words in [
        (lambda s: (s / "sim").unlink(), "sim' is missing from the shell simulation"),
        (lambda s: sorted(s.glob("*.mem"))[0].write_text("0\n"), "does not match the sha256"),
        (lambda s: (s / "sim.json").unlink(), "sim.json' is missing"),
        (lambda s: (s / "shell.json").write_text("{}"), "shell.json' does not match the sha256"),
    ]:
        folder = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        shutil.copytree(tiny_rtl / names.SHELL_SIM, folder / names.SHELL_SIM)
        damage(folder / names.SHELL_SIM)
        with pytest.raises(DriverError, match=words):
            SimAccelerator(folder)


# ---- the board path on the pynq stand-in ------------------------------------------------------


def test_board_path_on_the_pynq_stand_in_is_exact(
    tiny_board: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pynq_stand_in(monkeypatch, tiny_board / names.SHELL_SIM, stall="0.2 0.2")
    import pynq

    pynq.Clocks.fclk0_mhz = 50.0  # the manifest says 100 MHz: the driver sets it
    assert pick_backend() == "board"
    x, ref = images_and_reference(tiny_board, 100, seed=5)
    with Accelerator.open(tiny_board, batch_size=40) as acc:  # auto: the board
        assert acc.backend == "board" and "board" in repr(acc)
        assert pynq.Clocks.fclk0_mhz == 100.0 and acc.stats.clock_mhz == 100.0
        for n in (1, 7, 100):
            out = acc.run(x[:n])
            assert np.array_equal(out, ref[:n]), first_difference(out, ref[:n])
            assert len(acc.stats.batches) == -(-n // 40)
        assert np.array_equal(acc.run(x[:7], top1=True), np.argmax(ref[:7], axis=1))
        # the buffers are pynq's, allocated once per size
        assert all(isinstance(b, pynq.PynqBuffer) for b in acc.port.buffers.values())
    # and the bitstream folder alone (bitstreams/<BOARD>/) opens the same way
    with Accelerator.open(tiny_board / names.BITSTREAM, backend="board") as acc:
        assert np.array_equal(acc.run(x[:3]), ref[:3])


def test_board_dma_stall_ends_in_the_timeout_error(
    tiny_board: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The results never drain (the S2MM's TREADY never comes): the driver gives up at its
    deadline, naming the late channels, their DMASR, and the shell's STATUS."""
    pynq_stand_in(monkeypatch, tiny_board / names.SHELL_SIM, stall="0 1")
    x, _ = images_and_reference(tiny_board, 4, seed=2)
    with Accelerator.open(tiny_board, backend="board", timeout_s=1.5) as acc:
        t0 = time.monotonic()
        with pytest.raises(DmaTimeoutError) as err:
            acc.run(x)
        took = time.monotonic() - t0
    assert 1.5 <= took < 8.0, took
    msg = str(err.value)
    assert msg.startswith("board: a batch of 4 images did not finish before its deadline"), msg
    assert "dma_io.s2mm (out): DMASR@0x34 = 0x00000000 (running)" in msg, msg
    assert "STATUS 0x5 (BUSY WEIGHTS_LOADED)" in msg, msg


def test_board_refuses_another_builds_bitstream(
    tiny_board: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pynq_stand_in(monkeypatch, tiny_board / names.SHELL_SIM)
    folder = tmp_path / "b"
    shutil.copytree(tiny_board / names.BITSTREAM, folder / names.BITSTREAM)
    manifest_path = folder / names.BITSTREAM / names.BITSTREAM_MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["build_id"] = "0x12345678"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DriverError, match="BUILD_ID reads 0x.*of build 0x12345678"):
        Accelerator.open(folder, backend="board")
    # the sim of one build beside the bitstream manifest of another
    shutil.copytree(tiny_board / names.SHELL_SIM, folder / names.SHELL_SIM)
    with pytest.raises(DriverError, match="a manifest of another build"):
        Accelerator.open(folder, backend="sim")
    # a changed bitstream, a board it is not for
    (folder / names.BITSTREAM / "bireal.bit").write_bytes(b"other")
    with pytest.raises(DriverError, match="bireal.bit' does not match the sha256"):
        Accelerator.open(folder / names.BITSTREAM, backend="board")
    monkeypatch.setenv("BOARD", "ZCU104")
    with pytest.raises(DriverError, match="a bitstream for PYNQ-Z2; this board is ZCU104"):
        Accelerator.open(tiny_board, backend="board")


def test_without_pynq_the_board_backend_says_so(tiny_board: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynq", None)
    assert pick_backend() == "sim"
    with pytest.raises(DriverError, match="the board backend needs pynq"):
        Accelerator.open(tiny_board, backend="board")


# ---- numpy alone ------------------------------------------------------------------------------


BLOCKED = ("torch", "finn", "qonnx", "brevitas", "onnx", "onnxruntime", "jinja2", "pynq", "scipy")


def test_the_driver_needs_numpy_alone(tiny_board: Path) -> None:
    """With torch, FINN, qonnx, brevitas, onnx, jinja2 and pynq unimportable the driver imports
    and runs on the simulation, and it imported nothing of the project's compiler."""
    code = f"""
import sys
for m in {BLOCKED!r}:
    sys.modules[m] = None
import numpy as np
from bireal_fpga.driver import Accelerator
acc = Accelerator.open({str(tiny_board)!r})
assert acc.backend == "sim"
print(acc.run(np.zeros((2, 16, 16, 3), np.uint8)).shape)
print(sorted(m for m in sys.modules if m.startswith("bireal_fpga")))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first, mods = proc.stdout.splitlines()
    assert first == "(2, 10)"
    allowed = {"bireal_fpga", "bireal_fpga.errors", "bireal_fpga.names", "bireal_fpga.arch"}
    allowed |= {"bireal_fpga.arch.shell", "bireal_fpga.arch.streams"}
    assert {m for m in eval(mods) if not m.startswith("bireal_fpga.driver")} <= allowed, mods
    assert STANDINS.is_dir()


# ---- the command line -------------------------------------------------------------------------


def test_run_command(tiny_rtl: Path, tmp_path: Path) -> None:
    from conftest import assert_error, assert_ok, cli

    x, ref = images_and_reference(tiny_rtl, 12, seed=12)
    labels = np.argmax(ref, axis=1)
    labels[:3] = (labels[:3] + 1) % ref.shape[1]  # three wrong
    npz = tmp_path / "x.npz"
    np.savez(npz, images=x, labels=labels)
    proc = cli("run", tiny_rtl, "--images", npz, "--backend", "sim", "--batch-size", 5, "--json")
    assert_ok(proc)
    result = json.loads(proc.stdout)
    assert result["images"] == 12 and result["batches"] == 3 and result["correct"] == 9
    assert result["backend"] == "sim" and result["fps_cycles"] > 0
    proc = cli("run", tiny_rtl, "--images", npz, "--backend", "sim")
    assert_ok(proc)
    assert "top-1 9/12 = 75.00 %" in proc.stdout, proc.stdout
    np.savez(npz, images=x.astype(np.float32))
    assert_error(cli("run", tiny_rtl, "--images", npz, "--backend", "sim"), "dtype float32")
    assert_error(cli("run", tiny_rtl, "--images", tmp_path / "no.npz"), "no.npz")
