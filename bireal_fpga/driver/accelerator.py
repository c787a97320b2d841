"""The accelerator as a Python object: one protocol of register writes and DMA transfers,
over the board (:mod:`.board`, pynq) or the simulation (:mod:`.sim`).

A batch, as ``hw/README.md`` ("The board shell") specifies it: write ``BATCH``, ``CTRL`` =
``START``, start the receive (S2MM) of the batch's result bytes, then the send (MM2S) of its
packed images, poll both against a deadline, check ``STATUS`` and ``IMAGES_DONE``, read
``CYCLES``. Inputs larger than the buffers are cut into batches.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bireal_fpga.arch import shell as arch
from bireal_fpga.driver.errors import DriverError, InputError

IMG, WGT, OUT = "img", "wgt", "out"  # the three streams (out: the S2MM receive)
DEFAULT_BATCH = 1024  # images per DMA transfer, at most
WEIGHT_TIMEOUT_S = 10.0  # the weight load, at least


class Port(Protocol):
    """What a backend offers: the control registers and the three DMA channels."""

    name: str  # "board" or "sim"
    clock_mhz: float  # the PL clock the cycle counter counts

    def read(self, offset: int) -> int: ...
    def write(self, offset: int, value: int) -> None: ...
    def send(self, channel: str, data: np.ndarray) -> None: ...  # start an MM2S transfer
    def receive(self, nbytes: int) -> None: ...  # start the S2MM transfer
    def wait(self, channels: Sequence[str], deadline: float | None, what: str) -> None: ...
    def received(self, nbytes: int) -> np.ndarray: ...  # the finished receive's bytes
    def close(self) -> None: ...


@dataclass
class Batch:
    images: int
    wall_s: float  # from START to both transfers done, measured by the host
    cycles: int  # the shell's CYCLES: START to the batch's last result beat


@dataclass
class RunStats:
    """Throughput and latency of the last :meth:`Accelerator.run`, measured on the device:
    wall clock (host) and the shell's cycle counter (``clock_mhz``)."""

    clock_mhz: float
    batches: list[Batch] = field(default_factory=list)

    @property
    def images(self) -> int:
        return sum(b.images for b in self.batches)

    @property
    def wall_s(self) -> float:
        return sum(b.wall_s for b in self.batches)

    @property
    def cycles(self) -> int:
        return sum(b.cycles for b in self.batches)

    @property
    def fps(self) -> float:
        """Images per second, wall clock (DMA transfers included)."""
        return self.images / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def fps_cycles(self) -> float:
        """Images per second by the cycle counter at ``clock_mhz``."""
        return self.images * self.clock_mhz * 1e6 / self.cycles if self.cycles else 0.0

    @property
    def latency_s(self) -> float:
        """Mean wall time of one batch (a batch of one: one image's latency)."""
        return self.wall_s / len(self.batches) if self.batches else 0.0

    @property
    def latency_cycles_s(self) -> float:
        """Mean cycle-counter time of one batch."""
        n = len(self.batches)
        return self.cycles / n / (self.clock_mhz * 1e6) if n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "batches": len(self.batches),
            "wall_s": self.wall_s,
            "cycles": self.cycles,
            "clock_mhz": self.clock_mhz,
            "fps": self.fps,
            "fps_cycles": self.fps_cycles,
            "latency_s": self.latency_s,
            "latency_cycles_s": self.latency_cycles_s,
        }

    def __str__(self) -> str:
        return (
            f"{self.images} images in {len(self.batches)} batches: {self.fps:,.0f} FPS wall "
            f"clock, {self.fps_cycles:,.0f} FPS by the cycle counter at {self.clock_mhz:g} MHz; "
            f"latency per batch {self.latency_s * 1e3:.3f} ms wall, "
            f"{self.latency_cycles_s * 1e3:.3f} ms cycles"
        )


def check_images(images: Any, shape: Sequence[int]) -> np.ndarray:
    """``images`` as a C-contiguous uint8 ``[N, H, W, C]`` array (``(H, W, C)``: one image),
    or an :class:`InputError` naming what is wrong."""
    h, w, c = (int(s) for s in shape)
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise InputError(f"images of dtype {x.dtype}: the accelerator takes uint8 pixels 0..255")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise InputError(
            f"images of shape {tuple(x.shape)}: expected (N, {h}, {w}, {c}) or ({h}, {w}, {c})"
        )
    if x.shape[3] != c:
        hint = " (channels first? transpose to N, H, W, C)" if x.shape[1] == c else ""
        raise InputError(
            f"images with {x.shape[3]} channels (shape {tuple(x.shape)}): the accelerator "
            f"takes {c}{hint}"
        )
    if tuple(x.shape[1:3]) != (h, w):
        raise InputError(
            f"images of {x.shape[1]}x{x.shape[2]} pixels: the accelerator takes {h}x{w} "
            "(resize them first)"
        )
    if x.shape[0] == 0:
        raise InputError("no images (N = 0)")
    return np.ascontiguousarray(x)


