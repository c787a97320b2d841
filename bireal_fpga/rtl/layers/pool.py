"""Pool (MaxPool or AccPool after a depthwise sliding window) -> ``hw/rtl/bireal_pool.sv``.

The input is in FINN's python order (the im2col order the depthwise sliding window of
``bireal_swg`` emits): per output pixel, kernel positions, then channels, folded by PE.
MaxPool keeps the input type; AccPool (the downsample shortcut's 2x2 sum pool) sums the
window into the node's OutputDataType, which must hold every sum of the window. The running
values (one word per channel fold) are LUTRAM whatever their size: they are read in the cycle
they are addressed (:data:`bireal_fpga.arch.memory.ASYNC_READ_STYLE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.render import render

FUNCTIONS = ("MaxPool", "AccPool")


@dataclass(frozen=True)
class PoolParams:
    node: str
    function: str
    pe: int
    bits: int
    signed: bool
    kk: int  # kernel positions
    cf: int  # channel folds
    obits: int  # output element width (== bits for MaxPool)

    @property
    def acc(self) -> bool:
        return self.function == "AccPool"


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    function = str(inst.get_nodeattr("Function"))
    if function not in FUNCTIONS:
        raise param_error(
            node, "Function", function, f"only {' and '.join(FUNCTIONS)} are implemented"
        )
    kernel = [int(k) for k in inst.get_nodeattr("KernelSize")]
    channels = int(inst.get_nodeattr("Channels"))
    pe = int(inst.get_nodeattr("PE"))
    if not kernel or min(kernel) < 1:
        raise param_error(node, "KernelSize", kernel, "kernel dimensions must be positive")
    if pe < 1 or channels % pe:
        raise param_error(node, "PE", pe, f"must divide Channels={channels}")
    kk = int(np.prod(kernel))
    idt, odt = inst.get_input_datatype(), inst.get_output_datatype()
    if function == "MaxPool" and idt != odt:
        raise param_error(node, "OutputDataType", odt.name, "MaxPool passes its input type through")
    if function == "AccPool":
        if not idt.is_integer() or idt.name == "BIPOLAR":
            raise param_error(
                node, "InputDataType", idt.name, "AccPool sums integer (not bipolar) inputs"
            )
        lo, hi = kk * int(idt.min()), kk * int(idt.max())
        if (
            not odt.is_integer()
            or odt.name == "BIPOLAR"
            or not (odt.allowed(lo) and odt.allowed(hi))
        ):
            raise param_error(
                node,
                "OutputDataType",
                odt.name,
                f"must hold every sum of {kk} {idt.name} values [{lo}, {hi}]",
            )
    inp = input_port(inst, node, 0)
    out = output_port(inst, node, 0)
    p = PoolParams(
        node=node.name,
        function=function,
        pe=pe,
        bits=inp.fmt.elem_bits,
        signed=inp.fmt.signed,
        kk=kk,
        cf=channels // pe,
        obits=out.fmt.elem_bits,
    )
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=(inp,),
        outputs=(out,),
        files=((f"{node.name}.sv", render("layers/pool.sv.j2", p=p)),),
        library=("bireal_pool.sv",),
        cycles=inp.words,
        resources=(("lutram_bits", p.cf * pe * p.obits if p.cf > 1 else 0),),
    )
