"""Bi-Real-18 (ImageNet topology, 224x224) on one board: build, fit, speed and exactness.

``bireal-fpga build bireal18 --board B --until rtl --target-fps max`` (the untrained preset:
the ImageNet weights are not trained here; exactness does not depend on them) as a subprocess,
measured as in ``rtl_accelerator.py`` (build time and peak memory, the stitched simulation of
``--n`` random images against the PyTorch integer form with measured cycles, FPS measured and
estimated, Yosys resources and the fits verdict, or the RTL cost model with ``--no-synth``),
then every verify stage that runs at this size on real photographs: the sample images that
ship with scikit-image (``pip install scikit-image``; astronaut, chelsea, coffee, rocket,
camera, immunohistochemistry, hubble_deep_field, cat), or any ImageFolder tree / uint8 .npz
given with ``--images``, centre-cropped and resized to 224x224 (``golden``, ``python``,
``rtlsim``), and ``golden`` + ``python`` on the random images too. The interval is measured
again on ``--frames`` frames in one simulator (``steady``): ``--n 8`` frames, split over the
cores, are mostly pipeline fill at 450k cycles of latency.

Reported beside the CIFAR build: binary MACs per cycle, per cycle and kLUT, and weight bits
read per cycle (each MAC reads one weight: binary MACs x 1 bit + integer MACs x 8 bits, over
the measured interval) against the chip's weight-port bound, one 72-bit read port per RAMB36
and per URAM288 each cycle.

    .venv/bin/python benchmarks/imagenet.py [--board ZCU104] [--n 8] [--frames 24]
        [--images DIR|NPZ] [--no-synth] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from rtl_accelerator import (  # noqa: E402
    _cli,
    _timed,
    case_options,
    run_case,
    run_verify,
    work_root,
)

RESULTS = Path(__file__).parent / "results" / "imagenet_bireal18.json"
SIZE = 224
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "immunohistochemistry",
    "hubble_deep_field",
    "cat",
)
WORD_BITS = 72  # one read port of a RAMB36 (72 bits in SDP mode) or a URAM288


def _square(img: np.ndarray) -> np.ndarray:
    """An HxW(x3) uint8 photo centre-cropped to a square, resized to SIZE, as 3xSIZExSIZE."""
    from PIL import Image

    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    h, w = img.shape[:2]
    s = min(h, w)
    crop = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s, :3]
    resized = Image.fromarray(crop).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1)


def photographs(root: Path, source: str | None, n: int) -> tuple[Path, str]:
    """A uint8 .npz of ``n`` real photographs (N x 3 x 224 x 224) and where they came from."""
    if source and source.endswith(".npz"):
        return Path(source), source
    if source:
        from PIL import Image

        files = sorted(
            p for p in Path(source).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        )[:n]
        if not files:
            raise SystemExit(f"--images {source}: no .jpg/.jpeg/.png files under it")
        imgs = [_square(np.asarray(Image.open(p).convert("RGB"))) for p in files]
        origin = f"{source} ({len(imgs)} files)"
    else:
        try:
            import skimage.data
        except ImportError:
            raise SystemExit(
                "no photographs: pip install scikit-image (its sample images), or give "
                "--images DIR (an ImageFolder tree) or a uint8 .npz"
            ) from None
        imgs = [_square(getattr(skimage.data, name)()) for name in PHOTOS[:n]]
        origin = "scikit-image sample images: " + ", ".join(PHOTOS[:n])
    path = root / "photographs.npz"
    np.savez(path, images=np.stack(imgs))
    return path, origin


def weight_traffic(record: dict, board: str, interval: float) -> dict:
    """Weight bits read per cycle at ``interval`` cycles a frame (each MAC reads one weight),
    binary and int8 apart, and the chip's bound for the binary weights: one 72-bit read port
    per RAMB36 and per URAM288 a cycle. (The int8 stem's 75 kbit of weights sit in LUTs and
    registers, read by its own lanes; the classifier's 4 Mbit are read once a frame.)"""
    from bireal_fpga.boards import load_board

    res = load_board(board).resources
    ports = (res.get("BRAM36", 0) + res.get("URAM", 0)) * WORD_BITS
    return {
        "binary_weight_bits_per_cycle": record["binary_macs"] / interval,
        "int8_weight_bits_per_cycle": 8 * record["int_macs"] / interval,
        "port_bits_per_cycle": ports,
        "binary_port_share": record["binary_macs"] / interval / ports,
        "binary_port_bound_fps": record["clock_mhz"] * 1e6 * ports / record["binary_macs"],
    }


def steady_interval(folder: Path, frames: int) -> dict:
    """The interval over ``frames`` frames in one simulator process: with few frames the
    pipeline's fill (three frames in flight) is part of the measured interval."""
    proc, seconds, _ = _timed(_cli("sim", folder, "--n", frames, "--jobs", 1, "--json"))
    if proc.returncode != 0:
        raise SystemExit(f"sim failed:\n{proc.stderr[-3000:]}")
    timing = json.loads(proc.stdout)["timing"]
    return {"frames": frames, "interval_cycles": timing["interval_cycles"], "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="ZCU104")
    ap.add_argument("--spec", default="bireal18")
    case_options(ap, RESULTS)
    ap.add_argument("--frames", type=int, default=24, help="frames of the interval measurement")
    ap.set_defaults(n=8)
    args = ap.parse_args()
    root = work_root(args, "imagenet-bench-")
    photos, origin = photographs(root, args.images, args.n)
    print(f"== {args.spec} on {args.board}; photographs: {origin}", flush=True)
    record = run_case(args.spec, args.board, args.n, str(photos), root, "max", not args.no_synth)
    folder = root / f"{args.spec}-{args.board}"
    record["photographs"] = origin
    record["verify_photographs"] = run_verify(folder, "golden,python", args.n, str(photos))
    record["verify_random"] = run_verify(folder, "golden,python", args.n, None)
    steady = steady_interval(folder, args.frames)
    steady["fps"] = record["clock_mhz"] * 1e6 / steady["interval_cycles"]
    steady["of_estimate"] = steady["fps"] / record["fps_estimated"]
    record["steady"] = steady
    # binary MACs per cycle at the steady interval: weights.binary_weight_bits_per_cycle
    record["weights"] = weight_traffic(record, args.board, steady["interval_cycles"])
    payload = {
        "date": date.today().isoformat(),
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()},
        "synth": not args.no_synth,
        "case": record,
    }
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
