"""Training throughput of the Bi-Real net against the same topology in plain PyTorch float.

Measures images/s of full training steps -- augment (per-sample crop + flip of a uint8 batch,
:func:`bireal_fpga.train.batches.augment`), ``/255``, forward, cross-entropy with label
smoothing 0.1, backward, Adam step -- for three models in the same run:

- ``binary``: ``BiRealNet(spec)`` in binary mode (stage 2: ApproxSign, binary weights, -1
  padding, fixed-point residual stream, Brevitas int-weight stem / downsample / FC);
- ``float``: the same layers in plain PyTorch, no quantization at all (the baseline);
- ``real``: ``BiRealNet(spec)`` in real mode (stage 1: clip instead of sign, real weights).

The measurements are interleaved (binary, float, real, binary, float, real, ...) ``--repeats``
times and the median per model is reported, so machine noise hits every model alike.
Overhead = baseline images/s / model images/s; the target is ``overhead <= 1.5x`` for the
binary model. CPU always; CUDA too when available (bf16 autocast, as the trainer does).

    .venv/bin/python benchmarks/train_throughput.py               # CPU (+ CUDA if present)
    .venv/bin/python benchmarks/train_throughput.py --device cpu --repeats 5 --profile 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bireal_fpga.models.bireal import BiRealNet, preprocess
from bireal_fpga.spec import BiRealSpec, load_spec
from bireal_fpga.train.batches import augment

TARGET_OVERHEAD = 1.5
LABEL_SMOOTHING = 0.1
CROP_PADDING = 4
LR = 1e-3
MODELS = ("binary", "float", "real")
BASELINE = "float"
ROOT = Path(__file__).resolve().parent


# ---------------------------------------------------------------------- float baseline
class FloatBlock(nn.Module):
    """``BN(Conv3x3(hardtanh(x))) + shortcut(x)``; shortcut = identity or
    ``BN(Conv1x1(AvgPool2x2(x)))`` (no pool at stride 1)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.act = nn.Hardtanh()
        self.conv = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            pool: list[nn.Module] = [nn.AvgPool2d(2, ceil_mode=True)] if stride == 2 else []
            self.downsample = nn.Sequential(
                *pool, nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn(self.conv(self.act(x)))
        return y + (x if self.downsample is None else self.downsample(x))


class FloatNet(nn.Module):
    """The Bi-Real topology of ``spec`` in plain float PyTorch (no quantization)."""

    def __init__(self, spec: BiRealSpec) -> None:
        super().__init__()
        k, s, p = spec.stem_geometry()
        stem: list[nn.Module] = [
            nn.Conv2d(spec.input_channels, spec.stem_width, k, s, p, bias=False),
            nn.BatchNorm2d(spec.stem_width),
        ]
        if spec.stem == "imagenet":
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        blocks: list[nn.Module] = []
        cin = spec.stem_width
        for width, n, stride in zip(spec.widths, spec.blocks, spec.strides, strict=True):
            for i in range(n):
                blocks.append(FloatBlock(cin, width, stride if i == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, spec.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def build(name: str, spec: BiRealSpec) -> nn.Module:
    if name == "float":
        return FloatNet(spec)
    return BiRealNet(spec).set_mode("binary" if name == "binary" else "real")


# ---------------------------------------------------------------------- measurement
class Runner:
    """One model, its Adam optimizer and a fixed pool of random uint8 images on a device."""

    def __init__(self, name: str, spec: BiRealSpec, device: torch.device, batch: int, seed: int):
        torch.manual_seed(seed)
        self.name = name
        self.device = device
        self.model = build(name, spec).to(device).train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR)
        g = torch.Generator().manual_seed(seed)
        size, ch = spec.input_size, spec.input_channels
        self.images = torch.randint(0, 256, (batch, ch, size, size), dtype=torch.uint8, generator=g)
        self.images = self.images.to(device)
        self.labels = torch.randint(0, spec.num_classes, (batch,), generator=g).to(device)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
        )

    def step(self) -> Tensor:
        x = augment(self.images, CROP_PADDING, True, self.gen)
        with self.autocast:
            logits = self.model(preprocess(x))
            loss = F.cross_entropy(logits.float(), self.labels, label_smoothing=LABEL_SMOOTHING)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def measure(self, warmup: int, steps: int) -> float:
        """images/s over ``steps`` training steps after ``warmup`` untimed ones."""
        for _ in range(warmup):
            self.step()
        self.sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        self.sync()
        elapsed = time.perf_counter() - t0
        if not torch.isfinite(loss.detach()).item():
            raise RuntimeError(f"{self.name}: non-finite loss {float(loss)}")
        return len(self.labels) * steps / elapsed


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def bench_device(device: torch.device, spec: BiRealSpec, args: argparse.Namespace) -> dict:
    batch = args.batch_size or (256 if device.type == "cuda" else 64)
    steps = args.steps or (10 if device.type == "cpu" else 50)
    runners = {m: Runner(m, spec, device, batch, args.seed) for m in MODELS}
    samples: dict[str, list[float]] = {m: [] for m in MODELS}
    total = args.repeats * len(MODELS)
    k = 0
    loads: dict[str, list[float | None]] = {m: [] for m in MODELS}
    for r in range(args.repeats):
        for m in MODELS:
            k += 1
            ips = runners[m].measure(args.warmup, steps)
            samples[m].append(ips)
            loads[m].append(loadavg())
            print(
                f"[{device.type}] {k}/{total} repeat {r + 1}/{args.repeats} {m:>6}: "
                f"{ips:8.1f} images/s  (load {loads[m][-1]})",
                file=sys.stderr,
                flush=True,
            )
    medians = {m: statistics.median(v) for m, v in samples.items()}
    best = {m: max(v) for m, v in samples.items()}
    base = medians[BASELINE]
    overhead = {m: base / medians[m] for m in MODELS if m != BASELINE}
    overhead_best = {m: best[BASELINE] / best[m] for m in MODELS if m != BASELINE}
    result = {
        "device": device.type,
        "device_name": device_name(device),
        "batch_size": batch,
        "warmup_steps": args.warmup,
        "timed_steps": steps,
        "repeats": args.repeats,
        "autocast": "bf16" if device.type == "cuda" else None,
        "models": {
            m: {
                "images_per_s": medians[m],
                "images_per_s_best": best[m],
                "samples": samples[m],
                "loadavg_1min_after_sample": loads[m],
                "parameters": n_params(runners[m].model),
            }
            for m in MODELS
        },
        "overhead_vs_float": overhead,
        "overhead_vs_float_best": overhead_best,
        "target": f"binary overhead <= {TARGET_OVERHEAD}x",
        "target_met": overhead["binary"] <= TARGET_OVERHEAD,
    }
    if args.profile:
        result["profile"] = {m: profile(runners[m], args.profile, device, args.out) for m in MODELS}
    return result


def profile(runner: Runner, steps: int, device: torch.device, out: Path) -> str:
    """torch.profiler of ``steps`` training steps, written next to the JSON ``out``: the autograd
    Functions / backward nodes / optimizer (inclusive time) and the aten ops (self time)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    runner.step()
    runner.sync()
    with tprofile(activities=activities) as prof:
        for _ in range(steps):
            runner.step()
        runner.sync()
    events = list(prof.key_averages())
    cuda = device.type == "cuda"

    def total(e: Any) -> float:
        return (e.device_time_total if cuda else e.cpu_time_total) / 1e3 / steps

    def self_time(e: Any) -> float:
        return (e.self_device_time_total if cuda else e.self_cpu_time_total) / 1e3 / steps

    clock = "device" if cuda else "CPU"
    lines = [
        f"# {runner.name} on {device.type}: ms per training step ({clock} time), {steps} steps"
    ]
    lines.append("\n## autograd Functions, backward nodes, optimizer (inclusive time)")
    top = [e for e in events if not e.key.startswith(("aten::", "autograd::engine"))]
    for e in sorted(top, key=total, reverse=True)[:30]:
        lines.append(f"{total(e):10.1f} ms  x{e.count // steps:<5d} {e.key}")
    lines.append("\n## aten ops (self time)")
    ops = [e for e in events if e.key.startswith("aten::")]
    lines.append(f"{sum(self_time(e) for e in ops):10.1f} ms  all aten ops")
    for e in sorted(ops, key=self_time, reverse=True)[:30]:
        lines.append(f"{self_time(e):10.1f} ms  x{e.count // steps:<5d} {e.key}")
    path = out.with_name(f"{out.stem}_profile_{device.type}_{runner.name}.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"[{device.type}] profile of {runner.name} -> {path}", file=sys.stderr, flush=True)
    return str(path)


def loadavg() -> float | None:
    """1-minute load average (Linux), to spot samples disturbed by other processes."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical CPUs)"


def table(results: list[dict], spec: BiRealSpec) -> str:
    rows = [
        f"{spec.name}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads",
        "",
        "| device | batch | model | images/s (median) | samples | overhead vs float (best) |",
        "| --- | ---: | --- | ---: | --- | ---: |",
    ]
    for res in results:
        for m in MODELS:
            d = res["models"][m]
            over = (
                "1.00x (baseline)"
                if m == BASELINE
                else f"{res['overhead_vs_float'][m]:.2f}x ({res['overhead_vs_float_best'][m]:.2f}x)"
            )
            samples = ", ".join(f"{s:.1f}" for s in d["samples"])
            rows.append(
                f"| {res['device']} | {res['batch_size']} | {m} | {d['images_per_s']:.1f} "
                f"| {samples} | {over} |"
            )
    lines = ["\n".join(rows), ""]
    for res in results:
        met = "met" if res["target_met"] else "NOT met"
        lines.append(
            f"{res['device']}: binary overhead {res['overhead_vs_float']['binary']:.2f}x "
            f"(target <= {TARGET_OVERHEAD}x: {met})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=0, help="default: 64 CPU, 256 CUDA")
    ap.add_argument("--steps", type=int, default=0, help="timed steps; default: 10 CPU, 50 CUDA")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before each measure")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds per model")
    ap.add_argument("--spec", default="bireal18-cifar", help="preset, spec file or inline JSON")
    ap.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads; default: os.cpu_count()"
    )
    ap.add_argument("--profile", type=int, default=0, metavar="STEPS", help="profile N steps")
    ap.add_argument(
        "--out", type=Path, default=ROOT / "results" / "train_throughput.json", help="JSON output"
    )
    args = ap.parse_args(argv)
    if (
        min(args.repeats, args.warmup + 1, args.batch_size + 1, args.steps + 1, args.threads + 1)
        < 1
    ):
        ap.error("--repeats must be >= 1; --warmup, --batch-size, --steps, --threads >= 0")

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    spec = load_spec(args.spec)
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device == "cuda" or (args.device == "all" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            ap.error("--device cuda: CUDA is not available")
        devices.append(torch.device("cuda"))

    results = [bench_device(d, spec, args) for d in devices]
    report: dict[str, Any] = {
        "benchmark": "train_throughput",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "spec": spec.to_dict(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cuda_available": torch.cuda.is_available(),
            "devices": {r["device"]: r["device_name"] for r in results},
        },
        "step": {
            "optimizer": f"Adam(lr={LR})",
            "loss": f"cross_entropy(label_smoothing={LABEL_SMOOTHING})",
            "input": f"augment(uint8, padding={CROP_PADDING}, flip=True).float() / 255",
        },
        "baseline": BASELINE,
        "target": f"binary overhead <= {TARGET_OVERHEAD}x",
        "target_met": all(r["target_met"] for r in results),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results, spec))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
