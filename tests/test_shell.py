"""The board shell (``bireal_shell.v``): Verilog-2001, driven in Verilator exactly as the AXI DMAs
and the CPU drive it on the board — register writes and reads over AXI4-Lite, byte buffers
over the streams, TLAST on the last result beat of every batch, random back-pressure on every
stream, run-time weights loaded before the images — and its outputs == PyTorch's integer form.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bireal_fpga import names
from bireal_fpga.arch import shell as arch
from bireal_fpga.integer.forward import integer_layers
from bireal_fpga.integer.params import IntegerNet
from bireal_fpga.rtl.stitch import load_design
from bireal_fpga.rtlsim.shell_sim import ShellSim, ShellSimError
from bireal_fpga.shell.generate import CTRL_FILE, WRAPPER_FILE, write_shell
from bireal_fpga.tools import require_yosys

BUILD_ID = 0x5EED1D00


def make_shell(build: Path, out: Path) -> Path:
    design = load_design(build / names.RTL)
    c, h, w = IntegerNet.load(build / names.INTEGER).input_shape
    write_shell(design, out, build_id=BUILD_ID, clock_mhz=100.0, image_shape=(h, w, c))
    return out


def compiled_shell(build: Path, work: Path) -> ShellSim:
    sim = ShellSim(build / names.RTL, make_shell(build, work / "shell"), work / "sim")
    sim.build()
    return sim


@pytest.fixture(scope="module")
def shell_sim(tiny_rtl: Path, tmp_path_factory: pytest.TempPathFactory) -> ShellSim:
    return compiled_shell(tiny_rtl, tmp_path_factory.mktemp("shell"))


@pytest.fixture(scope="module")
def loaded_sim(tiny_loaded: Path, tmp_path_factory: pytest.TempPathFactory) -> ShellSim:
    return compiled_shell(tiny_loaded, tmp_path_factory.mktemp("shell_loaded"))


def images_and_reference(build: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    net = IntegerNet.load(build / names.INTEGER)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *net.input_shape), dtype=np.uint8)
    return x, integer_layers(net, x)[names.HEAD]


def test_the_wrapper_is_verilog_2001(shell_sim: ShellSim, tmp_path: Path) -> None:
    """No SystemVerilog in the shell's files (Vivado's module reference needs a Verilog top):
    Verilator already builds them as IEEE 1364-2001 (``+1364-2001ext+v``); Yosys's Verilog
    reader (without -sv) reads them too; the ports carry Vivado's interface attributes."""
    files = [shell_sim.shell_dir / WRAPPER_FILE, shell_sim.shell_dir / CTRL_FILE]
    for f in files:
        text = f.read_text()
        for keyword in ("logic", "always_ff", "always_comb", "int ", "typedef", "interface "):
            assert not re.search(rf"\b{keyword}", text), f"{f.name}: '{keyword}'"
    for f in files:
        (tmp_path / f.name).write_text(f.read_text())
    proc = subprocess.run(
        [*require_yosys(), "-q", "-p", f"read_verilog {WRAPPER_FILE} {CTRL_FILE}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    wrapper = files[0].read_text()
    for iface in ("s_axi_ctrl", "s_axis_img", "m_axis_out"):
        assert '"xilinx.com:interface:' in wrapper and f" {iface} " in wrapper
    assert "ASSOCIATED_BUSIF s_axi_ctrl:s_axis_img:m_axis_out" in wrapper
    assert "PROTOCOL AXI4LITE" in wrapper and "POLARITY ACTIVE_LOW" in wrapper
    assert "s_axis_wgt" not in wrapper  # no run-time weights in this design


def test_shell_manifest(shell_sim: ShellSim) -> None:
    m = json.loads((shell_sim.shell_dir / names.SHELL_MANIFEST).read_text())
    design = shell_sim.design
    assert m["build_id"] == f"0x{BUILD_ID:08x}" and m["core_top"] == design.top
    assert m["image"]["dma_bits"] == arch.dma_width(design.input.fmt.axi_width)
    assert m["image"]["dma_bits"] in (8, 16, 32, 64, 128, 256, 512, 1024)
    assert m["image"]["words_per_image"] == design.input.words
    assert m["output"]["words_per_image"] == design.output.words
    assert m["image"]["shape"] == [16, 16, 3] and m["output"]["shape"] == [10]
    assert m["weights"] is None
    regs = {r["name"]: r["offset"] for r in m["control"]["registers"]}
    assert regs == arch.OFFSETS


@pytest.mark.parametrize("n, stall", [(1, 0.0), (7, 0.3), (64, 0.3)])
def test_batches_exact_with_tlast_and_backpressure(
    shell_sim: ShellSim, tiny_rtl: Path, tmp_path: Path, n: int, stall: float
) -> None:
    """A batch as the driver runs it (BATCH, START, receive armed, send, wait): the outputs
    equal PyTorch's integer form; the receive ends at TLAST after exactly the batch's bytes
    (the receive buffer is one byte larger: a missing TLAST would show as a timeout, a late
    one as an overflow); the registers read back what happened."""
    x, ref = images_and_reference(tiny_rtl, n, seed=n)
    run = shell_sim.run_batch(x.transpose(0, 2, 3, 1), tmp_path, stall=stall, seed=n)
    assert np.array_equal(run.outputs, ref)
    m = shell_sim.manifest
    assert run.tlast and run.received == n * m["output"]["bytes_per_image"]
    r = run.registers
    assert r["STATUS"] == arch.STATUS_DONE | arch.STATUS_WEIGHTS_LOADED  # not BUSY
    assert r["BATCH"] == n and r["IMAGES_DONE"] == n
    assert r["BUILD_ID"] == BUILD_ID and r["MAGIC"] == arch.MAGIC
    assert r["IN_WORDS"] == m["image"]["words_per_image"]
    assert r["OUT_WORDS"] == m["output"]["words_per_image"]
    assert r["WEIGHT_TOTAL"] == 0 and r["WEIGHT_BEATS"] == 0
    interval = shell_sim.design.cycles
    assert n * interval <= run.cycles < (n + 8) * interval / (1 - stall) + 2000


def test_registers_and_gating(shell_sim: ShellSim, tiny_rtl: Path, tmp_path: Path) -> None:
    """Images sent before START wait (the shell takes none); START with BATCH = 0 is ignored;
    BATCH reads back; unknown offsets read 0; CYCLES counts only while BUSY; a second batch in
    the same run after the first works and clears DONE while it runs."""
    x, ref = images_and_reference(tiny_rtl, 3, seed=5)
    (tmp_path / "images.bin").write_bytes(
        arch.pack_images(x.transpose(0, 2, 3, 1), shell_sim.manifest["image"])
    )
    out_bytes = 3 * shell_sim.manifest["output"]["bytes_per_image"]
    o = arch.OFFSETS
    lines = shell_sim.script(
        [
            f"read {o['STATUS']:#x}",
            f"read {o['BATCH']:#x}",
            f"write {o['BATCH']:#x} 0",
            f"write {o['CTRL']:#x} 1",
            f"read {o['STATUS']:#x}",  # still idle: BATCH 0
            f"recv out.bin {out_bytes + 1}",
            "send img images.bin",
            "wait 3000",  # nothing moves before START: a timeout with 0 bytes sent
            f"read {o['CYCLES_LO']:#x}",
            f"write {o['BATCH']:#x} 3",
            f"read {o['BATCH']:#x}",
            f"read {o['CTRL']:#x}",
            "read 0x100",
            f"write {o['CTRL']:#x} 1",
            f"read {o['STATUS']:#x}",  # BUSY now
            "wait 1000000",
            f"read {o['STATUS']:#x}",
            f"read {o['IMAGES_DONE']:#x}",
            f"read {o['CYCLES_LO']:#x}",
            "run 500",
            f"read {o['CYCLES_LO']:#x}",  # frozen after the batch
        ],
        tmp_path,
    )
    reads = [int(ln.split()[2], 16) for ln in lines if ln.startswith("read")]
    timeout = [ln for ln in lines if ln.startswith("wait timeout")]
    assert reads[0] == arch.STATUS_WEIGHTS_LOADED and reads[1] == 1  # after reset
    assert reads[2] == arch.STATUS_WEIGHTS_LOADED  # START with BATCH 0 ignored
    assert len(timeout) == 1 and " img 0/" in timeout[0], lines
    assert reads[3] == 0  # CYCLES: no batch has run
    assert reads[4] == 3 and reads[5] == 0 and reads[6] == 0
    assert reads[7] & arch.STATUS_BUSY and not reads[7] & arch.STATUS_DONE
    assert reads[8] == arch.STATUS_DONE | arch.STATUS_WEIGHTS_LOADED and reads[9] == 3
    assert reads[10] > 0 and reads[11] == reads[10]
    assert [ln for ln in lines if ln.startswith("recv")] == [f"recv done {out_bytes}"]
    got = arch.unpack_results((tmp_path / "out.bin").read_bytes(), shell_sim.manifest["output"], 3)
    assert np.array_equal(got, ref)


def test_weight_load_then_images(loaded_sim: ShellSim, tiny_loaded: Path, tmp_path: Path):
    """Run-time weights (UltraRAM): the weight stream is part of the shell; before the load
    STATUS says the weights are missing, and an image batch sent then does not finish; after
    one load of ``weights.bin`` over the weight DMA, two batches in a row are exact and
    WEIGHT_BEATS counts the beats."""
    m = loaded_sim.manifest
    w = m["weights"]
    assert w and w["port"] == "s_axis_wgt" and w["beats"] == loaded_sim.design.weight_beats
    assert (loaded_sim.shell_dir / w["file"]).stat().st_size == w["bytes"] == 8 * w["beats"]
    wrapper = (loaded_sim.shell_dir / WRAPPER_FILE).read_text()
    assert "s_axis_wgt_tdata" in wrapper and "ASSOCIATED_BUSIF" in wrapper
    before = loaded_sim.script([f"read {arch.OFFSETS['STATUS']:#x}"], tmp_path / "before")
    assert int(before[0].split()[2], 16) & arch.STATUS_WEIGHTS_LOADED == 0
    x, ref = images_and_reference(tiny_loaded, 2, seed=9)
    with pytest.raises(ShellSimError, match="wait timeout"):
        loaded_sim.run_batch(
            x.transpose(0, 2, 3, 1), tmp_path / "unloaded", load_weights=False, max_cycles=20000
        )
    # one load, then two batches in the same run (the weights stay)
    x2, ref2 = images_and_reference(tiny_loaded, 3, seed=10)
    runs = loaded_sim.run_batches(
        [x.transpose(0, 2, 3, 1), x2.transpose(0, 2, 3, 1)], tmp_path / "loaded", stall=0.3
    )
    assert np.array_equal(runs[0].outputs, ref) and np.array_equal(runs[1].outputs, ref2)
    for run in runs:
        assert run.registers["WEIGHT_BEATS"] == run.registers["WEIGHT_TOTAL"] == w["beats"]
        assert run.registers["STATUS"] & arch.STATUS_WEIGHTS_LOADED


def test_packing_rejects_wrong_shapes(shell_sim: ShellSim) -> None:
    with pytest.raises(arch.ShellError, match=r"\[N, 16, 16, 3\]"):
        arch.pack_images(np.zeros((2, 3, 16, 16), np.uint8), shell_sim.manifest["image"])
    with pytest.raises(arch.ShellError, match="result bytes"):
        arch.unpack_results(b"\0" * 7, shell_sim.manifest["output"], 1)


def test_the_build_checks_its_shell(tiny_rtl: Path) -> None:
    """The flow's shell-sim step drove the shell with batches of the check images as the DMAs
    do (random back-pressure), == the PyTorch integer form; its compiled model is kept."""
    report = json.loads((tiny_rtl / names.REPORT).read_text())
    check = report["shell"]["check"]
    assert check["n"] == 8 and check["mismatches"] == 0
    assert [b["images"] for b in check["batches"]] == [1, 7]
    assert (tiny_rtl / names.SHELL_SIM / "sim").is_file()
    shell = json.loads((tiny_rtl / names.SHELL / names.SHELL_MANIFEST).read_text())
    assert report["shell"]["build_id"] == shell["build_id"]
