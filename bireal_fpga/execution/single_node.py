"""One node of a HW-layer graph cut out into a graph of its own, for FINN's python execution.

The node (specialized and folded, as in ``folded.onnx``) keeps its attributes and
initializers and becomes its generic FINN op again (``MVAU_hls`` -> ``MVAU``), which FINN
executes in python: the reference that each node's RTL (``rtlsim.node_check``) and C++
(``cppsim``) is compared with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from bireal_fpga.arch.ops import generic_op

FINN_DOMAIN = "finn.custom_op.fpgadataflow"


def single_node_model(model: ModelWrapper, node: Any) -> ModelWrapper:
    """``node`` alone, as its generic FINN op, with its initializers."""
    inits = {i.name: i for i in model.graph.initializer}
    generic = onnx.NodeProto()
    generic.CopyFrom(node)
    generic.op_type = generic_op(node.op_type)
    generic.domain = FINN_DOMAIN
    inputs = [
        helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, model.get_tensor_shape(t))
        for t in node.input
        if t not in inits
    ]
    outputs = [
        helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, model.get_tensor_shape(t))
        for t in node.output
    ]
    graph = helper.make_graph(
        [generic], "node", inputs, outputs, [inits[t] for t in node.input if t in inits]
    )
    single = ModelWrapper(helper.make_model(graph, producer_name="bireal-fpga"))
    for t in list(node.input) + list(node.output):
        single.set_tensor_datatype(t, model.get_tensor_datatype(t))
    return single


def random_tensor(rng: np.random.Generator, dtype: DataType, shape: list[int]) -> np.ndarray:
    lo, hi = int(dtype.min()), int(dtype.max())
    # FINN's python execution carries values as float32: keep sums of inputs exact (< 2**24)
    lo, hi = max(lo, -(1 << 22)), min(hi, 1 << 22)
    return rng.integers(lo, hi + 1, size=shape).astype(np.float32)
