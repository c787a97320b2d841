"""The folded graph made ready for cppsim: width converters, and every node in C++.

The graph cppsim runs is the folded graph (``folded.onnx``) with FINN's own ``InsertDWC``
applied, as the RTL has it (FIFOs left out: they only delay), and each node given a C++
implementation:

- the nodes FINN's folding put on its RTL variants where finn-plus also has an HLS one
  (``MVAU_rtl``, ``Thresholding_rtl``, the width converters) become that HLS variant, whose
  code finn-plus generates (:mod:`.node`);
- the nodes finn-plus 1.6.1 offers only as RTL (``ConvolutionInputGenerator_rtl``,
  ``FMPadding_rtl``), and the HLS nodes whose finn-plus code needs a newer finn-hlslib than
  the pinned one, keep their op type and get the project's own C++ driver around finn-hlslib's
  function (:mod:`.drivers`).

A converted ``Thresholding`` node gets the attributes its HLS variant needs
(:func:`_fix_thresholding`): finn-hlslib's ``Thresholding_Batch`` compares
``threshold <= TT(input)`` in the threshold type ``TT``, so an input is truncated to it; the RTL
variant's ``weightDataType`` is narrower than its input (the RTL saturates the input instead:
``INT2`` thresholds of an ``INT8`` input, ``INT8`` ones of an ``INT32`` sum), so the HLS
variant's is widened to hold the input datatype too (as finn-plus's own
``Thresholding_hls.minimize_weight_bit_width`` does), and its thresholds are embedded
(``mem_mode="internal_embedded"``: the ``internal_decoupled`` threshold stream, ``PE * numSteps``
thresholds a word, exceeds ap_int's widest word, 32768 bits, for wide inputs).

No node is rewritten into another form: the FINN-level graph holds every activation as
thresholds already (the exact affine form of the threshold units, and the uniform clamp, are
choices of the project's RTL, made below this graph), so cppsim checks the RTL's affine units
against FINN's threshold semantics, independently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from bireal_fpga.arch.ops import generic_op
from bireal_fpga.hwlayers.finn_env import finn_ready

HLS_DOMAIN = "finn.custom_op.fpgadataflow.hls"

TO_HLS = ("MVAU", "Thresholding", "StreamingDataWidthConverter")
"""Layers whose RTL variant becomes the HLS variant of the same FINN layer."""


def specialize_for_cppsim(folded: ModelWrapper) -> ModelWrapper:
    """A copy of ``folded`` with width converters and the HLS variants above (execution by
    FINN's python semantics unchanged)."""
    finn_ready()
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC

    model = ModelWrapper(folded.model.__deepcopy__())
    model = model.transform(InsertDWC())
    for node in model.graph.node:  # InsertDWC leaves a converter's output tensor unannotated
        if generic_op(node.op_type) == "StreamingDataWidthConverter":
            model.set_tensor_datatype(node.output[0], model.get_tensor_datatype(node.input[0]))
    for node in model.graph.node:
        op = generic_op(node.op_type)
        if op in TO_HLS and not node.op_type.endswith("_hls"):
            node.op_type = f"{op}_hls"
            node.domain = HLS_DOMAIN
            if op == "Thresholding":
                _fix_thresholding(model, node)
    # the layers keep the names of folded.onnx (and of the RTL); the new converters are named
    # in graph order
    taken = {n.name for n in model.graph.node}
    k = 0
    for node in model.graph.node:
        if not node.name or sum(n.name == node.name for n in model.graph.node) > 1:
            while f"{node.op_type}_{k}" in taken:
                k += 1
            node.name = f"{node.op_type}_{k}"
            taken.add(node.name)
    return model


def _covering_int(lo: float, hi: float) -> DataType:
    """The narrowest integer datatype holding ``lo..hi``."""
    if lo >= 0:
        bits = max(1, int(hi).bit_length())
        return DataType[f"UINT{bits}"]
    bits = max(2, int(-lo - 1).bit_length() + 1, int(hi).bit_length() + 1)
    return DataType[f"INT{bits}"]


def _fix_thresholding(model: ModelWrapper, node: Any) -> None:
    """A ``Thresholding_hls`` made from ``Thresholding_rtl``: threshold datatype widened to hold
    the input datatype and the thresholds, thresholds embedded (see the module docstring)."""
    from qonnx.custom_op.registry import getCustomOp

    inst = getCustomOp(node)
    idt = inst.get_input_datatype(0)
    tdt = inst.get_input_datatype(1)
    thresholds = model.get_initializer(node.input[1])
    if idt.is_integer() and tdt.is_integer() and thresholds is not None:
        t = np.asarray(thresholds)
        lo, hi = min(idt.min(), float(t.min())), max(idt.max(), float(t.max()))
        if lo < tdt.min() or hi > tdt.max():
            wide = _covering_int(lo, hi)
            inst.set_nodeattr("weightDataType", wide.name)
            model.set_tensor_datatype(node.input[1], wide)
    inst.set_nodeattr("mem_mode", "internal_embedded")
