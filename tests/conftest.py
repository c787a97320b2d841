"""Shared helpers and fixtures.

- the real ``bireal-fpga`` command as a subprocess (:func:`cli`) and its result checks;
- session builds of the ``tiny`` preset for PYNQ-Z2, made once through the flow's Python API
  and shared by every test file: ``tiny_hw`` (to the folded HW graph), ``tiny_rtl`` (the whole
  build without Yosys: simulated RTL, shell, Vivado project; no Vivado here), ``tiny_loaded``
  (its RTL with run-time loaded weights) and ``tiny_folded`` (a fresh copy of the folded graph
  per test). They are
  never modified: a test that changes a build copies its folder first.

Test modules import them as plain functions (pytest puts ``tests/`` on ``sys.path``, the
default ``prepend`` import mode)::

    from conftest import assert_error, assert_ok, cli

Commands run with one intra-op thread (``OMP_NUM_THREADS=1``): for the nets of the tests a
second thread gains little, and two busy processes would then oversubscribe the cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
"""The environment every command runs with."""

TIMEOUT_S = 600.0
"""Default limit of one command (``subprocess.TimeoutExpired`` beyond it)."""

Proc = subprocess.CompletedProcess[str]

STANDINS = Path(__file__).parent / "standins"
"""Stand-ins for what these machines lack: ``vivado.py`` (a ``vivado`` executable), ``pynq/``."""
FAKE_VIVADO_FILE = STANDINS / "vivado.py"
FIXTURES = Path(__file__).parent / "data" / "vivado"
"""Vivado's reports, as the stand-in writes them."""


def run(
    argv: Sequence[object], *, timeout: float = TIMEOUT_S, env: dict[str, str] | None = None
) -> Proc:
    """Run ``argv`` (any command, e.g. ``torchrun``) with :data:`ENV` (or ``env``), capturing
    its output."""
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env or ENV
    )


def cli(*args: object, timeout: float = TIMEOUT_S) -> Proc:
    """Run ``python -m bireal_fpga ARGS`` (the real command) and capture its output."""
    return run([sys.executable, "-m", "bireal_fpga", *args], timeout=timeout)


def assert_ok(proc: Proc) -> None:
    """Exit status 0; otherwise fail showing the command's stdout and stderr."""
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )


