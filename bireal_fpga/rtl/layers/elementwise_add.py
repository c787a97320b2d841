"""ElementwiseAdd -> ``hw/rtl/bireal_add.sv`` (lhs + rhs over PE lanes, FINN's out_dtype).

Two streamed inputs, or one streamed input and a constant (an initializer: the FC bias, the
border correction of a zero-padded binary conv) broadcast over the output, stored in the form
:func:`bireal_fpga.arch.constants.const_layout` chooses (the cost model prices the same one):
the smallest period of words that divides the frame (a per-channel bias: channels / PE words),
or the border form, one pixel of words per (row class, column class) with the class of every
row and column as parameters of ``bireal_add`` (a border correction: at most 3 x 3 pixels).
The ROM is in the memory :func:`bireal_fpga.arch.memory.rom_style` gives its stored words for
the node's ``ram_style`` (``auto``: by size; URAM, which cannot be initialized, becomes block
RAM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.arch import memory
from bireal_fpga.arch.constants import BORDER, ConstLayout, ConstLayoutError, const_layout
from bireal_fpga.arch.images import memory_image
from bireal_fpga.rtl.layers.base import (
    RtlLayer,
    StreamPort,
    input_port,
    output_port,
    param_error,
)
from bireal_fpga.rtl.render import render


@dataclass(frozen=True)
class BorderParams:
    """The border form of a constant: a frame of ``rows`` x ``cols`` pixels of ``wpp`` words,
    ``nr`` row and ``nc`` column classes; each row's class in ``rcb`` bits and each column's
    in ``ccb``, as packed literals (``row_map``: row r at bits r * rcb) and as lists for the
    header."""

    rows: int
    cols: int
    wpp: int
    nr: int
    nc: int
    rcb: int
    ccb: int
    row_map: str
    col_map: str
    row_list: str
    col_list: str


@dataclass(frozen=True)
class AddParams:
    node: str
    pe: int
    lhs_bits: int
    lhs_signed: bool
    rhs_bits: int
    rhs_signed: bool
    out_bits: int
    const_file: str  # "" when both inputs stream
    nconst: int
    ram_style: str
    border: BorderParams | None = None  # the constant's border form (None: period form)


def _int_type(node: Any, attr: str, dtype: DataType) -> tuple[int, bool]:
    if not dtype.is_integer() or dtype.name == "BIPOLAR":
        raise param_error(node, attr, dtype.name, "only integer element types are supported")
    return int(dtype.bitwidth()), bool(dtype.signed())


def _class_map(classes: tuple[int, ...], count: int) -> tuple[int, str, str]:
    """(bits per entry, packed SystemVerilog literal, space-separated list) of a class map."""
    bits = max(1, (count - 1).bit_length())
    value = sum(c << (i * bits) for i, c in enumerate(classes))
    return bits, f"{len(classes) * bits}'h{value:x}", " ".join(str(c) for c in classes)


def border_params(layout: ConstLayout) -> BorderParams | None:
    """The template parameters of a border-form layout (None for the period form)."""
    s = layout.storage
    if s.form != BORDER:
        return None
    rcb, row_map, row_list = _class_map(layout.row_class, s.row_classes)
    ccb, col_map, col_list = _class_map(layout.col_class, s.col_classes)
    return BorderParams(
        s.rows,
        s.cols,
        s.wpp,
        s.row_classes,
        s.col_classes,
        rcb,
        ccb,
        row_map,
        col_map,
        row_list,
        col_list,
    )


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    pe = int(inst.get_nodeattr("PE"))
    out_shape = [int(x) for x in inst.get_nodeattr("out_shape")]
    channels = out_shape[-1]
    if pe < 1 or channels % pe:
        raise param_error(node, "PE", pe, f"PE must divide the {channels} output channels")
    styles = [str(inst.get_nodeattr("lhs_style")), str(inst.get_nodeattr("rhs_style"))]
    shapes = [[int(x) for x in inst.get_nodeattr(a)] for a in ("lhs_shape", "rhs_shape")]
    names = ("lhs", "rhs")
    types = [_int_type(node, f"{n}_dtype", inst.get_input_datatype(i)) for i, n in enumerate(names)]
    out_bits, _ = _int_type(node, "out_dtype", inst.get_output_datatype())
    if styles == ["const", "const"]:
        raise param_error(node, "lhs_style", "const", "both inputs are constant: nothing streams")
    for i, n in enumerate(names):
        if styles[i] == "input" and shapes[i] != out_shape:
            raise param_error(
                node,
                f"{n}_shape",
                shapes[i],
                f"a streamed input broadcast to {out_shape} would need buffering",
            )
    output = output_port(inst, node, 0)
    if "const" not in styles:
        p = AddParams(node.name, pe, *types[0], *types[1], out_bits, "", 1, "auto")
        inputs: tuple[StreamPort, ...] = (input_port(inst, node, 0), input_port(inst, node, 1))
        files: tuple[tuple[str, str], ...] = ()
        resources: tuple[tuple[str, int], ...] = ()
    else:
        # addition commutes: the streamed input is the module's lhs, the constant its rhs
        c = styles.index("const")
        s = 1 - c
        value = model.get_initializer(node.input[c])
        if value is None:
            raise param_error(
                node, f"{names[c]}_style", "const", f"input '{node.input[c]}' has no initializer"
            )
        try:
            full = np.broadcast_to(np.asarray(value), out_shape)
        except ValueError:
            raise param_error(
                node,
                f"{names[c]}_shape",
                list(np.shape(value)),
                f"the constant does not broadcast to {out_shape}",
            ) from None
        ints = np.rint(full).astype(np.int64)
        bits, signed = types[c]
        dt = inst.get_input_datatype(c)
        if not np.array_equal(ints, full) or ints.min() < dt.min() or ints.max() > dt.max():
            raise param_error(
                node,
                f"{names[c]}_dtype",
                dt.name,
                "the constant holds values that are not integers of this type",
            )
        try:
            layout = const_layout(ints, pe)
        except ConstLayoutError as e:
            raise param_error(node, f"{names[c]}_shape", list(np.shape(value)), str(e)) from None
        const_file = f"{node.name}_const.hex"
        requested = str(inst.get_nodeattr("ram_style"))
        if requested not in memory.REQUESTS:
            raise param_error(node, "ram_style", requested, f"one of {', '.join(memory.REQUESTS)}")
        ram_style = memory.rom_style(layout.words, pe * bits, requested)
        p = AddParams(
            node.name,
            pe,
            *types[s],
            bits,
            signed,
            out_bits,
            const_file,
            layout.words,
            ram_style,
            border_params(layout),
        )
        inputs = (input_port(inst, node, s, "in0_V"),)
        files = ((const_file, memory_image(layout.table, bits)),)
        resources = (("const_bits", layout.storage.bits(bits)),)
    text = render("layers/elementwise_add.sv.j2", p=p)
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=inputs,
        outputs=(output,),
        files=((f"{node.name}.sv", text), *files),
        library=("bireal_add.sv",),
        cycles=output.words,
        resources=resources,
    )
