"""DuplicateStreams -> ``hw/rtl/bireal_duplicate.sv`` (a fork of one stream into N)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.render import render


@dataclass(frozen=True)
class DuplicateParams:
    node: str
    width: int
    n: int


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    n = int(inst.get_nodeattr("NumOutputStreams"))
    if n < 2:
        raise param_error(node, "NumOutputStreams", n, "a duplicate needs at least 2 outputs")
    inp = input_port(inst, node, 0)
    outs = tuple(output_port(inst, node, i) for i in range(n))
    p = DuplicateParams(node.name, inp.fmt.width, n)
    text = render("layers/duplicate_streams.sv.j2", p=p)
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=(inp,),
        outputs=outs,
        files=((f"{node.name}.sv", text),),
        library=("bireal_duplicate.sv",),
        cycles=inp.words,
    )
