"""Folding (PE/SIMD per layer) for a target FPS on a board, and the design's estimates.

FINN's ``SetFolding`` balances the pipeline for a cycles-per-frame target
(``clock / fps``); ``"max"`` asks for one cycle per frame, which SetFolding relaxes to the most
parallel folding its constraints allow. What a folding costs, and so which one fits, is the
:class:`CostModel`'s: an object passed to :func:`fold` that tunes SetFolding
(``mvau_wwidth_max``), refines its result (``after_set_folding``: memories, lane counts) and
prices a folded graph (``estimate``: per layer the cycles by FINN's ``AnnotateCycles`` and LUT,
BRAM36, URAM, DSP; the totals and the fits verdict by the model's own fit shares; the design's
FPS at the board's clock, the slowest layer setting the initiation interval). Two exist: FINN's
HLS models (:class:`bireal_fpga.hwlayers.finn_cost.FinnCostModel`) and the project's RTL model
(``bireal_fpga.synth.cost_model.RtlCostModel``, which sits above this layer). This module
knows neither; :func:`narrow_mvaus` and :func:`estimates_of` are the pieces they share.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.arch.dsp import FAMILY_PROP
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
RESOURCE_KEYS = ("LUT", "BRAM36", "URAM", "DSP")  # what a folding is priced in


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


class CostModel(Protocol):
    """What the folding needs of a cost model."""

    @property
    def name(self) -> str:
        """``"rtl"`` or ``"finn"``: which model priced a build (for the report)."""
        ...

    @property
    def mvau_wwidth_max(self) -> int:
        """SetFolding's ``mvau_wwidth_max``: the weight bits per PE up to which it widens SIMD
        before it adds PEs."""
        ...

    @property
    def weight_stream_limit(self) -> bool:
        """Whether SetFolding's cap on an ``internal_decoupled`` HLS MVAU's weight stream
        (``PE * SIMD * weight bits`` at most ap_int's widest word, 8191 bits: PE is reverted
        past it) applies to the MVAUs this model prices."""
        ...

    @property
    def strict(self) -> bool:
        """Whether a board that no folding fits by this model is an error in :func:`fold_max`
        (else the fully folded design is returned with ``fits = False``)."""
        ...

    def after_set_folding(self, model: ModelWrapper, board: Board, cycles: int) -> ModelWrapper:
        """Refine SetFolding's result for a target of ``cycles`` per frame (memories, lanes)."""
        ...

    def estimate(self, model: ModelWrapper, board: Board) -> Estimates:
        """Cycles and resources per layer of a folded graph, the totals, and whether it fits."""
        ...


def set_folding(model: ModelWrapper, cycles: int, board: Board, cost: CostModel) -> ModelWrapper:
    """FINN's SetFolding for ``cycles`` per frame, then the cost model's own refinement.

    SetFolding stops adding PEs to an ``internal_decoupled`` HLS MVAU once its weight stream
    would pass 8191 bits (an ap_int limit of FINN's HLS weight streamer), and then relaxes the
    whole pipeline to that node's interval. The project's RTL MVAU reads its weights from its
    own memory, one wide word a cycle, with no such limit: for a cost model without
    :attr:`CostModel.weight_stream_limit` the MVAUs are folded as ``internal_embedded`` ones
    (PE grown until the target is met), their ``mem_mode`` restored afterwards. (It bit on
    Bi-Real-18 ImageNet's 7x7 int8 stem: PE 16 x SIMD 49 x 8 bits is the most, so every layer
    was relaxed to the stem's 150,528 cycles.)"""
    from finn.transformation.fpgadataflow.set_folding import SetFolding

    work = copy.deepcopy(model)  # the one copy SetFolding would make: the caller's stays as is
    work.set_metadata_prop(FAMILY_PROP, board.family)  # what the generator packs DSPs by
    modes: dict[str, str] = {}
    if not cost.weight_stream_limit:
        for node in work.graph.node:
            if node.op_type.startswith("MVAU"):
                inst = getCustomOp(node)
                modes[node.name] = str(inst.get_nodeattr("mem_mode"))
                inst.set_nodeattr("mem_mode", "internal_embedded")
    # SetFolding prints and warns once per node it cannot fold further: keep the log readable
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        folded = work.transform(
            SetFolding(target_cycles_per_frame=cycles, mvau_wwidth_max=cost.mvau_wwidth_max),
            make_deepcopy=False,
        )
    for node in folded.graph.node:
        if node.name in modes:
            getCustomOp(node).set_nodeattr("mem_mode", modes[node.name])
    return cost.after_set_folding(folded, board, cycles)


