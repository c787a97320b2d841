"""StreamingFIFO -> ``hw/rtl/bireal_fifo.sv`` (``depth`` words, full rate from depth 2).

The storage is FINN's choice for ``ram_style`` (its fifo.sv ladder, decided in
:func:`bireal_fpga.arch.memory.fifo_style`): a shift register up to depth 33 (depth 2 is two
word registers), then by the request or, for ``auto``, by depth and width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.arch import memory
from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.render import render


@dataclass(frozen=True)
class FifoParams:
    node: str
    width: int
    depth: int
    ram_style: str


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    depth = int(inst.get_nodeattr("depth"))
    if depth < 2:
        raise param_error(node, "depth", depth, "a FIFO holds at least 2 words")
    requested = str(inst.get_nodeattr("ram_style"))
    if requested not in memory.FIFO_REQUESTS:
        raise param_error(node, "ram_style", requested, f"one of {', '.join(memory.FIFO_REQUESTS)}")
    inp = input_port(inst, node, 0)
    out = output_port(inst, node, 0)
    style = memory.fifo_style(depth, inp.fmt.width, requested)
    p = FifoParams(node.name, inp.fmt.width, depth, style)
    text = render("layers/fifo.sv.j2", p=p)
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=(inp,),
        outputs=(out,),
        files=((f"{node.name}.sv", text),),
        library=("bireal_fifo.sv",),
        cycles=inp.words,
        resources=(("memory_bits", depth * inp.fmt.width),),
    )
