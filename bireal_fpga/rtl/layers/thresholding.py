"""Thresholding -> ``hw/rtl/bireal_thresholding.sv`` (multi-threshold activation on a stream).

Also the threshold memories of the MVAU's fused activation (:func:`plan_thresholds`), shared
with :mod:`bireal_fpga.rtl.layers.mvau`.

FINN's semantics (``multithreshold``): ``out = ActVal + #{i : x >= t[c][i]}`` for an element
``x`` of channel ``c``. The count does not depend on the order of a channel's thresholds, and
for integer ``x``, ``x >= t`` equals ``x >= ceil(t)``; a threshold at or below the smallest
input always counts and one above the largest input never does. So the thresholds are rounded
up, clamped to ``[lo, hi + 1]`` of the input range (the front end uses +-2^40 for
always / never) and sorted per channel: results are identical, widths stay small, and the
sorted rows allow a binary search (``hw/rtl/bireal_thresholds.sv``): one comparison per bit of
the count, each against a small table of the thresholds that stage can probe; the stages form
engines of ``S`` stages each (``S`` = 1: fully pipelined, one input per cycle; an MVAU that
delivers one result per ``MW/SIMD`` cycles shares one engine among up to that many stages).
A Thresholding node whose channels all hold ``t0, t0 + 1, ..., t0 + N - 1`` (``uniform_thres``)
is a clamp: ``ActVal + clamp(x - t0 + 1, 0, N)``, no memory. Each table's memory style is
:func:`bireal_fpga.arch.memory.memory_style`'s (``auto``, the MVAU's ``ram_style_thresholds``,
or FINN's ``depth_trigger_bram``), as the cost model prices it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.arch import memory
from bireal_fpga.arch.affine import AffineThresholds, coefficient_bits, thresholding_affine
from bireal_fpga.arch.images import memory_image
from bireal_fpga.arch.streams import StreamFormat
from bireal_fpga.arch.widths import signed_bits
from bireal_fpga.hwlayers.mark_uniform_thresholds import is_uniform
from bireal_fpga.hwlayers.narrow_border_correction import border_sum_range, is_border_add, source
from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.render import render

MAX_STEPS = 65535
LIBRARY = ("bireal_mvau_rom.sv", "bireal_mvau_outq.sv", "bireal_thresholds.sv")


def memory_style(node: Any, attr: str, value: str, depth: int, width: int) -> int:
    """The template code of a memory's style (:func:`bireal_fpga.arch.memory.memory_style`)
    for the node's ``attr = value``."""
    if value not in memory.REQUESTS:
        raise param_error(node, attr, value, "expected auto, distributed, block or ultra")
    return memory.style_code(memory.memory_style(depth, width, value))


def int_matrix(node: Any, attr: str, values: np.ndarray) -> np.ndarray:
    """An initializer that must hold integers, as int64."""
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).all() or (np.rint(v) != v).any():
        raise param_error(node, attr, "non-integer values", "the RTL is integer-only")
    if np.abs(v).max(initial=0) >= 2.0**52:
        raise param_error(node, attr, "huge values", "beyond 52 bits")
    return np.rint(v).astype(np.int64)


