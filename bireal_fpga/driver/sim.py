"""The simulation backend: the build's compiled Verilator model of shell + accelerator
(``shell_sim/sim``; no Verilator needed to run it), talked to interactively (``sim -``: one
command per line, each answered by its lines and a line ``.``; the commands are in the
testbench's header, ``hw/templates/shell/shell_harness.cpp.j2``).

:class:`SimProcess` is that conversation; :class:`SimPort` is the accelerator's
:class:`~bireal_fpga.driver.accelerator.Port` over it. A DMA transfer moves the very byte
buffer the board's DMA moves (a file the model reads or writes); register reads and writes
are AXI4-Lite transactions on the model's control port. Time in the model passes only while
it is clocked: each poll of a transfer clocks it up to :data:`POLL_CYCLES` cycles.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga.arch import shell as arch
from bireal_fpga.driver.accelerator import status_text
from bireal_fpga.driver.errors import DmaTimeoutError, DriverError
from bireal_fpga.driver.files import SIM_EXE

POLL_CYCLES = 20_000  # cycles one poll clocks the model at most
ANSWER_TIMEOUT_S = 600.0  # the longest one command may take to answer
CHANNEL_NAMES = {"img": "image MM2S", "wgt": "weight MM2S", "out": "result S2MM"}


class SimError(DriverError):
    """The simulation process failed or answered what it should not."""


@dataclass(frozen=True)
class Channel:
    active: bool
    done: int  # bytes moved
    size: int  # bytes of the transfer (the receive: its buffer)
    state: str = ""  # the receive: idle, active, done, overflow


@dataclass(frozen=True)
class Poll:
    cycle: int
    channels: dict[str, Channel]

    def describe(self, name: str) -> str:
        ch = self.channels.get(name)
        if ch is None:
            return f"{name}: no such channel"
        if name == "out":
            return f"out ({CHANNEL_NAMES[name]}) {ch.state}, {ch.done} of {ch.size} bytes"
        state = "active" if ch.active else "idle"
        return f"{name} ({CHANNEL_NAMES[name]}) {state}, {ch.done} of {ch.size} bytes sent"


def parse_poll(line: str) -> Poll:
    """``poll CYCLE img A SENT SIZE [wgt A SENT SIZE] recv STATE BYTES LIMIT``."""
    parts = line.split()
    try:
        if parts[0] != "poll":
            raise ValueError(line)
        cycle, rest, chans = int(parts[1]), parts[2:], {}
        while rest:
            tag = rest[0]
            if tag == "recv":
                st, got, size = rest[1], int(rest[2]), int(rest[3])
                chans["out"] = Channel(st == "active", got, size, st)
            else:
                chans[tag] = Channel(rest[1] == "1", int(rest[2]), int(rest[3]))
            rest = rest[4:]
    except (IndexError, ValueError):
        raise SimError(f"the simulation answered '{line}' to a poll") from None
    return Poll(cycle, chans)


class SimProcess:
    """One running model, from reset. ``folder``: the simulation folder (its ``sim`` and the
    memory images it reads at start); ``stall``: the chance per cycle that the image/weight
    MM2S withholds TVALID and that the S2MM withholds TREADY (1.0: a stream that never
    moves)."""

    def __init__(
        self, folder: Path, *, stall: tuple[float, float] = (0.0, 0.0), seed: int = 1
    ) -> None:
        self.folder = Path(folder)
        exe = self.folder / SIM_EXE
        if not os.access(exe, os.X_OK):
            raise SimError(f"'{exe}' is not an executable simulation")
        self.tmp = Path(tempfile.mkdtemp(prefix="bireal-sim-"))
        self._buf = b""
        self._files = 0
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [str(exe.resolve()), "-"],
            cwd=self.folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.tmp / "stderr.txt", "wb"),  # noqa: SIM115 (closed with the process)
        )
        self.command(f"stall {float(stall[0])} {float(stall[1])} {int(seed)}")

    def _readline(self, deadline: float, cmd: str) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(left, 0.0))[0] if left > 0 else []
            if not ready:
                self.kill()
                raise SimError(f"the simulation did not answer '{cmd}' within {ANSWER_TIMEOUT_S} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise SimError(f"the simulation ended at '{cmd}': {self._ended()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def _ended(self) -> str:
        assert self.proc is not None
        code = self.proc.wait(timeout=10)
        err = (self.tmp / "stderr.txt").read_text(errors="replace").strip().splitlines()
        return f"exit {code}" + (f", {err[-1]}" if err else "")

    def command(self, cmd: str) -> list[str]:
        """Send one command; its answer lines (an ``error`` line raises)."""
        if self.proc is None or self.proc.stdin is None:
            raise SimError("the simulation is closed")
        try:
            self.proc.stdin.write(cmd.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise SimError(f"the simulation ended before '{cmd}': {self._ended()}") from None
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        lines = []
        while (line := self._readline(deadline, cmd)) != ".":
            if line.startswith("error"):
                raise SimError(f"the simulation refused '{cmd}': {line}")
            lines.append(line)
        return lines

    def write(self, offset: int, value: int) -> None:
        self.command(f"write {offset:#x} {value:#x}")

    def read(self, offset: int) -> int:
        for line in self.command(f"read {offset:#x}"):
            if line.startswith("read "):
                return int(line.split()[2], 16)
        raise SimError(f"the simulation answered no value for read {offset:#x}")

    def buffer_file(self, data: np.ndarray | bytes) -> Path:
        self._files += 1
        path = self.tmp / f"buf{self._files}.bin"
        path.write_bytes(bytes(data))
        return path

    def send(self, channel: str, data: np.ndarray | bytes) -> None:
        self.command(f"send {channel} {self.buffer_file(data)}")

    def receive(self, nbytes: int) -> Path:
        self._files += 1
        path = self.tmp / f"recv{self._files}.bin"
        self.command(f"recv {path} {int(nbytes)}")
        return path

    def poll(self, cycles: int = POLL_CYCLES) -> Poll:
        lines = [ln for ln in self.command(f"poll {int(cycles)}") if ln.startswith("poll ")]
        if not lines:
            raise SimError("the simulation answered nothing to a poll")
        return parse_poll(lines[-1])

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    assert self.proc.stdin is not None
                    self.proc.stdin.write(b"quit\n")
                    self.proc.stdin.close()
                    self.proc.wait(timeout=10)
                except (BrokenPipeError, subprocess.TimeoutExpired):
                    self.kill()
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None:
                    f.close()
            self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass


def cycle_limit(images: int, interval: int) -> int:
    """The cycles a batch of ``images`` may take in the simulation before it counts as late:
    8 of the design's intervals per image, plus filling and draining."""
    return (images + 4) * 8 * max(int(interval), 1000) + 200_000


