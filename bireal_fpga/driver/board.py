"""The board backend: the accelerator's :class:`~bireal_fpga.driver.accelerator.Port` over
pynq (``Overlay``, ``allocate``, the AXI DMAs' simple-mode channels, the shell's AXI-Lite
registers). pynq is imported only by :func:`open_overlay`.

pynq's ``wait()`` has no timeout: :meth:`PynqPort.wait` polls each channel's ``idle``
against a deadline and reads the DMA's status register (DMASR) when a transfer errs or is
late.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga.arch import shell as arch
from bireal_fpga.driver.accelerator import status_text
from bireal_fpga.driver.errors import DmaTimeoutError, DriverError

# AXI DMA register map (PG021): each channel's control and status register
DMASR = {"mm2s": 0x04, "s2mm": 0x34}
DMASR_BITS = (
    (0, "Halted"),
    (1, "Idle"),
    (4, "DMAIntErr"),
    (5, "DMASlvErr"),
    (6, "DMADecErr"),
    (12, "IOC_Irq"),
    (14, "Err_Irq"),
)
DMASR_ERRORS = (1 << 4) | (1 << 5) | (1 << 6)
POLL_S = 20e-6  # between two reads of a channel's status
CLOCK_TOLERANCE = 0.01  # the PL clock may differ this much from the manifest's


def dmasr_text(value: int) -> str:
    bits = [name for bit, name in DMASR_BITS if value >> bit & 1]
    return f"0x{value:08x} ({' '.join(bits) or 'running'})"


def _norm(board: str) -> str:
    return board.replace("-", "").replace("_", "").lower()


def open_overlay(bitstream: Path, manifest: Mapping[str, Any]) -> tuple[Any, Any, float]:
    """(pynq, the loaded overlay, the PL clock in MHz) for the checked bitstream folder."""
    try:
        import pynq
    except ImportError:
        raise DriverError(
            "the board backend needs pynq (on a PYNQ image); on a PC use backend='sim'"
        ) from None
    here = os.environ.get("BOARD")  # PYNQ images name their board here
    want = str(manifest.get("pynq_platform") or manifest.get("board") or "")
    if here and want and _norm(here) not in (_norm(want), _norm(str(manifest.get("board")))):
        raise DriverError(
            f"'{bitstream}' is a bitstream for {manifest.get('board')}; this board is {here}"
        )
    bit = Path(bitstream) / str(manifest["files"]["bitstream"])
    try:
        overlay = pynq.Overlay(str(bit))
    except Exception as exc:  # pynq raises many kinds here
        raise DriverError(f"pynq could not load '{bit}': {exc}") from None
    clock = manifest.get("clock") or {}
    want_mhz = clock.get("actual_mhz") or clock.get("requested_mhz")
    mhz = float(want_mhz or 0.0)
    clocks = getattr(pynq, "Clocks", None)
    if clocks is not None and hasattr(clocks, "fclk0_mhz"):
        if want_mhz and abs(float(clocks.fclk0_mhz) - float(want_mhz)) > CLOCK_TOLERANCE * mhz:
            clocks.fclk0_mhz = float(want_mhz)
        mhz = float(clocks.fclk0_mhz)
        if want_mhz and abs(mhz - float(want_mhz)) > CLOCK_TOLERANCE * float(want_mhz):
            raise DriverError(
                f"the PL clock runs at {mhz:g} MHz, the bitstream was built for {want_mhz:g} MHz"
            )
    if not mhz:
        raise DriverError(f"'{bitstream / 'manifest.json'}' names no PL clock")
    return pynq, overlay, mhz


class PynqPort:
    """Registers and DMA channels of the loaded overlay, as the manifest names them."""

    name = "board"

    def __init__(self, pynq: Any, overlay: Any, manifest: Mapping[str, Any], mhz: float) -> None:
        self.pynq = pynq
        self.clock_mhz = mhz
        shell_cell = str(manifest["address_map"][0]["cell"])
        self.ctrl = self._ip(overlay, shell_cell)
        streams = manifest["streams"]
        # channel -> (DMA cell name, DMA, its channel, "mm2s"/"s2mm")
        self.channels: dict[str, tuple[str, Any, Any, str]] = {}
        for d in manifest["dmas"]:
            cell = str(d["cell"])
            dma = self._ip(overlay, cell)
            for key, port in (("img", "image"), ("wgt", "weights")):
                if streams.get(port) and d.get("mm2s_to") == streams[port]["port"]:
                    self.channels[key] = (cell, dma, dma.sendchannel, "mm2s")
            if d.get("s2mm_from") == streams["output"]["port"]:
                self.channels["out"] = (cell, dma, dma.recvchannel, "s2mm")
        for key in ("img", "out") + (("wgt",) if streams.get("weights") else ()):
            if key not in self.channels:
                raise DriverError(f"the manifest's DMAs have no channel for the {key} stream")
        self.buffers: dict[tuple[str, int], Any] = {}
        self._recv: Any = None

    @staticmethod
    def _ip(overlay: Any, cell: str) -> Any:
        try:
            return getattr(overlay, cell)
        except AttributeError:
            raise DriverError(
                f"the overlay has no IP '{cell}' (the hwh is of another design?)"
            ) from None

    def read(self, offset: int) -> int:
        return int(self.ctrl.read(offset))

    def write(self, offset: int, value: int) -> None:
        self.ctrl.write(offset, int(value))

    def _buffer(self, channel: str, nbytes: int) -> Any:
        key = (channel, nbytes)
        if key not in self.buffers:
            if len(self.buffers) >= 8:  # keep a few sizes: a run's full and last batch
                for k in [k for k in self.buffers if k[0] == channel]:
                    self.buffers.pop(k).freebuffer()
            self.buffers[key] = self.pynq.allocate(shape=(nbytes,), dtype=np.uint8)
        return self.buffers[key]

    def send(self, channel: str, data: np.ndarray) -> None:
        buf = self._buffer(channel, len(data))
        buf[:] = data
        buf.flush()
        self.channels[channel][2].transfer(buf)

    def receive(self, nbytes: int) -> None:
        self._recv = self._buffer("out", nbytes)
        self.channels["out"][2].transfer(self._recv)

    def dmasr(self, channel: str) -> int:
        _cell, dma, _ch, direction = self.channels[channel]
        return int(dma.read(DMASR[direction]))

    def _describe(self, channel: str) -> str:
        cell, _dma, _ch, direction = self.channels[channel]
        reg = DMASR[direction]
        return (
            f"{cell}.{direction} ({channel}): DMASR@0x{reg:02x} = {dmasr_text(self.dmasr(channel))}"
        )

    def wait(self, channels: Sequence[str], deadline: float | None, what: str) -> None:
        if deadline is None:  # pynq's wait() has none; the board always has one
            raise DriverError("board: a DMA wait needs a deadline (timeout_s)")
        pending = list(channels)
        while pending:
            pending = [c for c in pending if not self.channels[c][2].idle]
            for c in pending:
                if self.dmasr(c) & DMASR_ERRORS:
                    raise DriverError(
                        f"board: {what}: the DMA stopped with an error: {self._describe(c)}"
                    )
            if not pending:
                return
            if time.monotonic() > deadline:
                status = self.read(arch.OFFSETS["STATUS"])
                done = self.read(arch.OFFSETS["IMAGES_DONE"])
                raise DmaTimeoutError(
                    f"board: {what} did not finish before its deadline: "
                    + "; ".join(self._describe(c) for c in pending)
                    + f"; shell STATUS {status_text(status)}, IMAGES_DONE {done}"
                )
            time.sleep(POLL_S)

    def received(self, nbytes: int) -> np.ndarray:
        buf = self._recv
        if buf is None or len(buf) != nbytes:
            raise DriverError("board: no finished receive")
        buf.invalidate()
        return np.array(buf, dtype=np.uint8, copy=True)

    def close(self) -> None:
        for buf in self.buffers.values():
            buf.freebuffer()
        self.buffers.clear()
