"""Training speed of the trainer itself (``bireal_fpga.train.loop.Trainer``), images/s of
whole training epochs, for the speed options of issue 16, against the pre-issue path in the
same run.

Configurations (each a :class:`TrainConfig`; stage 2, the binary net):

- ``baseline``: the trainer as it was: batches copied from host memory every step, the host
  waiting for the device every step (loss and accuracy read each step: ``log_every=1`` with the
  progress bar on), no channels-last, eager;
- ``device-data``: the split held on the device (uint8), batches indexed and augmented there,
  loss and accuracy summed there (no wait for the device inside an epoch);
- ``channels-last``: the same plus channels-last (CUDA only; skipped on CPU, where the trainer
  ignores it);
- ``compile``: the same plus ``torch.compile`` of the training forward;
- ``large-batch``: the same (without compile) at ``--large-batch`` with the learning rate
  sqrt-scaled.

Every configuration trains ``--epochs`` epochs of ``--steps`` steps on random uint8 images of
the spec's size (speed does not depend on the pixels) and reports the last epoch's images/s
(the trainer's own measurement of its training loop; the first epoch holds compilation and
warm-up). Configurations are interleaved ``--repeats`` times; medians are reported with the
ratio to ``baseline`` of the same run. On CPU the data-path options change little (host and
device are one); they are for the GPU: run with ``--device cuda`` where one is lent.

    .venv/bin/python benchmarks/train_speed.py                       # CPU, bireal18-cifar
    .venv/bin/python benchmarks/train_speed.py --device cuda --batch 256 --large-batch 1024 \\
        --steps 40 --epochs 3
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from train_throughput import device_name  # this folder is the script's sys.path[0]

from bireal_fpga.data import DataSource, ImageDataset
from bireal_fpga.models.bireal import BiRealNet
from bireal_fpga.spec import BiRealSpec, load_spec
from bireal_fpga.train.config import TrainConfig
from bireal_fpga.train.loop import Trainer

ROOT = Path(__file__).resolve().parent
BASELINE = "baseline"


def configs(args: argparse.Namespace, cuda: bool) -> dict[str, dict[str, Any]]:
    common = dict(
        epochs_binary=args.epochs,
        batch_size=args.batch,
        max_steps_per_epoch=args.steps,
        bn_recalibration_batches=0,
        device="cuda" if cuda else "cpu",
        eval_batch_size=500,
        channels_last=False,
        workers=0,
    )
    out: dict[str, dict[str, Any]] = {
        BASELINE: {**common, "data_on_device": False, "log_every": 1, "_progress": True},
        "device-data": {**common, "data_on_device": True},
    }
    if cuda:
        out["channels-last"] = {**common, "channels_last": True}
    fast = {**common, "channels_last": cuda}
    if not args.no_compile:
        out["compile"] = {**fast, "compile": True}
    if args.large_batch:
        out["large-batch"] = {**fast, "batch_size": args.large_batch, "lr_scaling": "sqrt"}
    return out


def data_for(spec: BiRealSpec, n_train: int, n_test: int, seed: int) -> DataSource:
    g = torch.Generator().manual_seed(seed)
    c, s = spec.input_channels, spec.input_size

    def split(n: int) -> ImageDataset:
        x = torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8, generator=g)
        return ImageDataset(x, torch.randint(0, spec.num_classes, (n,), generator=g))

    classes = tuple(str(i) for i in range(spec.num_classes))
    return DataSource(split(n_train), split(n_test), classes, c, (s, s), "random", "random")


def measure(spec: BiRealSpec, data: DataSource, options: dict[str, Any], seed: int) -> dict:
    opts = dict(options)
    progress = bool(opts.pop("_progress", False))
    cfg = TrainConfig(seed=seed, **opts)
    torch.manual_seed(seed)
    model = BiRealNet(spec)
    with tempfile.TemporaryDirectory() as out:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink):  # the per-epoch summary lines
            trainer = Trainer(model, data, cfg, out, progress=progress)
            trainer.run()
    h = trainer.history
    if not all(torch.isfinite(torch.tensor(r["train_loss"])) for r in h):
        raise RuntimeError(f"non-finite training loss with {options}")
    return {"images_per_s": h[-1]["images_per_s"], "per_epoch": [r["images_per_s"] for r in h]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="bireal18-cifar")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--batch", type=int, default=0, help="default: 64 CPU, 256 CUDA")
    ap.add_argument("--large-batch", type=int, default=-1, help="0 = skip; default 4x --batch")
    ap.add_argument("--steps", type=int, default=0, help="steps per epoch; default 3 CPU, 40 CUDA")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", type=Path, default=None, help="JSON (default results/train_speed_<device>.json)"
    )
    args = ap.parse_args(argv)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        ap.error("--device cuda: CUDA is not available")
    args.batch = args.batch or (256 if cuda else 64)
    args.steps = args.steps or (40 if cuda else 3)
    if args.large_batch < 0:
        args.large_batch = 4 * args.batch
    if min(args.batch, args.steps, args.epochs, args.repeats) < 1:
        ap.error("--batch, --steps, --epochs and --repeats must be >= 1")
    out = args.out or ROOT / "results" / f"train_speed_{args.device}.json"

    spec = load_spec(args.spec)
    largest = max(args.batch, args.large_batch)
    data = data_for(spec, largest * args.steps, 500, args.seed)
    table = configs(args, cuda)
    samples: dict[str, list[float]] = {k: [] for k in table}
    epochs: dict[str, list[list[float]]] = {k: [] for k in table}
    total = args.repeats * len(table)
    k = 0
    for r in range(args.repeats):
        for name, options in table.items():
            k += 1
            res = measure(spec, data, options, args.seed)
            samples[name].append(res["images_per_s"])
            epochs[name].append(res["per_epoch"])
            print(
                f"[{k}/{total}] repeat {r + 1} {name:>14}: {res['images_per_s']:9.1f} images/s "
                f"(epochs: {', '.join(f'{v:.1f}' for v in res['per_epoch'])})",
                file=sys.stderr,
                flush=True,
            )
    median = {n: statistics.median(v) for n, v in samples.items()}
    ratio = {n: median[n] / median[BASELINE] for n in table}
    report = {
        "benchmark": "train_speed",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "spec": spec.name,
        "device": args.device,
        "device_name": device_name(torch.device("cuda" if cuda else "cpu")),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "batch": args.batch,
        "steps_per_epoch": args.steps,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "measured": "images/s of the last epoch's training loop, median over repeats",
        "configs": {
            n: {
                "options": {k2: v for k2, v in table[n].items() if not k2.startswith("_")},
                "images_per_s": median[n],
                "samples": samples[n],
                "per_epoch": epochs[n],
                "ratio_to_baseline": ratio[n],
            }
            for n in table
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{spec.name} on {report['device_name']}, torch {torch.__version__}")
    print("| config | batch | images/s (median) | samples | x baseline |")
    print("| --- | ---: | ---: | --- | ---: |")
    for n in table:
        b = table[n]["batch_size"]
        s = ", ".join(f"{v:.1f}" for v in samples[n])
        print(f"| {n} | {b} | {median[n]:.1f} | {s} | {ratio[n]:.2f}x |")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