def status_text(status: int) -> str:
    bits = [
        name
        for bit, name in (
            (arch.STATUS_BUSY, "BUSY"),
            (arch.STATUS_DONE, "DONE"),
            (arch.STATUS_WEIGHTS_LOADED, "WEIGHTS_LOADED"),
        )
        if status & bit
    ]
    return f"0x{status:x} ({' '.join(bits) or 'idle'})"


class Accelerator:
    """One build's accelerator on a backend. Open with :meth:`open`; then :meth:`run`."""

    def __init__(
        self,
        port: Port,
        shell: Mapping[str, Any],
        *,
        batch_size: int | None = None,
        timeout_s: float | None,
        weights: bytes | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.port = port
        self.shell = dict(shell)
        self.image = dict(shell["image"])
        self.output = dict(shell["output"])
        self.timeout_s = None if timeout_s is None else float(timeout_s)
        self.info: dict[str, Any] = dict(info or {})
        limit = (1 << int(shell.get("dma_length_bits", arch.DMA_LENGTH_BITS))) - 1
        per_image = max(int(self.image["bytes_per_image"]), int(self.output["bytes_per_image"]))
        self.max_batch = max(1, limit // per_image)
        want = DEFAULT_BATCH if batch_size is None else int(batch_size)
        if want < 1:
            raise DriverError(f"batch_size {batch_size} is not a positive number of images")
        self.batch_size = min(want, self.max_batch)
        self.stats = RunStats(port.clock_mhz)
        self._closed = False
        self._check_registers()
        if shell.get("weights"):
            self._load_weights(weights)

    # ---- what the accelerator takes and gives -----------------------------------------------

    @property
    def backend(self) -> str:
        return self.port.name

    @property
    def image_shape(self) -> tuple[int, int, int]:
        h, w, c = (int(s) for s in self.image["shape"])
        return h, w, c

    @property
    def outputs_top1(self) -> bool:
        """The hardware outputs the best class index (a ``--top1`` build), not scores."""
        return self.output.get("values") == "top1"

    @property
    def classes(self) -> int | None:
        return None if self.outputs_top1 else int(self.output["shape"][0])

    # ---- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        folder: str | Any,
        backend: str = "auto",
        *,
        batch_size: int | None = None,
        timeout_s: float | None = None,
        **options: Any,
    ) -> Accelerator:
        """The accelerator of the build in ``folder`` (a build, a ``bireal-fpga deploy`` folder,
        or for the board a bitstream folder). ``backend``: ``"board"`` (pynq: loads the
        bitstream), ``"sim"`` (the build's compiled Verilator model of shell + accelerator),
        ``"auto"`` (the board when pynq finds a device). ``timeout_s``: the wall-clock deadline
        of each batch's DMA transfers (board: 10 s by default; sim: none by default, its
        deadline is 8 of the design's intervals per image in simulated cycles). ``options`` go
        to the backend (sim: ``stall``, ``seed``)."""
        from bireal_fpga.driver import backends

        return backends.open_accelerator(
            cls, folder, backend, batch_size=batch_size, timeout_s=timeout_s, **options
        )

    def _check_registers(self) -> None:
        r = self.port.read
        magic = r(arch.OFFSETS["MAGIC"])
        if magic != arch.MAGIC:
            raise DriverError(
                f"{self.backend}: MAGIC reads 0x{magic:08x}, not 0x{arch.MAGIC:08x}: the loaded "
                "design is not a bireal-fpga shell"
            )
        build = r(arch.OFFSETS["BUILD_ID"])
        want = int(str(self.shell["build_id"]), 16)
        if build != want:
            raise DriverError(
                f"{self.backend}: BUILD_ID reads 0x{build:08x}, the manifest is of build "
                f"0x{want:08x}: the loaded bitstream is another build's"
            )
        wgt = self.shell.get("weights") or {}
        for reg, value in (
            ("IN_WORDS", self.image["words_per_image"]),
            ("OUT_WORDS", self.output["words_per_image"]),
            ("WEIGHT_TOTAL", wgt.get("beats", 0)),
        ):
            got = r(arch.OFFSETS[reg])
            if got != int(value):
                raise DriverError(f"{self.backend}: {reg} reads {got}, the manifest says {value}")

    def _load_weights(self, weights: bytes | None) -> None:
        spec = self.shell["weights"]
        if weights is None or len(weights) != int(spec["bytes"]):
            got = "none" if weights is None else f"{len(weights)} bytes"
            raise DriverError(
                f"the design loads {spec['bytes']} bytes of weights at run time; given {got}"
            )
        if self.port.read(arch.OFFSETS["STATUS"]) & arch.STATUS_WEIGHTS_LOADED:
            return  # loaded since the bitstream was: a second open does not reload them
        self.port.send(WGT, np.frombuffer(weights, dtype=np.uint8))
        self.port.wait([WGT], self._deadline(WEIGHT_TIMEOUT_S), "the weight load")
        status = self.port.read(arch.OFFSETS["STATUS"])
        beats = self.port.read(arch.OFFSETS["WEIGHT_BEATS"])
        if not status & arch.STATUS_WEIGHTS_LOADED:
            raise DriverError(
                f"{self.backend}: after the weight load STATUS is {status_text(status)} and "
                f"WEIGHT_BEATS {beats} of {spec['beats']}: the weights did not arrive"
            )

    # ---- running ----------------------------------------------------------------------------

    def run(self, images: Any, *, top1: bool = False) -> np.ndarray:
        """Class scores ``int64 [N, classes]`` of uint8 images ``[N, H, W, C]`` (or one image
        ``[H, W, C]``: ``[1, classes]``); ``top1``: the best class of each, ``int64 [N]``
        (the first of equal scores, as ``np.argmax``). A ``--top1`` build's hardware gives
        the class itself: ``[N, 1]``, or ``[N]`` with ``top1``. :attr:`stats`: this run's
        throughput and latency."""
        if self._closed:
            raise DriverError("the accelerator is closed")
        x = check_images(images, self.image_shape)
        self.stats = RunStats(self.port.clock_mhz)
        parts = [self._batch(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        out = np.concatenate(parts)
        if not top1:
            return out
        return out[:, 0] if self.outputs_top1 else np.argmax(out, axis=1).astype(np.int64)

    def _deadline(self, at_least_s: float) -> float | None:
        """When a transfer started now is late (None: no wall-clock deadline; the simulation
        then counts its own in cycles)."""
        if self.timeout_s is None:
            return None
        return time.monotonic() + max(at_least_s, self.timeout_s)

    def _batch(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        port, off = self.port, arch.OFFSETS
        data = np.frombuffer(arch.pack_images(x, self.image), dtype=np.uint8)
        nbytes = n * int(self.output["bytes_per_image"])
        status = port.read(off["STATUS"])
        if status & arch.STATUS_BUSY:
            raise DriverError(
                f"{self.backend}: STATUS {status_text(status)} before START: a batch still runs "
                "(an earlier transfer timed out? open the accelerator again)"
            )
        port.write(off["BATCH"], n)
        t0 = time.perf_counter()
        port.write(off["CTRL"], arch.CTRL_START)
        port.receive(nbytes)  # the receive first: the results may come before the send ends
        port.send(IMG, data)
        port.wait([OUT, IMG], self._deadline(0.0), f"a batch of {n} images")
        wall = time.perf_counter() - t0
        status = port.read(off["STATUS"])
        done = port.read(off["IMAGES_DONE"])
        if not status & arch.STATUS_DONE or status & arch.STATUS_BUSY or done != n:
            raise DriverError(
                f"{self.backend}: after a batch of {n} images STATUS is {status_text(status)} "
                f"and IMAGES_DONE {done}"
            )
        lo = port.read(off["CYCLES_LO"])
        cycles = lo | (port.read(off["CYCLES_HI"]) << 32)
        self.stats.batches.append(Batch(n, wall, cycles))
        return arch.unpack_results(port.received(nbytes).tobytes(), self.output, n)

    # ---- the rest ---------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What runs: backend, board, build, clock, shapes, batch size."""
        return {
            **self.info,
            "backend": self.backend,
            "build_id": self.shell["build_id"],
            "clock_mhz": self.port.clock_mhz,
            "image_shape": list(self.image_shape),
            "outputs": "top1" if self.outputs_top1 else f"{self.classes} class scores",
            "batch_size": self.batch_size,
            "run_time_weights": bool(self.shell.get("weights")),
        }

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.port.close()

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        d = self.describe()
        return (
            f"Accelerator({d['backend']}, {d.get('board', '?')}, build {d['build_id']}, "
            f"{d['clock_mhz']:g} MHz, {d['outputs']})"
        )
