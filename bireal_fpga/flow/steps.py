"""The build steps, and :data:`STEPS`, the one table that lists them.

Each step is ``step_<verb>(state, cfg) -> state`` (see :mod:`bireal_fpga.flow.state`): it reads
the artefacts its row names from the build folder, writes those it names into its staging
folder, and returns the state with its report entries. Later issues add rows (Vivado,
driver); users can add, replace or drop rows and pass their table to ``bireal_fpga.build``.

========  =================================================================================
group     steps
========  =================================================================================
integer   model, integer, golden-check (a Brevitas QONNX source: import-model, source-check,
          golden-check)
qonnx     qonnx (or, for the ``qonnx.onnx`` of an earlier build, import)
hw        hw, specialize, folding, fit-estimate
rtl       fifo-sizing, rtl, rtlsim, synth, fit-yosys
bitstream shell, shell-sim, vivado, bitstream
========  =================================================================================
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga import names
from bireal_fpga.boards import Board
from bireal_fpga.errors import BiRealError
from bireal_fpga.flow.compare import Tally
from bireal_fpga.flow.config import BuildConfig
from bireal_fpga.flow.state import (
    SOURCE_IMPORTED,
    SOURCE_MODEL,
    SOURCE_ONNX,
    BuildState,
    Step,
    StepSkipped,
)

SIZING_FRAMES = 64  # most frames of the FIFO-sizing simulation (8, doubled until steady)
GROUPS = ("integer", "qonnx", "hw", "rtl", "bitstream")
SHELL_BATCHES = (1, 7)  # the shell check's batch sizes (then the rest of the check images)
SHELL_STALL = 0.2  # its DMAs' chance to withhold valid / ready each cycle


class CheckFailed(BiRealError):
    """A check step found that a stage differs from the PyTorch integer form."""


class DoesNotFit(BiRealError):
    """The design does not fit the board (by the cost model, or by Yosys)."""


FIT_KEYS = ("LUT", "FF", "BRAM36", "URAM", "DSP")


def resource_table(total: dict[str, float], board: Board) -> list[str]:
    """Lines of a resource table: used, available, share."""
    lines = [f"{'':8}{'used':>12}{'of':>10}{'share':>8}"]
    for k in FIT_KEYS:
        if k not in total:  # a resource the estimate does not price (the cost model's FF)
            continue
        have = board.resources.get(k, 0)
        used = float(total.get(k, 0))
        share = f"{100 * used / have:.0f} %" if have else ("-" if not used else "inf")
        lines.append(f"{k:8}{used:12,.1f}{have:10,}{share:>8}")
    return lines


def over_capacity(total: dict[str, float], board: Board) -> list[str]:
    return [k for k in FIT_KEYS if float(total.get(k, 0)) > board.resources.get(k, 0)]


def largest_consumer(per_layer: dict[str, dict[str, Any]], resource: str) -> tuple[str, float]:
    name = max(per_layer, key=lambda n: float(per_layer[n].get(resource, 0)))
    return name, float(per_layer[name].get(resource, 0))


def say(message: str) -> None:
    """A line for the user, on stderr with the build's log (stdout carries the summary)."""
    print(message, file=sys.stderr, flush=True)


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


def step_import_model(state: BuildState, cfg: BuildConfig) -> BuildState:
    """A Brevitas QONNX file (``export_qonnx``) read into the integer form with exact
    thresholds -> ``integer.npz``; the file itself -> ``source.onnx``; where its layers are
    and their scales -> ``source_map.json``."""
    import time

    from bireal_fpga.importer.bireal import read_qonnx

    start = time.perf_counter()
    net, smap, details = read_qonnx(cfg.source)
    net.save(state.output(names.INTEGER))
    shutil.copyfile(cfg.source, state.output(names.SOURCE))
    (state.output(names.SOURCE_MAP)).write_text(json.dumps(smap.to_dict(), indent=2) + "\n")
    say(
        f"[build] imported {smap.nodes} nodes: {len(net.blocks)} Bi-Real blocks, residual "
        f"{details['residual']}, {details['stem']} stem"
    )
    return state.with_report(
        trained=None,
        spec=net.spec,
        imported={
            "file": cfg.source,
            "nodes": smap.nodes,
            "layers": smap.layers,
            **details,
            "output_scale": smap.output_scale,
            "seconds": round(time.perf_counter() - start, 2),
        },
    )


