"""Which FPGA memory resource each memory of the RTL uses, and what a memory costs.

Styles: ``distributed`` (LUTRAM / LUT ROM), ``block`` (RAMB18 / RAMB36), ``ultra`` (URAM288)
and, for FIFOs only, ``srl`` (SRLC32E shift registers). The templates take the first three as
the integer codes of :data:`STYLE_CODES` (``bireal_mvau_rom``/``_ram``, ``bireal_swg_ram``,
``bireal_thresholds``) and ``bireal_add`` / ``bireal_fifo`` by name.

**One ladder for every ``auto`` memory** (:func:`auto_style`: MVAU weights and input buffers,
threshold tables, affine ROMs, sliding-window buffers and line buffers, ElementwiseAdd
constants): LUTs when the memory is at most :data:`LUT_DEPTH` = 128 words deep or holds at
most :data:`LUT_BITS` = 4096 bits, block RAM otherwise. Why 128: at 128 words a LUT ROM
costs ~2.5 LUTs per bit and a LUTRAM ~3.3-3.7 (read muxes included), so ~180-270 LUTs replace
one RAMB36 (72 bits wide up to 512 words), which would be 3/4 empty; that is less of every
board than the RAMB36 itself (the boards hold 330-810 LUTs per RAMB36: Ultra96-V2 327,
PYNQ-Z2 380, ZCU104 738, KV260 813). At 256 words the two are even on the 7-series boards.
4096 bits (a quarter of a RAMB18) go to LUTs whatever their shape. A node's explicit
``distributed`` / ``block`` / ``ultra`` is taken as asked (:func:`memory_style`); a constant
memory (initialized by the bitstream) asked for in URAM gets block RAM instead
(:func:`rom_style`: UltraScale+ URAM cannot be initialized).

Memories read in the cycle they are addressed (the pool and global-pool accumulators, the
MVAU output queue) are LUTRAM whatever their size (:data:`ASYNC_READ_STYLE`): block RAM reads
only on a clock edge.

**FIFOs** keep FINN's own ladder (:func:`fifo_style`, the ``RAM_STYLE_EFF`` of its
``fifo.sv``), so the folding config means what it means in FINN: shift registers up to 33
words (and for narrow words up to 64), LUTRAM up to 257 words, then block RAM.

**Cost** of a width x depth memory per style (:func:`memory_cost`, used by the cost model and
by the generators' own depth choices): one table of block RAM aspect ratios (:data:`BRAM_SHAPES`,
the cheapest single arrangement of RAMB36 / RAMB18), URAM288 = 4K x 72, distributed ROM
``width * ceil(depth / 64)`` LUTs (64 bits per LUT6) + 25 % read muxes beyond 64 words,
distributed RAM (one write, one read port) RAM64M (3 bits / 4 LUTs, xc7) or RAM64M8 (7 bits /
8 LUTs, xcup) per 64 words, RAM32M (6 / 4) or RAM32M16 (14 / 8) up to 32, shift register
``width * ceil(depth / 32)`` SRLC32E.
"""

from __future__ import annotations

import math

from bireal_fpga.arch.resources import Resources
from bireal_fpga.errors import BiRealError

DISTRIBUTED, BLOCK, ULTRA, SRL = "distributed", "block", "ultra", "srl"
AUTO = "auto"
MEMORY_STYLES = (DISTRIBUTED, BLOCK, ULTRA)  # the styles of a memory (not a FIFO)
COST_STYLES = (DISTRIBUTED, BLOCK, ULTRA, SRL)  # the styles memory_cost prices
REQUESTS = (AUTO, *MEMORY_STYLES)  # what a node's ram_style may ask of a memory
FIFO_REQUESTS = (AUTO, SRL, DISTRIBUTED, BLOCK, ULTRA)  # ... and of a FIFO's storage
STYLE_CODES = {DISTRIBUTED: 0, BLOCK: 1, ULTRA: 2}  # the templates' integer STYLE parameter

LUT_DEPTH = 128  # memories this shallow go to LUTs (see the module docstring)
LUT_BITS = 4096  # memories this small go to LUTs whatever their shape
ASYNC_READ_STYLE = DISTRIBUTED  # memories read without a clock edge: LUTRAM only

# FINN's fifo.sv ladder
FIFO_SRL_DEPTH = 33
FIFO_SRL_NARROW_DEPTH = 64
FIFO_SRL_NARROW_BITS = 12
FIFO_LUTRAM_DEPTH = 257
FIFO_LUTRAM_NARROW_BITS = 5


class MemoryStyleError(BiRealError, ValueError):
    """A memory style that is not one of the known ones."""


def auto_style(depth: int, width: int) -> str:
    """The style of an ``auto`` memory: LUTs when shallow or small, else block RAM."""
    return DISTRIBUTED if depth <= LUT_DEPTH or depth * width <= LUT_BITS else BLOCK


def memory_style(depth: int, width: int, requested: str = AUTO, *, bram_depth: int = 0) -> str:
    """The style of a ``depth`` x ``width`` memory whose node asks for ``requested``:
    ``auto`` by :func:`auto_style`, an explicit style as asked. ``bram_depth`` > 0 (FINN's
    ``depth_trigger_bram`` of a Thresholding node) replaces the ladder of ``auto``: block RAM
    from that depth on, LUTs below it."""
    if requested == AUTO:
        if bram_depth > 0:
            return BLOCK if depth >= bram_depth else DISTRIBUTED
        return auto_style(depth, width)
    if requested in MEMORY_STYLES:
        return requested
    raise MemoryStyleError(f"ram_style '{requested}' is not one of {', '.join(REQUESTS)}")


