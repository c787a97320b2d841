"""The driver's simulation backend on a full-size build: exact against PyTorch's integer form
for batches of 1, 7 and 100 (random images and CIFAR-10 test images), scores and top-1, and
how fast the simulation runs (images/s on this machine, next to the accelerator's FPS by the
shell's cycle counter).

Usage (from the repository root, after ``make build BOARD=PYNQ-Z2``)::

    .venv/bin/python benchmarks/driver_sim.py build/PYNQ-Z2 [--data ../shared/data/cifar10_jpeg.npz]

Writes ``benchmarks/results/driver_sim_<board>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from bireal_fpga import names
from bireal_fpga.driver import SimAccelerator
from bireal_fpga.integer.forward import integer_layers
from bireal_fpga.integer.params import IntegerNet

BATCHES = (1, 7, 100)


def cifar_test(path: str, n: int) -> np.ndarray:
    from bireal_fpga.data import open_data

    test = open_data(path).test
    return np.stack([test[i][0].numpy().transpose(1, 2, 0) for i in range(n)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", type=Path)
    ap.add_argument("--data", default=None, help="CIFAR-10 (its test split) for real images")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    net = IntegerNet.load(args.build / names.INTEGER)
    c, h, w = net.input_shape
    rng = np.random.default_rng(0)
    sets = {"random": rng.integers(0, 256, size=(max(BATCHES), h, w, c), dtype=np.uint8)}
    if args.data:
        sets["cifar10_test"] = cifar_test(args.data, max(BATCHES))
    rows = []
    with SimAccelerator(args.build, batch_size=max(BATCHES)) as acc:
        info = acc.describe()
        for name, images in sets.items():
            ref = integer_layers(net, images.transpose(0, 3, 1, 2))[names.HEAD]
            for n in BATCHES:
                t0 = time.perf_counter()
                scores = acc.run(images[:n])
                wall = time.perf_counter() - t0
                stats = acc.stats
                top1 = acc.run(images[:n], top1=True)
                exact = bool(np.array_equal(scores, ref[:n]))
                rows.append(
                    {
                        "images": name,
                        "batch": n,
                        "exact_scores": exact,
                        "exact_top1": bool(np.array_equal(top1, np.argmax(ref[:n], axis=1))),
                        "mismatched_images": int((scores != ref[:n]).any(axis=1).sum()),
                        "sim_images_per_s": n / wall,
                        "fps_cycle_counter": stats.fps_cycles,
                        "cycles": stats.cycles,
                    }
                )
                print(
                    f"{name:13s} batch {n:4d}: exact {exact}, sim {n / wall:8.1f} images/s, "
                    f"accelerator {stats.fps_cycles:,.0f} FPS by its cycle counter"
                )
    result = {
        "benchmark": "driver_sim",
        "build": str(args.build),
        "accelerator": info,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "rows": rows,
        "all_exact": all(r["exact_scores"] and r["exact_top1"] for r in rows),
    }
    out = (
        args.out
        or Path("benchmarks/results") / f"driver_sim_{info['board']}.json".replace("-", "_").lower()
    )
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
