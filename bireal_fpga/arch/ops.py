"""The FINN layer types the project implements, named by their generic op type.

FINN specializes a HW layer to a backend (``MVAU_hls``, ``MVAU_rtl``); the project's RTL, its
cost model and its checks depend on the layer, not on FINN's backend choice, so every stage
keys its tables by :func:`generic_op` of a node's op type. :data:`LAYER_TYPES` is the set those
tables must cover: the generators (``rtl.layers.GENERATORS``) and the cost model
(``synth.cost_model.COST_FUNCTIONS``) each have exactly these keys.
"""

from __future__ import annotations

LAYER_TYPES: tuple[str, ...] = (
    "MVAU",
    "Thresholding",
    "FMPadding",
    "ConvolutionInputGenerator",
    "Pool",
    "DuplicateStreams",
    "ElementwiseAdd",
    "GlobalAccPool",
    "LabelSelect",
    "StreamingFIFO",
    "StreamingDataWidthConverter",
)

BACKEND_SUFFIXES = ("_hls", "_rtl")


def generic_op(op_type: str) -> str:
    """``MVAU_hls`` -> ``MVAU``: FINN's op type without its backend suffix."""
    for suffix in BACKEND_SUFFIXES:
        if op_type.endswith(suffix):
            return op_type[: -len(suffix)]
    return op_type
