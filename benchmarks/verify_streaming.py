"""Streaming verification: ``bireal-fpga verify`` over many images in bounded memory.

Runs ``bireal-fpga verify BUILD --stages S --n N --images DATA --json`` as a subprocess and
samples, every 0.5 s, the resident memory of the whole process tree (the verify process and
the Verilator simulators it starts), reporting the peak and the wall time. With
``--baseline SRC`` the same command of another checkout (for example the commit before the
streaming verify: ``git worktree add /tmp/base <commit>``) runs first on ``--baseline-n``
images, so the two are measured on the same machine in the same run.

    .venv/bin/python benchmarks/verify_streaming.py BUILD \\
        --images ../shared/data/cifar10_jpeg.npz [--n 10000] [--stages pytorch,golden,rtlsim] \\
        [--baseline /tmp/base --baseline-n 300 [--baseline-build OLD_BUILD]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "verify_streaming.json"


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields.get("PPid", "0").strip())
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total = 0
    for pid in rss:
        p = pid
        while p and p != root:
            p = parents.get(p, 0)
        if p == root:
            total += rss[pid]
    return total


def measure(cmd: list[str], env: dict[str, str]) -> dict:
    """Run ``cmd``; its wall time, peak tree memory and JSON output."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    wall = time.perf_counter() - t0
    result = {
        "command": " ".join(cmd[2:]),
        "returncode": proc.returncode,
        "seconds": round(wall, 1),
        "peak_memory_gib": round(peak[0] / 2**30, 3),
    }
    try:
        result["output"] = json.loads(out)
    except json.JSONDecodeError:
        result["stderr_tail"] = err.decode(errors="replace")[-2000:]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", help="a build folder (with rtl/ and sim/ for the rtlsim stage)")
    ap.add_argument("--images", default=None, help="data path (its test split) or .npz")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--stages", default="pytorch,golden,rtlsim")
    ap.add_argument("--baseline", default=None, help="another checkout's root to compare")
    ap.add_argument("--baseline-n", type=int, default=300)
    ap.add_argument(
        "--baseline-build",
        default=None,
        help="the build folder the baseline verifies (default BUILD; give the baseline's own "
        "build of the same folding when the folder layout changed)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    def cmd(n: int, build: str = args.build) -> list[str]:
        c = [sys.executable, "-m", "bireal_fpga", "verify", build, "--stages", args.stages]
        c += ["--n", str(n), "--json"]
        return c + (["--images", args.images] if args.images else [])

    runs = []
    if args.baseline:
        env = {**os.environ, "PYTHONPATH": str(Path(args.baseline).resolve())}
        print(f"[bench] baseline ({args.baseline}): n={args.baseline_n}", file=sys.stderr)
        runs.append(
            {
                "code": "baseline",
                "build": args.baseline_build or args.build,
                "n": args.baseline_n,
                **measure(cmd(args.baseline_n, args.baseline_build or args.build), env),
            }
        )
    print(f"[bench] this checkout: n={args.n}", file=sys.stderr)
    runs.append({"code": "this", "n": args.n, **measure(cmd(args.n), dict(os.environ))})
    record = {
        "benchmark": "verify_streaming",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "build": str(args.build),
        "images": args.images or "random",
        "stages": args.stages.split(","),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for r in runs:
        stages = (r.get("output") or {}).get("stages", {})
        summary = ", ".join(f"{k} {v['mismatches']}/{v['n']}" for k, v in stages.items())
        print(
            f"{r['code']:<9} n={r['n']:<6} {r['seconds']:>8.1f} s  peak {r['peak_memory_gib']:.2f} "
            f"GiB  rc {r['returncode']}  {summary}"
        )


if __name__ == "__main__":
    main()
