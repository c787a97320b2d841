"""MVAU -> ``hw/rtl/bireal_mvau.sv`` (matrix-vector unit with optional threshold activation).

FINN's semantics (``MVAU.execute_node``): ``acc = x @ W`` for each input vector (``W`` of shape
``(MW, MH)``); with ``binaryXnorMode`` the inputs and weights are bits and ``acc`` counts the
positions where they agree (XNOR popcount). ``noActivation=1`` outputs ``acc``; otherwise
``ActVal + #{i : acc >= T[c][i]}`` (see :mod:`bireal_fpga.rtl.layers.thresholding`).

The accumulator width comes from the actual weights and the input type's range
(:func:`bireal_fpga.arch.affine.accumulator_range`, which the cost model prices too), so it is
as small as exactness allows; the activation is an exact affine map where the thresholds have
one (:mod:`bireal_fpga.arch.affine`), else threshold tables. Every memory's style is
:mod:`bireal_fpga.arch.memory`'s (weights: the node's ``ram_style``; input buffer and affine
ROM: ``auto``; threshold tables: ``ram_style_thresholds``). Weights live in one
memory word per (neuron fold, synapse fold) step: address ``nf * SF + sf``, lane ``p`` (channel
``nf * PE + p``) holding the SIMD weights of rows ``sf * SIMD .. sf * SIMD + SIMD - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.arch import memory
from bireal_fpga.arch.affine import (
    accumulator_range,
    mvau_affine,
    weight_bits,
)
from bireal_fpga.arch.dsp import (
    FAMILY_PROP,
    DspPacking,
    dsp_packing,
    packed_pairs,
    stored_weights,
)
from bireal_fpga.arch.images import memory_image
from bireal_fpga.arch.widths import signed_bits
from bireal_fpga.rtl.layers.base import (
    WEIGHT_BUS_BITS,
    RtlLayer,
    WeightLoad,
    input_port,
    output_port,
    param_error,
)
from bireal_fpga.rtl.layers.thresholding import (
    AFFINE_LATENCY,
    LIBRARY,
    AffinePlan,
    ThresholdPlan,
    int_matrix,
    memory_style,
    plan_affine,
    plan_thresholds,
)
from bireal_fpga.rtl.render import render


@dataclass(frozen=True)
class MvauParams:
    node: str
    mw: int
    mh: int
    simd: int
    pe: int
    binary: bool
    in_bits: int
    in_signed: bool
    w_bits: int
    acc_bits: int
    no_act: bool
    out_bits: int
    w_style: int
    buf_style: int
    weight_file: str
    thr: ThresholdPlan | None
    aff: AffinePlan | None = None
    load: bool = False  # weights loaded at run time (the weight bus) instead of a ROM image
    load_beats: int = 0
    pack: DspPacking | None = None  # two lanes per multiplier (bireal_fpga.arch.dsp)


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    mw, mh = int(inst.get_nodeattr("MW")), int(inst.get_nodeattr("MH"))
    simd, pe = int(inst.get_nodeattr("SIMD")), int(inst.get_nodeattr("PE"))
    if simd < 1 or mw % simd:
        raise param_error(node, "SIMD", simd, f"must divide MW={mw}")
    if pe < 1 or mh % pe:
        raise param_error(node, "PE", pe, f"must divide MH={mh}")
    mem_mode = inst.get_nodeattr("mem_mode")
    if mem_mode not in ("internal_embedded", "internal_decoupled"):
        raise param_error(node, "mem_mode", mem_mode, "the weights must be a constant memory")
    load = bool(inst.get_nodeattr("runtime_writeable_weights"))
    for attr in ("inputDataType", "weightDataType", "outputDataType"):
        if inst.get_nodeattr(attr) == "BIPOLAR":
            raise param_error(node, attr, "BIPOLAR", "bipolar streams are not supported")
    binary = bool(inst.get_nodeattr("binaryXnorMode"))
    no_act = bool(inst.get_nodeattr("noActivation"))
    inp = input_port(inst, node, 0)
    out = output_port(inst, node, 0)
    raw = model.get_initializer(node.input[1])
    if raw is None:
        raise param_error(node, "weights", node.input[1], "the weights must be a constant")
    if tuple(raw.shape) != (mw, mh):
        raise param_error(node, "weights", tuple(raw.shape), f"expected shape ({mw}, {mh})")
    w = int_matrix(node, "weights", raw)
    if binary:
        if inst.get_nodeattr("inputDataType") != "BINARY":
            idt = inst.get_nodeattr("inputDataType")
            raise param_error(node, "inputDataType", idt, "binaryXnorMode needs BINARY inputs")
        if w.size and (w.min() < 0 or w.max() > 1):
            raise param_error(node, "weights", "not 0/1", "binaryXnorMode needs BINARY weights")
    w_bits = weight_bits(w, binary)
    pack = dsp_packing(
        inp.fmt.elem_bits,
        inp.fmt.signed,
        int(w.min(initial=0)),
        int(w.max(initial=0)),
        w_bits,
        pe,
        binary,
        model.get_metadata_prop(FAMILY_PROP),
    )
    acc_lo, acc_hi = accumulator_range(w, inp.fmt.lo, inp.fmt.hi, binary)
    acc_bits = signed_bits(acc_lo, acc_hi)
    if acc_bits > 62:
        raise param_error(node, "accDataType", f"{acc_bits} bits", "beyond 62 bits")
    sf, nf = mw // simd, mh // pe
    prefix = node.name
    thr = None
    affine = None
    if no_act:
        if acc_lo < out.fmt.lo or acc_hi > out.fmt.hi:
            raise param_error(
                node,
                "outputDataType",
                inst.get_nodeattr("outputDataType"),
                f"accumulators [{acc_lo}, {acc_hi}] do not fit it",
            )
    else:
        if len(node.input) < 3:
            raise param_error(node, "noActivation", 0, "no threshold input")
        affine = plan_affine(
            mvau_affine(model.get_initializer(node.input[2]), mh, acc_lo, acc_hi, binary),
            mh=mh,
            pe=pe,
            act_val=int(inst.get_nodeattr("ActVal")),
            prefix=prefix,
        )
        thr = plan_thresholds(
            node,
            model.get_initializer(node.input[2]),
            channels=mh,
            pe=pe,
            lo=acc_lo,
            hi=acc_hi,
            act_val=int(inst.get_nodeattr("ActVal")),
            out_fmt=out.fmt,
            prefix=f"{prefix}_thr",
            style_attr="ram_style_thresholds",
            style_value=inst.get_nodeattr("ram_style_thresholds"),
            spacing=sf,  # one result per SF cycles: an engine may search SF stages
        )
    # weight memory: word nf * SF + sf, lane p element s = W[sf * SIMD + s, nf * PE + p]
    words = w.reshape(sf, simd, nf, pe).transpose(2, 0, 3, 1).reshape(nf * sf, pe * simd)
    words = stored_weights(words, pe, simd, pack)  # a packed pair's high lane: w_hi - [w_lo < 0]
    depth, width = nf * sf, pe * simd * w_bits
    w_style = memory_style(node, "ram_style", inst.get_nodeattr("ram_style"), depth, width)
    if w_style == memory.STYLE_CODES[memory.ULTRA] and not load:
        raise param_error(
            node,
            "ram_style",
            "ultra",
            "UltraRAM cannot be initialized by the bitstream: set runtime_writeable_weights=1",
        )
    buf_style = memory.style_code(memory.auto_style(sf, simd * inp.fmt.elem_bits))
    weight_file = f"{prefix}_weights.mem"
    weight_image = memory_image(words, w_bits)
    beats = load_beats(weight_image, width) if load else ()
    p = MvauParams(
        node=node.name,
        mw=mw,
        mh=mh,
        simd=simd,
        pe=pe,
        binary=binary,
        in_bits=inp.fmt.elem_bits,
        in_signed=inp.fmt.signed,
        w_bits=w_bits,
        acc_bits=acc_bits,
        no_act=no_act,
        out_bits=out.fmt.elem_bits,
        w_style=w_style,
        buf_style=buf_style,
        weight_file=weight_file,
        thr=None if affine else thr,
        aff=affine[0] if affine else None,
        load=load,
        load_beats=len(beats),
        pack=pack,
    )
    if affine:  # the checks of plan_thresholds (types, ActVal range) hold for both forms
        thr = None
    text = render("layers/mvau.sv.j2", p=p)
    files: tuple[tuple[str, str], ...] = ((f"{node.name}.sv", text),)
    if not load:  # a loaded layer has no memory image: its words travel on the weight bus
        files += ((weight_file, weight_image),)
    if thr is not None:
        files += thr.files
    if affine:
        files += ((affine[0].file, affine[1]),)
    vectors = int(np.prod(inst.get_nodeattr("numInputVectors")))
    latency = 4 + (AFFINE_LATENCY if affine else 0 if thr is None else thr.k + 1)
    k = 0 if thr is None else thr.k
    engines = 0 if thr is None else thr.groups
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=(inp,),
        outputs=(out,),
        files=files,
        library=LIBRARY + ("bireal_affine_act.sv", "bireal_mvau_ram.sv", "bireal_mvau.sv"),
        cycles=vectors * sf * nf,
        resources=(
            ("lanes", pe * simd),
            ("pe", pe),
            ("simd", simd),
            ("binary", int(binary)),
            ("multipliers", 0 if binary else (pe - packed_pairs(pe, pack)) * simd),
            ("packed_pairs", packed_pairs(pe, pack)),
            ("popcount_bits", pe * simd if binary else 0),
            ("weight_bits", depth * width),
            ("weight_depth", depth),
            ("weight_width", width),
            ("weight_block", int(w_style == memory.STYLE_CODES[memory.BLOCK])),
            ("weight_ultra", int(w_style == memory.STYLE_CODES[memory.ULTRA])),
            ("weight_load_beats", len(beats)),
            ("acc_bits", acc_bits),
            ("input_buffer_bits", sf * simd * inp.fmt.elem_bits if nf > 1 else 0),
            ("threshold_bits", 0 if thr is None else thr.mem_bits),
            ("threshold_steps", 0 if thr is None else thr.steps),
            ("affine_multipliers", pe if affine else 0),
            ("comparators", pe * engines),
            ("search_stages", k),
            ("fifo_bits", pe * out.fmt.elem_bits * (latency + 1)),
            ("latency", latency),
        ),
        load=WeightLoad(beats) if load else None,
    )


def load_beats(image: str, width: int) -> tuple[int, ...]:
    """The weight bus beats of a memory image (one hex word per line): each word split into
    ceil(width / 64) 64-bit beats, least significant first."""
    per = -(-width // WEIGHT_BUS_BITS)
    mask = (1 << WEIGHT_BUS_BITS) - 1
    out: list[int] = []
    for line in image.split():
        w = int(line, 16)
        out.extend((w >> (WEIGHT_BUS_BITS * i)) & mask for i in range(per))
    return tuple(out)
