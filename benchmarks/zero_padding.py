"""Zero-padded binary convs in hardware: Bi-Real-18-CIFAR trained briefly with
``--binary-padding zero``, built for a board, verified, and priced against the same weights
padded with -1.

1. ``bireal-fpga train bireal18-cifar --binary-padding zero`` for ``--steps`` steps of one
   epoch on the CPU (a brief run: the point is a trained zero-padded net through the flow,
   not its accuracy), its integer top-1 on the test split as the trainer reports it;
2. the baseline: the same checkpoint with ``binary_padding`` set back to ``minus-one`` (the
   same weights and BN statistics; only the padding of the 16 binary convs differs);
3. both built with ``build --until rtl --target-fps max`` for ``--board`` and measured as in
   ``rtl_accelerator.py`` (stitched simulation on random images, ``verify --stages rtlsim``
   on real CIFAR-10 test images with ``--images``): FPS measured and estimated, resources
   (Yosys, or the RTL cost model with ``--no-synth``), and the zero-padded build's ratios.

    .venv/bin/python benchmarks/zero_padding.py --data ../shared/data/cifar10_jpeg.npz \\
        [--board ZCU104] [--steps 40] [--n 100] [--no-synth] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rtl_accelerator import _cli, run_case  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "zero_padding_bireal18_cifar.json"


def train(data: str, out: Path, steps: int) -> tuple[Path, dict, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        _cli(
            "train",
            "bireal18-cifar",
            "--data",
            data,
            "--out",
            out,
            "--binary-padding",
            "zero",
            "--epochs-binary",
            1,
            "--max-steps",
            steps,
            "--batch-size",
            64,
            "--device",
            "cpu",
            "--bn-recalibration",
            10,
            "--quiet",
        ),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"training failed:\n{proc.stderr[-3000:]}")
    return (
        out / "model.pt",
        json.loads(proc.stdout.strip().splitlines()[-1]),
        time.perf_counter() - t0,
    )


def minus_one_copy(ckpt: Path, out: Path) -> Path:
    """The checkpoint with its spec's ``binary_padding`` set to minus-one (same weights)."""
    import torch

    payload = torch.load(ckpt, map_location="cpu", weights_only=True)
    if payload["spec"].get("binary_padding") != "zero":
        raise SystemExit(f"{ckpt}: not a zero-padded checkpoint")
    payload["spec"] = {k: v for k, v in payload["spec"].items() if k != "binary_padding"}
    torch.save(payload, out)
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="CIFAR-10 (training and real test images)")
    ap.add_argument("--board", default="ZCU104")
    ap.add_argument("--steps", type=int, default=40, help="training steps (batch 64)")
    ap.add_argument("--n", type=int, default=100, help="random and real images verified")
    ap.add_argument("--no-synth", action="store_true", help="cost model instead of Yosys")
    ap.add_argument("--keep", default=None, help="keep the run folder here")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--trained", default=None, help="reuse this training run folder (step 1)")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bench-zero-pad-")
    root = Path(args.keep or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    if args.trained:  # an earlier run of step 1 (its folder): not trained again
        ckpt = Path(args.trained) / "model.pt"
        trained = json.loads((Path(args.trained) / "history.json").read_text())[-1]
        train_s = float("nan")
    else:
        ckpt, trained, train_s = train(args.data, root / "train", args.steps)
    print(f"trained: {trained} in {train_s:.0f} s", flush=True)
    base = minus_one_copy(ckpt, root / "model_minus_one.pt")
    zero_ckpt = root / "model_zero.pt"
    zero_ckpt.write_bytes(ckpt.read_bytes())
    cases = {}
    for name, source in (("zero", zero_ckpt), ("minus_one", base)):
        t0 = time.perf_counter()
        cases[name] = run_case(
            str(source), args.board, args.n, args.data, root, "max", not args.no_synth
        )
        print(f"{name}: built and verified in {time.perf_counter() - t0:.0f} s", flush=True)
    z, m = cases["zero"], cases["minus_one"]
    res_key = "resources" if not args.no_synth else "cost_model"
    rz, rm = (
        z.get(res_key) or z["folding_estimates"]["total"],
        m.get(res_key) or m["folding_estimates"]["total"],
    )
    record = {
        "benchmark": "zero_padding",
        "date": date.today().isoformat(),
        "machine": {"cpu_count": __import__("os").cpu_count(), "python": platform.python_version()},
        "board": args.board,
        "training": {
            "spec": "bireal18-cifar",
            "binary_padding": "zero",
            "steps": args.steps,
            "batch_size": 64,
            "seconds": None if train_s != train_s else round(train_s, 1),
            "reused_run": args.trained,
            "result": trained,
            "dataset": "CIFAR-10 (JPEG copy)",
        },
        "resources_from": "Yosys" if not args.no_synth else "RTL cost model (no Yosys)",
        "cases": cases,
        "zero_over_minus_one": {
            "fps_measured": _ratio(z["fps_measured"], m["fps_measured"]),
            **{k: _ratio(rz.get(k), rm.get(k)) for k in ("LUT", "FF", "BRAM36", "URAM", "DSP")},
        },
        "exact": all(
            c["rtlsim_random"]["mismatches"] == 0
            and c.get("rtlsim_real", {}).get("mismatches") == 0
            for c in cases.values()
        ),
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["zero_over_minus_one"]), "exact:", record["exact"])


if __name__ == "__main__":
    main()
