"""cppsim of Bi-Real-18-CIFAR: compile time (cold and cached), images/s, exactness.

Builds (or reuses) ``bireal18-cifar`` for a board to the folded graph (``--until hw``; with
``--rtl``, to the RTL without Yosys, so that rtlsim is measured too), then:

1. compiles the cppsim graph twice: into an empty cache (the run's tool caches are a fresh
   temporary ``XDG_CACHE_HOME``: every distinct node compiled, ``--jobs`` at a time) and again
   (every executable from the cache);
2. runs ``--real`` images of a data path's test split and ``--random`` random images through
   each stage (``golden``, ``python``, ``cppsim``, and ``rtlsim`` where the build has RTL),
   each compared with the PyTorch integer form layer by layer (``verify``'s ``check_stage``):
   mismatches (0 expected), wall time and images/s per stage, measured in the same run.

    .venv/bin/python benchmarks/cppsim.py --data ../shared/data/cifar10_jpeg.npz \\
        [--board ZCU104] [--target-fps max] [--out-dir /tmp/bench_cppsim] \\
        [--real 100 --random 100] [--rtl]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "cppsim_bireal18_cifar.json"


def build(board: str, out: Path, rtl: bool, target_fps: str) -> float:
    from bireal_fpga.flow import BuildConfig
    from bireal_fpga.flow import build as run_build
    from bireal_fpga.flow.steps import last_of_group

    t0 = time.perf_counter()
    # to the HW graph; or to the generated RTL (rtlsim compiles and runs it below)
    to_step = "rtl" if rtl else last_of_group("hw")
    cfg = BuildConfig(
        "bireal18-cifar", board, str(out), target_fps=target_fps, synth=False, to_step=to_step
    )
    run_build(cfg, log=lambda m: print(m, file=sys.stderr))
    return time.perf_counter() - t0


def compile_times(folded: Path, work: Path, jobs: int) -> dict:
    """The cppsim graph compiled twice: the first time into the (empty) cache, then from it."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.cppsim.graph import CppsimGraph

    out: dict = {}
    for label in ("cold", "cached"):
        t0 = time.perf_counter()
        g = CppsimGraph(ModelWrapper(str(folded)), work / label, jobs=jobs)
        stats = g.compile_stats
        out[label] = {
            "seconds": round(time.perf_counter() - t0, 1),
            "nodes": stats.nodes,
            "distinct_sources": stats.distinct,
            "compiled": stats.compiled,
        }
        print(f"compile {label}: {out[label]}", file=sys.stderr)
    out["report"] = g.report_dict()["nodes"]
    return out


def run_stages(folder: Path, sets: dict[str, np.ndarray], stages: list[str], jobs: int) -> dict:
    from bireal_fpga.flow.compare import Tally
    from bireal_fpga.flow.verify import Reference, check_stage, stage_table

    reference = Reference(folder / "model.pt")
    out: dict = {}
    for stage in stage_table(stages):
        run = stage.open(folder, jobs)
        out[stage.name] = {}
        for label, images in sets.items():
            tally = Tally()
            t0 = time.perf_counter()
            for start in range(0, len(images), 25):
                block = images[start : start + 25]
                ref = reference.trace(block)
                check_stage(run, ref, block, tally, start, reference.trace)
            seconds = time.perf_counter() - t0
            r = {**tally.to_dict(), "seconds": round(seconds, 1)}
            r["images_per_s"] = round(len(images) / seconds, 3)
            out[stage.name][label] = r
            print(f"{stage.name} {label}: {r}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="data path (its test split: real images)")
    ap.add_argument("--board", default="ZCU104")
    ap.add_argument("--out-dir", default="/tmp/bench_cppsim")
    ap.add_argument("--real", type=int, default=100)
    ap.add_argument("--random", type=int, default=100)
    ap.add_argument(
        "--target-fps", default="max", help="the folding (default: the fastest that fits)"
    )
    ap.add_argument("--rtl", action="store_true", help="build the RTL too and measure rtlsim")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()

    # every tool cache of this run in a fresh folder: the first compile is cold
    cache = tempfile.TemporaryDirectory(prefix="bench-cppsim-cache-")
    os.environ["XDG_CACHE_HOME"] = cache.name
    from bireal_fpga.flow.verify import open_images, random_images

    folder = Path(args.out_dir) / f"bireal18-cifar_{args.board}"
    build_s = build(args.board, folder, args.rtl, args.target_fps)
    spec = json.loads((folder / "report.json").read_text())["spec"]
    shape = (int(spec["input_channels"]), int(spec["input_size"]), int(spec["input_size"]))
    real = open_images(shape, args.real, args.data, 0)
    sets = {
        "real": real.batch(0, real.n),
        "random": random_images(shape, args.random, 1).batch(0, args.random),
    }
    estimates = json.loads((folder / "report.json").read_text()).get("estimates", {})
    with tempfile.TemporaryDirectory(prefix="bench-cppsim-") as work:
        compiled = compile_times(folder / "folded.onnx", Path(work), args.jobs)
    stages = ["golden", "python", "cppsim"] + (["rtlsim"] if (folder / "rtl").is_dir() else [])
    results = run_stages(folder, sets, stages, args.jobs)
    record = {
        "benchmark": "cppsim",
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "model": "bireal18-cifar (random weights, calibrated BN; seed 0)",
        "board": args.board,
        "target_fps": args.target_fps,
        "folding": {k: estimates.get(k) for k in ("fps", "bottleneck", "clock_mhz")},
        "build_seconds": round(build_s, 1),
        "images": {"real": f"{real.n} of {args.data} (test split)", "random": args.random},
        "compile": {k: v for k, v in compiled.items() if k != "report"},
        "stages": results,
        "exact": all(r["mismatches"] == 0 for s in results.values() for r in s.values()),
        "nodes": compiled["report"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("compile", "stages", "exact")}, indent=2))


if __name__ == "__main__":
    main()
