"""Transformation: give a zero-padded binary conv's popcount and border-corrected sum their
own widths, with FINN's own width minimization.

A zero-padded binary conv is ``MVAU (XNOR, noActivation) -> ElementwiseAdd (constant border
correction) -> Thresholding``. FINN's conversion types a thresholdless MVAU's output and every
add's output INT32/UINT32, leaving them to ``MinimizeAccumulatorWidth``; this project's graph
does not run that pass on the whole graph, so the two streams would carry 32 bits a channel.
This pass types the MVAU's output as its popcount range ``[0, K]`` (``UINT(bits(K + 1))``),
then calls FINN's own ``minimize_accumulator_width`` of the add (the range of ``popcount +
correction``) and propagates the types: the Thresholding node then reads that width. (FINN's
``minimize_accumulator_width`` of the MVAU is not used: in XNOR mode it derives the range of
the bipolar-weight, 0/1-input dot product, e.g. INT7 for K = 72, which a popcount of 64..72
overflows.)

Before: ``MVAU(outputDataType=UINT32) -> ElementwiseAdd(out_dtype=INT32) -> Thresholding
(INT32)``; after: ``UINT(bits(K + 1)) -> INT(bits of the corrected range) -> Thresholding`` of
that type. Execution is unchanged: every value fits the narrower types.
"""

from __future__ import annotations

import math

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes

PASS_THROUGH = ("StreamingFIFO", "StreamingDataWidthConverter")  # carry values unchanged


def source(model: ModelWrapper, tensor: str):  # type: ignore[no-untyped-def]
    """The node computing ``tensor``, looking through FIFOs and width converters (the RTL
    graph's inserted layers), or None for a graph input."""
    src = model.find_producer(tensor)
    while src is not None and src.op_type.startswith(PASS_THROUGH):
        src = model.find_producer(src.input[0])
    return src


def is_border_add(model: ModelWrapper, node) -> bool:  # type: ignore[no-untyped-def]
    """An ElementwiseAdd of a thresholdless XNOR MVAU's output and a constant."""
    if not node.op_type.startswith("ElementwiseAdd") or len(node.input) != 2:
        return False
    consts = [model.get_initializer(t) is not None for t in node.input]
    if consts != [False, True]:
        return False
    mvau = source(model, node.input[0])
    if mvau is None or not mvau.op_type.startswith("MVAU"):
        return False
    inst = getCustomOp(mvau)
    return bool(inst.get_nodeattr("binaryXnorMode")) and bool(inst.get_nodeattr("noActivation"))


def border_sum_range(model: ModelWrapper, node) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """What a border add (:func:`is_border_add`) can output: ``[min(correction), K +
    max(correction)]`` for a popcount in ``[0, K]`` (K = the MVAU's ``MW``); its type's range
    is wider. A Thresholding node reading it is exact on this range (``rtl.layers.thresholding
    .input_range``)."""
    corr = model.get_initializer(node.input[1])
    mw = int(getCustomOp(source(model, node.input[0])).get_nodeattr("MW"))
    return int(min(corr.min(), 0)), mw + int(max(corr.max(), 0))


class NarrowBorderCorrection(Transformation):
    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        # every width is set from node attributes, so one InferDataTypes at the end propagates
        # them all (each InferDataTypes copies the whole graph, weights included)
        adds = [n for n in model.graph.node if is_border_add(model, n)]
        for node in adds:
            mvau = getCustomOp(model.find_producer(node.input[0]))
            pop = DataType[f"UINT{math.ceil(math.log2(int(mvau.get_nodeattr('MW')) + 1))}"]
            mvau.set_nodeattr("accDataType", pop.name)
            mvau.set_nodeattr("outputDataType", pop.name)
            model.set_tensor_datatype(node.input[0], pop)
            add = getCustomOp(node)
            add.set_nodeattr("lhs_dtype", pop.name)
            out = add.minimize_accumulator_width(model)  # sets out_dtype and the tensor's type
            for user in model.find_consumers(node.output[0]):
                if user.op_type.startswith("Thresholding"):
                    getCustomOp(user).set_nodeattr("inputDataType", out.name)
        if adds:
            model = model.transform(InferDataTypes())
        return model, False
