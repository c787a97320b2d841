"""FINN's python execution of a (generic, unspecialized) HW-layer graph, image by image.

The exported graph names its layer outputs ``stem`` and ``blocks.<i>`` (NHWC); they are
returned NCHW so they compare directly with the PyTorch integer form's trace.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from tqdm import tqdm

from bireal_fpga import names
from bireal_fpga.hwlayers.finn_env import finn_ready

FLOAT32_EXACT = 2**24  # float32 holds every integer up to this one exactly


def past_float32(trace: dict[str, np.ndarray]) -> list[str]:
    """The layers of a ``run_finn_python`` trace whose values passed 2**24: FINN's python
    execution carries every value as float32, so there (a 16-bit residual stream's classifier
    scores: ~2**25) it may have rounded; the golden model, cppsim and rtlsim compute in
    integers."""
    return [name for name, v in trace.items() if v.size and np.abs(v).max() > FLOAT32_EXACT]


def run_finn_python(
    model: ModelWrapper,
    images: np.ndarray,
    *,
    trace: dict[str, np.ndarray] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """The graph's outputs (int64 ``[N, classes]`` scores, or ``[N, 1]`` top-1 indices) for
    uint8 NCHW ``images``; ``trace`` gets ``stem``, ``blocks.<i>`` and ``head`` (the scores)."""
    finn_ready()
    in_name = model.graph.input[0].name
    out_name = model.graph.output[0].name
    tensors = {out for node in model.graph.node for out in node.output}
    layers = names.network_order(
        t for t in tensors if names.is_layer_tensor(t) and t != names.SCORES_TENSOR
    )
    has_scores = names.SCORES_TENSOR in tensors  # with a top-1 output, an inner tensor
    outputs, scores = [], []
    per_layer: dict[str, list[np.ndarray]] = {n: [] for n in layers}
    for img in tqdm(images, desc="finn python", disable=not progress, leave=False):
        x = img.transpose(1, 2, 0)[None].astype(np.float32)
        full = trace is not None and has_scores
        ctx = execute_onnx(model, {in_name: x}, return_full_exec_context=trace is not None or full)
        outputs.append(np.asarray(ctx[out_name]).reshape(-1))
        scores.append(np.asarray(ctx[names.SCORES_TENSOR if full else out_name]).reshape(-1))
        if trace is not None:
            for name in layers:
                per_layer[name].append(np.asarray(ctx[name])[0].transpose(2, 0, 1))
    if trace is not None:
        for name, values in per_layer.items():
            trace[name] = np.rint(np.stack(values)).astype(np.int64)
    if trace is not None:
        trace[names.HEAD] = np.rint(np.stack(scores)).astype(np.int64)
    return np.rint(np.stack(outputs)).astype(np.int64)
