"""Folding (PE/SIMD per layer) for a target FPS on a board, and the design's estimates.

FINN's ``SetFolding`` balances the pipeline for a cycles-per-frame target
(``clock / fps``); ``"max"`` asks for one cycle per frame, which SetFolding relaxes to the most
parallel folding its constraints allow. Estimates come from FINN's per-layer cost models
(``AnnotateCycles``, ``res_estimation``): cycles, LUT, BRAM, URAM, DSP per layer, and the
whole design's FPS at the board's clock (the slowest layer sets the initiation interval).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.boards import Board
from bireal_fpga.errors import BiRealError
from bireal_fpga.hwlayers.finn_env import finn_ready

FOLD_ATTRS = (
    "PE",
    "SIMD",
    "ram_style",
    "runtime_writeable_weights",
    "resType",
    "mem_mode",
    "parallel_window",
)


class FoldingError(BiRealError):
    """A target FPS the board cannot hold, or a folding config that does not fit the graph."""


@dataclass(frozen=True)
class Estimates:
    fps: float
    clock_mhz: float
    max_cycles: int
    bottleneck: str
    per_layer: dict[str, dict[str, Any]]
    total: dict[str, float]
    fits: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "fps": self.fps,
            "clock_mhz": self.clock_mhz,
            "max_cycles": self.max_cycles,
            "bottleneck": self.bottleneck,
            "fits": self.fits,
            "total": self.total,
            "per_layer": self.per_layer,
        }


# SetFolding widens SIMD up to this many weight bits per PE before it adds PEs. FINN's 36
# suits its HLS MVAU (one BRAM port per PE); the project's RTL reads one wide weight word per
# cycle and pays per PE for the activation unit, so wide SIMD and few PEs cost less.
MVAU_WWIDTH_MAX = {"finn": 36, "rtl": 576}


def _set_folding(
    model: ModelWrapper, cycles: int, board: Board, cost: str = "finn"
) -> ModelWrapper:
    from finn.transformation.fpgadataflow.set_folding import SetFolding

    # SetFolding prints and warns once per node it cannot fold further: keep the log readable
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        folded = model.transform(
            SetFolding(target_cycles_per_frame=cycles, mvau_wwidth_max=MVAU_WWIDTH_MAX[cost])
        )
    if cost == "rtl":
        return assign_memories_rtl(narrow_mvaus(folded, cycles), board)
    return assign_memories(folded, board)


# the widest XNOR popcount / integer dot product one PE computes per cycle (weight bits)
MVAU_SIMD_BITS_MAX = 1152


def narrow_mvaus(model: ModelWrapper, cycles: int) -> ModelWrapper:
    """Each MVAU refolded to the fewest lanes (PE x SIMD) that still meet ``cycles`` per frame.

    SetFolding widens SIMD up to ``mvau_wwidth_max`` and then doubles PE, and PE / SIMD must
    divide the matrix: Bi-Real-18-CIFAR's layers then run at 16k cycles for a 24k target, with
    up to 1.5x the lanes (popcount LUTs) and weight-memory width (BRAM / URAM columns) needed.
    The narrowest folding is also the deepest weight memory, which packs best. Of equal lane
    counts the widest SIMD (fewest PEs: one accumulator and activation each) is taken; an MVAU
    that cannot meet ``cycles`` keeps SetFolding's choice."""
    for node in model.graph.node:
        if not node.op_type.startswith("MVAU"):
            continue
        inst = getCustomOp(node)
        mw, mh = int(inst.get_nodeattr("MW")), int(inst.get_nodeattr("MH"))
        vectors = int(np.prod(inst.get_nodeattr("numInputVectors")))
        binary = inst.get_nodeattr("binaryXnorMode")
        wbits = 1 if binary else DataType[inst.get_nodeattr("weightDataType")].bitwidth()
        simd0, pe0 = int(inst.get_nodeattr("SIMD")), int(inst.get_nodeattr("PE"))
        best: tuple[int, int, int] | None = None
        for simd in (d for d in range(1, mw + 1) if mw % d == 0):
            if simd * wbits > max(MVAU_SIMD_BITS_MAX, simd0 * wbits):
                break
            for pe in (d for d in range(1, mh + 1) if mh % d == 0):
                if vectors * (mw // simd) * (mh // pe) <= cycles:
                    key = (simd * pe, -simd, pe)
                    if best is None or key < best:
                        best = key
                    break  # larger PEs only widen
        if best is not None and best[0] < simd0 * pe0:
            inst.set_nodeattr("SIMD", -best[1])
            inst.set_nodeattr("PE", best[2])
    return model


def assign_memories_rtl(model: ModelWrapper, board: Board) -> ModelWrapper:
    """Weight memories of the project's RTL: block RAM; UltraRAM (weights loaded at run time)
    and then LUT ROM where block RAM runs out.

    UltraScale+ URAM cannot be initialized by the bitstream, so an MVAU whose weights move there
    gets ``runtime_writeable_weights=1``: the accelerator loads them over its weight bus at start
    (``bireal_mvau`` W_LOAD). Starting from ``auto`` (LUTs for small memories, else block RAM),
    while the block RAM exceeds the board's budget share: the MVAU that frees the most BRAM36 per
    URAM moves to URAM while URAM is left, then the one freeing the most per LUT to LUT ROM.
    """
    from bireal_fpga.synth.cost_model import node_cost

    mvaus = []
    for node in model.graph.node:
        inst = getCustomOp(node)
        if node.op_type.startswith("MVAU") and "ram_style" in inst.get_nodeattr_types():
            inst.set_nodeattr("ram_style", "auto")
            inst.set_nodeattr("runtime_writeable_weights", 0)
            mvaus.append(node)
    fam = board.family
    bram = sum(node_cost(n, fam, model).BRAM36 for n in model.graph.node)
    budget = RTL_FIT_FRACTION * board.resources.get("BRAM36", 0)
    uram_left = board.resources.get("URAM", 0) if fam == "xcup" else 0

    def option(node: Any, style: str) -> tuple[float, float, float]:
        """(BRAM36 freed, URAM taken, LUT added) by moving the node's weights to ``style``."""
        inst = getCustomOp(node)
        before = node_cost(node, fam, model)
        inst.set_nodeattr("ram_style", style)
        inst.set_nodeattr("runtime_writeable_weights", int(style == "ultra"))
        after = node_cost(node, fam, model)
        inst.set_nodeattr("ram_style", "auto")
        inst.set_nodeattr("runtime_writeable_weights", 0)
        return before.BRAM36 - after.BRAM36, after.URAM - before.URAM, after.LUT - before.LUT

    pending = list(mvaus)
    while bram > budget and pending:
        moves = []
        for node in pending:
            freed, uram, _ = option(node, "ultra")
            if freed > 0 and 0 < uram <= uram_left:
                moves.append((0, -freed / uram, node.name, node, "ultra", freed, uram))
        if not moves:
            for node in pending:
                freed, _, lut = option(node, "distributed")
                if freed > 0:
                    moves.append(
                        (1, -freed / max(lut, 1), node.name, node, "distributed", freed, 0)
                    )
        if not moves:
            break
        _, _, _, node, style, freed, uram = min(moves, key=lambda t: t[:3])
        inst = getCustomOp(node)
        inst.set_nodeattr("ram_style", style)
        inst.set_nodeattr("runtime_writeable_weights", int(style == "ultra"))
        bram -= freed
        uram_left -= uram
        pending.remove(node)
    return model


def assign_memories(model: ModelWrapper, board: Board) -> ModelWrapper:
    """Weight memories of MVAUs to UltraRAM where block RAM runs out.

    Starting from block RAM for every weight memory, the MVAU whose move to UltraRAM frees the
    most BRAM per URAM it takes is moved, until the estimated BRAM fits the board or no URAM is
    left. Uses FINN's per-node BRAM/URAM cost models.
    """
    if board.resources.get("URAM", 0) <= 0:
        return model
    mvaus = []
    for node in model.graph.node:
        inst = getCustomOp(node)
        if node.op_type.startswith("MVAU") and inst.get_nodeattr("mem_mode") == (
            "internal_decoupled"
        ):
            inst.set_nodeattr("ram_style", "auto")
            mvaus.append(inst)
    part = board.part
    bram18 = sum(
        getCustomOp(n).bram_estimation(part)
        for n in model.graph.node
        if hasattr(getCustomOp(n), "bram_estimation")
    )
    bram_budget = 2 * board.resources["BRAM36"]
    uram_left = board.resources["URAM"]
    while bram18 > bram_budget:
        best, best_gain = None, 0.0
        for inst in mvaus:
            if inst.get_nodeattr("ram_style") == "ultra":
                continue
            saved = inst.bram_estimation(part)
            inst.set_nodeattr("ram_style", "ultra")
            cost = inst.uram_estimation(part)
            inst.set_nodeattr("ram_style", "auto")
            if saved > 0 and cost <= uram_left and saved / max(cost, 1) > best_gain:
                best, best_gain = inst, saved / max(cost, 1)
        if best is None:
            break
        bram18 -= best.bram_estimation(part)
        best.set_nodeattr("ram_style", "ultra")
        # UltraRAM cannot be initialized by the bitstream: FINN then streams the weights in
        best.set_nodeattr("runtime_writeable_weights", 1)
        uram_left -= best.uram_estimation(part)
    return model


def folding_config(model: ModelWrapper) -> dict[str, dict[str, Any]]:
    """``{node name: {PE, SIMD, ...}}`` in FINN's folding-config JSON format."""
    config: dict[str, dict[str, Any]] = {"Defaults": {}}
    for node in model.graph.node:
        inst = getCustomOp(node)
        types = inst.get_nodeattr_types()
        entry = {a: inst.get_nodeattr(a) for a in FOLD_ATTRS if a in types}
        if entry:
            config[node.name] = entry
    return config


def apply_folding_config(model: ModelWrapper, config: dict[str, dict[str, Any]]) -> ModelWrapper:
    """Apply a user's folding config; every entry must name a node of the graph."""
    names = {n.name for n in model.graph.node}
    for name, attrs in config.items():
        if name == "Defaults":
            continue
        if name not in names:
            raise FoldingError(f"folding config names node '{name}', which is not in the graph")
        inst = getCustomOp(model.get_node_from_name(name))
        for attr, value in attrs.items():
            if attr not in inst.get_nodeattr_types():
                raise FoldingError(f"folding config: node '{name}' has no attribute '{attr}'")
            inst.set_nodeattr(attr, value)
    return model


# with the RTL cost model, a folding "fits" when it leaves this share of each resource free:
# the FIFOs and width converters are inserted after folding, and the model is an estimate
RTL_FIT_FRACTION = 0.8


def fit_share(resource: str, cost: str) -> float:
    """The share of a board resource a folding may use: RTL_FIT_FRACTION with the RTL cost
    model, except URAM, which only the MVAUs' weights use, sized exactly."""
    return RTL_FIT_FRACTION if cost == "rtl" and resource != "URAM" else 1.0


def _rtl_costs(model: ModelWrapper, board: Board) -> dict[str, dict[str, float]]:
    from bireal_fpga.synth.cost_model import node_cost

    out = {}
    for node in model.graph.node:
        r = node_cost(node, board.family, model)
        out[node.name] = {"LUT": r.LUT, "BRAM_18K": 2 * r.BRAM36, "URAM": r.URAM, "DSP": r.DSP}
    return out


def estimate(model: ModelWrapper, board: Board, cost: str = "finn") -> Estimates:
    """Cycles per layer (FINN's models) and resources: FINN's HLS/RTL cost models
    (``cost="finn"``) or the project's RTL cost model (``"rtl"``, ``synth.cost_model``)."""
    from finn.analysis.fpgadataflow.dataflow_performance import dataflow_performance
    from finn.analysis.fpgadataflow.res_estimation import res_estimation
    from finn.transformation.fpgadataflow.annotate_cycles import AnnotateCycles

    model = model.transform(AnnotateCycles())
    perf = model.analysis(dataflow_performance)
    res = _rtl_costs(model, board) if cost == "rtl" else res_estimation(model, board.part)
    per_layer: dict[str, dict[str, Any]] = {}
    total = {"LUT": 0.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0}
    for node in model.graph.node:
        inst = getCustomOp(node)
        r = res.get(node.name, {})
        entry = {
            "op_type": node.op_type,
            "cycles": int(inst.get_nodeattr("cycles_estimate")),
            "LUT": float(r.get("LUT", 0)),
            "BRAM36": float(r.get("BRAM_18K", 0)) / 2,
            "URAM": float(r.get("URAM", 0)),
            "DSP": float(r.get("DSP", 0)),
        }
        per_layer[node.name] = entry
        for key in total:
            total[key] += entry[key]
    max_cycles = int(perf["max_cycles"])
    fps = board.clock_mhz * 1e6 / max(max_cycles, 1)
    fits = all(total[k] <= fit_share(k, cost) * board.resources.get(k, 0) for k in total)
    return Estimates(
        fps=fps,
        clock_mhz=board.clock_mhz,
        max_cycles=max_cycles,
        bottleneck=str(perf["max_cycles_node_name"]),
        per_layer=per_layer,
        total=total,
        fits=fits,
    )


def fold(
    model: ModelWrapper,
    board: Board,
    target_fps: str | float,
    *,
    config_file: Path | None = None,
    cost: str = "finn",
) -> tuple[ModelWrapper, Estimates]:
    """Fold ``model`` (specialized HW layers) for ``target_fps`` ("max" or a number);
    resources judged by ``cost`` ("finn": FINN's models; "rtl": this project's RTL)."""
    finn_ready()
    if config_file is not None:
        try:
            config = json.loads(Path(config_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FoldingError(f"folding config '{config_file}' cannot be read: {exc}") from None
        model = apply_folding_config(model, config)
        return model, estimate(model, board, cost)
    clock_hz = board.clock_mhz * 1e6
    if target_fps == "max":
        return fold_max(model, board, cost)
    fps = float(target_fps)
    cycles = max(1, int(clock_hz // fps))
    folded = _set_folding(model, cycles, board, cost)
    est = estimate(folded, board, cost)
    if est.fps < fps * (1 - 1e-9):
        _, best = fold_max(model, board, cost)
        raise FoldingError(
            f"target {fps:g} FPS is out of reach on {board.name} at {board.clock_mhz:g} MHz: "
            f"the best achievable is {best.fps:.1f} FPS (bottleneck {best.bottleneck})"
        )
    return folded, est


def fold_max(
    model: ModelWrapper, board: Board, cost: str = "finn"
) -> tuple[ModelWrapper, Estimates]:
    """The fastest folding whose estimated resources fit the board.

    Fits is not monotone in the cycles target (narrow, deep weight memories of a fully folded
    design pack worse into BRAM/URAM than wider ones), so targets 1, 2, 4, ... cycles per
    frame are tried until one fits, then the step before it is bisected (log scale, to within
    2 %). Where no target fits by the estimates, the fully folded design is returned with
    ``fits = False``.
    """
    slowest = _set_folding(model, 1 << 40, board, cost)
    slow_est = estimate(slowest, board, cost)
    cycles, previous = 1, None
    found: tuple[ModelWrapper, Estimates] | None = None
    while cycles <= 2 * slow_est.max_cycles:
        folded = _set_folding(model, cycles, board, cost)
        est = estimate(folded, board, cost)
        if est.fits:
            found = (folded, est)
            break
        previous, cycles = cycles, cycles * 2
    if found is None:
        if cost == "rtl":
            raise FoldingError(
                f"no folding fits {board.name} by the RTL cost model (even the slowest needs "
                + ", ".join(f"{k} {v:.0f}" for k, v in slow_est.total.items())
                + f" of {board.resources}); pass --target-fps N to build the design anyway "
                "(report.json then says it does not fit)"
            )
        # FINN's cost models are pessimistic for some units (see the per-layer table)
        return slowest, slow_est
    if previous is None:
        return found
    lo, hi = previous, cycles
    while hi > lo * 1.02 + 1:
        mid = int(round((lo * hi) ** 0.5))
        folded = _set_folding(model, mid, board, cost)
        est = estimate(folded, board, cost)
        if est.fits:
            hi, found = mid, (folded, est)
        else:
            lo = mid
    return found