@dataclass(frozen=True)
class ThresholdPlan:
    """The binary-search threshold tables of PE channels (see bireal_thresholds.sv)."""

    prefix: str  # memory image names: <prefix>_gGG[_pPPPP].mem
    steps: int  # thresholds per channel (N)
    k: int  # search stages: ceil(log2(N + 1))
    s: int  # stages per engine (group)
    bits: int  # signed compare width
    tnf: int  # channel folds stored (1 when every channel has the same thresholds)
    shared: bool
    act_val: int
    styles: int  # 2 bits per group memory
    mem_bits: int
    files: tuple[tuple[str, str], ...]

    @property
    def groups(self) -> int:
        return -(-self.k // self.s)


def plan_thresholds(
    node: Any,
    thresholds: np.ndarray | None,
    *,
    channels: int,
    pe: int,
    lo: int,
    hi: int,
    act_val: int,
    out_fmt: StreamFormat,
    prefix: str,
    style_attr: str,
    style_value: str,
    spacing: int = 1,
    depth_trigger: int = 0,
) -> ThresholdPlan:
    """Threshold tables for inputs in [lo, hi] (channel c = nf * pe + p at lane p), for a
    producer that delivers at most one input per ``spacing`` cycles."""
    if thresholds is None:
        raise param_error(node, "thresholds", None, "the thresholds must be a constant")
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] not in (1, channels) or t.shape[1] < 1:
        raise param_error(
            node, "thresholds", t.shape, f"expected ({channels} or 1, steps >= 1) thresholds"
        )
    if np.isnan(t).any():
        raise param_error(node, "thresholds", "NaN", "thresholds must be numbers")
    steps = int(t.shape[1])
    if pe > 9999:
        raise param_error(node, "PE", pe, "at most 9999 lanes (memory image names)")
    if steps > MAX_STEPS:
        raise param_error(node, "numSteps", steps, f"at most {MAX_STEPS} thresholds")
    if not -(2**31) <= act_val < 2**31:
        raise param_error(node, "ActVal", act_val, "must fit 32 bits")
    if act_val < out_fmt.lo or act_val + steps > out_fmt.hi:
        raise param_error(
            node,
            "ActVal",
            act_val,
            f"outputs [{act_val}, {act_val + steps}] do not fit the output type "
            f"[{out_fmt.lo}, {out_fmt.hi}]",
        )
    # x >= t  <=>  x >= ceil(t) for integer x; clamp to [lo, hi + 1]; order is irrelevant
    t = np.sort(np.ceil(np.clip(t, lo, hi + 1)).astype(np.int64), axis=1)
    shared = bool((t == t[:1]).all())
    if shared:
        t = t[:1]
    tnf = 1 if shared else channels // pe
    k = steps.bit_length()
    s_per = max(1, min(k, spacing))
    bits = signed_bits(lo, hi + 1)
    if bits > 62:
        raise param_error(node, "thresholds", f"{bits} bits", "compare width beyond 62 bits")
    padded = np.full((t.shape[0], (1 << k) - 1), hi + 1, dtype=np.int64)
    padded[:, :steps] = t
    lanes = 1 if shared else pe
    # chans[nf, p]: the threshold row of lane p in channel fold nf
    if shared:
        chans = np.zeros((tnf, 1), dtype=np.int64)
    else:
        chans = np.arange(tnf)[:, None] * pe + np.arange(pe)[None, :]
    files: list[tuple[str, str]] = []
    styles = 0
    mem_bits = 0
    groups = -(-k // s_per)
    for g in range(groups):
        k0 = g * s_per
        tables = []  # per stage: (lanes, tnf * 2^s) in address order nf, prefix
        for s in range(k0, min(k, k0 + s_per)):
            b = k - 1 - s
            idx = (np.arange(1 << s) << (b + 1)) + (1 << b) - 1  # thresholds stage s probes
            tab = padded[chans[:, :, None], idx[None, None, :]]  # (tnf, lanes, 2^s)
            tables.append(tab.transpose(1, 0, 2).reshape(lanes, -1))
        table = np.concatenate(tables, axis=1)  # (lanes, depth)
        depth = table.shape[1]
        if depth_trigger > 0:  # FINN's depth_trigger_bram replaces the ladder
            style = memory.style_code(
                memory.memory_style(depth, bits, memory.AUTO, bram_depth=depth_trigger)
            )
        else:
            style = memory_style(node, style_attr, style_value, depth, bits)
        styles |= style << (2 * g)
        mem_bits += depth * bits * pe
        for lane in range(lanes):
            name = f"{prefix}_g{g:02d}.mem" if shared else f"{prefix}_g{g:02d}_p{lane:04d}.mem"
            files.append((name, memory_image(table[lane], bits)))
    return ThresholdPlan(
        prefix=prefix,
        steps=steps,
        k=k,
        s=s_per,
        bits=bits,
        tnf=tnf,
        shared=shared,
        act_val=act_val,
        styles=styles,
        mem_bits=mem_bits,
        files=tuple(files),
    )


def sv_longint(v: int) -> str:
    """A 64-bit signed SystemVerilog literal."""
    return f"-64'sd{-v}" if v < 0 else f"64'sd{v}"


AFFINE_LATENCY = 3  # hw/rtl/bireal_affine_act.sv


@dataclass(frozen=True)
class AffinePlan:
    """The activation as ``ActVal + clamp((M acc + C) >> S, 0, N)`` (bireal_affine_act.sv)."""

    file: str
    shift: int
    m_bits: int
    c_bits: int
    steps: int
    act_val: int
    style: int


def plan_affine(
    form: AffineThresholds | None, *, mh: int, pe: int, act_val: int, prefix: str
) -> tuple[AffinePlan, str] | None:
    """The ROM plan and image of an exact affine form of ``mh`` channels' thresholds
    (:func:`bireal_fpga.arch.affine.mvau_affine` / ``thresholding_affine``), or None (no
    form: then the threshold tables are used)."""
    if form is None:
        return None
    m_bits, c_bits = coefficient_bits(form)
    nf = mh // pe
    # word nf, lane p: channel nf * PE + p as {C, M}; Python integers: the integer MVAUs'
    # offsets alone take ~50 bits
    c_mask = (1 << c_bits) - 1
    pairs = zip(form.offset, form.mult, strict=True)
    word = np.array([(int(ci) & c_mask) << m_bits | int(mi) for ci, mi in pairs], dtype=object)
    words = word.reshape(nf, pe)
    style = memory.style_code(memory.auto_style(nf, pe * (m_bits + c_bits)))
    file = f"{prefix}_affine.mem"
    plan = AffinePlan(file, form.shift, m_bits, c_bits, form.steps, act_val, style)
    return plan, memory_image(words, m_bits + c_bits)


def input_range(model: ModelWrapper, node: Any, lo: int, hi: int) -> tuple[int, int]:
    """The values a Thresholding node's input can hold: its type's ``[lo, hi]``, narrowed to
    ``[min(correction), K + max(correction)]`` where it reads a zero-padded conv's border add
    (through FIFOs and width converters): the thresholds (and an affine form) are exact there,
    as an MVAU's are over its accumulator range. The cost model prices the same range."""
    src = source(model, node.input[0])
    if src is not None and is_border_add(model, src):
        b_lo, b_hi = border_sum_range(model, src)
        return max(lo, b_lo), min(hi, b_hi)
    return lo, hi


@dataclass(frozen=True)
class ThresholdingParams:
    node: str
    channels: int
    pe: int
    nf: int
    in_bits: int
    in_signed: bool
    out_bits: int
    bits: int  # signed working width
    act_val: int
    uniform: bool
    steps: int
    t0m1: str  # uniform: first threshold - 1 (a SystemVerilog literal)
    thr: ThresholdPlan | None
    aff: AffinePlan | None = None  # the thresholds as an exact affine map


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    channels = int(inst.get_nodeattr("NumChannels"))
    pe = int(inst.get_nodeattr("PE"))
    if pe < 1 or channels % pe:
        raise param_error(node, "PE", pe, f"must divide NumChannels={channels}")
    if inst.get_nodeattr("runtime_writeable_weights"):
        raise param_error(node, "runtime_writeable_weights", 1, "thresholds are constants")
    for attr in ("inputDataType", "outputDataType"):
        if inst.get_nodeattr(attr) == "BIPOLAR":
            raise param_error(node, attr, "BIPOLAR", "bipolar streams are not supported")
    inp = input_port(inst, node, 0)
    out = output_port(inst, node, 0)
    lo, hi = input_range(model, node, inp.fmt.lo, inp.fmt.hi)
    act_val = int(inst.get_nodeattr("ActVal"))
    raw = model.get_initializer(node.input[1])
    uniform_attr = (
        int(inst.get_nodeattr("uniform_thres"))
        if "uniform_thres" in inst.get_nodeattr_types()
        else 0
    )
    uniform = raw is not None and is_uniform(raw)
    aff: AffinePlan | None = None
    aff_image = ""
    if uniform_attr and not uniform:
        raise param_error(
            node, "uniform_thres", 1, "the thresholds are not t0, t0 + 1, ... in every channel"
        )
    steps = int(np.asarray(raw).shape[-1]) if raw is not None else 0
    trigger = 0
    if "depth_trigger_bram" in inst.get_nodeattr_types():
        trigger = int(inst.get_nodeattr("depth_trigger_bram"))
    if uniform:
        assert raw is not None
        first = float(np.asarray(raw, dtype=np.float64)[0, 0])
        if not np.isfinite(first):
            raise param_error(node, "thresholds", first, "thresholds must be finite")
        t0 = int(np.ceil(first))  # x >= t0 + i  <=>  x >= ceil(t0) + i for integer x
        if act_val < out.fmt.lo or act_val + steps > out.fmt.hi:
            raise param_error(
                node, "ActVal", act_val, "outputs ActVal..ActVal+numSteps exceed the output type"
            )
        if not -(2**31) <= act_val < 2**31:
            raise param_error(node, "ActVal", act_val, "must fit 32 bits")
        # count = clamp(x - (t0 - 1), 0, N); t0 - 1 clamped to [lo - N, hi] changes nothing
        t0m1 = min(max(t0 - 1, lo - steps), hi)
        bits = signed_bits(min(lo - t0m1, 0), max(hi - t0m1, steps))
        thr = None
        mem_bits = 0
    else:
        thr = plan_thresholds(
            node,
            raw,
            channels=channels,
            pe=pe,
            lo=lo,
            hi=hi,
            act_val=act_val,
            out_fmt=out.fmt,
            prefix=f"{node.name}_thr",
            style_attr="ram_style",
            style_value="auto",
            depth_trigger=trigger,
        )
        t0m1 = 0
        bits = thr.bits
        mem_bits = thr.mem_bits
        # many thresholds with an exact affine form: one multiply-add per lane, as the MVAU
        # (the checks of plan_thresholds above hold for both forms)
        affine = plan_affine(
            thresholding_affine(raw, channels, lo, hi),
            mh=channels,
            pe=pe,
            act_val=act_val,
            prefix=node.name,
        )
        if affine is not None:
            aff, aff_image = affine
            thr = None
            mem_bits = channels * (aff.m_bits + aff.c_bits)
    p = ThresholdingParams(
        node=node.name,
        channels=channels,
        pe=pe,
        nf=channels // pe,
        in_bits=inp.fmt.elem_bits,
        in_signed=inp.fmt.signed,
        out_bits=out.fmt.elem_bits,
        bits=bits,
        act_val=act_val,
        uniform=uniform,
        steps=steps,
        t0m1=sv_longint(t0m1),
        thr=thr,
        aff=aff,
    )
    text = render("layers/thresholding.sv.j2", p=p)
    files = ((f"{node.name}.sv", text),) + (thr.files if thr else ())
    if aff is not None:
        files += ((aff.file, aff_image),)
    k = thr.k if thr else 0
    latency = 2 + (1 if uniform else AFFINE_LATENCY if aff else k + 1)
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=(inp,),
        outputs=(out,),
        files=files,
        library=LIBRARY + ("bireal_affine_act.sv", "bireal_thresholding.sv"),
        cycles=inp.words,
        resources=(
            ("lanes", pe),
            ("threshold_bits", mem_bits),
            ("threshold_steps", steps),
            ("compare_bits", bits),
            ("comparators", pe * (2 if uniform else k)),
            ("search_stages", k),
            ("uniform", int(uniform)),
            ("affine_multipliers", pe if aff else 0),
            ("pipeline_registers", pe * bits * (1 + k)),
            ("fifo_bits", pe * out.fmt.elem_bits * (latency + 1)),
            ("latency", latency),
        ),
    )
