"""The build steps, and :data:`STEPS`, the one table that lists them.

Each step is ``step_<verb>(state, cfg) -> state`` (see :mod:`bireal_fpga.flow.state`): it reads
the artefacts its row names from the build folder, writes those it names into its staging
folder, and returns the state with its report entries. Later issues add rows (Vivado,
driver); users can add, replace or drop rows and pass their table to ``bireal_fpga.build``.

========  =================================================================================
group     steps
========  =================================================================================
integer   model, integer, golden-check
qonnx     qonnx (or, for a ``.onnx`` source, import)
hw        hw, specialize, folding
rtl       fifo-sizing, rtl, rtlsim, synth
========  =================================================================================
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga import names
from bireal_fpga.boards import Board
from bireal_fpga.errors import BiRealError
from bireal_fpga.flow.compare import Tally
from bireal_fpga.flow.config import BuildConfig
from bireal_fpga.flow.state import SOURCE_MODEL, SOURCE_ONNX, BuildState, Step

SIZING_FRAMES = 64  # most frames of the FIFO-sizing simulation (8, doubled until steady)
GROUPS = ("integer", "qonnx", "hw", "rtl")


class CheckFailed(BiRealError):
    """A check step found that a stage differs from the PyTorch integer form."""


def check_images(shape: tuple[int, int, int], n: int, seed: int) -> np.ndarray:
    """The build's random check images (uint8 NCHW): the FIFO sizing, its full-rate check and
    the stitched simulation all use these."""
    return np.random.default_rng(seed + 1).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def graph_input_shape(model: Any) -> tuple[int, int, int]:
    """(C, H, W) of a graph whose input is NHWC uint8 pixels."""
    _, h, w, c = model.get_tensor_shape(model.graph.input[0].name)
    return int(c), int(h), int(w)


# ---- integer ----------------------------------------------------------------------------------


def step_load_model(state: BuildState, cfg: BuildConfig) -> BuildState:
    """The float model: the checkpoint, or the spec with random weights and calibrated batch
    norms (seeded) -> ``model.pt``."""
    import torch

    from bireal_fpga.models.bireal import BiRealNet
    from bireal_fpga.models.calibration import calibrated_random_model
    from bireal_fpga.spec import load_spec
    from bireal_fpga.train.checkpoint import load_checkpoint, save_checkpoint

    if cfg.source.endswith(".pt"):
        model = load_checkpoint(cfg.source).build_model()
        trained = True
    else:
        torch.manual_seed(cfg.seed)
        model = calibrated_random_model(BiRealNet(load_spec(cfg.source)), seed=cfg.seed)
        trained = False
    save_checkpoint(state.output(names.MODEL), model)
    return state.with_report(trained=trained, spec=model.spec.to_dict())


def step_integer_form(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Its integer inference form -> ``integer.npz``."""
    from bireal_fpga.errors import ExportError
    from bireal_fpga.integer.derive import integer_form
    from bireal_fpga.train.checkpoint import load_checkpoint

    model = load_checkpoint(state.input(names.MODEL)).build_model()
    try:
        net = integer_form(model)
    except ExportError as exc:
        raise ExportError(f"source '{cfg.source}': {exc}") from None
    net.save(state.output(names.INTEGER))
    return state


def step_golden_check(state: BuildState, cfg: BuildConfig) -> BuildState:
    """The numpy golden model == the PyTorch integer form, layer by layer, on ``n_check``
    random images."""
    import torch

    from bireal_fpga.golden.model import GoldenModel
    from bireal_fpga.integer.forward import integer_layers
    from bireal_fpga.integer.params import IntegerNet

    net = IntegerNet.load(state.input(names.INTEGER))
    g = torch.Generator().manual_seed(cfg.seed)
    images = torch.randint(0, 256, (cfg.n_check, *net.input_shape), generator=g, dtype=torch.uint8)
    got: dict[str, np.ndarray] = {}
    GoldenModel(state.input(names.INTEGER)).run(images.numpy(), trace=got)
    tally = Tally()
    tally.add(integer_layers(net, images.numpy()), got, 0)
    if tally.mismatches:
        raise CheckFailed(
            f"golden model differs from the PyTorch integer form on {tally.mismatches} of "
            f"{tally.n} images; first: {tally.first_mismatch}"
        )
    return state.with_report(golden_check=tally.to_dict())


# ---- qonnx ------------------------------------------------------------------------------------


def step_export_qonnx(state: BuildState, cfg: BuildConfig) -> BuildState:
    """QONNX export of the integer form (FINN's streamlined dialect) -> ``qonnx.onnx``."""
    from bireal_fpga.export.qonnx_export import export_qonnx
    from bireal_fpga.integer.params import IntegerNet

    net = IntegerNet.load(state.input(names.INTEGER))
    export_qonnx(net, top1=cfg.top1).save(str(state.output(names.QONNX)))
    return state