def assert_error(proc: Proc, *names: str) -> str:
    """Exit status 2, stderr exactly one ``error:`` line that contains every one of ``names``;
    returns that line."""
    assert proc.returncode == 2, (
        f"exit {proc.returncode}, expected 2\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"stderr must be one line, got {len(lines)}:\n{proc.stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    for name in names:
        assert name in line, f"{name!r} not named in: {line}"
    return line


def stand_in_vivado(root: Path, monkeypatch: pytest.MonkeyPatch, mode: str = "ok") -> Path:
    """The stand-in ``vivado`` (``standins/vivado.py``) first on PATH, its outputs in ``mode``;
    returns the file it records its calls in."""
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "vivado"
    exe.write_text(f"#!{sys.executable}\n" + FAKE_VIVADO_FILE.read_text())
    exe.chmod(0o755)
    record = root / "vivado_calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    monkeypatch.setenv("FAKE_VIVADO_RECORD", str(record))
    monkeypatch.setenv("FAKE_VIVADO_FIXTURES", str(FIXTURES))
    monkeypatch.setenv("FAKE_VIVADO_MODE", mode)
    monkeypatch.setenv("FAKE_VIVADO_BOARD_PARTS", "xilinx.com:zcu104:part0:1.1")
    return record


def pynq_stand_in(monkeypatch: pytest.MonkeyPatch, sim_dir: Path, stall: str = "0 0") -> None:
    """pynq's stand-in (``standins/pynq``) imported as ``pynq`` for this test only (gone from
    ``sys.modules`` after it), its board the model in ``sim_dir``."""
    import importlib

    monkeypatch.setenv("PYNQ_STANDIN_SIM", str(sim_dir))
    monkeypatch.setenv("PYNQ_STANDIN_STALL", stall)
    for mod in [m for m in sys.modules if m == "pynq" or m.startswith("pynq.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.syspath_prepend(str(STANDINS))
    stand_ins = {m: importlib.import_module(m) for m in ("pynq", "pynq.lib", "pynq.lib.dma")}
    for name, module in stand_ins.items():  # set through monkeypatch: removed after the test
        del sys.modules[name]
        monkeypatch.setitem(sys.modules, name, module)


# ---- shared builds (session fixtures: built once, never modified; copy a folder to change it) --


def _quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="session")
def tiny_hw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny`` for PYNQ-Z2 built to the folded HW graph (``--until hw``): the build folder."""
    from bireal_fpga.flow import BuildConfig, build

    out = tmp_path_factory.mktemp("tiny_hw") / "build"
    build(BuildConfig("tiny", "PYNQ-Z2", str(out), to_step="folding"), log=_quiet)
    return out


@pytest.fixture(scope="session")
def tiny_rtl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny`` for PYNQ-Z2 built in one go (8 check images, no Yosys: the synth tests run
    their own; the bitstream step is skipped unless Vivado is installed; nothing published):
    the build folder."""
    from bireal_fpga.flow import BuildConfig, build

    out = tmp_path_factory.mktemp("tiny_rtl") / "build"
    cfg = BuildConfig("tiny", "PYNQ-Z2", str(out), n_check=8, synth=False, bitstream_dir=None)
    build(cfg, log=_quiet)
    return out


@pytest.fixture(scope="session")
def tiny_board(tiny_rtl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``tiny_rtl`` finished by the stand-in ``vivado``: a build folder with
    ``bitstream/`` (a stand-in .bit, the .hwh, manifest.json) and ``shell_sim/``, as the
    board's driver opens it."""
    import shutil

    from bireal_fpga.flow import BuildConfig, build

    root = tmp_path_factory.mktemp("tiny_board")
    out = root / "build"
    shutil.copytree(tiny_rtl, out, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        stand_in_vivado(root, mp)
        cfg = BuildConfig("tiny", "PYNQ-Z2", str(out), n_check=8, synth=False, bitstream_dir=None)
        build(cfg, log=_quiet)
    assert (out / "bitstream" / "manifest.json").is_file()
    return out


SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10_jpeg.npz"
"""CIFAR-10 (JPEG copy) on this project's machines; a user's clone has none."""


def cifar_crops(out: Path, size: int, n: int) -> Path:
    """An ``images`` .npz of the central ``size`` x ``size`` pixels of the first ``n``
    CIFAR-10 test images (real photographs for a net smaller than 32x32); skips the test,
    saying why, where ``../shared/data`` is absent."""
    if not SHARED_CIFAR.is_file():
        pytest.skip(f"real images not found: {SHARED_CIFAR} (this project's ../shared/data)")
    from bireal_fpga.data import open_data

    test = open_data(str(SHARED_CIFAR), image_size=32, channels=3).test
    a = (32 - size) // 2
    photos = np.stack([test[i][0].numpy() for i in range(n)])[:, :, a : a + size, a : a + size]
    np.savez(out, images=np.ascontiguousarray(photos))
    return out


@pytest.fixture(scope="session")
def tiny_deploy(tiny_board: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bireal-fpga deploy`` of ``tiny_board``: 64 sample images from CIFAR-10's test split
    (resized to the tiny net's 16x16) where ``../shared/data`` has it, else random ones."""
    from bireal_fpga.deploy import deploy

    data = str(SHARED_CIFAR) if SHARED_CIFAR.is_file() else None
    out = tmp_path_factory.mktemp("tiny_deploy") / "deploy"
    return deploy(tiny_board, out, data=data, n_samples=64, log=_quiet)


@pytest.fixture(scope="session")
def cppsim_toolchain():
    """cppsim's toolchain (g++, finn-hlslib, hls4ml's headers, cnpy); the test is skipped,
    with the reason printed, only where one is missing (finn-hlslib outside this project)."""
    from bireal_fpga import tools

    try:
        tools.find_finn_hlslib()
    except tools.ToolNotFound as e:
        print(f"cppsim tests skipped: {e}")
        pytest.skip(str(e))
    from bireal_fpga.cppsim.compile import toolchain

    return toolchain()


@pytest.fixture(scope="session")
def spec_hw(tmp_path_factory: pytest.TempPathFactory):
    """``spec_hw(name, top1=False)``: the build folder of ``test_integer_exact.SPECS[name]``
    (every spec shape the tests know) for PYNQ-Z2, built once per session to the folded HW
    graph (``--until hw``; random weights, seed 7)."""
    from test_integer_exact import SPECS

    from bireal_fpga.flow import BuildConfig, build

    built: dict[tuple[str, bool], Path] = {}

    def get(name: str, top1: bool = False) -> Path:
        if (name, top1) not in built:
            out = tmp_path_factory.mktemp(f"spec_{name}") / "build"
            source = SPECS[name].to_json()
            cfg = BuildConfig(source, "PYNQ-Z2", str(out), to_step="folding", top1=top1, seed=7)
            build(cfg, log=_quiet)
            built[name, top1] = out
        return built[name, top1]

    return get


@pytest.fixture
def tiny_folded(tiny_hw: Path):
    """The tiny net's folded graph (specialized, folded), a fresh copy for each test."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.hwlayers.finn_env import finn_ready

    finn_ready()
    return ModelWrapper(str(tiny_hw / "folded.onnx"))


@pytest.fixture(scope="session")
def tiny_loaded(tiny_rtl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``tiny_rtl`` whose binary MVAUs keep their weights in UltraRAM, loaded at run
    time over the weight bus (re-stitched from rtl.onnx; only ``rtl/`` is new: the build's
    later artefacts are of the original design)."""
    import shutil

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.rtl.stitch import stitch

    out = tmp_path_factory.mktemp("loaded") / "tiny"
    shutil.copytree(tiny_rtl, out, ignore=shutil.ignore_patterns("sim", "rtl", "shell*", "viv*"))
    model = ModelWrapper(str(tiny_rtl / "rtl.onnx"))
    for node in model.graph.node:
        inst = getCustomOp(node)
        if node.op_type.startswith("MVAU") and inst.get_nodeattr("binaryXnorMode"):
            inst.set_nodeattr("ram_style", "ultra")
            inst.set_nodeattr("runtime_writeable_weights", 1)
    stitch(model, out / "rtl")
    return out


def edited_onnx(src: Path, dst: Path, fn) -> Path:
    """A copy of ONNX file ``src`` at ``dst``, its proto changed in place by ``fn(proto)``."""
    import onnx

    proto = onnx.load(str(src))
    fn(proto)
    onnx.save(proto, str(dst))
    return dst


@pytest.fixture(scope="session")
def brevitas_qonnx(tmp_path_factory: pytest.TempPathFactory):
    """``brevitas_qonnx(**fields)``: the QONNX file of ``brevitas_nets.BrevitasNet(**fields)``
    (a Bi-Real-shaped net in Brevitas idiom), exported once per session with
    ``brevitas.export.export_qonnx``."""
    import brevitas_nets

    made: dict[str, Path] = {}

    def get(**fields: object) -> Path:
        key = repr(sorted(fields.items()))
        if key not in made:
            folder = tmp_path_factory.mktemp("brevitas")
            made[key] = brevitas_nets.export(
                brevitas_nets.BrevitasNet(**fields),  # type: ignore[arg-type]
                folder / "model.onnx",
            )
        return made[key]

    return get


@pytest.fixture(scope="session")
def streamlined_qonnx(brevitas_qonnx):
    """``streamlined_qonnx(**fields)``: ``brevitas_qonnx(**fields)`` through FINN's front end
    (``ConvertQONNXtoFINN`` + ``Streamline``), once per session."""
    import brevitas_nets

    made: dict[str, Path] = {}

    def get(**fields: object) -> Path:
        key = repr(sorted(fields.items()))
        if key not in made:
            src = brevitas_qonnx(**fields)
            made[key] = brevitas_nets.finn_front_end(src, src.with_name("streamlined.onnx"))
        return made[key]

    return get
