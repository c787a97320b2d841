"""Board-driver packing: images/s of ``arch.shell.pack_images`` + ``unpack_results`` (the DMA
buffers of a batch) against the accelerator's FPS.

For each case (the image and output streams of a build's ``shell/shell.json``; the formats
written below where a build is absent) and batch size, three implementations, measured in the
same run on the same random data:

- ``vectorized``: ``arch.shell.pack_images`` / ``unpack_results`` (numpy, no loop per word);
- ``previous``: the code before it (numpy for 8-bit unsigned pixels, a Python loop of
  ``int.from_bytes`` per result beat);
- ``reference``: the Python-int reference, ``streams.pack`` / ``unpack`` with one int per
  word (and ``int.to_bytes`` / ``from_bytes`` per beat), for every stream alike.

Each timing is the median of repeats (at least ``--repeats``, and more until ``--min-time``
seconds have passed; one run for the slow ones past it). images/s of the pair = n / (pack
seconds + unpack seconds); the ratio to the build's measured FPS
(``benchmarks/results/make_build_*.json``) says how many times faster the host packs than the
accelerator infers (>= 1: packing keeps up with it, on this CPU).

    .venv/bin/python benchmarks/driver_packing.py [--batches 1,100,1000,10000]
        [--out benchmarks/results/driver_packing.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bireal_fpga.arch import shell  # noqa: E402
from bireal_fpga.arch.streams import StreamFormat, pack, unpack  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "driver_packing.json"


def _stream(port: str, fmt: StreamFormat, shape: list[int]) -> dict[str, Any]:
    return shell.stream_entry(port, fmt, int(np.prod(shape)) // fmt.elems, shape)


# The builds' streams as build/<BOARD>/shell/shell.json had them (2026-12-01), for a checkout
# without builds; and one wider case of no build (several pixels a beat, two results a beat).
FALLBACK = {
    "ZCU104": (
        _stream("s_axis_img", StreamFormat(8, False, 1), [32, 32, 3]),
        _stream("m_axis_out", StreamFormat(32, True, 1), [10]),
    ),
    "PYNQ-Z2": (
        _stream("s_axis_img", StreamFormat(8, False, 1), [32, 32, 3]),
        _stream("m_axis_out", StreamFormat(32, True, 1), [10]),
    ),
}
SYNTHETIC = (
    _stream("s_axis_img", StreamFormat(8, False, 12), [32, 32, 3]),
    _stream("m_axis_out", StreamFormat(20, True, 2), [10]),
)
FPS_FILES = {"ZCU104": "make_build_zcu104.json", "PYNQ-Z2": "make_build_pynq_z2.json"}


def _fmt(stream: Mapping[str, Any]) -> StreamFormat:
    f = stream["format"]
    return StreamFormat(int(f["elem_bits"]), bool(f["signed"]), int(f["elems"]))


# ---- the two baselines ----------------------------------------------------------------------


def reference_pack(images: np.ndarray, image: Mapping[str, Any]) -> bytes:
    fmt, beat = _fmt(image), int(image["dma_bits"]) // 8
    return b"".join(w.to_bytes(beat, "little") for w in pack(images.astype(np.int64), fmt))


def reference_unpack(data: bytes, output: Mapping[str, Any], n: int) -> np.ndarray:
    fmt, beat = _fmt(output), int(output["dma_bits"]) // 8
    words = int(output["words_per_image"])
    raw = np.frombuffer(data, dtype=np.uint8).reshape(n * words, beat)
    ints = [int.from_bytes(row.tobytes(), "little") for row in raw]
    return unpack(ints, fmt).reshape(n, words * fmt.elems)


def previous_pack(images: np.ndarray, image: Mapping[str, Any]) -> bytes:
    """``pack_images`` before vectorizing (its checks left out)."""
    x = np.ascontiguousarray(images)
    fmt, beat = _fmt(image), int(image["dma_bits"]) // 8
    words, n = int(image["words_per_image"]), x.shape[0]
    if fmt.elem_bits == 8 and not fmt.signed:
        rows = x.astype(np.uint8).reshape(n * words, fmt.elems)
        buf = np.zeros((n * words, beat), dtype=np.uint8)
        buf[:, : fmt.elems] = rows
        return buf.tobytes()
    return reference_pack(x, image)


IMPLS: dict[str, tuple[Callable[..., bytes], Callable[..., np.ndarray]]] = {
    "vectorized": (shell.pack_images, shell.unpack_results),
    "previous": (previous_pack, reference_unpack),
    "reference": (reference_pack, reference_unpack),
}


# ---- measuring ------------------------------------------------------------------------------


def _time(fn: Callable[[], object], repeats: int, min_time: float) -> list[float]:
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if samples[-1] > min_time:  # slow: one run says enough
            break
    return samples


def _build_fps() -> dict[str, float]:
    fps = {}
    for board, name in FPS_FILES.items():
        path = Path(__file__).parent / "results" / name
        if path.exists():
            fps[board] = float(json.loads(path.read_text())["fps"]["measured"])
    return fps


def _cases() -> list[dict[str, Any]]:
    cases = []
    for board in ("ZCU104", "PYNQ-Z2"):
        manifest = ROOT / "build" / board / "shell" / "shell.json"
        if manifest.exists():
            m = json.loads(manifest.read_text())
            image, output, source = m["image"], m["output"], str(manifest.relative_to(ROOT))
        else:
            (image, output), source = FALLBACK[board], "formats written in the script"
        cases.append({"case": board, "board": board, "source": source, "streams": (image, output)})
    cases.append({"case": "synthetic", "board": None, "source": "no build", "streams": SYNTHETIC})
    return cases


def _describe(stream: Mapping[str, Any]) -> str:
    f = _fmt(stream)
    kind = f"{'INT' if f.signed else 'UINT'}{f.elem_bits}"
    return f"{kind} x{f.elems} in {stream['dma_bits']}-bit beats, {stream['words_per_image']}/image"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,100,1000,10000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per timing at least")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    rng = np.random.default_rng(args.seed)
    fps = _build_fps()
    load_before = os.getloadavg()[0]

    rows = []
    for case in _cases():
        image, output = case["streams"]
        ofmt = _fmt(output)
        for n in batches:
            images = rng.integers(0, 256, size=(n, *image["shape"]), dtype=np.uint8)
            results = rng.integers(ofmt.lo, ofmt.hi, size=(n, *output["shape"]), endpoint=True)
            data = reference_pack_results(results, output)
            want_in = reference_pack(images, image)
            row: dict[str, Any] = {"case": case["case"], "n": n, "impls": {}}
            for impl, (pk, upk) in IMPLS.items():
                if impl != "reference":  # the same bytes and values as the reference
                    assert pk(images, image) == want_in, (impl, case["case"], n)
                    assert np.array_equal(upk(data, output, n), results.reshape(n, -1))
                t_pack = _time(partial(pk, images, image), args.repeats, args.min_time)
                t_unpack = _time(partial(upk, data, output, n), args.repeats, args.min_time)
                p, u = statistics.median(t_pack), statistics.median(t_unpack)
                r = {
                    "pack_s": p,
                    "unpack_s": u,
                    "pack_images_per_s": n / p,
                    "unpack_images_per_s": n / u,
                    "images_per_s": n / (p + u),
                    "samples": [len(t_pack), len(t_unpack)],
                }
                board_fps = fps.get(case["board"] or "")
                if board_fps:
                    r["ratio_to_fps"] = r["images_per_s"] / board_fps
                row["impls"][impl] = r
                print(
                    f"[bench] {case['case']:<9} n={n:<6} {impl:<10} pack {n / p:>12,.0f}/s "
                    f"unpack {n / u:>12,.0f}/s  both {n / (p + u):>12,.0f} images/s",
                    file=sys.stderr,
                )
            v = row["impls"]
            row["speedup_vs_reference"] = (
                v["vectorized"]["images_per_s"] / v["reference"]["images_per_s"]
            )
            row["speedup_vs_previous"] = (
                v["vectorized"]["images_per_s"] / v["previous"]["images_per_s"]
            )
            rows.append(row)

    record = {
        "benchmark": "driver_packing",
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["benchmarks/driver_packing.py", *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_1min": {"before": load_before, "after": os.getloadavg()[0]},
        },
        "timing": {"repeats": args.repeats, "min_time_s": args.min_time, "statistic": "median"},
        "accelerator_fps": {
            board: {"fps": f, "source": f"benchmarks/results/{FPS_FILES[board]} fps.measured"}
            for board, f in fps.items()
        },
        "cases": [
            {
                "case": c["case"],
                "source": c["source"],
                "image": _describe(c["streams"][0]),
                "output": _describe(c["streams"][1]),
            }
            for c in _cases()
        ],
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(table(record))


def reference_pack_results(results: np.ndarray, output: Mapping[str, Any]) -> bytes:
    """Results as the shell's ``m_axis_out`` sends them (the Python-int reference)."""
    return reference_pack(results.reshape(-1, _fmt(output).elems), output)


def table(record: Mapping[str, Any]) -> str:
    """A markdown table of the record."""
    fps = {b: v["fps"] for b, v in record["accelerator_fps"].items()}
    head = (
        "| case | batch | vectorized images/s (pack / unpack) | previous images/s | "
        "reference images/s | vs reference | vs previous | vectorized / accelerator FPS |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    lines = []
    for row in record["results"]:
        v, p, r = (row["impls"][k] for k in ("vectorized", "previous", "reference"))
        ratio = v.get("ratio_to_fps")
        board_fps = fps.get(row["case"])
        ratio_s = f"{ratio:,.1f}x (of {board_fps:,.0f})" if ratio is not None else "-"
        lines.append(
            f"| {row['case']} | {row['n']:,} | {v['images_per_s']:,.0f} "
            f"({v['pack_images_per_s']:,.0f} / {v['unpack_images_per_s']:,.0f}) | "
            f"{p['images_per_s']:,.0f} | {r['images_per_s']:,.0f} | "
            f"{row['speedup_vs_reference']:,.0f}x | {row['speedup_vs_previous']:,.1f}x | "
            f"{ratio_s} |"
        )
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