def step_import_qonnx(state: BuildState, cfg: BuildConfig) -> BuildState:
    """A ``qonnx.onnx`` that an earlier build exported -> ``qonnx.onnx``."""
    import onnx

    try:
        proto = onnx.load(cfg.source)
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BiRealError(f"'{cfg.source}' is not an ONNX model ({first[:120]})") from None
    if proto.producer_name != "bireal-fpga":
        raise BiRealError(
            f"'{cfg.source}' was not exported by bireal-fpga (producer "
            f"'{proto.producer_name}'): build from the checkpoint or spec instead"
        )
    shutil.copyfile(cfg.source, state.output(names.QONNX))
    return state


# ---- hw ---------------------------------------------------------------------------------------


def step_hw_layers(state: BuildState, cfg: BuildConfig) -> BuildState:
    """FINN HW layers -> ``hw.onnx`` (FINN's python execution runs on this graph)."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.hwlayers.convert import to_hw_layers

    hw = to_hw_layers(ModelWrapper(str(state.input(names.QONNX))))
    hw.save(str(state.output(names.HW)))
    return state.with_report(hw_layers=sorted({n.op_type for n in hw.graph.node}))


def step_specialize(state: BuildState, cfg: BuildConfig) -> BuildState:
    """One dataflow partition holding every layer, specialized for the board's part ->
    ``specialized.onnx``."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.hwlayers.convert import partition_and_specialize

    hw = ModelWrapper(str(state.input(names.HW)))
    model = partition_and_specialize(hw, state.board.part, state.scratch("finn"))
    model.save(str(state.output(names.SPECIALIZED)))
    # the partition holds the whole graph; the boundary layout (NHWC uint8 in, scores out)
    # is the driver's job
    return state.with_report(
        outside_partition=[],
        specialized_layers=sorted({n.op_type for n in model.graph.node}),
    )


def fit_correction(state: BuildState) -> dict[str, float]:
    """The fit loop's correction of the cost model (``fit.json``), if the runner wrote one."""
    path = state.input(names.FIT)
    if not path.is_file():
        return {}
    return {k: float(v) for k, v in json.loads(path.read_text()).get("correction", {}).items()}


def cost_model(cfg: BuildConfig, correction: dict[str, float] | None = None) -> Any:
    """The cost model object that folding prices a design with."""
    if cfg.cost_model == "finn":
        from bireal_fpga.hwlayers.finn_cost import FinnCostModel

        return FinnCostModel()
    from bireal_fpga.synth.cost_model import RtlCostModel

    return RtlCostModel(correction=correction or None)


