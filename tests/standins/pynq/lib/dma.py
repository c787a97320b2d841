"""The stand-in's AXI DMA (simple mode): ``DMA.sendchannel`` / ``recvchannel`` with pynq's
``transfer(array, start=0, nbytes=0)``, ``wait()`` (no timeout, as pynq's), ``idle``,
``running``, ``error``, ``start()``, ``stop()``; DMASR (0x04 / 0x34) read back as PG021 lays
it out. Each look at ``idle`` clocks the model (``PYNQ_STANDIN_POLL_CYCLES``, default 20,000
cycles at most)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from pynq import DefaultIP

HALTED, IDLE, INT_ERR = 1 << 0, 1 << 1, 1 << 4
POLL = int(os.environ.get("PYNQ_STANDIN_POLL_CYCLES", "20000"))


class _SDMAChannel:
    def __init__(self, sim: Any, stream: str, tx: bool) -> None:
        self._sim, self._stream, self._tx = sim, stream, tx
        self._running = True  # pynq's DMA driver starts both channels
        self._first_transfer = True
        self._active = False
        self._error = False
        self._array: Any = None
        self._file: Any = None

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        self._running = True

    def stop(self) -> None:
        self._running = False

    def _update(self) -> None:
        if not self._active:
            return
        poll = self._sim.poll(POLL)
        ch = poll.channels["out" if not self._tx else self._stream]
        if self._tx:
            self._active = ch.active
            return
        if ch.state == "done":
            data = np.fromfile(self._file, dtype=np.uint8)
            flat = self._array.reshape(-1).view(np.uint8)
            flat[: len(data)] = data
            self._active = False
        elif ch.state == "overflow":  # the buffer filled before TLAST: DMAIntErr, halted
            self._active, self._error, self._running = False, True, False

    @property
    def idle(self) -> bool:
        self._update()
        return not self._active and not self._first_transfer

    @property
    def error(self) -> bool:
        return self._error

    def dmasr(self) -> int:
        self._update()
        value = 0 if self._running else HALTED
        if not self._active and not self._first_transfer:
            value |= IDLE
        return value | (INT_ERR if self._error else 0)

    def transfer(self, array: Any, start: int = 0, nbytes: int = 0) -> None:
        if not self._running:
            raise RuntimeError("DMA channel not started")
        if self._active:
            raise RuntimeError("DMA channel not idle")
        data = np.asarray(array).reshape(-1).view(np.uint8)
        nbytes = nbytes or len(data) - start
        if start + nbytes > len(data):
            raise ValueError("Transferred array is too small")
        self._first_transfer = False
        self._active = True
        if self._tx:
            self._sim.send(self._stream, data[start : start + nbytes])
        else:
            self._array = np.asarray(array).reshape(-1).view(np.uint8)[start:]
            self._file = self._sim.receive(nbytes)

    def wait(self) -> None:
        while not self.idle:  # no timeout, as pynq's
            if self._error:
                raise RuntimeError("DMA channel error")


class DMA(DefaultIP):
    bindto = ["xilinx.com:ip:axi_dma:7.1"]

    def __init__(self, description: dict[str, Any], sim: Any, dma: dict, streams: dict) -> None:
        self.description = description
        by_port = {s["port"]: k for k, s in streams.items() if s}
        send = {"image": "img", "weights": "wgt"}.get(by_port.get(dma.get("mm2s_to"), ""))
        self.sendchannel = _SDMAChannel(sim, send, True) if send else None
        self.recvchannel = _SDMAChannel(sim, "out", False) if dma.get("s2mm_from") else None

    def read(self, offset: int = 0) -> int:
        return self._reg_read(offset)

    def write(self, offset: int, value: int) -> None:
        self._reg_write(offset, value)

    def _reg_read(self, offset: int) -> int:
        ch = {0x04: self.sendchannel, 0x34: self.recvchannel}.get(offset)
        if ch is None:
            return 0
        return ch.dmasr()

    def _reg_write(self, offset: int, value: int) -> None:
        pass
