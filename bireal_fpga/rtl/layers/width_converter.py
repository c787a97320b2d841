"""StreamingDataWidthConverter -> ``hw/rtl/bireal_dwc.sv`` (any inWidth/outWidth ratio,
element order kept, full rate on the wider side).

The converter is a ring of CAP bits, a multiple of lcm(inWidth, outWidth). CAP = lcm when
that already keeps full rate with a registered in_ready, else 2 x lcm up to
``DECOUPLE_LIMIT_BITS``; beyond, CAP = lcm with in_ready combinational on out_ready.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.render import render

DECOUPLE_LIMIT_BITS = 1024
MAX_RING_BITS = 1 << 16


@dataclass(frozen=True)
class DwcParams:
    node: str
    in_width: int
    out_width: int
    cap: int
    comb_ready: bool


def ring_size(iw: int, ow: int) -> tuple[int, bool]:
    """(CAP, comb_ready) for an iw -> ow converter at full rate on the wider side."""
    if iw == ow:
        return iw, False
    lcm = math.lcm(iw, ow)
    # fill levels reachable with a registered in_ready at full rate stay below this
    need = iw + ow + min(iw, ow) - math.gcd(iw, ow)
    if lcm >= need:
        return lcm, False
    if 2 * lcm <= DECOUPLE_LIMIT_BITS:
        return 2 * lcm, False
    return lcm, True


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    iw = int(inst.get_nodeattr("inWidth"))
    ow = int(inst.get_nodeattr("outWidth"))
    dt = inst.get_input_datatype()
    bits = int(dt.bitwidth())
    for attr, w in (("inWidth", iw), ("outWidth", ow)):
        if w < 1 or w % bits:
            raise param_error(node, attr, w, f"not a whole number of {bits}-bit {dt.name} elements")
    try:
        inp = input_port(inst, node, 0)
        out = output_port(inst, node, 0)
    except AssertionError as e:
        raise param_error(node, "inWidth/outWidth", f"{iw}/{ow}", str(e).strip()) from None
    if inp.fmt.width != iw or out.fmt.width != ow:
        raise param_error(
            node, "inWidth/outWidth", f"{iw}/{ow}", "inconsistent with the folded shapes"
        )
    cap, comb = ring_size(iw, ow)
    if cap > MAX_RING_BITS:
        raise param_error(
            node,
            "inWidth/outWidth",
            f"{iw}/{ow}",
            f"lcm {math.lcm(iw, ow)} bits exceeds the {MAX_RING_BITS}-bit converter ring",
        )
    p = DwcParams(node.name, iw, ow, cap, comb)
    text = render("layers/width_converter.sv.j2", p=p)
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=(inp,),
        outputs=(out,),
        files=((f"{node.name}.sv", text),),
        library=("bireal_dwc.sv",),
        cycles=max(inp.words, out.words),
        resources=(("ring_bits", cap),),
    )
