"""One generator per FINN HW layer type: node (with its folding) -> :class:`RtlLayer`.

Conventions every generated module keeps (the stitcher and the testbench rely on them):

- the module is named after the node; ports ``ap_clk``, ``ap_rst_n`` (active low, synchronous),
  then per streamed input ``i`` (initializer inputs are not streams) ``in<i>_V_TDATA``,
  ``in<i>_V_TVALID``, ``in<i>_V_TREADY``, per output ``out<i>_V_...``;
- TDATA is exactly elements x bits wide, element 0 in the least significant bits, signed
  elements in two's complement, FINN's folded shape giving the words of one frame;
- AXI-stream handshakes: a word moves when valid and ready are high at a rising edge, valid
  never waits for ready;
- at full rate a layer takes ``RtlLayer.cycles`` cycles per frame (its initiation interval);
- memories load ``$readmemh`` images that sit next to the wrapper (relative file names).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper

from bireal_fpga.arch.ops import generic_op
from bireal_fpga.rtl.layers.base import RtlLayer, RtlParamError

Generator = Callable[[ModelWrapper, Any], RtlLayer]

# generic FINN op type (every one of bireal_fpga.arch.ops.LAYER_TYPES) -> module of
# bireal_fpga.rtl.layers with a ``generate(model, node)``
GENERATORS: dict[str, str] = {
    "MVAU": "mvau",
    "Thresholding": "thresholding",
    "FMPadding": "fmpadding",
    "ConvolutionInputGenerator": "sliding_window",
    "Pool": "pool",
    "DuplicateStreams": "duplicate_streams",
    "ElementwiseAdd": "elementwise_add",
    "GlobalAccPool": "global_acc_pool",
    "LabelSelect": "label_select",
    "StreamingFIFO": "fifo",
    "StreamingDataWidthConverter": "width_converter",
}


def generator(op_type: str) -> Generator | None:
    module = GENERATORS.get(generic_op(op_type))
    if module is None:
        return None
    mod = importlib.import_module(f"bireal_fpga.rtl.layers.{module}")
    gen: Generator = mod.generate
    return gen


def generate_layer(model: ModelWrapper, node: Any) -> RtlLayer:
    gen = generator(node.op_type)
    if gen is None:
        raise RtlParamError(
            f"node '{node.name}' ({node.op_type}): no RTL generator for this layer type"
        )
    return gen(model, node)
