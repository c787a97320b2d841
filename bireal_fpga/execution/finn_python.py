"""FINN's python execution of a (generic, unspecialized) HW-layer graph, image by image.

The exported graph names its layer outputs ``stem`` and ``blocks.<i>`` (NHWC); they are
returned NCHW so they compare directly with the PyTorch integer form's trace.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from tqdm import tqdm

from bireal_fpga.hwlayers.finn_env import finn_ready


def run_finn_python(
    model: ModelWrapper,
    images: np.ndarray,
    *,
    trace: dict[str, np.ndarray] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Class scores ``[N, classes]`` (int64) of uint8 NCHW ``images`` through ``model``."""
    finn_ready()
    in_name = model.graph.input[0].name
    out_name = model.graph.output[0].name
    names = {out for node in model.graph.node for out in node.output}
    layer_names = sorted(n for n in names if n == "stem" or n.startswith("blocks."))
    scores = []
    per_layer: dict[str, list[np.ndarray]] = {n: [] for n in layer_names}
    for img in tqdm(images, desc="finn python", disable=not progress, leave=False):
        x = img.transpose(1, 2, 0)[None].astype(np.float32)
        ctx = execute_onnx(model, {in_name: x}, return_full_exec_context=trace is not None)
        scores.append(np.asarray(ctx[out_name]).reshape(-1))
        if trace is not None:
            for name in layer_names:
                per_layer[name].append(np.asarray(ctx[name])[0].transpose(2, 0, 1))
    if trace is not None:
        for name, values in per_layer.items():
            trace[name] = np.rint(np.stack(values)).astype(np.int64)
    result = np.rint(np.stack(scores)).astype(np.int64)
    if trace is not None:
        trace["head"] = result
    return result