def step_folding(state: BuildState, cfg: BuildConfig) -> BuildState:
    """PE / SIMD / memories for the target FPS, priced by the cost model -> ``folded.onnx``,
    ``folding_config.json`` (FINN's format) and the estimates."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.hwlayers.folding import fold, folding_config

    correction = fit_correction(state)
    cost = cost_model(cfg, correction)
    folding_file = Path(cfg.folding_config) if cfg.folding_config else None
    specialized = ModelWrapper(str(state.input(names.SPECIALIZED)))
    folded, est = fold(
        specialized, state.board, cfg.target_fps, cost=cost, config_file=folding_file
    )
    folded.save(str(state.output(names.FOLDED)))
    config = folding_config(folded)
    state.output(names.FOLDING_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    estimates = {**est.to_dict(), "cost_model": cost.name}
    if cfg.cost_model == "rtl":  # the same design priced without the fit loop's correction
        raw = cost_model(cfg).estimate(folded, state.board)
        estimates["total_uncorrected"] = raw.total
        estimates["correction"] = correction
    return state.with_report(folding=config, estimates=estimates)


# ---- rtl --------------------------------------------------------------------------------------


def step_fifo_sizing(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Width converters and FIFOs on every edge, FIFO depths sized by simulation (paced until
    steady), then a full-rate run of the check images (a FIFO found full in a stall there is
    doubled) -> ``rtl.onnx``."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.rtl.prepare import prepare_rtl_graph
    from bireal_fpga.rtl.stitch import stitch
    from bireal_fpga.rtlsim.fifo_sizing import grow_stalled, size_fifos

    folded = ModelWrapper(str(state.input(names.FOLDED)))
    shape = graph_input_shape(folded)
    graph = prepare_rtl_graph(folded)
    images = check_images(shape, SIZING_FRAMES, cfg.seed)
    sized, record = size_fifos(graph, state.scratch("sizing"), images, progress=True)
    work = state.scratch("full_rate")
    design = stitch(sized, work / "rtl")
    run = grow_stalled(sized, design, check_images(shape, cfg.n_check, cfg.seed), work / "sim")
    record["full_rate_check"] = {"images": cfg.n_check, "growth": run.growth}
    run.model.save(str(state.output(names.RTL_GRAPH)))
    return state.with_report(fifo_sizing=record)


def step_generate_rtl(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Every node's SystemVerilog and memory images, the stitched top, the run-time weight
    image, ``manifest.json`` -> ``rtl/``."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.rtl.stitch import stitch

    stitch(ModelWrapper(str(state.input(names.RTL_GRAPH))), state.output(names.RTL), progress=True)
    return state


def step_rtlsim(state: BuildState, cfg: BuildConfig) -> BuildState:
    """The stitched design in Verilator on ``n_check`` random images == the PyTorch integer
    form (on a mismatch, the first differing layer is named); cycles measured -> ``sim/``
    (the compiled model)."""
    from bireal_fpga.flow.verify import RtlsimRun, check_stage
    from bireal_fpga.integer.forward import integer_layers
    from bireal_fpga.integer.params import IntegerNet

    net = IntegerNet.load(state.input(names.INTEGER))
    images = check_images(tuple(net.input_shape), cfg.n_check, cfg.seed)  # type: ignore[arg-type]

    def reference(x: np.ndarray) -> dict[str, np.ndarray]:
        return integer_layers(net, x)

    run = RtlsimRun(state.input(names.RTL), state.output(names.SIM), progress="rtlsim")
    run.sim.build()
    tally = Tally()
    check_stage(run, reference(images), images, tally, 0, reference)
    if tally.mismatches:
        raise CheckFailed(
            f"stitched RTL simulation differs from the PyTorch integer form on "
            f"{tally.mismatches} of {tally.n} images; first: {tally.first_mismatch}"
        )
    timing = run.timing()
    design = run.design
    clock = state.board.clock_mhz
    return state.with_report(
        rtl={
            "clock_mhz": clock,
            "top": design.top,
            "bottleneck": design.bottleneck,
            "fps": {"estimated": clock * 1e6 / design.cycles, "measured": timing.fps(clock)},
            "interval_cycles": {"estimated": design.cycles, "measured": timing.interval},
            "latency_cycles": timing.latency,
            "rtlsim": {**tally.to_dict(), **timing.to_dict(frame_ends=False)},
            # run-time weights (UltraRAM): one load over the 64-bit weight bus before inference
            "weights": {
                "layers": [n for n, _, _ in design.weight_layers],
                "beats": design.weight_beats,
                "bytes": 8 * design.weight_beats,
                "load_cycles": run.load_cycles,
            },
        }
    )


def cost_of_design(rtl_graph: Any, board: Board) -> dict[str, Any]:
    """The RTL cost model's price of the final design (every node, FIFOs as sized), in
    total and per layer type, beside which Yosys's numbers are reported."""
    from bireal_fpga.arch.ops import generic_op
    from bireal_fpga.synth.cost_model import node_cost

    keys = ("LUT", "FF", "BRAM36", "URAM", "DSP")
    total = dict.fromkeys(keys, 0.0)
    per_type: dict[str, dict[str, float]] = {}
    for node in rtl_graph.graph.node:
        res = node_cost(node, board.family, rtl_graph).as_dict()
        row = per_type.setdefault(generic_op(node.op_type), dict.fromkeys(keys, 0.0))
        for k in keys:
            row[k] += float(res[k])
            total[k] += float(res[k])
    return {"total": total, "per_type": per_type}


