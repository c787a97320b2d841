"""Transformation: global sum pooling (``ReduceSum`` over H, W of an NHWC tensor) to FINN's
``GlobalAccPool`` HW layer.

FINN's own ``InferGlobalAccPoolLayer`` matches ``GlobalAveragePool`` and leaves a ``Mul`` by
``1/(H*W)`` behind; the Bi-Real head keeps the integer sum (the ``1/(H*W)`` lives in the
classifier's accumulator scale), so the exported graph pools with ``ReduceSum``.

Before: ``x [1, H, W, C] --ReduceSum(axes=[1, 2], keepdims=1)--> y [1, 1, 1, C]``
After:  ``x --GlobalAccPool(NumChannels=C, PE=1)--> y``
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name


class InferGlobalSumPool(Transformation):
    """Replace integer ``ReduceSum`` over axes (1, 2) with keepdims=1 by ``GlobalAccPool``."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        modified = False
        for index, node in enumerate(list(graph.node)):
            if node.op_type != "ReduceSum" or len(node.input) < 2:
                continue
            axes = model.get_initializer(node.input[1])
            keep = get_by_name(node.attribute, "keepdims")
            shape = model.get_tensor_shape(node.input[0])
            idt = model.get_tensor_datatype(node.input[0])
            if (
                axes is None
                or sorted(np.asarray(axes).reshape(-1).tolist()) != [1, 2]
                or (keep is not None and keep.i != 1)
                or shape is None
                or len(shape) != 4
                or not idt.is_integer()
            ):
                continue
            pool = helper.make_node(
                "GlobalAccPool",
                [node.input[0]],
                [node.output[0]],
                domain="finn.custom_op.fpgadataflow",
                backend="fpgadataflow",
                NumChannels=int(shape[3]),
                PE=1,
                inputDataType=idt.name,
                numInputVectors=[int(s) for s in shape[:3]],
                name=f"GlobalAccPool_{node.name}",
            )
            graph.node.insert(index, pool)
            graph.node.remove(node)
            modified = True
        if modified:
            model = model.transform(InferShapes())
            model = model.transform(InferDataTypes())
        return model, modified
