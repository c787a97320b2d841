"""A stand-in for pynq (tests only; see ../README.md): the board is the build's compiled
Verilator model of shell + accelerator, driven through pynq's public API.

``Overlay(bitfile)`` resets the model (a download); its ``ip_dict`` comes from the
``manifest.json`` beside the bitstream (a real pynq parses the ``.hwh``: the stand-in's one
shortcut, for the thing that is absent). AXI-Lite reads and writes of the shell's window are
transactions on the model's control port; ``pynq.lib.dma.DMA`` moves ``allocate``'d buffers
over the model's streams.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga.driver.sim import SimProcess

__version__ = "3.0.1-standin"

_ACTIVE: dict[str, Any] = {}  # the loaded overlay (one PL)
_NEXT_ADDRESS = [0x1000_0000]


class PynqBuffer(np.ndarray):
    """pynq's contiguous buffer: an ndarray with a physical address."""

    physical_address: int
    device_address: int

    def flush(self) -> None:
        pass

    def invalidate(self) -> None:
        pass

    def freebuffer(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> PynqBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.freebuffer()


def allocate(shape: Any, dtype: Any = "u4", target: Any = None, **kwargs: Any) -> PynqBuffer:
    buf = np.zeros(shape, dtype=dtype).view(PynqBuffer)
    buf.physical_address = buf.device_address = _NEXT_ADDRESS[0]
    _NEXT_ADDRESS[0] += (buf.nbytes + 0xFFF) & ~0xFFF
    return buf


class _ClocksMeta(type):
    _fclk0 = 100.0

    @property
    def fclk0_mhz(cls) -> float:
        return cls._fclk0

    @fclk0_mhz.setter
    def fclk0_mhz(cls, mhz: float) -> None:
        cls._fclk0 = float(mhz)


class Clocks(metaclass=_ClocksMeta):
    """``Clocks.fclk0_mhz``: the PL clock (the model has no real time: it only records it)."""


class _Device:
    name = "standin-board"


class _DeviceMeta(type):
    @property
    def devices(cls) -> list[_Device]:
        return [_Device()] if os.environ.get("PYNQ_STANDIN_SIM") else []

    @property
    def active_device(cls) -> _Device:
        devs = cls.devices
        if not devs:
            raise RuntimeError("No Devices Found")
        return devs[0]


class Device(metaclass=_DeviceMeta):
    pass


class DefaultIP:
    """An IP's register window: ``read(offset)`` / ``write(offset, value)``."""

    def __init__(self, description: dict[str, Any]) -> None:
        self.description = description
        self.mmio = MMIO(int(description["phys_addr"]), int(description["addr_range"]))

    def read(self, offset: int = 0) -> int:
        return self.mmio.read(offset)

    def write(self, offset: int, value: int) -> None:
        self.mmio.write(offset, value)


class MMIO:
    """Reads and writes in the loaded overlay's address windows."""

    def __init__(self, base_addr: int, length: int = 4, device: Any = None, **kwargs: Any) -> None:
        self.base_addr, self.length = int(base_addr), int(length)

    def _target(self, offset: int) -> tuple[Any, int]:
        overlay = _ACTIVE.get("overlay")
        if overlay is None:
            raise RuntimeError("no overlay is loaded")
        addr = self.base_addr + int(offset)
        for name, ip in overlay.ip_dict.items():
            base = int(ip["phys_addr"])
            if base <= addr < base + int(ip["addr_range"]):
                return overlay._driver(name), addr - base
        raise RuntimeError(f"address 0x{addr:x} is in no IP of the overlay")

    def read(self, offset: int = 0, length: int = 4, word_order: str = "little") -> int:
        ip, off = self._target(offset)
        return ip._reg_read(off)

    def write(self, offset: int, data: int) -> None:
        ip, off = self._target(offset)
        ip._reg_write(off, int(data))


class _Shell(DefaultIP):
    def __init__(self, description: dict[str, Any], sim: SimProcess) -> None:
        self.description = description
        self.sim = sim

    def read(self, offset: int = 0) -> int:
        return self._reg_read(offset)

    def write(self, offset: int, value: int) -> None:
        self._reg_write(offset, value)

    def _reg_read(self, offset: int) -> int:
        return self.sim.read(offset)

    def _reg_write(self, offset: int, value: int) -> None:
        self.sim.write(offset, value)


class Overlay:
    """Loads ``bitfile_name`` (with its ``.hwh`` beside it): resets the model."""

    def __init__(
        self,
        bitfile_name: str,
        dtbo: str | None = None,
        download: bool = True,
        ignore_version: bool = False,
        device: Any = None,
        gen_cache: bool = False,
    ) -> None:
        bit = Path(bitfile_name)
        if not bit.is_file():
            raise OSError(f"{bit} does not exist")
        if not bit.with_suffix(".hwh").is_file():
            raise RuntimeError(f"Cannot find HWH file for {bit}")
        sim_dir = os.environ.get("PYNQ_STANDIN_SIM")
        if not sim_dir:
            raise RuntimeError("No Devices Found")
        self.bitfile_name = str(bit)
        manifest = json.loads((bit.parent / "manifest.json").read_text())
        self._dmas = {d["cell"]: d for d in manifest["dmas"]}
        self._streams = manifest["streams"]
        self.ip_dict: dict[str, dict[str, Any]] = {}
        for seg in manifest["address_map"]:
            vlnv = "xilinx.com:ip:axi_dma:7.1" if seg["cell"] in self._dmas else "user:bireal:shell"
            self.ip_dict[seg["cell"]] = {
                "fullpath": seg["cell"],
                "type": vlnv,
                "phys_addr": int(seg["offset"], 16),
                "addr_range": int(seg["range"], 16),
            }
        old = _ACTIVE.pop("overlay", None)
        if old is not None:
            old._sim.close()
        p_in, p_out = (float(v) for v in os.environ.get("PYNQ_STANDIN_STALL", "0 0").split())
        self._sim = SimProcess(Path(sim_dir), stall=(p_in, p_out))
        self._drivers: dict[str, Any] = {}
        _ACTIVE["overlay"] = self

    def is_loaded(self) -> bool:
        return _ACTIVE.get("overlay") is self

    def _driver(self, name: str) -> Any:
        if name not in self._drivers:
            desc = self.ip_dict[name]
            if name in self._dmas:
                from pynq.lib.dma import DMA

                self._drivers[name] = DMA(desc, self._sim, self._dmas[name], self._streams)
            else:
                self._drivers[name] = _Shell(desc, self._sim)
        return self._drivers[name]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.__dict__.get("ip_dict", {}):
            raise AttributeError(f"Could not find IP or hierarchy {name} in overlay")
        return self._driver(name)
