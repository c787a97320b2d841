"""Effect of each training option of issue 16 beyond the paper's recipe, measured on the same
data, seed and schedule length, on this machine.

Every configuration trains the same net from the same initial weights (``--seed``) on the same
stratified subset of the data (every ``k``-th training and test image, all classes alike), with
the paper's two stages (``--epochs-real`` + ``--epochs-binary``), and differs from ``paper``
(Adam, linear decay to 0, label smoothing 0.1, crop + flip) in one option only:

- ``cosine``: cosine decay instead of linear;
- ``warmup-cosine``: one epoch of linear warm-up, then cosine;
- ``distill``: stage 2 taught by the stage-1 real-valued net (KL at T = 1, alpha = 1, the
  Bi-Real / ReActNet "distributional loss");
- ``distill-half``: the same with alpha = 0.5 (half cross-entropy);
- ``sqrt-batch``: four times the batch with the learning rate sqrt-scaled.

Reported per configuration: the integer form's test top-1 (the hardware's), the float form's
(float64) and the number of test images where the two differ, the last epochs' test top-1
(float32, as the trainer measures it), the wall time. CPU runs are short schedules on a subset:
they rank options only where the differences exceed the noise of a few hundred test images;
the accuracy goals of the issue need the full schedule on a GPU (``train_gpu.sh``).

    .venv/bin/python benchmarks/recipe_options.py --data ../shared/data/cifar10_jpeg.npz
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bireal_fpga.data import DataSource, ImageDataset
from bireal_fpga.models.bireal import BiRealNet
from bireal_fpga.spec import load_spec
from bireal_fpga.train.config import TrainConfig
from bireal_fpga.train.forms import compare_forms
from bireal_fpga.train.loop import Trainer
from bireal_fpga.train.run import open_data_for

ROOT = Path(__file__).resolve().parent
OPTIONS: dict[str, dict[str, Any]] = {
    "paper": {},
    "cosine": {"lr_schedule": "cosine"},
    "warmup-cosine": {"lr_schedule": "cosine", "warmup_epochs": 1.0},
    "distill": {"teacher": "real", "distill_weight": 1.0},
    "distill-half": {"teacher": "real", "distill_weight": 0.5},
    "sqrt-batch": {"batch_size_factor": 4, "lr_scaling": "sqrt"},
}


def subset(split: Any, every: int) -> ImageDataset:
    idx = torch.arange(0, len(split), every)
    return ImageDataset(split.images[idx].clone(), split.labels[idx].clone())


def run_one(spec, data: DataSource, base: dict[str, Any], extra: dict[str, Any], seed: int):
    opts = {**base, **extra}
    factor = opts.pop("batch_size_factor", 1)
    opts["batch_size"] = base["batch_size"] * factor
    cfg = TrainConfig(seed=seed, **opts)
    torch.manual_seed(seed)
    model = BiRealNet(spec)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        with contextlib.redirect_stdout(io.StringIO()):
            trainer = Trainer(model, data, cfg, out, progress=False)
            trainer.run()
    wall = time.perf_counter() - t0
    forms = compare_forms(model.cpu().eval(), data.test, 500)
    return {
        "config": {k: v for k, v in cfg.to_dict().items() if k in opts or k == "seed"},
        "top1_int": forms.top1_int,
        "top1_float64": forms.top1_float,
        "disagreements": forms.disagreements,
        "history_test_top1": [round(r["test_top1"], 4) for r in trainer.history],
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/cifar10_jpeg.npz")
    ap.add_argument("--dataset", default="CIFAR-10 (JPEG copy)")
    ap.add_argument("--spec", default="bireal-small-cifar")
    ap.add_argument("--train-every", type=int, default=5, help="every k-th training image")
    ap.add_argument("--test-every", type=int, default=5, help="every k-th test image")
    ap.add_argument("--epochs-real", type=int, default=2)
    ap.add_argument("--epochs-binary", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--configs", default=",".join(OPTIONS))
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "recipe_options.json")
    args = ap.parse_args(argv)
    names = args.configs.split(",")
    for n in names:
        if n not in OPTIONS:
            ap.error(f"unknown config '{n}' (known: {', '.join(OPTIONS)})")
    spec = load_spec(args.spec)
    full = open_data_for(spec, args.data)
    data = DataSource(
        subset(full.train, args.train_every),
        subset(full.test, args.test_every),
        full.classes,
        full.channels,
        full.size,
        full.format,
        full.path,
    )
    base = dict(
        epochs_real=args.epochs_real,
        epochs_binary=args.epochs_binary,
        batch_size=args.batch,
        lr=args.lr,
        device=args.device,
        bn_recalibration_batches=10,
        workers=0,
    )
    results: dict[str, Any] = {}
    for i, n in enumerate(names):
        results[n] = run_one(spec, data, base, OPTIONS[n], args.seed)
        r = results[n]
        print(
            f"[{i + 1}/{len(names)}] {n:>14}: integer top-1 {r['top1_int']:.4f} float64 "
            f"{r['top1_float64']:.4f} differ {r['disagreements']} ({r['wall_s']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    report = {
        "benchmark": "recipe_options",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "spec": spec.name,
        "dataset": args.dataset,
        "train_images": len(data.train),
        "test_images": len(data.test),
        "schedule": f"{args.epochs_real} real + {args.epochs_binary} binary epochs",
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "device": args.device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    paper = results.get("paper", {}).get("top1_int")
    print(
        f"{spec.name}, {args.dataset}: {len(data.train)} train / {len(data.test)} test images, "
        f"{report['schedule']}, seed {args.seed}, {args.device}"
    )
    print("| config | integer top-1 | vs paper | float64 top-1 | differ | wall s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for n, r in results.items():
        delta = f"{r['top1_int'] - paper:+.4f}" if paper is not None else "-"
        print(
            f"| {n} | {r['top1_int']:.4f} | {delta} | {r['top1_float64']:.4f} | "
            f"{r['disagreements']} | {r['wall_s']:.0f} |"
        )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
