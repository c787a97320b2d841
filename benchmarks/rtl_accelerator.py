"""Hardware-backend benchmark: the stitched accelerator of the large presets, built and
simulated on this machine.

For each case (spec, board): ``bireal-fpga build SPEC --board B --until rtl --target-fps max``
as a subprocess (wall time, peak memory of the build and its tools), then the stitched
Verilator simulation on ``--n`` images (random, and real CIFAR-10 test images with
``--images``) compared with the PyTorch integer form (``verify --stages rtlsim``), and its
speed: ``bireal-fpga sim --n N`` timed as a whole (start-up, run-time weight load and
pipeline fill included; one simulator process per core on a part of the images), as
images/s and simulated cycles/s (all processes together). Reported per case: measured and
estimated FPS at the board clock, bottleneck layer, Yosys totals and the fits verdict, binary
MACs per cycle and per cycle per thousand LUTs. FINN's published CNV-W1A1 figure is listed
beside them (21,906 FPS on a ZC706 for a 59.5 M-MAC network, Umuroglu et al., FPGA 2017).

    .venv/bin/python benchmarks/rtl_accelerator.py [--cases bireal18-cifar:ZCU104,...]
        [--n 100] [--images ../shared/data/cifar10_jpeg.npz] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = "bireal18-cifar:ZCU104,bireal-small-cifar:PYNQ-Z2"
FINN_CNV = {"fps": 21906, "macs": 59.5e6, "board": "ZC706", "source": "FINN, FPGA 2017"}
RESULTS = Path(__file__).parent / "results" / "rtl_accelerator.json"


def _timed(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd`` under /usr/bin/time: (process, wall seconds, peak RSS GiB of the tree's
    largest process)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "MAXRSS_KB %M", *cmd], capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    rss = 0.0
    for line in proc.stderr.splitlines():
        if line.startswith("MAXRSS_KB"):
            rss = int(line.split()[1]) / 2**20
    return proc, wall, rss


def _cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "bireal_fpga", *map(str, args)]


def run_verify(folder: Path, stages: str, n: int, images: str | None) -> dict:
    """``bireal-fpga verify`` of a build folder: its stages' records (JSON), the wall seconds
    and the peak RSS (GiB); mismatches are results (exit 1), other failures end the run."""
    extra = ["--images", images] if images else []
    proc, seconds, rss = _timed(
        _cli("verify", folder, "--stages", stages, "--n", n, "--json", *extra)
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(f"verify {folder} ({stages}) failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout)["stages"]
    return {"stages": result, "seconds": round(seconds, 1), "peak_rss_gib": round(rss, 2)}


def run_case(
    spec: str, board: str, n: int, images: str | None, root: Path, fps: str, synth: bool
) -> dict:
    """``spec``: a preset or a checkpoint (.pt); ``fps``: --target-fps."""
    out = root / f"{Path(spec).stem}-{board}"
    args = ["build", spec, "--board", board, "--out", out, "--n", n, "--target-fps", fps]
    proc, build_s, build_rss = _timed(_cli(*args, *([] if synth else ["--no-synth"])))
    if proc.returncode != 0:
        raise SystemExit(f"build {spec} {board} failed:\n{proc.stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    info = json.loads(
        subprocess.run(
            _cli("info", json.dumps(report["spec"]), "--json"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    rtl = report["rtl"]
    # simulation speed on a compiled design (the build compiled it): the whole command on n
    # images (start-up, weight load and pipeline fill included), one simulator per core
    sim, sim_s, _ = _timed(_cli("sim", out, "--n", n, "--json"))
    if sim.returncode != 0:
        raise SystemExit(f"sim {spec} failed:\n{sim.stderr[-3000:]}")
    timing = json.loads(sim.stdout)["timing"]
    k = n
    record = {
        "spec": report["spec"]["name"],
        "source": spec,
        "trained": report.get("trained"),
        "target_fps": fps,
        "board": board,
        "clock_mhz": rtl["clock_mhz"],
        "build_s": round(build_s, 1),
        "build_peak_rss_gib": round(build_rss, 2),
        "stage_seconds": {s["name"]: round(s["seconds"], 1) for s in report["stages"]},
        "rtlsim_random": {"n": rtl["rtlsim"]["n"], "mismatches": rtl["rtlsim"]["mismatches"]},
        "fps_estimated": rtl["fps"]["estimated"],
        "fps_measured": rtl["fps"]["measured"],
        "interval_cycles": rtl["interval_cycles"],
        "latency_cycles": rtl["latency_cycles"],
        "bottleneck": rtl["bottleneck"],
        "folding_estimates": {
            k2: report["estimates"][k2] for k2 in ("fps", "bottleneck", "total", "cost_model")
        },
        "resources": (rtl.get("resources") or {}).get("total"),
        "fits": rtl.get("fits"),
        # the cost model's price of the same design, and how far its LUTs are from Yosys's
        "cost_model": (rtl.get("cost_model") or {}).get("total"),
        "cost_model_lut_error": (rtl.get("cost_model") or {}).get("lut_error"),
        "fit_loop": report.get("fit_loop"),
        "binary_macs": info["binary_macs"],
        "int_macs": info["int_macs"],
        "sim_images": k,
        "sim_processes": timing["runs"],
        "sim_s": round(sim_s, 2),
        "sim_images_per_s": k / sim_s,
        "sim_cycles_per_s": timing["cycles"] / sim_s,
    }
    macs_per_cycle = info["binary_macs"] / rtl["interval_cycles"]["measured"]
    record["binary_macs_per_cycle"] = macs_per_cycle
    if record["resources"]:
        record["binary_macs_per_cycle_per_klut"] = macs_per_cycle / (
            record["resources"]["LUT"] / 1000
        )
    if images:
        ver = run_verify(out, "rtlsim", n, images)
        stage = ver["stages"]["rtlsim"]
        record["rtlsim_real"] = {
            "n": stage["n"],
            "mismatches": stage["mismatches"],
            "seconds": ver["seconds"],
        }
    return record


def case_options(ap: argparse.ArgumentParser, results: Path) -> None:
    """The options of :func:`run_case` that every benchmark built on it takes."""
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--images", default=None)
    ap.add_argument("--keep", default=None, help="keep the build folders here")
    ap.add_argument("--no-synth", action="store_true", help="skip the Yosys estimates")
    ap.add_argument("--results", default=str(results), help="JSON file to write")


def work_root(args: argparse.Namespace, prefix: str) -> Path:
    """``--keep``, or a new temporary folder: where the build folders go."""
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix=prefix))
    root.mkdir(parents=True, exist_ok=True)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("--target-fps", default="max")
    case_options(ap, RESULTS)
    args = ap.parse_args()
    root = work_root(args, "rtl-bench-")
    results = []
    for case in args.cases.split(","):
        spec, board = case.rsplit(":", 1)
        print(f"== {spec} on {board}", flush=True)
        results.append(
            run_case(spec, board, args.n, args.images, root, args.target_fps, not args.no_synth)
        )
        print(json.dumps(results[-1], indent=1), flush=True)
    finn_macs_s = FINN_CNV["fps"] * FINN_CNV["macs"]
    payload = {
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()},
        "finn_cnv_w1a1": {**FINN_CNV, "binary_macs_per_s": finn_macs_s},
        "cases": results,
    }
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(payload, indent=2) + "\n")
    print(
        "| case | FPS meas. (est.) | bottleneck | LUT | BRAM36 | URAM | DSP | fits | "
        "GMAC/s | build | sim img/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        res = r["resources"] or {}
        print(
            f"| {r['spec']} @ {r['board']} {r['clock_mhz']:g} MHz | {r['fps_measured']:.0f} "
            f"({r['fps_estimated']:.0f}) | {r['bottleneck']} | {res.get('LUT', 0):.0f} | "
            f"{res.get('BRAM36', 0):g} | {res.get('URAM', 0)} | {res.get('DSP', 0)} | "
            f"{r['fits']} | {r['binary_macs'] * r['fps_measured'] / 1e9:.0f} | "
            f"{r['build_s']:.0f} s, {r['build_peak_rss_gib']:.1f} GiB | "
            f"{r['sim_images_per_s']:.1f} |"
        )
    print(
        f"| FINN CNV-W1A1 @ ZC706 (published) | {FINN_CNV['fps']} | | | | | | | "
        f"{finn_macs_s / 1e9:.0f} | | |"
    )


if __name__ == "__main__":
    main()
