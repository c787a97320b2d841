"""Residual streams of 8, 12 and 16 bits: the cost of a wider shortcut stream in hardware.

For each width, Bi-Real-18-CIFAR (the untrained preset's shape and seed) with
``residual_bits`` = that width and ``residual_frac_bits`` = half of it (8 -> 4, the preset's),
built with ``build --until rtl --target-fps max`` for ``--board`` and measured as in
``rtl_accelerator.py``: the stitched simulation on random images and ``verify --stages rtlsim``
on real CIFAR-10 test images (``--images``) against the PyTorch integer form, FPS measured and
estimated, resources by Yosys (or the RTL cost model with ``--no-synth``), build time and peak
memory, and the size of the FINN-level graph (which still holds every threshold: 2**bits - 1
per channel). Every requantizer of a wide stream is an exact affine unit
(``bireal_fpga/arch/affine.py``), so the hardware's cost grows with the width, not with
2**width; the table lists which nodes kept threshold tables.

    .venv/bin/python benchmarks/wide_residual.py --images ../shared/data/cifar10_jpeg.npz \\
        [--bits 8,12,16] [--board ZCU104] [--n 100] [--no-synth] [--keep DIR]

A run of some widths (``--bits 8,12``) replaces those widths' rows of the record and keeps the
others; each row carries the date it was measured. With ``--keep DIR`` the build folders stay in
DIR, and a rerun reuses the build steps whose inputs did not change (the build's own cache):
``stage_seconds`` then lists the reused steps.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rtl_accelerator import case_options, run_case, work_root  # noqa: E402

from bireal_fpga import names  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "wide_residual_bireal18_cifar.json"


def spec_file(root: Path, bits: int) -> Path:
    from bireal_fpga.spec import load_spec

    spec = load_spec("bireal18-cifar", [f"residual_bits={bits}", f"residual_frac_bits={bits // 2}"])
    path = root / f"bireal18-cifar-r{bits}.json"
    path.write_text(json.dumps(spec.to_dict()))
    return path


def activation_forms(folder: Path) -> dict:
    """Per thresholded MVAU of the generated RTL: affine unit or threshold tables."""
    rtl = {p.name for p in (folder / "rtl").rglob("*.mem")}
    from qonnx.core.modelwrapper import ModelWrapper

    folded = ModelWrapper(str(folder / names.FOLDED))
    mvaus = [n.name for n in folded.graph.node if n.op_type.startswith("MVAU") and len(n.input) > 2]
    affine = [n for n in mvaus if f"{n}_affine.mem" in rtl]
    return {
        "thresholded_mvaus": len(mvaus),
        "affine": len(affine),
        "tables": sorted(set(mvaus) - set(affine)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", default="8,12,16")
    ap.add_argument("--board", default="ZCU104")
    case_options(ap, RESULTS)
    args = ap.parse_args()
    root = work_root(args, "wide-bench-")
    cases = []
    for bits in (int(b) for b in args.bits.split(",")):
        print(f"== residual {bits} bits on {args.board}", flush=True)
        spec = spec_file(root, bits)
        record = run_case(
            str(spec), args.board, args.n, args.images, root, "max", not args.no_synth
        )
        folder = root / f"{spec.stem}-{args.board}"
        record["residual_bits"] = bits
        record["graph_mib"] = {
            name: round((folder / name).stat().st_size / 2**20, 1)
            for name in (names.QONNX, names.FOLDED)
        }
        record["activations"] = activation_forms(folder)
        cases.append(record)
        print(json.dumps(record, indent=1), flush=True)
    # a run of some widths keeps the record's other widths (each case carries its own date)
    for r in cases:
        r["date"] = date.today().isoformat()
    out = Path(args.results)
    kept = []
    if out.exists():
        previous = json.loads(out.read_text())
        if previous.get("board") == args.board and previous.get("synth") == (not args.no_synth):
            ran = {r["residual_bits"] for r in cases}
            kept = [
                {"date": previous.get("date"), **r} if "date" not in r else r
                for r in previous.get("cases", [])
                if r["residual_bits"] not in ran
            ]
    cases = sorted(kept + cases, key=lambda r: r["residual_bits"])
    payload = {
        "date": date.today().isoformat(),
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()},
        "board": args.board,
        "synth": not args.no_synth,
        "cases": cases,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    src = "Yosys" if not args.no_synth else "cost model"
    print(
        f"| residual bits | date | FPS meas. (est.) | LUT ({src}) | BRAM36 | URAM | DSP | fits | "
        "affine / thresholded MVAUs | rtlsim random / real mismatches | build | graph |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in cases:
        res = r["resources"] or r["cost_model"] or {}
        real = r.get("rtlsim_real") or {}
        act = r["activations"]
        print(
            f"| {r['residual_bits']} | {r['date']} | "
            f"{r['fps_measured']:.0f} ({r['fps_estimated']:.0f}) | "
            f"{res.get('LUT', 0):.0f} | {res.get('BRAM36', 0):g} | {res.get('URAM', 0)} | "
            f"{res.get('DSP', 0)} | {r['fits']} | {act['affine']} / {act['thresholded_mvaus']} | "
            f"{r['rtlsim_random']['mismatches']} of {r['rtlsim_random']['n']} / "
            f"{real.get('mismatches', '-')} of {real.get('n', '-')} | "
            f"{r['build_s']:.0f} s, {r['build_peak_rss_gib']:.1f} GiB | "
            f"{r['graph_mib']['qonnx.onnx']:g} MiB |"
        )


if __name__ == "__main__":
    main()
