"""GlobalAccPool -> ``hw/rtl/bireal_global_pool.sv`` (per-channel sum over all pixels).

The running sums (one word per channel fold) are LUTRAM whatever their size: they are read in
the cycle they are addressed (:data:`bireal_fpga.arch.memory.ASYNC_READ_STYLE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.render import render


@dataclass(frozen=True)
class GlobalPoolParams:
    node: str
    pe: int
    in_bits: int
    in_signed: bool
    out_bits: int
    folds: int
    pixels: int


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    channels = int(inst.get_nodeattr("NumChannels"))
    pe = int(inst.get_nodeattr("PE"))
    if pe < 1 or channels % pe:
        raise param_error(node, "PE", pe, f"PE must divide the {channels} channels")
    vecs = [int(x) for x in inst.get_nodeattr("numInputVectors")]
    if len(vecs) != 3:
        raise param_error(
            node, "numInputVectors", vecs, "the pool sums over [N, H, W] images, 3 entries"
        )
    idt = inst.get_input_datatype()
    odt = inst.get_output_datatype()
    for attr, dt in (("inputDataType", idt), ("output datatype", odt)):
        if not dt.is_integer() or dt.name == "BIPOLAR":
            raise param_error(node, attr, dt.name, "only integer element types are supported")
    if odt.bitwidth() < idt.bitwidth():
        raise param_error(node, "inputDataType", idt.name, f"wider than the output {odt.name}")
    inp = input_port(inst, node, 0)
    out = output_port(inst, node, 0)
    p = GlobalPoolParams(
        node.name,
        pe,
        int(idt.bitwidth()),
        bool(idt.signed()),
        int(odt.bitwidth()),
        channels // pe,
        vecs[1] * vecs[2],
    )
    text = render("layers/global_acc_pool.sv.j2", p=p)
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=(inp,),
        outputs=(out,),
        files=((f"{node.name}.sv", text),),
        library=("bireal_global_pool.sv",),
        cycles=inp.words,
        resources=(("acc_bits", (channels // pe) * pe * int(odt.bitwidth())),),
    )
