"""LabelSelect -> ``hw/rtl/bireal_label_select.sv`` (top-K indices, ties to the lower index,
as FINN's python execution through ONNX TopK)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.render import render


@dataclass(frozen=True)
class LabelSelectParams:
    node: str
    pe: int
    in_bits: int
    in_signed: bool
    labels: int
    k: int
    out_bits: int


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    labels = int(inst.get_nodeattr("Labels"))
    pe = int(inst.get_nodeattr("PE"))
    k = int(inst.get_nodeattr("K"))
    if labels < 1:
        raise param_error(node, "Labels", labels, "at least one label is needed")
    if pe < 1 or labels % pe:
        raise param_error(node, "PE", pe, f"PE must divide the {labels} labels")
    if not 1 <= k <= labels:
        raise param_error(node, "K", k, f"K must be between 1 and the {labels} labels")
    idt = inst.get_input_datatype()
    odt = inst.get_output_datatype()
    if not idt.is_integer() or idt.name == "BIPOLAR":
        raise param_error(node, "inputDataType", idt.name, "only integer values are supported")
    if not odt.is_integer() or odt.max() < labels - 1:
        raise param_error(
            node, "outputDataType", odt.name, f"cannot hold the label index {labels - 1}"
        )
    vectors = math.prod(int(x) for x in inst.get_nodeattr("numInputVectors"))
    inp = input_port(inst, node, 0)
    out = output_port(inst, node, 0)
    p = LabelSelectParams(
        node.name, pe, int(idt.bitwidth()), bool(idt.signed()), labels, k, int(odt.bitwidth())
    )
    text = render("layers/label_select.sv.j2", p=p)
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=(inp,),
        outputs=(out,),
        files=((f"{node.name}.sv", text),),
        library=("bireal_label_select.sv",),
        cycles=vectors * max(labels // pe, k),
    )
