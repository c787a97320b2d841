"""``bireal-fpga build``: an explicit list of build steps over one frozen config.

Steps (each writes its artefact into the build folder and a line into ``report.json``):

``model``        the float model (checkpoint, or an untrained spec) -> ``model.pt``
                 (a ``.onnx`` source, the ``qonnx.onnx`` of an earlier build, starts at ``hw``)
``integer``      its integer inference form -> ``integer.npz``
``golden-check`` numpy golden model == PyTorch integer form on random images
``qonnx``        QONNX export (FINN streamlined dialect) -> ``qonnx.onnx``
``hw``           FINN HW layers -> ``hw.onnx`` (FINN python execution runs on this graph)
``specialize``   one dataflow partition, layers specialized for the board's part
``folding``      PE/SIMD for the target FPS -> ``folded.onnx``, ``folding_config.json``,
                 estimates (cycles, LUT, BRAM36, URAM, DSP, FPS)

Later issues add ``rtl``, ``rtlsim``, ``bitstream``, ``driver``. The build is written into a
temporary folder and renamed into place at the end, so an interrupted or failed build never
leaves a folder that looks valid.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bireal_fpga import __version__
from bireal_fpga.boards import Board, load_board
from bireal_fpga.errors import BiRealError

UNTIL = ("integer", "qonnx", "hw", "rtl")
LATER_STAGES = ["bitstream", "driver"]
SIZING_FRAMES = 64  # most frames of the FIFO-sizing simulation (8, doubled until steady)


@dataclass(frozen=True)
class BuildConfig:
    """What to build.

    Attributes:
        source: checkpoint (``.pt``) or spec (preset / file / inline JSON).
        board: board preset name (``hw/boards``).
        out_dir: the build folder.
        until: last stage group: ``integer``, ``qonnx``, ``hw`` or ``rtl``.
        target_fps: ``"max"`` or a number.
        folding_config: a FINN folding-config JSON that overrides the automatic folding.
        top1: the accelerator outputs the best class index (LabelSelect), not the scores.
        n_check: random images of the golden-model check and of the stitched simulation.
        seed: seed of an untrained model and of the check images.
        synth: Yosys resource estimates of the RTL (the ``synth`` step).
        jobs: parallel Yosys processes.
    """

    source: str
    board: str
    out_dir: str
    until: str = "hw"
    target_fps: str = "max"
    folding_config: str | None = None
    top1: bool = False
    n_check: int = 32
    seed: int = 0
    synth: bool = True
    jobs: int = 2


class BuildState:
    def __init__(self, board: Board) -> None:
        self.board = board
        self.model: Any = None
        self.integer: Any = None
        self.qonnx: Any = None
        self.hw: Any = None
        self.specialized: Any = None
        self.folded: Any = None
        self.rtl_graph: Any = None
        self.design: Any = None
        self.report: dict[str, Any] = {"stages": []}


def step_load_model(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.models.bireal import BiRealNet
    from bireal_fpga.models.calibration import calibrated_random_model
    from bireal_fpga.spec import load_spec
    from bireal_fpga.train.checkpoint import load_checkpoint, save_checkpoint

    if cfg.source.endswith(".pt"):
        st.model = load_checkpoint(cfg.source).build_model()
        st.report["trained"] = True
    else:  # an untrained spec: random weights, calibrated BN (see models/calibration.py)
        torch.manual_seed(cfg.seed)
        st.model = calibrated_random_model(BiRealNet(load_spec(cfg.source)), seed=cfg.seed)
        st.report["trained"] = False
    st.report["spec"] = st.model.spec.to_dict()
    save_checkpoint(Path(cfg.out_dir) / "model.pt", st.model)


def step_integer_form(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.integer.derive import integer_form

    st.integer = integer_form(st.model)
    st.integer.save(Path(cfg.out_dir) / "integer.npz")


def step_golden_check(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.golden.model import GoldenModel
    from bireal_fpga.integer.forward import run_integer

    c, h, w = st.integer.input_shape
    g = torch.Generator().manual_seed(cfg.seed)
    images = torch.randint(0, 256, (cfg.n_check, c, h, w), generator=g, dtype=torch.uint8)
    ref: dict[str, torch.Tensor] = {}
    run_integer(st.integer, images, trace=ref)
    got: dict[str, np.ndarray] = {}
    GoldenModel(Path(cfg.out_dir) / "integer.npz").run(images.numpy(), trace=got)
    for name, value in ref.items():
        if not np.array_equal(value.numpy(), got[name]):
            raise BiRealError(f"golden model differs from the PyTorch integer form at '{name}'")
    st.report["golden_check"] = {"n": cfg.n_check, "mismatches": 0}


def step_export_qonnx(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.export.qonnx_export import export_qonnx

    st.qonnx = export_qonnx(st.integer, top1=cfg.top1)
    st.qonnx.save(str(Path(cfg.out_dir) / "qonnx.onnx"))


def step_load_qonnx(cfg: BuildConfig, st: BuildState) -> None:
    """A QONNX graph exported by bireal-fpga (``qonnx.onnx`` of an earlier build)."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

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
    st.qonnx = ModelWrapper(proto)
    st.qonnx.save(str(Path(cfg.out_dir) / "qonnx.onnx"))


