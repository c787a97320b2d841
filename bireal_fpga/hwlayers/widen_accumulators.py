"""Transformation: widen a thresholdless integer MVAU (the classifier) whose accumulator range
its FINN type cannot hold, and the add of its bias.

FINN's conversion types every thresholdless MVAU's output INT32. The classifier reads the
global sum of the residual stream: with an 8-bit stream its range is about 2**27, but a 16-bit
stream's sums take it past 2**34, so INT32 would wrap. This pass gives such an MVAU the
smallest signed type of its exact range (from its integer weights and input type, as the RTL
generator computes it), sets the bias add's input type to match and lets FINN's own
``minimize_accumulator_width`` of the add type its output. Nodes whose type already holds the
range are left as they are (every design with an 8-bit stream is unchanged).

Before: ``MVAU(outputDataType=INT32) -> ElementwiseAdd(INT32)`` with a range beyond INT32;
after: ``MVAU(INT35) -> ElementwiseAdd(INT36)``. Execution is unchanged.
"""

from __future__ import annotations

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes

from bireal_fpga.arch.affine import accumulator_range
from bireal_fpga.arch.widths import signed_bits


class WidenAccumulators(Transformation):
    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        widened = False
        for node in model.graph.node:
            if not node.op_type.startswith("MVAU"):
                continue
            inst = getCustomOp(node)
            if not inst.get_nodeattr("noActivation") or inst.get_nodeattr("binaryXnorMode"):
                continue
            w = model.get_initializer(node.input[1])
            idt = inst.get_input_datatype()
            lo, hi = accumulator_range(w, int(idt.min()), int(idt.max()), binary=False)
            odt = DataType[inst.get_nodeattr("outputDataType")]
            if odt.min() <= lo and hi <= odt.max():
                continue
            wide = DataType[f"INT{signed_bits(lo, hi)}"]
            inst.set_nodeattr("accDataType", wide.name)
            inst.set_nodeattr("outputDataType", wide.name)
            model.set_tensor_datatype(node.output[0], wide)
            for user in model.find_consumers(node.output[0]) or []:
                if user.op_type.startswith("ElementwiseAdd"):
                    add = getCustomOp(user)
                    side = "lhs_dtype" if user.input[0] == node.output[0] else "rhs_dtype"
                    add.set_nodeattr(side, wide.name)
                    add.minimize_accumulator_width(model)
            widened = True
        if widened:  # one InferDataTypes (it copies the whole graph) propagates every type
            model = model.transform(InferDataTypes())
        return model, False
