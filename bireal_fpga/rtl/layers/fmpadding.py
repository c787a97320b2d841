"""FMPadding -> ``hw/rtl/bireal_fmpadding.sv`` (zero padding around an image, full rate)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.render import render


def mask_literal(bits: Sequence[bool]) -> str:
    """A SystemVerilog literal of ``len(bits)`` bits, ``bits[i]`` at bit ``i``."""
    value = sum(1 << i for i, b in enumerate(bits) if b)
    return f"{len(bits)}'h{value:x}"


def ints(node: Any, inst: Any, attr: str, n: int) -> list[int]:
    values = [int(v) for v in inst.get_nodeattr(attr)]
    if len(values) != n:
        raise param_error(node, attr, values, f"expected {n} values")
    return values


@dataclass(frozen=True)
class FMPaddingParams:
    node: str
    width: int  # SIMD * bits
    ih: int
    iw: int
    oh: int
    ow: int
    cf: int  # words per pixel
    colmask: str
    rowmask: str


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    ih, iw = ints(node, inst, "ImgDim", 2)
    # FINN's order: [H_begin, W_begin, H_end, W_end] = [top, left, bottom, right]
    top, left, bottom, right = ints(node, inst, "Padding", 4)
    channels = int(inst.get_nodeattr("NumChannels"))
    simd = int(inst.get_nodeattr("SIMD"))
    if ih < 1 or iw < 1:
        raise param_error(node, "ImgDim", [ih, iw], "image dimensions must be positive")
    if min(top, left, bottom, right) < 0:
        raise param_error(node, "Padding", [top, left, bottom, right], "negative padding")
    if simd < 1 or channels % simd:
        raise param_error(node, "SIMD", simd, f"must divide NumChannels={channels}")
    inp = input_port(inst, node, 0)
    out = output_port(inst, node, 0)
    oh, ow = ih + top + bottom, iw + left + right
    cf = channels // simd
    p = FMPaddingParams(
        node=node.name,
        width=inp.fmt.width,
        ih=ih,
        iw=iw,
        oh=oh,
        ow=ow,
        cf=cf,
        colmask=mask_literal([left <= x < left + iw for x in range(ow)]),
        rowmask=mask_literal([top <= y < top + ih for y in range(oh)]),
    )
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=(inp,),
        outputs=(out,),
        files=((f"{node.name}.sv", render("layers/fmpadding.sv.j2", p=p)),),
        library=("bireal_fmpadding.sv",),
        cycles=out.words,
    )