def step_hw_layers(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.hwlayers.convert import to_hw_layers

    st.hw = to_hw_layers(st.qonnx)
    st.hw.save(str(Path(cfg.out_dir) / "hw.onnx"))
    st.report["hw_layers"] = sorted({n.op_type for n in st.hw.graph.node})


def step_specialize(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.hwlayers.convert import partition_and_specialize

    st.specialized = partition_and_specialize(st.hw, st.board.part, Path(cfg.out_dir) / "finn_tmp")
    shutil.rmtree(Path(cfg.out_dir) / "finn_tmp", ignore_errors=True)
    # the partition holds the whole graph; the boundary layout (NHWC uint8 in, NHWC scores
    # out) is the driver's job
    st.report["outside_partition"] = []
    st.report["specialized_layers"] = sorted({n.op_type for n in st.specialized.graph.node})


def step_folding(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.hwlayers.folding import fold, folding_config

    folding_file = Path(cfg.folding_config) if cfg.folding_config else None
    # an RTL build folds by the cost of this project's RTL, not by FINN's HLS cost models
    cost = "rtl" if cfg.until == "rtl" else "finn"
    folded, est = fold(
        st.specialized, st.board, cfg.target_fps, config_file=folding_file, cost=cost
    )
    out = Path(cfg.out_dir)
    folded.save(str(out / "folded.onnx"))
    st.folded = folded
    config = folding_config(folded)
    (out / "folding_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    st.report["folding"] = config
    st.report["estimates"] = {**est.to_dict(), "cost_model": cost}


def _check_images(cfg: BuildConfig, st: BuildState, n: int) -> np.ndarray:
    c, h, w = st.integer.input_shape
    g = np.random.default_rng(cfg.seed + 1)
    return g.integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def step_rtl_graph(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.rtl.prepare import prepare_rtl_graph

    st.rtl_graph = prepare_rtl_graph(st.folded)


def step_fifo_sizing(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.rtlsim.fifo_sizing import size_fifos

    workdir = Path(cfg.out_dir) / "fifo_sizing"
    images = _check_images(cfg, st, SIZING_FRAMES)
    st.rtl_graph, record = size_fifos(st.rtl_graph, workdir, images, progress=True)
    shutil.rmtree(workdir, ignore_errors=True)
    st.report["fifo_sizing"] = record


def step_generate_rtl(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.rtl.stitch import stitch

    out = Path(cfg.out_dir)
    st.rtl_graph.save(str(out / "rtl.onnx"))
    st.design = stitch(st.rtl_graph, out / "rtl", progress=True)


def step_rtlsim(cfg: BuildConfig, st: BuildState) -> None:
    """The stitched design on ``n_check`` random images == the PyTorch integer form."""
    from bireal_fpga.integer.forward import run_integer
    from bireal_fpga.rtlsim.fifo_sizing import grow_stalled
    from bireal_fpga.rtlsim.stitched import compare_outputs

    out = Path(cfg.out_dir)
    images = _check_images(cfg, st, cfg.n_check)
    ref = run_integer(st.integer, torch.from_numpy(images)).numpy()
    run = grow_stalled(st.rtl_graph, st.design, images, out / "sim")
    if run.growth:  # FIFOs doubled after stalls: keep the grown graph
        st.rtl_graph, st.design = run.model, run.design
        st.rtl_graph.save(str(out / "rtl.onnx"))
        st.report["fifo_growth"] = run.growth
    outputs, timing = run.outputs, run.timing
    compare_outputs(outputs, ref, "stitched RTL simulation")
    clock = st.board.clock_mhz
    est_fps = clock * 1e6 / st.design.cycles
    meas = timing.fps(clock)
    st.report["rtl"] = {
        "clock_mhz": clock,
        "top": st.design.top,
        "bottleneck": st.design.bottleneck,
        "fps": {"estimated": est_fps, "measured": meas},
        "interval_cycles": {"estimated": st.design.cycles, "measured": timing.interval},
        "latency_cycles": timing.latency,
        "rtlsim": {"n": len(images), "mismatches": 0, **timing.to_dict()},
        # run-time weights (UltraRAM): one load over the 64-bit weight bus before inference
        "weights": {
            "layers": [n for n, _, _ in st.design.weight_layers],
            "beats": st.design.weight_beats,
            "bytes": 8 * st.design.weight_beats,
            "load_cycles": run.result.load_cycles,
        },
    }
    del st.report["rtl"]["rtlsim"]["frame_end_cycles"]


def step_synth(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.synth.report import synth_design

    if not cfg.synth:
        st.report.setdefault("rtl", {})["resources"] = None
        st.report["rtl"]["fits"] = None
        return
    resources, fits = synth_design(st.design, st.board, jobs=cfg.jobs)
    st.report.setdefault("rtl", {})["resources"] = resources
    st.report["rtl"]["fits"] = fits


STEPS: list[tuple[str, str, Callable[[BuildConfig, BuildState], None]]] = [
    ("model", "integer", step_load_model),
    ("integer", "integer", step_integer_form),
    ("golden-check", "integer", step_golden_check),
    ("qonnx", "qonnx", step_export_qonnx),
    ("hw", "hw", step_hw_layers),
    ("specialize", "hw", step_specialize),
    ("folding", "hw", step_folding),
    ("rtl-graph", "rtl", step_rtl_graph),
    ("fifo-sizing", "rtl", step_fifo_sizing),
    ("rtl", "rtl", step_generate_rtl),
    ("rtlsim", "rtl", step_rtlsim),
    ("synth", "rtl", step_synth),
]


def _check_target_fps(target_fps: str) -> None:
    if target_fps == "max":
        return
    try:
        ok = float(target_fps) > 0
    except ValueError:
        ok = False
    if not ok:
        raise BiRealError(f"--target-fps must be 'max' or a positive number, got '{target_fps}'")


def _check_out_dir(out: Path, source: str) -> None:
    report_path = out / "report.json"
    if out.exists() and not out.is_dir():
        raise BiRealError(f"--out '{out}' exists and is not a folder")
    if report_path.exists():
        try:
            old = json.loads(report_path.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("version") != __version__ or old.get("source") != source:
            raise BiRealError(
                f"build folder '{out}' holds a build of '{old.get('source')}' by bireal-fpga "
                f"{old.get('version')}: refusing to mix; choose another --out"
            )
    elif out.is_dir() and any(out.iterdir()):
        raise BiRealError(
            f"--out '{out}' is a non-empty folder that holds no build: refusing to "
            "overwrite it; choose another --out"
        )


def run_build(
    source: str,
    *,
    board: str,
    out_dir: str | Path,
    until: str | None = None,
    target_fps: str = "max",
    folding_config: str | None = None,
    top1: bool = False,
    n_check: int = 32,
    synth: bool = True,
    jobs: int = 2,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    b = load_board(board)  # validates the board before anything is written
    if n_check < 1:
        raise BiRealError(f"--n must be >= 1, got {n_check}")
    if until is None:  # as far as the source allows
        until = "hw" if source.endswith(".onnx") else "rtl"
    if until not in UNTIL:
        raise BiRealError(f"--until must be one of {', '.join(UNTIL)}, got '{until}'")
    _check_target_fps(target_fps)
    if folding_config is not None and not Path(folding_config).is_file():
        raise BiRealError(f"folding config '{folding_config}' does not exist")
    last_group = UNTIL.index(until)
    if source.endswith(".onnx"):  # continue from an exported QONNX graph
        if until not in ("hw", "rtl"):
            raise BiRealError("a .onnx source starts after the integer form: use --until hw or rtl")
        if until == "rtl":
            raise BiRealError(
                "a .onnx source has no integer form to verify the RTL against: build from the "
                "checkpoint or spec for --until rtl, or use --until hw"
            )
        if not Path(source).is_file():
            raise BiRealError(f"ONNX file '{source}' does not exist")
        steps = [("qonnx", step_load_qonnx)] + [
            (name, step) for name, group, step in STEPS if group == "hw"
        ]
    else:
        steps = [(name, step) for name, group, step in STEPS if UNTIL.index(group) <= last_group]
    out = Path(out_dir)
    _check_out_dir(out, source)
    cfg = BuildConfig(
        source=source,
        board=b.name,
        out_dir=str(out),
        until=until,
        target_fps=target_fps,
        folding_config=folding_config,
        top1=top1,
        n_check=n_check,
        synth=synth,
        jobs=jobs,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    st = BuildState(b)
    st.report.update(
        {"version": __version__, "source": source, "board": asdict(b), "config": asdict(cfg)}
    )
    work_cfg = BuildConfig(**{**asdict(cfg), "out_dir": str(tmp)})
    try:
        for name, step in steps:
            t0 = time.perf_counter()
            log(f"[build] {name} ...")
            step(work_cfg, st)
            st.report["stages"].append({"name": name, "seconds": time.perf_counter() - t0})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    done = [name for name, _ in steps]
    st.report["complete"] = False
    st.report["missing_stages"] = [n for n, _, _ in STEPS if n not in done] + LATER_STAGES
    (tmp / "report.json").write_text(json.dumps(st.report, indent=2))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    if "estimates" in st.report:
        e = st.report["estimates"]
        t = e["total"]
        log(
            f"[build] estimated {e['fps']:.0f} FPS at {e['clock_mhz']:g} MHz (bottleneck "
            f"{e['bottleneck']}); LUT {t['LUT']:.0f}, BRAM36 {t['BRAM36']:.1f}, URAM "
            f"{t['URAM']:.0f}, DSP {t['DSP']:.0f}; fits {b.name}: {e['fits']}"
        )
    if "rtl" in st.report:
        r = st.report["rtl"]
        meas = r["fps"]["measured"]
        log(
            f"[build] RTL: stitched simulation of {r['rtlsim']['n']} images == PyTorch integer "
            f"form; {r['interval_cycles']['measured']} cycles/frame measured "
            f"({r['interval_cycles']['estimated']} estimated) -> "
            + (f"{meas:.0f}" if meas else "n/a")
            + f" FPS at {r['clock_mhz']:g} MHz (bottleneck {r['bottleneck']})"
        )
        if r.get("resources"):
            t = r["resources"]["total"]
            log(
                f"[build] Yosys: LUT {t['LUT']:.0f}, FF {t['FF']:.0f}, BRAM36 {t['BRAM36']:g}, "
                f"URAM {t['URAM']:.0f}, DSP {t['DSP']:.0f}; fits {b.name}: {r['fits']}"
            )
    log(
        f"[build] stopped after stage '{done[-1]}'; not implemented yet: "
        f"{', '.join(LATER_STAGES)}; report: {out / 'report.json'}"
    )
    return st.report