def step_synth(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Yosys resource estimates, every layer synthesized on its own, and the fits verdict;
    beside them the cost model's price of the same design -> ``synth.json``."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.arch.ops import generic_op
    from bireal_fpga.rtl.stitch import load_design
    from bireal_fpga.synth.report import synth_design

    priced = cost_of_design(ModelWrapper(str(state.input(names.RTL_GRAPH))), state.board)
    if not cfg.synth:
        record: dict[str, Any] = {"resources": None, "fits": None, "cost_model": priced}
        state.output(names.SYNTH).write_text(json.dumps(record, indent=2) + "\n")
        return state.with_report(rtl={"resources": None, "fits": None, "cost_model": priced})
    design = load_design(state.input(names.RTL))
    resources, fits = synth_design(design, state.board, jobs=cfg.jobs, progress=True)
    yosys_type: dict[str, dict[str, float]] = {}
    ops = {n: o for n, o, _ in design.layer_cycles}
    for node, res in resources["per_layer"].items():
        row = yosys_type.setdefault(generic_op(ops[node]), {})
        for k in ("LUT", "FF", "BRAM36", "URAM", "DSP"):
            row[k] = row.get(k, 0.0) + float(res[k])
    lut_y, lut_m = resources["total"]["LUT"], priced["total"]["LUT"]
    priced["lut_error"] = (lut_m - lut_y) / lut_y if lut_y else None
    priced["yosys_per_type"] = yosys_type
    record = {"resources": resources, "fits": fits, "cost_model": priced}
    state.output(names.SYNTH).write_text(json.dumps(record, indent=2) + "\n")
    return state.with_report(rtl={"resources": resources, "fits": fits, "cost_model": priced})


# ---- the table --------------------------------------------------------------------------------

STEPS: tuple[Step, ...] = (
    Step(
        "model",
        step_load_model,
        writes=(names.MODEL,),
        config=("source", "seed"),
        group="integer",
        sources=(SOURCE_MODEL,),
        summary="the float model (checkpoint, or a spec with calibrated random weights)",
    ),
    Step(
        "integer",
        step_integer_form,
        reads=(names.MODEL,),
        writes=(names.INTEGER,),
        group="integer",
        sources=(SOURCE_MODEL,),
        summary="its integer inference form",
    ),
    Step(
        "golden-check",
        step_golden_check,
        reads=(names.INTEGER,),
        config=("n_check", "seed"),
        group="integer",
        sources=(SOURCE_MODEL,),
        summary="numpy golden model == PyTorch integer form",
    ),
    Step(
        "qonnx",
        step_export_qonnx,
        reads=(names.INTEGER,),
        writes=(names.QONNX,),
        config=("top1",),
        group="qonnx",
        sources=(SOURCE_MODEL,),
        summary="QONNX export (FINN's streamlined dialect)",
    ),
    Step(
        "import",
        step_import_qonnx,
        writes=(names.QONNX,),
        config=("source",),
        group="qonnx",
        sources=(SOURCE_ONNX,),
        summary="a qonnx.onnx an earlier build exported",
    ),
    Step(
        "hw",
        step_hw_layers,
        reads=(names.QONNX,),
        writes=(names.HW,),
        group="hw",
        summary="FINN HW layers",
    ),
    Step(
        "specialize",
        step_specialize,
        reads=(names.HW,),
        writes=(names.SPECIALIZED,),
        board=("part",),
        group="hw",
        summary="one dataflow partition, specialized for the part",
    ),
    Step(
        "folding",
        step_folding,
        reads=(names.SPECIALIZED, names.FIT),
        writes=(names.FOLDED, names.FOLDING_CONFIG),
        config=("target_fps", "folding_config", "cost_model"),
        board=("part", "family", "clock_mhz", "resources"),
        group="hw",
        summary="PE/SIMD/memories for the target FPS, estimates",
    ),
    Step(
        "fifo-sizing",
        step_fifo_sizing,
        reads=(names.FOLDED,),
        writes=(names.RTL_GRAPH,),
        config=("n_check", "seed"),
        group="rtl",
        sources=(SOURCE_MODEL,),
        summary="width converters, FIFOs sized by simulation",
    ),
    Step(
        "rtl",
        step_generate_rtl,
        reads=(names.RTL_GRAPH,),
        writes=(names.RTL,),
        group="rtl",
        sources=(SOURCE_MODEL,),
        summary="SystemVerilog of every layer, the stitched top",
    ),
    Step(
        "rtlsim",
        step_rtlsim,
        reads=(names.RTL, names.INTEGER),
        writes=(names.SIM,),
        config=("n_check", "seed"),
        board=("clock_mhz",),
        group="rtl",
        sources=(SOURCE_MODEL,),
        summary="stitched RTL in Verilator == PyTorch integer form, cycles",
    ),
    Step(
        "synth",
        step_synth,
        reads=(names.RTL, names.RTL_GRAPH),
        writes=(names.SYNTH,),
        config=("synth",),
        board=("family", "resources"),
        group="rtl",
        sources=(SOURCE_MODEL,),
        summary="Yosys resource estimates, fits; the cost model beside them",
    ),
)


def last_of_group(group: str, steps: tuple[Step, ...] = STEPS, kind: str = SOURCE_MODEL) -> str:
    """The last step of ``--until`` group ``group`` for a source of kind ``kind``."""
    if group not in GROUPS:
        raise BiRealError(f"--until must be one of {', '.join(GROUPS)}, got '{group}'")
    rows = [s for s in steps if kind in s.sources]
    upto = [s for s in rows if GROUPS.index(s.group) <= GROUPS.index(group)]
    if not upto or upto[-1].group != group:
        raise BiRealError(
            f"--until {group}: a .onnx source starts after the integer form and has no "
            "integer form to verify the RTL against: use --until hw"
        )
    return upto[-1].name
