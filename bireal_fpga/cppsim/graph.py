"""cppsim of a whole folded graph: every node in C++, node by node, image by image.

:class:`CppsimGraph` specializes a copy of the folded graph (:mod:`.specialize`), generates
every node's C++ (finn-plus's code of the HLS nodes, the project's drivers of the rest:
:mod:`.node`, :mod:`.drivers`), compiles them all in parallel (cached by content:
:mod:`.compile`) and runs images through the nodes in graph order, each node fed the outputs
the C++ of the nodes before it produced: no node falls back to python. The report says, per
node, whose code ran and which finn-hlslib function it calls.

The layer tensors of the exported graph (``stem``, ``blocks.<i>``, ``scores``) are recorded
like FINN's python execution records them (:mod:`bireal_fpga.execution.finn_python`), so that
a mismatch names the first differing layer; :meth:`CppsimGraph.first_differing_node` names the
node: the first, in graph order, whose C++ output differs from FINN's python execution of the
same node on the same (C++-computed) inputs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from tqdm import tqdm

from bireal_fpga import names
from bireal_fpga.cppsim.compile import Toolchain, source_digest, toolchain
from bireal_fpga.cppsim.node import CppsimError, CppsimNode, prepare_nodes, run_node
from bireal_fpga.cppsim.specialize import specialize_for_cppsim
from bireal_fpga.hwlayers.finn_env import finn_ready
from bireal_fpga.tools import cache_dir


@dataclass(frozen=True)
class NodeReport:
    """Which code ran for one node."""

    node: str
    op_type: str  # in the cppsim graph (``Thresholding_rtl_0`` runs as ``Thresholding_hls``)
    code: str  # "finn-plus" (its code_generation_cppsim) or "bireal-fpga" (our driver)
    function: str  # the finn-hlslib function the C++ calls


@dataclass(frozen=True)
class CompileStats:
    nodes: int
    distinct: int  # distinct sources (identical nodes share one executable)
    compiled: int  # not found in the cache
    seconds: float


class CppsimGraph:
    """The cppsim of ``folded`` (a folded graph: ``folded.onnx``), ready to run, its node
    folders under ``work_dir``."""

    def __init__(
        self,
        folded: ModelWrapper,
        work_dir: Path,
        *,
        jobs: int | None = None,
        tc: Toolchain | None = None,
        progress: bool = False,
    ) -> None:
        from bireal_fpga.cppsim import drivers
        from bireal_fpga.cppsim.node import generate_node

        finn_ready(work_dir)
        self.tc = tc or toolchain()
        self.model = specialize_for_cppsim(folded)
        self.work_dir = Path(work_dir)
        nodes = list(self.model.graph.node)
        start = time.perf_counter()
        # generated here, to count what the cache holds; prepare_nodes compiles them
        dirs = [generate_node(self.model, n, self.work_dir) for n in nodes]
        digests = [source_digest(d, self.tc) for d in dirs]
        missing = {d for d in digests if not (cache_dir("cppsim") / d / "node_model").is_file()}
        if progress:
            print(
                f"cppsim: {len(nodes)} nodes, {len(set(digests))} distinct sources, "
                f"{len(missing)} to compile",
                flush=True,
            )
        self.nodes: list[CppsimNode] = prepare_nodes(
            self.model, nodes, self.work_dir, jobs=jobs, tc=self.tc, generated=dirs
        )
        self.compile_stats = CompileStats(
            len(nodes), len(set(digests)), len(missing), time.perf_counter() - start
        )
        self._dirs = {p.name: p.src_dir for p in self.nodes}
        self.lanes = max(1, jobs or os.cpu_count() or 1)
        self._lanes: dict[int, tuple[ModelWrapper, dict[str, Path]]] = {}
        self.report = [
            NodeReport(
                n.name,
                n.op_type,
                "bireal-fpga" if drivers.is_own(n) else "finn-plus",
                drivers.hlslib_function(self.model, n),
            )
            for n in nodes
        ]
        self.in_name = self.model.graph.input[0].name
        self.out_name = self.model.graph.output[0].name

    def report_dict(self) -> dict[str, Any]:
        return {
            "nodes": [asdict(r) for r in self.report],
            "compile": asdict(self.compile_stats),
            "rewritten": [],  # every activation is a threshold form FINN has (specialize.py)
        }

    # ---- running ---------------------------------------------------------------------------

    def _lane(self, k: int) -> tuple[ModelWrapper, dict[str, Path]]:
        """Lane ``k`` of parallel runs: a copy of the graph whose nodes exchange their npy
        files in folders of their own (``lane<k>/<node>``: the launcher and the data files of
        the node's folder; the executables are the same)."""
        if k == 0:
            return self.model, self._dirs
        if k not in self._lanes:
            import shutil

            from qonnx.custom_op.registry import getCustomOp

            model = ModelWrapper(self.model.model.__deepcopy__())
            dirs = {}
            for node in model.graph.node:
                src = self._dirs[node.name]
                d = self.work_dir / f"lane{k}" / node.name
                d.mkdir(parents=True, exist_ok=True)
                for f in src.iterdir():
                    if f.is_file() and not f.name.startswith(("input_", "output_")):
                        shutil.copy2(f, d / f.name)
                inst = getCustomOp(node)
                if inst.get_nodeattr("exec_mode") == "cppsim":
                    inst.set_nodeattr("code_gen_dir_cppsim", str(d))
                    inst.set_nodeattr("executable_path", str(d / "node_model"))
                dirs[node.name] = d
            self._lanes[k] = (model, dirs)
        return self._lanes[k]

    def context(
        self,
        image: np.ndarray,
        check: Callable[[Any, dict[str, np.ndarray], dict[str, np.ndarray]], None] | None = None,
        lane: int = 0,
    ) -> dict[str, np.ndarray]:
        """Every tensor of the graph for one uint8 CHW ``image``; ``check(node, inputs,
        outputs)`` is called after each node. Runs in different lanes may run at once."""
        model, dirs = self._lane(lane)
        ctx: dict[str, np.ndarray] = {
            self.in_name: image.transpose(1, 2, 0)[None].astype(np.float32)
        }
        for node in model.graph.node:
            inputs = {t: ctx[t] for t in node.input if t in ctx}
            out = run_node(model, node, inputs, dirs[node.name])
            if check is not None:
                check(node, inputs, out)
            ctx.update(out)
        return ctx

    def run(
        self,
        images: np.ndarray,
        *,
        trace: dict[str, np.ndarray] | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """The graph's outputs (int64 ``[N, classes]`` scores, or ``[N, 1]`` top-1 indices) for
        uint8 NCHW ``images``; ``trace`` gets ``stem``, ``blocks.<i>`` and ``head``."""
        tensors = {t for n in self.model.graph.node for t in n.output}
        layers = [t for t in tensors if names.is_layer_tensor(t) and t != names.SCORES_TENSOR]
        scores_name = names.SCORES_TENSOR if names.SCORES_TENSOR in tensors else self.out_name
        outputs: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        per_layer: dict[str, list[np.ndarray]] = {t: [] for t in layers}
        from concurrent.futures import ThreadPoolExecutor

        bar = tqdm(total=len(images), desc="cppsim", disable=not progress, leave=False)

        def one(lane: int, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
            ctx = self.context(img, lane=lane)
            bar.update(1)
            return (
                np.asarray(ctx[self.out_name]).reshape(-1),
                np.asarray(ctx[scores_name]).reshape(-1),
                [np.asarray(ctx[t])[0].transpose(2, 0, 1) for t in layers],
            )

        def chunk(lane: int) -> list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]:
            return [one(lane, img) for img in images[lane :: self.lanes]]

        lanes = min(self.lanes, len(images))
        with ThreadPoolExecutor(max_workers=lanes) as pool:
            parts = list(pool.map(chunk, range(lanes)))
        bar.close()
        for i in range(len(images)):  # image i ran in lane i % lanes
            out, score, values = parts[i % lanes][i // lanes]
            outputs.append(out)
            scores.append(score)
            for t, v in zip(layers, values, strict=True):
                per_layer[t].append(v)
        if trace is not None:
            for t, values in per_layer.items():
                trace[t] = np.rint(np.stack(values)).astype(np.int64)
            trace[names.HEAD] = np.rint(np.stack(scores)).astype(np.int64)
        return np.rint(np.stack(outputs)).astype(np.int64)

    def first_differing_node(
        self, image: np.ndarray, reference: ModelWrapper | None = None
    ) -> str | None:
        """The first node (graph order) whose C++ output is wrong for one uint8 CHW ``image``,
        with the first differing index; None if none. Wrong is: different from FINN's python
        execution of that node on the same inputs (the C++ computes otherwise than FINN), or,
        given ``reference`` (the build's HW-layer graph, ``hw.onnx``, whose tensors have the
        same names), different from that graph's tensor (the node computes as FINN does, on
        parameters other than the build's)."""
        from qonnx.core.onnx_exec import execute_onnx

        from bireal_fpga.execution.single_node import single_node_model

        ref: dict[str, np.ndarray] = {}
        if reference is not None:
            x = image.transpose(1, 2, 0)[None].astype(np.float32)
            in_name = reference.graph.input[0].name
            ref = execute_onnx(reference, {in_name: x}, return_full_exec_context=True)
        found: list[str] = []

        def differs(have: np.ndarray, want: np.ndarray) -> str | None:
            want = np.asarray(want).reshape(have.shape)
            if np.array_equal(have, want):
                return None
            i = tuple(int(k) for k in np.argwhere(have != want)[0])
            return f"at {i}: cppsim {have[i]:g} != {want[i]:g}"

        def check(node: Any, inputs: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> None:
            if found:
                return
            python = execute_onnx(single_node_model(self.model, node), dict(inputs))
            for t, have in out.items():
                where = differs(have, python[t])
                if where:
                    found.append(
                        f"{node.name} ({node.op_type}) output {t} {where} of FINN python "
                        "on the same inputs"
                    )
                    return
                where = differs(have, ref[t]) if t in ref else None
                if where:
                    found.append(
                        f"{node.name} ({node.op_type}) output {t} {where} of the build's "
                        "HW graph (the node's parameters differ from it)"
                    )
                    return

        try:
            self.context(image, check)
        except CppsimError as e:
            return str(e)
        return found[0] if found else None