def estimates_of(
    model: ModelWrapper,
    board: Board,
    resources: Mapping[str, Mapping[str, float]],
    *,
    fit_shares: Mapping[str, float] | None = None,
    correction: Mapping[str, float] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> Estimates:
    """The estimates of a graph whose per-node ``resources`` (``{node: {LUT, BRAM36, URAM,
    DSP}}``; a node left out costs nothing) a cost model priced: per layer FINN's cycles
    (``AnnotateCycles``), the totals (times ``correction[key]`` where given) and ``fits``:
    every total within ``fit_shares[key]`` (default 1) of the board's resource. ``extra``:
    entries for layers that are not (yet) nodes of the graph (``{name: {op_type, cycles,
    LUT, ...}}``, e.g. the FIFOs to be inserted), listed after the nodes and counted in the
    totals (they do not set the bottleneck)."""
    from finn.transformation.fpgadataflow.annotate_cycles import AnnotateCycles
    from finn.util.fpgadataflow import is_hls_node, is_rtl_node

    model = model.transform(AnnotateCycles())
    per_layer: dict[str, dict[str, Any]] = {}
    total = {k: 0.0 for k in RESOURCE_KEYS}
    for node in model.graph.node:
        inst = getCustomOp(node)
        r = resources.get(node.name, {})
        entry: dict[str, Any] = {
            "op_type": node.op_type,
            "cycles": int(inst.get_nodeattr("cycles_estimate")),
        }
        for key in RESOURCE_KEYS:
            entry[key] = float(r.get(key, 0))
        per_layer[node.name] = entry
        for key in RESOURCE_KEYS:
            total[key] += entry[key]
    for name, row in (extra or {}).items():
        entry = {"op_type": str(row["op_type"]), "cycles": int(row.get("cycles", 0))}
        entry.update({k: v for k, v in row.items() if k not in RESOURCE_KEYS and k not in entry})
        for key in RESOURCE_KEYS:
            entry[key] = float(row.get(key, 0))
            total[key] += entry[key]
        per_layer[name] = entry
    for key, factor in (correction or {}).items():
        total[key] *= factor
    shares = fit_shares or {}
    fits = all(total[k] <= shares.get(k, 1.0) * board.resources.get(k, 0) for k in RESOURCE_KEYS)
    # the slowest specialized layer (FINN's dataflow_performance, without its latency walk,
    # which fails on the not yet specialized FIFOs and converters of an RTL graph)
    max_cycles, bottleneck = 0, ""
    for node in model.graph.node:
        if (is_hls_node(node) or is_rtl_node(node)) and per_layer[node.name]["cycles"] > max_cycles:
            max_cycles, bottleneck = per_layer[node.name]["cycles"], node.name
    return Estimates(
        fps=board.clock_mhz * 1e6 / max(max_cycles, 1),
        clock_mhz=board.clock_mhz,
        max_cycles=max_cycles,
        bottleneck=bottleneck,
        per_layer=per_layer,
        total=total,
        fits=fits,
    )


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


def fold(
    model: ModelWrapper,
    board: Board,
    target_fps: str | float,
    *,
    cost: CostModel,
    config_file: Path | None = None,
) -> tuple[ModelWrapper, Estimates]:
    """Fold ``model`` (specialized HW layers) for ``target_fps`` ("max" or a number), its
    resources judged by ``cost``; with ``config_file``, the folding that FINN-format config
    holds instead (priced by ``cost``). The folded graph is marked with the board's FPGA
    family (:data:`bireal_fpga.arch.dsp.FAMILY_PROP`: the generator packs DSPs by it, as the
    cost model does by the board)."""
    finn_ready()
    if config_file is not None:
        try:
            config = json.loads(Path(config_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FoldingError(f"folding config '{config_file}' cannot be read: {exc}") from None
        model = apply_folding_config(model, config)
        model.set_metadata_prop(FAMILY_PROP, board.family)
        return model, cost.estimate(model, board)
    clock_hz = board.clock_mhz * 1e6
    if target_fps == "max":
        return fold_max(model, board, cost)
    fps = float(target_fps)
    cycles = max(1, int(clock_hz // fps))
    folded = set_folding(model, cycles, board, cost)
    est = cost.estimate(folded, board)
    if est.fps < fps * (1 - 1e-9):
        _, best = fold_max(model, board, cost)
        raise FoldingError(
            f"target {fps:g} FPS is out of reach on {board.name} at {board.clock_mhz:g} MHz: "
            f"the best achievable is {best.fps:.1f} FPS (bottleneck {best.bottleneck})"
        )
    return folded, est


def fold_max(model: ModelWrapper, board: Board, cost: CostModel) -> tuple[ModelWrapper, Estimates]:
    """The fastest folding whose estimated resources fit the board.

    Fits is not monotone in the cycles target (narrow, deep weight memories of a fully folded
    design pack worse into BRAM/URAM than wider ones), so targets 1, 2, 4, ... cycles per
    frame are tried until one fits, then the step before it is bisected (log scale, to within
    2 %). Where no target fits by the estimates, a ``strict`` cost model raises
    :class:`FoldingError`; another returns the fully folded design with ``fits = False``
    (FINN's cost models are pessimistic for some units: see the per-layer table).
    """
    slowest = set_folding(model, 1 << 40, board, cost)
    slow_est = cost.estimate(slowest, board)
    cycles, previous = 1, None
    found: tuple[ModelWrapper, Estimates] | None = None
    while cycles <= 2 * slow_est.max_cycles:
        folded = set_folding(model, cycles, board, cost)
        est = cost.estimate(folded, board)
        if est.fits:
            found = (folded, est)
            break
        previous, cycles = cycles, cycles * 2
    if found is None:
        if cost.strict:
            raise FoldingError(
                f"no folding fits {board.name} by the {cost.name} cost model (even the slowest "
                "needs "
                + ", ".join(f"{k} {v:.0f}" for k, v in slow_est.total.items())
                + f" of {board.resources}); pass --target-fps N to build the design anyway "
                "(report.json then says it does not fit)"
            )
        return slowest, slow_est
    if previous is None:
        return found
    lo, hi = previous, cycles
    while hi > lo * 1.02 + 1:
        mid = int(round((lo * hi) ** 0.5))
        folded = set_folding(model, mid, board, cost)
        est = cost.estimate(folded, board)
        if est.fits:
            hi, found = mid, (folded, est)
        else:
            lo = mid
    return found
