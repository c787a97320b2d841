"""StreamingFIFO -> ``hw/rtl/bireal_fifo.sv`` (``depth`` words, full rate from depth 2).

The storage follows FINN's choice for ``ram_style`` (its fifo.sv ladder): a shift register up
to depth 33 (and for narrow words up to 64; depth 2 is two word registers), LUTRAM up to
depth 257 or for words under 5 bits,
then BRAM (FINN: URAM beyond depth 2028; here only on request, since 7-series parts have
no URAM); an explicit srl/distributed/block/ultra above depth 33 is
taken as asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.render import render

RAM_STYLES = ("auto", "srl", "distributed", "block", "ultra")
URAM_DEPTH = 2028  # FINN's URAM_DEPTH_THRESHOLD


@dataclass(frozen=True)
class FifoParams:
    node: str
    width: int
    depth: int
    ram_style: str


def resolve_ram_style(depth: int, width: int, requested: str) -> str:
    """The storage FINN's fifo.sv would build (``width`` padded to whole bytes, as FINN).
    Depth 2 is two word registers whatever the style."""
    padded = (width + 7) // 8 * 8
    if depth <= 33:
        return "srl"
    if requested != "auto":
        return requested
    if depth <= 64 and padded < 12:
        return "srl"
    if depth <= 257 or padded < 5:
        return "distributed"
    # FINN would take URAM beyond URAM_DEPTH; the generator does not know the board, and the
    # 7-series parts (PYNQ-Z1/Z2) have none: "auto" stays in block RAM ("ultra" on request)
    return "block"


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    depth = int(inst.get_nodeattr("depth"))
    if depth < 2:
        raise param_error(node, "depth", depth, "a FIFO holds at least 2 words")
    requested = str(inst.get_nodeattr("ram_style"))
    if requested not in RAM_STYLES:
        raise param_error(node, "ram_style", requested, f"one of {', '.join(RAM_STYLES)}")
    inp = input_port(inst, node, 0)
    out = output_port(inst, node, 0)
    style = resolve_ram_style(depth, inp.fmt.width, requested)
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