def weight_cycle_limit(beats: int) -> int:
    """The cycles a weight load of ``beats`` 64-bit beats may take: 4 a beat, plus start-up."""
    return 4 * int(beats) + 100_000


class SimPort:
    """The accelerator's port on a :class:`SimProcess`. Each transfer has a deadline in the
    model's cycles (:func:`cycle_limit`; the weight load: 4 cycles a beat), and one in wall
    time when the accelerator has ``timeout_s``."""

    name = "sim"

    def __init__(
        self, process: SimProcess, manifest: Mapping[str, Any], shell: Mapping[str, Any]
    ) -> None:
        self.process = process
        self.clock_mhz = float(manifest["clock_mhz"])
        self.interval = int(manifest.get("interval_cycles") or 0)
        self.out_bytes = int(shell["output"]["bytes_per_image"])
        self._recv: Path | None = None
        self._limit = 0  # the cycle by which the running transfers must be done

    def read(self, offset: int) -> int:
        return self.process.read(offset)

    def write(self, offset: int, value: int) -> None:
        self.process.write(offset, value)

    def send(self, channel: str, data: np.ndarray) -> None:
        if channel == "wgt":
            self._limit = self.process.poll(0).cycle + weight_cycle_limit(len(data) // 8)
        self.process.send(channel, data)

    def receive(self, nbytes: int) -> None:
        images = -(-int(nbytes) // self.out_bytes)
        self._limit = self.process.poll(0).cycle + cycle_limit(images, self.interval)
        self._recv = self.process.receive(nbytes)

    def wait(self, channels: Sequence[str], deadline: float | None, what: str) -> None:
        while True:
            p = self.process.poll()
            out = p.channels.get("out")
            if out is not None and out.state == "overflow":
                raise DriverError(
                    f"sim: {what}: the result S2MM buffer filled before TLAST "
                    f"({out.done} bytes): the shell sent more than the batch's results"
                )
            if not any(p.channels[c].active for c in channels if c in p.channels):
                return
            if p.cycle > self._limit:
                self._timeout(p, channels, what, f"within {self._limit:,} cycles")
            if deadline is not None and time.monotonic() > deadline:
                self._timeout(p, channels, what, "before its deadline")

    def _timeout(self, p: Poll, channels: Sequence[str], what: str, when: str) -> None:
        late = [c for c in channels if p.channels.get(c, Channel(False, 0, 0)).active]
        status = self.process.read(arch.OFFSETS["STATUS"])
        done = self.process.read(arch.OFFSETS["IMAGES_DONE"])
        raise DmaTimeoutError(
            f"sim: {what} did not finish {when} (cycle {p.cycle:,}): "
            + "; ".join(p.describe(c) for c in late)
            + f"; shell STATUS {status_text(status)}, IMAGES_DONE {done}"
        )

    def received(self, nbytes: int) -> np.ndarray:
        if self._recv is None or not self._recv.is_file():
            raise DriverError("sim: no finished receive")
        data = np.fromfile(self._recv, dtype=np.uint8)
        if len(data) != nbytes:
            raise DriverError(f"sim: the receive ended after {len(data)} bytes, not {nbytes}")
        return data

    def close(self) -> None:
        self.process.close()
