"""``bireal-fpga build``: an explicit list of build steps over one frozen config.

Implemented today: the model (checkpoint or untrained spec), its integer inference form, and a
check of the numpy golden model against the PyTorch integer form. The compiler stages (QONNX
export, FINN streamlining, HW layers, RTL, bitstream) come with later issues; until then the
build stops after the last existing stage, says so, and records it in ``report.json``.
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
from bireal_fpga.boards import load_board
from bireal_fpga.errors import BiRealError

PLANNED_STAGES = ["qonnx", "streamline", "hw", "folding", "rtl", "rtlsim", "bitstream", "driver"]


@dataclass(frozen=True)
class BuildConfig:
    """What to build. ``source``: checkpoint (``.pt``) or spec (preset / file / inline)."""

    source: str
    board: str
    out_dir: str
    target_fps: str = "max"
    n_check: int = 32
    seed: int = 0


class BuildState:
    def __init__(self) -> None:
        self.model: Any = None
        self.integer: Any = None
        self.report: dict[str, Any] = {"stages": []}


def step_load_model(cfg: BuildConfig, st: BuildState) -> None:
    from bireal_fpga.models.bireal import BiRealNet
    from bireal_fpga.spec import load_spec
    from bireal_fpga.train.checkpoint import load_checkpoint

    if cfg.source.endswith(".pt"):
        st.model = load_checkpoint(cfg.source).build_model()
        st.report["trained"] = True
    else:
        torch.manual_seed(cfg.seed)
        st.model = BiRealNet(load_spec(cfg.source)).eval()
        st.report["trained"] = False
    st.report["spec"] = st.model.spec.to_dict()


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


STEPS: list[tuple[str, Callable[[BuildConfig, BuildState], None]]] = [
    ("model", step_load_model),
    ("integer", step_integer_form),
    ("golden-check", step_golden_check),
]


def run_build(
    source: str,
    *,
    board: str,
    out_dir: str | Path,
    target_fps: str = "max",
    n_check: int = 32,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    b = load_board(board)  # validates the board before anything is written
    if n_check < 1:
        raise BiRealError(f"--n must be >= 1, got {n_check}")
    if target_fps != "max":
        try:
            if float(target_fps) <= 0:
                raise ValueError
        except ValueError:
            raise BiRealError(
                f"--target-fps must be 'max' or a positive number, got '{target_fps}'"
            ) from None
    out = Path(out_dir)
    report_path = out / "report.json"
    if out.exists() and not out.is_dir():
        raise BiRealError(f"--out '{out}' exists and is not a folder")
    if report_path.exists():
        old = json.loads(report_path.read_text())
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
    cfg = BuildConfig(
        source=source, board=b.name, out_dir=str(out), target_fps=target_fps, n_check=n_check
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    st = BuildState()
    st.report.update(
        {"version": __version__, "source": source, "board": asdict(b), "config": asdict(cfg)}
    )
    work_cfg = BuildConfig(**{**asdict(cfg), "out_dir": str(tmp)})
    try:
        for name, step in STEPS:
            t0 = time.perf_counter()
            log(f"[build] {name} ...")
            step(work_cfg, st)
            st.report["stages"].append({"name": name, "seconds": time.perf_counter() - t0})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    st.report["complete"] = False
    st.report["missing_stages"] = PLANNED_STAGES
    (tmp / "report.json").write_text(json.dumps(st.report, indent=2))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log(
        f"[build] stopped after stage '{STEPS[-1][0]}': the stages {', '.join(PLANNED_STAGES)} "
        "are not implemented yet (compiler and hardware backend issues); report: "
        f"{report_path}"
    )
    return st.report
