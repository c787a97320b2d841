"""The shell around the stitched accelerator, decided once for the Verilog generator
(``bireal_fpga.shell``), the Vivado block design (``bireal_fpga.vivado``), the simulation
testbench and a board-side driver (this module needs numpy alone).

Streams (AXI DMA in simple mode on each):

- ``s_axis_img``: the images. One DMA beat carries one word of the accelerator's input
  stream, zero-padded to :func:`dma_width` bits (a power of two, at least 8: what the AXI DMA
  offers); a batch of ``n`` images is ``n * in_words`` beats. TLAST is not needed.
- ``m_axis_out``: the results, one beat per word of the accelerator's output stream, padded
  the same way; TLAST on the last beat of the batch (the DMA's S2MM channel ends a transfer
  only on TLAST) and TKEEP all ones.
- ``s_axis_wgt`` (only when the design has run-time weights): 64-bit beats of the weight load
  (``rtl/weights.bin``).

Control (AXI4-Lite, 32-bit registers, :data:`REGISTERS`): write ``BATCH``, then ``CTRL`` =
``START``; the shell takes exactly ``BATCH * in_words`` image beats (none before ``START``),
sends ``BATCH * out_words`` result beats, then sets ``STATUS.DONE``. ``CYCLES`` counts clock
cycles from ``START`` to the last result beat (on-board timing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bireal_fpga.arch.streams import StreamFormat, fit_bytes, pack_bytes, unpack_bytes
from bireal_fpga.errors import BiRealError

MAX_DMA_BITS = 1024  # the widest stream of the AXI DMA
MAGIC = 0x42524E31  # "BRN1": read at MAGIC, tells a driver that this is a bireal-fpga shell
CTRL_ADDR_BITS = 12  # the AXI-Lite window: 4 KiB
WEIGHT_BITS = 64  # the weight stream's width (the accelerator's weight bus)
DMA_LENGTH_BITS = 26  # the DMAs' buffer length register: transfers up to 2**26 - 1 bytes


class ShellError(BiRealError, ValueError):
    """A stream the shell cannot carry (wider than the DMA's widest stream), or buffers that
    do not match its streams."""


def dma_width(bits: int) -> int:
    """The DMA stream width that carries one ``bits``-bit accelerator word per beat."""
    if bits < 1:
        raise ShellError(f"stream width {bits} is not positive")
    width = 8
    while width < bits:
        width *= 2
    if width > MAX_DMA_BITS:
        raise ShellError(
            f"a {bits}-bit stream word is wider than the AXI DMA's widest stream "
            f"({MAX_DMA_BITS} bits): fold the first / last layer narrower"
        )
    return width


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str  # "rw", "r", "w"
    doc: str


REGISTERS: tuple[Register, ...] = (
    Register("CTRL", 0x00, "w", "bit 0 START: begin a batch of BATCH images (reads 0)"),
    Register(
        "STATUS",
        0x04,
        "r",
        "bit 0 BUSY (a batch runs), bit 1 DONE (the last batch's last result beat has left; "
        "cleared by START), bit 2 WEIGHTS_LOADED (a whole weight load arrived; 1 without "
        "run-time weights)",
    ),
    Register("BATCH", 0x08, "rw", "images in the next batch (>= 1)"),
    Register("CYCLES_LO", 0x0C, "r", "cycles from START to the batch's last result beat, low"),
    Register("CYCLES_HI", 0x10, "r", "... high 32 bits (read LO first: HI is latched then)"),
    Register("IMAGES_DONE", 0x14, "r", "images of this batch whose results have all left"),
    Register("WEIGHT_BEATS", 0x18, "r", "weight beats received since reset"),
    Register("BUILD_ID", 0x1C, "r", "the first 32 bits of the build's hash (shell.json build_id)"),
    Register("MAGIC", 0x20, "r", f"0x{MAGIC:08X} ('BRN1')"),
    Register("IN_WORDS", 0x24, "r", "image beats per image"),
    Register("OUT_WORDS", 0x28, "r", "result beats per image"),
    Register("WEIGHT_TOTAL", 0x2C, "r", "beats of one weight load (0: no run-time weights)"),
)
OFFSETS: dict[str, int] = {r.name: r.offset for r in REGISTERS}

CTRL_START = 1 << 0
STATUS_BUSY = 1 << 0
STATUS_DONE = 1 << 1
STATUS_WEIGHTS_LOADED = 1 << 2


def stream_entry(port: str, fmt: StreamFormat, words: int, shape: Sequence[int]) -> dict[str, Any]:
    """A stream as ``shell.json`` records it (``"image"``, ``"output"``): the port, its DMA and
    accelerator widths, words and bytes per image, the word format, the per-image shape."""
    dma = dma_width(fmt.axi_width)
    return {
        "port": port,
        "dma_bits": dma,
        "core_bits": fmt.axi_width,
        "words_per_image": words,
        "bytes_per_image": words * dma // 8,
        "format": asdict(fmt),
        "shape": [int(s) for s in shape],
    }


def _fmt(stream: Mapping[str, Any]) -> StreamFormat:
    f = stream["format"]
    return StreamFormat(int(f["elem_bits"]), bool(f["signed"]), int(f["elems"]))


def pack_images(images: np.ndarray, image: Mapping[str, Any]) -> bytes:
    """uint8 images ``[N, H, W, C]`` -> the bytes an MM2S transfer sends to ``s_axis_img``
    (``image``: ``shell.json`` ``"image"``): each accelerator word (FINN packing of the NHWC
    pixels) in its own little-endian ``dma_bits`` beat."""
    x = np.ascontiguousarray(images)
    fmt, beat = _fmt(image), int(image["dma_bits"]) // 8
    words = int(image["words_per_image"])
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(image["shape"]):
        raise ShellError(
            f"images of shape {x.shape} are not [N, {', '.join(map(str, image['shape']))}]"
        )
    n = x.shape[0]
    if fmt.elem_bits == 8 and not fmt.signed:  # pixels: a word is `elems` consecutive bytes
        rows = x.astype(np.uint8, copy=False).reshape(n * words, fmt.elems)
        return fit_bytes(rows, beat).tobytes()
    return pack_bytes(x.reshape(n * words, fmt.elems), fmt, beat).tobytes()


def unpack_results(data: bytes, output: Mapping[str, Any], n: int) -> np.ndarray:
    """The bytes an S2MM transfer received from ``m_axis_out`` for ``n`` images -> int64
    results ``[n, elements]`` (``output``: ``shell.json`` ``"output"``)."""
    beat, words = int(output["dma_bits"]) // 8, int(output["words_per_image"])
    want = n * words * beat
    if len(data) != want:
        raise ShellError(f"{len(data)} result bytes for {n} images, expected {want}")
    fmt = _fmt(output)
    raw = np.frombuffer(data, dtype=np.uint8).reshape(n * words, beat)
    return unpack_bytes(raw, fmt).reshape(n, words * fmt.elems)
