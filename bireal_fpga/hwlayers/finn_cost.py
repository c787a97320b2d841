"""FINN's own cost model of a folding: its HLS / RTL layers' ``res_estimation`` (LUT, BRAM18,
URAM, DSP per node) and ``bram_estimation`` / ``uram_estimation`` for the weight memories.

This is what an ``--until hw`` build folds by (the project's RTL is priced by
``bireal_fpga.synth.cost_model.RtlCostModel`` instead): SetFolding with FINN's
``mvau_wwidth_max`` of 36 (its HLS MVAU reads one BRAM port per PE), weight memories moved to
UltraRAM where block RAM runs out (:func:`assign_memories`), and a folding fits when every
estimate is within the board's resources. FINN's models are pessimistic for some units, so a
board that no folding fits is not an error here (:attr:`FinnCostModel.strict` is False).
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.boards import Board
from bireal_fpga.hwlayers.folding import Estimates, estimates_of

FINN_MVAU_WWIDTH_MAX = 36  # FINN's default: one BRAM port per PE of its HLS MVAU


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


class FinnCostModel:
    """FINN's cost models (see the module docstring); a :class:`CostModel` of the folding."""

    @property
    def name(self) -> str:
        return "finn"

    @property
    def mvau_wwidth_max(self) -> int:
        return FINN_MVAU_WWIDTH_MAX

    @property
    def weight_stream_limit(self) -> bool:
        return True  # FINN's HLS MVAU streams its weights through ap_int words

    @property
    def strict(self) -> bool:
        return False

    def after_set_folding(self, model: ModelWrapper, board: Board, cycles: int) -> ModelWrapper:
        return assign_memories(model, board)

    def estimate(self, model: ModelWrapper, board: Board) -> Estimates:
        """Cycles per layer (FINN's ``AnnotateCycles``) and FINN's ``res_estimation``."""
        from finn.analysis.fpgadataflow.res_estimation import res_estimation

        res = res_estimation(model, board.part)
        resources = {
            name: {
                "LUT": float(r.get("LUT", 0)),
                "BRAM36": float(r.get("BRAM_18K", 0)) / 2,
                "URAM": float(r.get("URAM", 0)),
                "DSP": float(r.get("DSP", 0)),
            }
            for name, r in res.items()
        }
        return estimates_of(model, board, resources)