def step_source_check(state: BuildState, cfg: BuildConfig) -> BuildState:
    """The imported file executed as given (ONNX reference evaluator, float64, QONNX's
    quantizers) == the integer form read from it, layer by layer, on ``n_check`` random
    images: the import changed nothing."""
    from bireal_fpga.flow.verify import stage_table

    run = stage_table(["source"])[0].open(state.folder, cfg.jobs)
    tally = check_on_images(state, cfg, run, "the imported file (executed as given)")
    return state.with_report(source_check=tally.to_dict())


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
    target = cfg.target_fps if cfg.target_fps is not None else str(state.board.target_fps)
    folded, est = fold(specialized, state.board, target, cost=cost, config_file=folding_file)
    folded.save(str(state.output(names.FOLDED)))
    config = folding_config(folded)
    state.output(names.FOLDING_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    estimates = {**est.to_dict(), "cost_model": cost.name}
    if cfg.cost_model == "rtl":  # the same design priced without the fit loop's correction
        raw = cost_model(cfg).estimate(folded, state.board)
        estimates["total_uncorrected"] = raw.total
        estimates["correction"] = correction
    return state.with_report(folding=config, estimates=estimates)


def step_fit_estimate(state: BuildState, cfg: BuildConfig) -> BuildState:
    """The cost model's verdict before any RTL: a design whose estimates exceed the chip stops
    here (the resource table and the largest consumer), before FIFO sizing, simulation and
    Yosys. One within the chip but above the cost model's place-and-route margin goes on, and
    Yosys decides."""
    est = state.report["estimates"]
    total = est["total"]
    over = over_capacity(total, state.board)
    table = resource_table(total, state.board)
    verdict = {"fits": not over, "over": over, "margin_ok": bool(est.get("fits"))}
    if over:
        worst = max(over, key=lambda k: float(total[k]) / max(state.board.resources[k], 1))
        name, amount = largest_consumer(est["per_layer"], worst)
        for line in table:
            say(f"[build]   {line}")
        raise DoesNotFit(
            f"the design does not fit {state.board.name} by the {est['cost_model']} cost "
            f"model: {worst} {float(total[worst]):,.0f} of {state.board.resources[worst]:,} "
            f"(largest consumer {name}: {amount:,.0f}); lower --target-fps or choose a "
            "smaller model"
        )
    return state.with_report(fit_estimate={**verdict, "table": table})


def check_on_images(state: BuildState, cfg: BuildConfig, run: Any, what: str) -> Tally:
    """``run`` (a verify stage opened on this build) on the ``n_check`` random check images
    against the PyTorch integer form of ``integer.npz``; a mismatch stops the build naming
    ``what`` and the first differing layer."""
    from bireal_fpga.flow.verify import check_stage
    from bireal_fpga.integer.forward import integer_layers
    from bireal_fpga.integer.params import IntegerNet

    net = IntegerNet.load(state.input(names.INTEGER))
    images = check_images(tuple(net.input_shape), cfg.n_check, cfg.seed)  # type: ignore[arg-type]

    def reference(x: np.ndarray) -> dict[str, np.ndarray]:
        return integer_layers(net, x)

    tally = Tally()
    check_stage(run, reference(images), images, tally, 0, reference)
    if tally.mismatches:
        raise CheckFailed(
            f"{what} differs from the PyTorch integer form on "
            f"{tally.mismatches} of {tally.n} images; first: {tally.first_mismatch}"
        )
    return tally


def step_cppsim(state: BuildState, cfg: BuildConfig) -> BuildState:
    """With ``cppsim``: every node of the folded graph (width converters added) in
    finn-hlslib C++ compiled with g++, on ``n_check`` random images == the PyTorch integer
    form, layer by layer (on a mismatch the first differing layer and node are named); which
    code ran per node. Without it, recorded as off."""
    import time

    from bireal_fpga.flow.verify import CppsimRun

    if not cfg.cppsim:
        return state.with_report(cppsim={"status": "off"})
    run = CppsimRun(
        state.input(names.FOLDED), state.scratch("cppsim"), cfg.jobs, state.input(names.HW)
    )
    start = time.perf_counter()
    tally = check_on_images(state, cfg, run, "cppsim (finn-hlslib C++)")
    seconds = time.perf_counter() - start
    return state.with_report(
        cppsim={
            "status": "exact",
            **tally.to_dict(),
            "images_per_s": tally.n / seconds,
            **run.graph.report_dict(),
        }
    )


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
    from bireal_fpga.flow.verify import RtlsimRun

    run = RtlsimRun(state.input(names.RTL), state.output(names.SIM), progress="rtlsim")
    run.sim.build()
    tally = check_on_images(state, cfg, run, "stitched RTL simulation")
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


def step_fit_yosys(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Yosys confirms or overturns the cost model's verdict; a design that Yosys says does not
    fit stops here, before the shell and Vivado (the fit loop, ``--target-fps max``, has
    folded again before this step runs)."""
    record = json.loads(state.input(names.SYNTH).read_text())
    model_fits = not over_capacity(state.report["estimates"]["total"], state.board)
    if record["resources"] is None:
        return state.with_report(fit_yosys={"checked": False, "cost_model_fits": model_fits})
    total = record["resources"]["total"]
    over = over_capacity(total, state.board)
    verdict = {
        "checked": True,
        "fits": not over,
        "over": over,
        "cost_model_fits": model_fits,
        "confirmed": model_fits == (not over),
    }
    if over:
        worst = over[0]
        name, amount = largest_consumer(record["resources"]["per_layer"], worst)
        for line in resource_table(total, state.board):
            say(f"[build]   {line}")
        raise DoesNotFit(
            f"Yosys: the design does not fit {state.board.name}: {worst} "
            f"{float(total[worst]):,.0f} of {state.board.resources[worst]:,} (largest consumer "
            f"{name}: {amount:,.0f}); stopping before Vivado: lower --target-fps"
        )
    return state.with_report(fit_yosys=verdict)


# ---- bitstream --------------------------------------------------------------------------------


def build_id(state: BuildState) -> int:
    """The build's id (the shell's ``BUILD_ID`` register): the first 32 bits of the hash of
    the RTL folder, so a bitstream names the design it holds."""
    from bireal_fpga.flow.records import artefact_digest

    return int(str(artefact_digest(state.input(names.RTL)))[:8], 16)


def step_shell(state: BuildState, cfg: BuildConfig) -> BuildState:
    """The Verilog-2001 shell around the stitched top (AXI DMA streams with TLAST, AXI4-Lite
    control, the weight stream) -> ``shell/`` (``bireal_shell.v``, ``shell.json``)."""
    from bireal_fpga.integer.params import IntegerNet
    from bireal_fpga.rtl.stitch import load_design
    from bireal_fpga.shell.generate import write_shell

    design = load_design(state.input(names.RTL))
    c, h, w = IntegerNet.load(state.input(names.INTEGER)).input_shape
    p = write_shell(
        design,
        state.output(names.SHELL),
        build_id=build_id(state),
        clock_mhz=state.board.clock_mhz,
        image_shape=(h, w, c),
        top1=cfg.top1,
    )
    return state.with_report(
        shell={
            "build_id": f"0x{p.build_id:08x}",
            "image_dma_bits": p.in_dma_bits,
            "output_dma_bits": p.out_dma_bits,
            "weight_beats": p.wgt_total,
        }
    )


def step_shell_sim(state: BuildState, cfg: BuildConfig) -> BuildState:
    """The shell + accelerator in Verilator, driven as the board drives them (register writes,
    DMA byte buffers, the weights first, random back-pressure on every stream), on batches of
    the check images == the PyTorch integer form, TLAST on each batch's last beat, the
    registers read back -> ``shell_sim/`` (the compiled model, which a driver's simulation
    backend runs)."""
    from bireal_fpga.arch import shell as arch
    from bireal_fpga.integer.forward import integer_layers
    from bireal_fpga.integer.params import IntegerNet
    from bireal_fpga.rtlsim.shell_sim import ShellSim, write_sim_folder
    from bireal_fpga.rtlsim.stitched import mismatched_images

    net = IntegerNet.load(state.input(names.INTEGER))
    images = check_images(tuple(net.input_shape), cfg.n_check, cfg.seed)  # type: ignore[arg-type]
    ref = integer_layers(net, images)[names.HEAD]
    sim = ShellSim(state.input(names.RTL), state.input(names.SHELL), state.scratch("build"))
    exe = sim.build()
    sizes = [b for b in SHELL_BATCHES if b <= len(images)]
    rest = len(images) - sum(sizes)
    sizes += [rest] if rest > 0 else []
    bounds = np.cumsum([0, *sizes])
    edges = zip(bounds[:-1], bounds[1:], strict=True)
    parts = [images[a:b].transpose(0, 2, 3, 1) for a, b in edges]
    want_id = int(sim.manifest["build_id"], 16)
    # one run from reset: the weights, then the batches one after the other
    runs = sim.run_batches(parts, state.scratch("batches"), stall=SHELL_STALL, seed=cfg.seed)
    batches: list[dict[str, Any]] = []
    mismatches, first = 0, None
    for k, (n, run, start) in enumerate(zip(sizes, runs, bounds, strict=False)):
        regs = run.registers
        status = regs["STATUS"]
        problems = []
        if status & arch.STATUS_BUSY or not status & arch.STATUS_DONE:
            problems.append(f"STATUS 0x{status:x} after the batch (want DONE, not BUSY)")
        if not status & arch.STATUS_WEIGHTS_LOADED:
            problems.append("STATUS says the weights are not loaded")
        if regs["IMAGES_DONE"] != n or regs["BATCH"] != n:
            problems.append(f"IMAGES_DONE {regs['IMAGES_DONE']}, BATCH {regs['BATCH']} != {n}")
        if regs["BUILD_ID"] != want_id or regs["MAGIC"] != arch.MAGIC:
            problems.append(f"BUILD_ID 0x{regs['BUILD_ID']:x} / MAGIC 0x{regs['MAGIC']:x}")
        if problems:
            raise CheckFailed(f"shell simulation, batch {k} of {n}: " + "; ".join(problems))
        bad = mismatched_images(run.outputs, ref[start : start + n])
        if bad and first is None:
            first = f"image {int(start) + bad[0]} (batch {k} of {n} images)"
        mismatches += len(bad)
        batches.append({"images": n, "cycles": run.cycles, "bytes_out": run.received})
    if mismatches:
        raise CheckFailed(
            f"the shell simulation differs from the PyTorch integer form on {mismatches} of "
            f"{len(images)} images; first: {first}"
        )
    write_sim_folder(state.output(names.SHELL_SIM), exe, sim, state.board.name)
    return state.with_report(
        shell={
            "check": {
                "n": len(images),
                "mismatches": 0,
                "first_mismatch": None,
                "batches": batches,
                "stall": SHELL_STALL,
            }
        }
    )


def step_vivado_project(state: BuildState, cfg: BuildConfig) -> BuildState:
    """The Vivado project as generated TCL with its sources (block design: PS, AXI DMAs, the
    shell; synthesis, implementation, reports, bitstream + hardware handoff); no tool runs
    -> ``vivado/``."""
    from bireal_fpga.vivado.project import prepare_project

    project = prepare_project(
        state.output(names.VIVADO),
        rtl_dir=state.input(names.RTL),
        shell_dir=state.input(names.SHELL),
        board=state.board,
        clock_mhz=state.board.clock_mhz,
    )
    # the command as it will read once the project is in place (it is prepared in staging)
    command = project.command_in(state.folder / names.VIVADO_WORK)
    staged, final = (
        str(state.output(names.VIVADO).resolve()),
        str(state.input(names.VIVADO).resolve()),
    )
    command = command.replace(staged, final)
    return state.with_report(vivado={"project": str(state.input(names.VIVADO)), "command": command})


def step_bitstream(state: BuildState, cfg: BuildConfig) -> BuildState:
    """Vivado runs the project (when it is installed): timing and utilization checked, the
    bitstream and its hardware handoff -> ``bitstream/`` (with ``manifest.json``), then
    published to ``<bitstream_dir>/<BOARD>/``. Without Vivado the step is skipped, and the
    command that finishes the project is printed."""
    from bireal_fpga.flow.records import file_digest
    from bireal_fpga.tools import find_vivado
    from bireal_fpga.vivado.bitstreams import collect_bitstream, publish_bitstream
    from bireal_fpga.vivado.project import load_project
    from bireal_fpga.vivado.run import run_vivado

    project = load_project(state.input(names.VIVADO))
    if find_vivado() is None:
        say(f"[build] the Vivado project is ready: {state.input(names.VIVADO)}")
        say(f"[build] to finish it where Vivado is installed: {project.command}")
        reason = "Vivado not found"
        raise StepSkipped(reason, report={"vivado": {"status": "skipped", "reason": reason}})
    result = run_vivado(
        state.input(names.VIVADO),
        work_dir=state.folder / names.VIVADO_WORK,
        timeout_s=cfg.vivado_timeout_s,
        log=lambda line: say(f"[vivado] {line}"),
        jobs=cfg.jobs,
    )
    out = state.output(names.BITSTREAM)
    model = state.input(names.MODEL)  # an imported build's model is its source.onnx
    manifest = collect_bitstream(
        result,
        out,
        board=state.board,
        model_sha256=file_digest(model if model.is_file() else state.input(names.SOURCE)),
        shell_dir=state.input(names.SHELL),
    )
    published = None
    if cfg.bitstream_dir:
        published = publish_bitstream(out, Path(cfg.bitstream_dir), state.board.name)
    return state.with_report(
        vivado={
            "status": "done",
            "version": manifest.get("vivado_version"),
            "utilization": manifest.get("resources"),
            "timing": manifest.get("timing"),
            "bitstream": str(state.input(names.BITSTREAM)),
            "published": str(published) if published else None,
        }
    )


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
        "import-model",
        step_import_model,
        writes=(names.INTEGER, names.SOURCE, names.SOURCE_MAP),
        config=("source",),
        group="integer",
        sources=(SOURCE_IMPORTED,),
        summary="a Brevitas QONNX file read into the integer form (exact thresholds)",
    ),
    Step(
        "source-check",
        step_source_check,
        reads=(names.INTEGER, names.SOURCE, names.SOURCE_MAP),
        config=("n_check", "seed"),
        group="integer",
        sources=(SOURCE_IMPORTED,),
        summary="the imported file, executed as given (float64) == its integer form",
    ),
    Step(
        "golden-check",
        step_golden_check,
        reads=(names.INTEGER,),
        config=("n_check", "seed"),
        group="integer",
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
        summary="numpy golden model == PyTorch integer form",
    ),
    Step(
        "qonnx",
        step_export_qonnx,
        reads=(names.INTEGER,),
        writes=(names.QONNX,),
        config=("top1",),
        group="qonnx",
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
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
        "fit-estimate",
        step_fit_estimate,
        reads=(names.FOLDED,),
        board=("resources",),
        group="hw",
        summary="the cost model's verdict: a design beyond the chip stops before RTL",
    ),
    Step(
        "cppsim",
        step_cppsim,
        reads=(names.FOLDED, names.HW, names.INTEGER),
        config=("cppsim", "n_check", "seed"),
        group="hw",
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
        summary="with --cppsim: finn-hlslib C++ (g++) of every node == PyTorch integer form",
    ),
    Step(
        "fifo-sizing",
        step_fifo_sizing,
        reads=(names.FOLDED,),
        writes=(names.RTL_GRAPH,),
        config=("n_check", "seed"),
        group="rtl",
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
        summary="width converters, FIFOs sized by simulation",
    ),
    Step(
        "rtl",
        step_generate_rtl,
        reads=(names.RTL_GRAPH,),
        writes=(names.RTL,),
        group="rtl",
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
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
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
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
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
        summary="Yosys resource estimates, fits; the cost model beside them",
    ),
    Step(
        "fit-yosys",
        step_fit_yosys,
        reads=(names.SYNTH, names.FOLDED),
        board=("resources",),
        group="rtl",
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
        summary="Yosys confirms or overturns the cost model; no fit stops before Vivado",
    ),
    Step(
        "shell",
        step_shell,
        reads=(names.RTL, names.INTEGER),
        writes=(names.SHELL,),
        board=("clock_mhz",),
        group="bitstream",
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
        summary="Verilog-2001 shell: AXI DMA streams (TLAST), AXI-Lite control, weights",
    ),
    Step(
        "shell-sim",
        step_shell_sim,
        reads=(names.SHELL, names.RTL, names.INTEGER),
        writes=(names.SHELL_SIM,),
        config=("n_check", "seed"),
        group="bitstream",
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
        summary="shell + accelerator driven as the DMAs do == PyTorch integer form",
    ),
    Step(
        "vivado",
        step_vivado_project,
        reads=(names.RTL, names.SHELL),
        writes=(names.VIVADO,),
        board=("part", "board_part", "ps", "axi_port_bits", "clock_mhz", "ps_config"),
        group="bitstream",
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
        summary="the Vivado project as generated TCL (no tool runs)",
    ),
    Step(
        "bitstream",
        step_bitstream,
        reads=(names.VIVADO, names.MODEL, names.SOURCE, names.SHELL),
        writes=(names.BITSTREAM,),
        config=("bitstream_dir", "vivado_timeout_s"),
        board=("name",),
        group="bitstream",
        sources=(SOURCE_MODEL, SOURCE_IMPORTED),
        summary="Vivado: bitstream + hwh, timing checked, to bitstreams/<BOARD>/ (skipped "
        "without Vivado)",
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
