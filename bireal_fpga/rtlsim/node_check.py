"""One node's RTL against FINN's python execution of the same node, on random inputs.

The node (specialized and folded, as in ``folded.onnx``) is cut out into a one-node graph,
turned back into its generic FINN op (``MVAU_hls`` -> ``MVAU``) and executed by FINN in python;
its RTL (``rtl.layers``) is simulated by Verilator on the same inputs, packed as FINN packs
them, with random valid/ready stalls. Outputs are compared as integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from bireal_fpga.arch.streams import pack, unpack
from bireal_fpga.errors import BiRealError
from bireal_fpga.execution.single_node import random_tensor, single_node_model
from bireal_fpga.hwlayers.finn_env import finn_ready
from bireal_fpga.rtl.layers import generate_layer
from bireal_fpga.rtl.layers.base import WEIGHT_BUS_BITS, WEIGHT_PORT, RtlLayer
from bireal_fpga.rtl.render import library_file
from bireal_fpga.rtlsim.verilator_sim import SimPort, VerilatorSim

__all__ = ["NodeMismatch", "check_node", "random_tensor", "single_node_model"]


class NodeMismatch(BiRealError):
    """A node's RTL output differs from FINN's python execution."""


@dataclass(frozen=True)
class NodeCheck:
    node: str
    op_type: str
    frames: int
    words_out: int
    cycles: int  # simulated cycles for all frames


def check_node(
    model: ModelWrapper,
    node: Any,
    workdir: Path,
    *,
    frames: int = 2,
    seed: int = 0,
    stall: float = 0.2,
    inputs: list[dict[str, np.ndarray]] | None = None,
) -> NodeCheck:
    """Simulate ``node``'s RTL on ``frames`` random frames (or the given ``inputs``)."""
    finn_ready()
    layer: RtlLayer = generate_layer(model, node)
    single = single_node_model(model, node)
    rng = np.random.default_rng(seed)
    dyn = [i.name for i in single.graph.input]
    if inputs is None:
        inputs = [
            {
                t: random_tensor(rng, single.get_tensor_datatype(t), single.get_tensor_shape(t))
                for t in dyn
            }
            for _ in range(frames)
        ]
    expected: dict[str, list[np.ndarray]] = {p.tensor: [] for p in layer.outputs}
    for ctx_in in inputs:
        ctx = execute_onnx(single, ctx_in)
        for p in layer.outputs:
            expected[p.tensor].append(np.rint(np.asarray(ctx[p.tensor])).astype(np.int64))
    workdir.mkdir(parents=True, exist_ok=True)
    sources = [library_file(name) for name in layer.library]
    written = layer.write(workdir)
    sv = [p for p in written if p.suffix == ".sv"]
    data = [p for p in written if p.suffix != ".sv"]
    sim = VerilatorSim(
        layer.module,
        sources + sv,
        [SimPort(p.port, p.fmt.width) for p in layer.inputs]
        + ([SimPort(WEIGHT_PORT, WEIGHT_BUS_BITS, preload=True)] if layer.load else []),
        [SimPort(p.port, p.fmt.width, p.words * len(inputs)) for p in layer.outputs],
        workdir / "sim",
        data_files=data,
        seed=seed + 1,
    )
    streams = {
        p.port: [w for ctx_in in inputs for w in pack(ctx_in[p.tensor], p.fmt)]
        for p in layer.inputs
    }
    if layer.load:  # run-time weights: loaded over the weight bus before the first input
        streams[WEIGHT_PORT] = list(layer.load.beats)
    max_idle = 4 * layer.cycles + 10_000
    result = sim.run(streams, stall_in=stall, stall_out=stall, max_idle=max_idle)
    for p in layer.outputs:
        got = unpack(result.outputs[p.port], p.fmt).reshape(-1)
        want = np.concatenate([e.reshape(-1) for e in expected[p.tensor]])
        if not np.array_equal(got, want):
            idx = int(np.flatnonzero(got != want)[0])
            raise NodeMismatch(
                f"node '{node.name}' ({node.op_type}) output '{p.tensor}': RTL differs from "
                f"FINN python at element {idx} of {want.size} (RTL {got[idx]}, FINN {want[idx]})"
            )
    return NodeCheck(
        node.name, node.op_type, len(inputs), sum(p.words for p in layer.outputs), result.cycles
    )
