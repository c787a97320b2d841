"""Transformation: a downsample shortcut's 2x2 conv with repeated weights -> sum pool + 1x1 conv.

The exported downsample is ``conv1x1(avgpool2x2(x))`` written as one 2x2 stride-2 conv whose
weight is the 1x1 weight repeated for the four window positions (the 1/4 lives in the
thresholds). In integers ``sum_p w[c] x_p[c] == w[c] * sum_p x_p[c]`` exactly, so the conv
becomes a 2x2 sum pool (FINN ``Pool`` with ``Function=AccPool``) followed by a 1x1 conv with a
quarter of the weights and multiplies (Bi-Real-18-CIFAR: 1.8 Mbit of weights and 384 int8
multiplies per cycle instead of 7.3 Mbit and 1,536 at 12k FPS).

Before: ``Im2Col(k=2, s=2, depthwise=0) -> MatMul(W[4C, M])`` with ``W[p*C + c]`` equal for
the four positions ``p``.
After: ``Im2Col(k=2, s=2, depthwise=1) -> Pool(AccPool) -> MatMul(W[:C])``; the pool's output
type holds a sum of four inputs (INT8 -> INT10).
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bireal_fpga.export.qonnx_export import sum_type

HW_DOMAIN = "finn.custom_op.fpgadataflow"


class SumPoolDownsample(Transformation):
    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in list(model.graph.node):
            if node.op_type != "Im2Col":
                continue
            inst = getCustomOp(node)
            k = list(inst.get_nodeattr("kernel_size"))
            s = list(inst.get_nodeattr("stride"))
            if k != [2, 2] or s != [2, 2] or inst.get_nodeattr("depthwise") != 0:
                continue
            consumers = model.find_consumers(node.output[0])
            if not consumers or len(consumers) != 1 or consumers[0].op_type != "MatMul":
                continue
            mm = consumers[0]
            w = model.get_initializer(mm.input[1])
            if w is None:
                continue
            _, oh, ow, _ = model.get_tensor_shape(node.output[0])
            c = model.get_tensor_shape(node.input[0])[-1]
            if w.shape[0] != 4 * c:
                continue
            blocks = w.reshape(4, c, w.shape[1])
            if not (blocks == blocks[:1]).all():
                continue
            idt = model.get_tensor_datatype(node.input[0])
            pdt = sum_type(idt, 4)
            pooled = model.make_new_valueinfo_name()
            inst.set_nodeattr("depthwise", 1)
            model.set_tensor_shape(node.output[0], [1, oh, ow, 4 * c])
            pool = helper.make_node(
                "Pool",
                [node.output[0]],
                [pooled],
                domain=HW_DOMAIN,
                backend="fpgadataflow",
                InputDataType=idt.name,
                OutputDataType=pdt.name,
                Channels=int(c),
                PE=1,
                KernelSize=[2, 2],
                Function="AccPool",
                OutImgDims=[int(oh), int(ow)],
                BatchSize=1,
                cpp_interface="hls_vector",
                name=f"SumPool_{node.name}",
            )
            model.graph.node.insert(list(model.graph.node).index(mm), pool)
            model.set_tensor_shape(pooled, [1, oh, ow, int(c)])
            model.set_tensor_datatype(pooled, pdt)
            mm.input[0] = pooled
            wdt = model.get_tensor_datatype(mm.input[1])
            model.set_initializer(mm.input[1], np.ascontiguousarray(blocks[0]))
            model.set_tensor_datatype(mm.input[1], wdt)
            return model, True
        return model, False
