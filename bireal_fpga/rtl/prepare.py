"""The folded graph made ready for RTL: width converters and FIFOs on every edge.

FINN's own ``InsertDWC`` puts a ``StreamingDataWidthConverter`` wherever a producer's word
differs from its consumer's (PE of one layer, SIMD of the next); ``InsertFIFO`` puts a
``StreamingFIFO`` on every edge, graph input and output included. FIFO depths start at
``initial_depth`` words; the stitched simulation then sizes them (``rtlsim.fifo_sizing``).
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.general import GiveUniqueNodeNames

from bireal_fpga.arch.ops import generic_op
from bireal_fpga.hwlayers.finn_env import finn_ready


def prepare_rtl_graph(folded: ModelWrapper) -> ModelWrapper:
    """``folded.onnx`` -> the graph the RTL is generated from (``rtl.onnx``)."""
    finn_ready()
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO

    model = folded.transform(InsertDWC())
    model = model.transform(InsertFIFO(create_shallow_fifos=True))
    model = model.transform(GiveUniqueNodeNames())
    for node in model.graph.node:
        if generic_op(node.op_type) == "StreamingFIFO":
            getCustomOp(node).set_nodeattr("depth", 2)
    return model


def frame_words(model: ModelWrapper, node_name: str) -> int:
    """Words per frame through the FIFO ``node_name``."""
    import numpy as np

    node = model.get_node_from_name(node_name)
    shape = getCustomOp(node).get_folded_output_shape()
    return int(np.prod(shape[:-1]))
