"""The shell and the accelerator in Verilator, driven as the board drives them: register
writes and reads on the AXI4-Lite port, DMA transfers of byte buffers on the streams
(``hw/templates/shell/shell_harness.cpp.j2``, a script of commands).

:class:`ShellSim` compiles the model (cached by content, like every Verilator model here) and
runs scripts; :meth:`ShellSim.run_batch` does what a driver does for one batch (write
``BATCH``, ``START``, start the receive, then the send, wait, read the registers) and checks
what a DMA would see: a transfer that ends at TLAST after exactly the batch's bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bireal_fpga import names
from bireal_fpga.arch import shell as arch
from bireal_fpga.driver.files import SIM_EXE, SIM_MANIFEST, WEIGHTS, sha256_file, sim_manifest
from bireal_fpga.driver.sim import cycle_limit, weight_cycle_limit
from bireal_fpga.errors import BiRealError
from bireal_fpga.rtl.render import render
from bireal_fpga.rtl.stitch import load_design
from bireal_fpga.rtlsim.verilator_sim import VerilatorSim
from bireal_fpga.shell.generate import MODULE, load_shell, params_of

TIMEOUT_S = 3600.0  # the longest one script may run


class ShellSimError(BiRealError):
    """The shell simulation failed, or what it returned is not what a DMA would accept."""


@dataclass
class BatchResult:
    outputs: np.ndarray  # int64 [n, elements]
    registers: dict[str, int]  # every register after the batch
    cycles: int  # the shell's CYCLES register
    tlast: bool  # the receive ended at TLAST
    received: int  # bytes received
    lines: list[str] = field(default_factory=list)  # the testbench's output


def sim_sources(rtl_dir: Path, shell_dir: Path) -> list[Path]:
    design = load_design(rtl_dir)
    shell = load_shell(shell_dir)
    return [*design.sources, *(Path(shell_dir) / f for f in shell["files"])]


class ShellSim:
    """The compiled shell + accelerator of a build (``rtl_dir``, ``shell_dir``)."""

    def __init__(self, rtl_dir: Path, shell_dir: Path, workdir: Path) -> None:
        self.rtl_dir = Path(rtl_dir)
        self.shell_dir = Path(shell_dir)
        self.workdir = Path(workdir)
        self.manifest = load_shell(shell_dir)
        self.design = load_design(rtl_dir)
        params = params_of(self.manifest)
        self.sim = VerilatorSim(
            MODULE,
            sim_sources(rtl_dir, shell_dir),
            [],
            [],
            self.workdir,
            data_files=self.design.data_files,
            opt="-O2",
            harness=render("shell/shell_harness.cpp.j2", s=params),
            # the wrapper must be plain Verilog-2001 (a Vivado module reference)
            verilator_args=["+1364-2001ext+v"],
        )
        self.exe: Path | None = None

    def build(self) -> Path:
        self.exe = self.sim.build()
        return self.exe

    def script(self, commands: list[str], rundir: Path, timeout_s: float = TIMEOUT_S) -> list[str]:
        """Run one script of testbench commands in ``rundir``; its output lines."""
        exe = self.exe or self.build()
        self.sim.link_data_files(rundir)
        (rundir / "script.txt").write_text("\n".join(commands) + "\n")
        try:
            proc = subprocess.run(
                [str(exe), "script.txt"],
                cwd=rundir,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env={**os.environ},
            )
        except subprocess.TimeoutExpired:
            raise ShellSimError(
                f"the shell simulation in '{rundir}' ran past {timeout_s:.0f} s"
            ) from None
        lines = proc.stdout.splitlines()
        if proc.returncode != 0:
            tail = "; ".join((lines + proc.stderr.splitlines())[-3:])
            raise ShellSimError(f"the shell simulation exited {proc.returncode}: {tail}")
        return lines

    def read_all(self) -> list[str]:
        return [f"read {r.offset:#x}" for r in arch.REGISTERS if "r" in r.access]

    def run_batch(
        self,
        images: np.ndarray,
        rundir: Path,
        *,
        load_weights: bool = True,
        stall: float = 0.0,
        seed: int = 1,
        max_cycles: int | None = None,
    ) -> BatchResult:
        """One batch of uint8 NHWC ``images``: :meth:`run_batches` of one."""
        return self.run_batches(
            [images],
            rundir,
            load_weights=load_weights,
            stall=stall,
            seed=seed,
            max_cycles=max_cycles,
        )[0]

    def run_batches(
        self,
        batches: list[np.ndarray],
        rundir: Path,
        *,
        load_weights: bool = True,
        stall: float = 0.0,
        seed: int = 1,
        max_cycles: int | None = None,
    ) -> list[BatchResult]:
        """Batches of uint8 NHWC images one after the other in one run from reset, as a driver
        runs them: the weights first (when the design has them and ``load_weights``); then per
        batch ``BATCH``, ``START``, the receive armed before the send, a wait with a cycle
        limit, every register read back."""
        m = self.manifest
        rundir.mkdir(parents=True, exist_ok=True)
        cmds = [f"stall {stall} {stall} {seed}"]
        if m["weights"] and load_weights:
            weights = (self.shell_dir / m["weights"]["file"]).resolve()
            limit = weight_cycle_limit(int(m["weights"]["beats"]))
            cmds += [f"send wgt {weights}", f"wait {limit}"]
        sizes = []
        for k, images in enumerate(batches):
            n = int(images.shape[0])
            sizes.append(n)
            (rundir / f"images{k}.bin").write_bytes(arch.pack_images(images, m["image"]))
            out_bytes = n * int(m["output"]["bytes_per_image"])
            limit = max_cycles or cycle_limit(n, self.design.cycles)
            cmds += [
                f"echo batch {k}",
                f"write {arch.OFFSETS['BATCH']:#x} {n}",
                f"write {arch.OFFSETS['CTRL']:#x} {arch.CTRL_START}",
                # the receive is started before the send, as on the board; one byte more
                # than the batch's results: a shell that sent more without TLAST shows as
                # an overflow, one that never sends TLAST as a timeout
                f"recv out{k}.bin {out_bytes + 1}",
                f"send img images{k}.bin",
                f"wait {limit}",
                *self.read_all(),
            ]
        lines = self.script(cmds, rundir)
        for line in lines:
            if line.startswith(("wait timeout", "error")):
                raise ShellSimError(f"batches {sizes} in '{rundir}': {line}")
        marks = [i for i, ln in enumerate(lines) if ln.startswith("batch ")] + [len(lines)]
        results = []
        for k, n in enumerate(sizes):
            part = lines[marks[k] : marks[k + 1]]
            out_bytes = n * int(m["output"]["bytes_per_image"])
            done = [ln for ln in part if ln.startswith("recv ")]
            if not done:
                raise ShellSimError(f"batch {k} of {n} images: the receive never ended")
            how, got = done[-1].split()[1], int(done[-1].split()[2])
            if how != "done" or got != out_bytes:
                raise ShellSimError(
                    f"batch {k} of {n} images: the receive ended with '{how}' after {got} "
                    f"bytes, expected TLAST after {out_bytes}"
                )
            data = (rundir / f"out{k}.bin").read_bytes()
            regs = _registers(part)
            outputs = arch.unpack_results(data, m["output"], n)
            cycles = regs["CYCLES_LO"] | (regs["CYCLES_HI"] << 32)
            results.append(BatchResult(outputs, regs, cycles, how == "done", got, part))
        return results


def _registers(lines: list[str]) -> dict[str, int]:
    by_offset = {r.offset: r.name for r in arch.REGISTERS}
    regs: dict[str, int] = {}
    for line in lines:
        parts = line.split()
        if parts[0] == "read":
            regs[by_offset.get(int(parts[1], 16), parts[1])] = int(parts[2], 16)
    return regs


def write_sim_folder(out: Path, exe: Path, sim: ShellSim, board: str) -> None:
    """The build's ``shell_sim/``, all a driver's simulation backend needs (no Verilator):
    the compiled model, ``shell.json``, the memory images it reads at start, the weight load
    (run-time weights), and ``sim.json`` with the sha256 of each."""
    out.mkdir(parents=True)
    shutil.copy2(exe, out / SIM_EXE)
    shutil.copyfile(sim.shell_dir / names.SHELL_MANIFEST, out / names.SHELL_MANIFEST)
    for f in sim.design.data_files:
        shutil.copyfile(f, out / f.name)
    if sim.manifest["weights"]:
        shutil.copyfile(sim.shell_dir / sim.manifest["weights"]["file"], out / WEIGHTS)
    files = {p.name: sha256_file(p) for p in sorted(out.iterdir())}
    manifest = sim_manifest(sim.manifest, files, board, sim.design.cycles)
    (out / SIM_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
