"""Compiler front-end benchmark: compile time per stage, golden-model speed, and bit-exactness
of the large presets.

For each preset (randomized weights, BN statistics calibrated on random images, so every
threshold unit is non-degenerate): build until ``hw`` (model -> integer form -> golden check ->
QONNX -> HW layers -> specialize -> folding) and record the seconds of each stage; then
compare the PyTorch integer form with the golden model and with FINN's python execution on
``--n`` random images and ``--n`` real images (CIFAR-10 JPEG copy if ``--cifar`` points to it;
FINN python execution is slow, ~10 s per Bi-Real-18-CIFAR image on one core, so its count is
``--n-python``). Also: golden-model images/s against PyTorch float inference, same run.

    .venv/bin/python benchmarks/compile_and_verify.py [--presets ...] [--n 100] [--n-python 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bireal_fpga.flow import BuildConfig, build, verify
from bireal_fpga.golden.model import GoldenModel
from bireal_fpga.models.bireal import BiRealNet, preprocess
from bireal_fpga.models.calibration import calibrated_random_model
from bireal_fpga.spec import BiRealSpec, load_spec
from bireal_fpga.train.checkpoint import save_checkpoint

PRESETS = {
    "tiny": ("tiny", []),
    "bireal-small-cifar": ("bireal-small-cifar", []),
    "bireal18-cifar": ("bireal18-cifar", []),
    "bireal34-cifar": ("bireal34-cifar", []),
    "bireal18-imagenet-64px": ("bireal18", ["input_size=64"]),
    "odd-widths": (
        "tiny",
        [
            "widths=[12,20,36]",
            "blocks=[1,1,1]",
            "strides=[1,2,2]",
            "input_size=31",
            "stem_width=10",
        ],
    ),
}


def calibrated(spec: BiRealSpec, seed: int) -> BiRealNet:
    torch.manual_seed(seed)
    return calibrated_random_model(BiRealNet(spec), seed=seed, batches=4)


def real_images(path: str | None, spec: BiRealSpec, n: int, workdir: Path) -> str | None:
    if path is None or spec.input_size != 32 or spec.input_channels != 3:
        return None
    from bireal_fpga.data import open_data

    test = open_data(path).test
    idx = np.linspace(0, len(test) - 1, n).astype(int)  # spread over the class-ordered split
    file = workdir / "real.npz"
    np.savez(file, images=test.images[idx].numpy())
    return str(file)


def speed(spec: BiRealSpec, model: BiRealNet, npz: Path, batch: int) -> dict:
    x = torch.randint(
        0, 256, (batch, spec.input_channels, spec.input_size, spec.input_size), dtype=torch.uint8
    )
    golden = GoldenModel(npz)
    res = {}
    for name, fn in (
        ("golden", lambda: golden.run(x.numpy())),
        ("pytorch_float", lambda: model(preprocess(x))),
    ):
        with torch.no_grad():
            fn()
            t0 = time.perf_counter()
            fn()
            res[f"{name}_images_per_s"] = batch / (time.perf_counter() - t0)
    res["golden_vs_float"] = res["golden_images_per_s"] / res["pytorch_float_images_per_s"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="*", default=list(PRESETS))
    ap.add_argument("--board", default="ZCU104")
    ap.add_argument("--n", type=int, default=100, help="images for pytorch/golden comparison")
    ap.add_argument("--n-python", type=int, default=2, help="images for FINN python exec")
    ap.add_argument("--cifar", default=None, help="CIFAR-10 data path for real images")
    ap.add_argument("--out", default="benchmarks/results/compile_and_verify.json")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    results = []
    for key in args.presets:
        base, overrides = PRESETS[key]
        spec = load_spec(base, overrides)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            model = calibrated(spec, 0)
            ckpt = work / "model.pt"
            save_checkpoint(ckpt, model)
            t0 = time.perf_counter()
            cfg = BuildConfig(str(ckpt), args.board, str(work / "build"), to_step="folding")
            report = build(cfg, log=lambda m: print(m, file=sys.stderr)).report
            total = time.perf_counter() - t0
            entry = {
                "preset": key,
                "stages_s": {s["name"]: round(s["seconds"], 2) for s in report["stages"]},
                "build_s": round(total, 1),
                "estimates": {
                    k: report["estimates"][k]
                    for k in ("fps", "clock_mhz", "bottleneck", "fits", "total")
                },
            }
            checks = {}
            for label, images in (
                ("random", None),
                ("real", real_images(args.cifar, spec, args.n, work)),
            ):
                if label == "real" and images is None:
                    continue
                r = verify(work / "build", ["pytorch", "golden"], n=args.n, images=images)
                checks[label] = r
                if args.n_python:
                    rp = verify(work / "build", ["python"], n=args.n_python, images=images)
                    checks[f"{label}_python"] = rp
            entry["verify"] = checks
            entry["speed"] = speed(spec, model, work / "build" / "integer.npz", 32)
            results.append(entry)
            print(json.dumps(entry)[:400], file=sys.stderr)
    out = {
        "benchmark": "compile_and_verify",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "board": args.board,
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(
        "| preset | build s | hw s | FINN est. FPS | mismatches (golden/python) | "
        "golden img/s | float img/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for e in results:
        mism = []
        for label, r in e["verify"].items():
            for stage, s in r["stages"].items():
                mism.append(f"{label}/{stage} {s['mismatches']}/{s['n']}")
        sp = e["speed"]
        print(
            f"| {e['preset']} | {e['build_s']} | {e['stages_s'].get('hw', 0)} | "
            f"{e['estimates']['fps']:.0f} | {'; '.join(mism)} | "
            f"{sp['golden_images_per_s']:.1f} | {sp['pytorch_float_images_per_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
