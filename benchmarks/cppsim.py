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


BLOCK = 25  # images per recorded block

# the code a recorded block depends on: cppsim and its C++, the stages and the reference
KEY_CODE = (
    "cppsim",
    "hw/cppsim",
    "hw/templates/cppsim",
    "execution",
    "integer",
    "golden",
    "flow/verify.py",
    "flow/compare.py",
)


def run_key(folder: Path, sets: dict[str, np.ndarray]) -> str:
    """What a block's result depends on: that code, the build's graphs and model, the images."""
    import hashlib

    import bireal_fpga

    root = Path(bireal_fpga.__file__).parent
    h = hashlib.sha256()
    for part in KEY_CODE:
        base = root / part
        files = sorted(base.rglob("*")) if base.is_dir() else [base]
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    for name in ("folded.onnx", "hw.onnx", "model.pt"):
        h.update((folder / name).read_bytes())
    for label, images in sets.items():
        h.update(label.encode() + images.tobytes())
    return h.hexdigest()


def run_stages(
    folder: Path,
    sets: dict[str, np.ndarray],
    stages: list[str],
    jobs: int,
    state_file: Path,
    key: str,
) -> dict:
    """Every stage on every set, ``BLOCK`` images at a time; each finished block is written to
    ``state_file`` at once (with ``key``: the code, the graph and the images), so that a run
    that is stopped resumes with the next block, in this session or a later one."""
    from bireal_fpga.flow.compare import Tally
    from bireal_fpga.flow.verify import Reference, check_stage, stage_table

    state: dict = {"key": key, "blocks": {}}
    if state_file.is_file():
        old = json.loads(state_file.read_text())
        if old.get("key") == key:
            state = old
            print(f"resuming: {len(state['blocks'])} blocks done ({state_file})", file=sys.stderr)
        else:
            print(f"{state_file} is of other code or images: starting again", file=sys.stderr)
    reference = Reference(folder / "model.pt")
    out: dict = {}
    for stage in stage_table(stages):
        run = None
        out[stage.name] = {}
        for label, images in sets.items():
            for start in range(0, len(images), BLOCK):
                name = f"{stage.name}/{label}/{start}"
                if name in state["blocks"]:
                    continue
                run = run or stage.open(folder, jobs)
                block = images[start : start + BLOCK]
                tally = Tally()
                t0 = time.perf_counter()
                check_stage(run, reference.trace(block), block, tally, start, reference.trace)
                state["blocks"][name] = {
                    **tally.to_dict(),
                    "seconds": round(time.perf_counter() - t0, 2),
                    "date": date.today().isoformat(),
                }
                tmp = state_file.with_name(state_file.name + ".tmp")
                tmp.write_text(json.dumps(state, indent=1) + "\n")
                tmp.replace(state_file)
                print(f"{name}: {state['blocks'][name]}", file=sys.stderr)
            done = [v for k, v in state["blocks"].items() if k.startswith(f"{stage.name}/{label}/")]
            seconds = sum(v["seconds"] for v in done)
            bad = [v for v in done if v["mismatches"]]
            r = {
                "n": sum(v["n"] for v in done),
                "mismatches": sum(v["mismatches"] for v in done),
                "first_mismatch": bad[0]["first_mismatch"] if bad else None,
                "seconds": round(seconds, 1),
                "images_per_s": round(len(images) / seconds, 3),
                "blocks": len(done),
            }
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
    ap.add_argument(
        "--stages",
        default="golden,python,cppsim",
        help="stages to run (rtlsim is added with --rtl)",
    )
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument(
        "--cache",
        help="tool cache folder to use and keep (default: a fresh temporary one, so that the "
        "first compile is cold); with --state, a stopped run resumes without recompiling",
    )
    ap.add_argument(
        "--state",
        help="progress file: finished image blocks are recorded here as they end, and a rerun "
        "with the same code, graph and images continues after them (default: --out + .partial)",
    )
    args = ap.parse_args()

    # every tool cache of this run in a fresh folder (the first compile is cold), or --cache
    cache = tempfile.TemporaryDirectory(prefix="bench-cppsim-cache-")
    os.environ["XDG_CACHE_HOME"] = args.cache or cache.name
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
    stages = args.stages.split(",") + (["rtlsim"] if (folder / "rtl").is_dir() else [])
    key = run_key(folder, sets)
    state = Path(args.state) if args.state else Path(args.out + ".partial")
    results = run_stages(folder, sets, stages, args.jobs, state, key)
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
        "compile_cache": "given (--cache: not cold)" if args.cache else "fresh (cold)",
        "stages": results,
        "exact": all(r["mismatches"] == 0 for s in results.values() for r in s.values()),
        "nodes": compiled["report"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("compile", "stages", "exact")}, indent=2))


if __name__ == "__main__":
    main()