def rom_style(depth: int, width: int, requested: str = AUTO) -> str:
    """The style of a constant memory (a ROM initialized by the bitstream): as
    :func:`memory_style`, but ``ultra`` becomes ``block`` (URAM cannot be initialized)."""
    style = memory_style(depth, width, requested)
    return BLOCK if style == ULTRA else style


def style_code(style: str) -> int:
    """The templates' integer code of a memory style."""
    if style not in STYLE_CODES:
        raise MemoryStyleError(f"memory style '{style}' has no template code")
    return STYLE_CODES[style]


def fifo_style(depth: int, width: int, requested: str = AUTO) -> str:
    """The storage of a ``depth``-word FIFO of ``width``-bit words, as FINN's ``fifo.sv``
    builds it (``width`` padded to whole bytes, as FINN pads it): a shift register up to 33
    words whatever is asked (depth 2 is two word registers in any style); above, an explicit
    style as asked; ``auto``: shift registers up to 64 words of narrow (< 12-bit) words,
    LUTRAM up to 257 words, then block RAM. (FINN's rule also sends words under 5 bits to
    LUTRAM, which its byte-padded widths never are; it takes URAM beyond 2028 words, but the
    generator does not know the board and the 7-series parts have none: ``auto`` stays in
    block RAM, ``ultra`` on request.)"""
    if requested not in FIFO_REQUESTS:
        raise MemoryStyleError(
            f"FIFO ram_style '{requested}' is not one of {', '.join(FIFO_REQUESTS)}"
        )
    padded = (width + 7) // 8 * 8
    if depth <= FIFO_SRL_DEPTH:
        return SRL
    if requested != AUTO:
        return requested
    if depth <= FIFO_SRL_NARROW_DEPTH and padded < FIFO_SRL_NARROW_BITS:
        return SRL
    if depth <= FIFO_LUTRAM_DEPTH or padded < FIFO_LUTRAM_NARROW_BITS:
        return DISTRIBUTED
    return BLOCK


# ---- cost --------------------------------------------------------------------------------------

# (words, bits, RAMB36 units): RAMB36 and RAMB18 (= 0.5) aspect ratios, simple dual port
BRAM_SHAPES = (
    (512, 72, 1.0),
    (1024, 36, 1.0),
    (2048, 18, 1.0),
    (4096, 9, 1.0),
    (8192, 4, 1.0),
    (16384, 2, 1.0),
    (32768, 1, 1.0),
    (512, 36, 0.5),
    (1024, 18, 0.5),
    (2048, 9, 0.5),
    (4096, 4, 0.5),
    (8192, 2, 0.5),
    (16384, 1, 0.5),
)
URAM_WORDS, URAM_BITS = 4096, 72


def bram36(width: int, depth: int) -> float:
    """RAMB36 equivalents (RAMB18 = 0.5) of a width x depth block memory: the cheapest single
    aspect ratio."""
    if width <= 0 or depth <= 0:
        return 0.0
    return min(
        units * math.ceil(width / bits) * math.ceil(depth / words)
        for words, bits, units in BRAM_SHAPES
    )


def uram(width: int, depth: int) -> int:
    """URAM288 blocks of a width x depth memory."""
    if width <= 0 or depth <= 0:
        return 0
    return math.ceil(width / URAM_BITS) * math.ceil(depth / URAM_WORDS)


def memory_cost(
    width: int, depth: int, style: str, family: str = "xcup", *, rom: bool = True
) -> Resources:
    """A width x depth memory with a registered read (the read register included);
    ``rom``: a constant (LUT ROM instead of LUTRAM for ``distributed``)."""
    if style not in COST_STYLES:
        raise MemoryStyleError(f"unknown memory style '{style}'")
    if width <= 0 or depth <= 0:
        return Resources()
    if style == BLOCK:
        return Resources(BRAM36=bram36(width, depth))
    if style == ULTRA:
        return Resources(URAM=uram(width, depth))
    if style == SRL:
        luts = width * math.ceil(depth / 32)
        return Resources(LUT=luts, FF=width, LUTRAM=luts)
    blocks = math.ceil(depth / 64)
    if rom and depth == 1:  # a constant: folded into the logic that reads it
        return Resources()
    if rom:  # LUT6 ROMs of 64 bits, + ~25 % read muxes beyond 64 words
        return Resources(LUT=math.ceil(width * blocks * (1.25 if blocks > 1 else 1)), FF=width)
    mux = width * math.ceil((blocks - 1) / 3)  # 64-word LUTRAM blocks joined by 4:1 LUT muxes
    if family == "xc7":
        bits, luts = (6, 4) if depth <= 32 else (3, 4)
    else:
        bits, luts = (14, 8) if depth <= 32 else (7, 8)
    ram = math.ceil(width / bits) * luts * blocks
    return Resources(LUT=ram + mux, FF=width, LUTRAM=ram)


# the resource a memory of each style is counted in (for comparing two depths of one style)
PRIMARY_RESOURCE = {DISTRIBUTED: "LUT", BLOCK: "BRAM36", ULTRA: "URAM", SRL: "LUT"}


def memory_units(width: int, depth: int, style: str, *, rom: bool = False) -> float:
    """A memory's cost in the resource of its style (LUTs, RAMB36 or URAM), for choosing
    between two depths of one memory; distributed memories counted as on UltraScale+."""
    cost = memory_cost(width, depth, style, "xcup", rom=rom)
    return float(getattr(cost, PRIMARY_RESOURCE[style]))
