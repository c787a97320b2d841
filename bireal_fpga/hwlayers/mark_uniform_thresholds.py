"""Transformation: mark threshold units with evenly spaced, channel-shared thresholds.

The residual add's saturation (``clamp`` of the INT(b+1) sum back to INT(b)) and the ImageNet
stem's level shift are ``Thresholding`` nodes whose every channel holds the same thresholds
``t0, t0 + 1, ..., t0 + L - 1``. FINN's ``Thresholding_rtl`` has an attribute for exactly this
case (``uniform_thres``), which its resource estimate uses; without it, each such unit is
costed as a per-channel 255-step threshold memory (thousands of LUTs).

Before: ``Thresholding_rtl(uniform_thres=0)``; after: ``uniform_thres=1`` where it holds.
Execution is unchanged (the attribute only informs estimates).
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation


def is_uniform(thresholds: np.ndarray) -> bool:
    """Every row equal, steps of exactly 1 (a clamp or an offset of the input)."""
    t = np.asarray(thresholds)
    if t.ndim != 2 or t.shape[1] < 2:
        return False
    return bool((t == t[:1]).all() and (np.diff(t[0]) == 1).all())


class MarkUniformThresholds(Transformation):
    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        modified = False
        for node in model.graph.node:
            if node.op_type != "Thresholding_rtl":
                continue
            t = model.get_initializer(node.input[1])
            inst = getCustomOp(node)
            if t is not None and is_uniform(t) and inst.get_nodeattr("uniform_thres") != 1:
                inst.set_nodeattr("uniform_thres", 1)
                modified = True
        return model, modified
