"""The project's Bi-Real-18-CIFAR through the Brevitas front door: ``export-brevitas``, then
``build`` of that QONNX file, against the direct build of the checkpoint.

1. the checkpoint (random weights, BN calibrated, seed 0) and its integer form (direct path);
2. ``brevitas.export.export_qonnx`` of it (``bireal_fpga.export.brevitas_export``), and the
   import: every weight, threshold and bias compared with the direct integer form;
3. ``build`` of the exported file for the board to the RTL (no Yosys), and ``verify`` with
   ``source, golden, python, rtlsim`` on ``--real`` CIFAR-10 test images and ``--random``
   random ones; the outputs of the imported build compared with the direct integer form's.

``--finn-streamline``: the exported file goes through FINN's front end first
(``ConvertQONNXtoFINN`` + ``Streamline``, as a FINN user runs it), and the streamlined file
is imported and built instead (record ``brevitas_import_streamlined_bireal18_cifar.json``).

    .venv/bin/python benchmarks/brevitas_import.py --data ../shared/data/cifar10_jpeg.npz \\
        [--board ZCU104] [--target-fps max] [--real 100 --random 100] [--out-dir /tmp/bench_brev]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results" / "brevitas_import_bireal18_cifar.json"
STREAMLINED = RESULTS.with_name("brevitas_import_streamlined_bireal18_cifar.json")


def finn_streamline(src: Path, dst: Path) -> Path:
    """FINN's front end on an export: ``ConvertQONNXtoFINN`` then ``Streamline``."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    from bireal_fpga.hwlayers.finn_env import finn_ready

    finn_ready()
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from finn.transformation.streamline import Streamline

    model = cleanup_model(ModelWrapper(str(src))).transform(ConvertQONNXtoFINN())
    model.transform(Streamline()).save(str(dst))
    return dst


def _layers(net):  # type: ignore[no-untyped-def]
    yield "stem", net.stem
    for i, b in enumerate(net.blocks):
        yield f"blocks.{i}.conv", b.conv
        if b.down is not None:
            yield f"blocks.{i}.down", b.down


def compare_forms(direct, imported) -> dict:  # type: ignore[no-untyped-def]
    differ = {}
    n_thr = 0
    for (key, a), (_, b) in zip(_layers(direct), _layers(imported), strict=True):
        n_thr += a.act.thresholds.size
        d_w = int(np.sum(a.weight != b.weight))
        d_t = int(np.sum(a.act.thresholds != b.act.thresholds))
        if d_w or d_t:
            differ[key] = {"weights": d_w, "thresholds": d_t}
    return {
        "layers_compared": sum(1 for _ in _layers(direct)),
        "thresholds_compared": n_thr,
        "differing_layers": differ,
        "head_weight_equal": bool(np.array_equal(direct.head_weight, imported.head_weight)),
        "head_bias_equal": bool(np.array_equal(direct.head_bias, imported.head_bias)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--board", default="ZCU104")
    ap.add_argument("--target-fps", default="max")
    ap.add_argument("--real", type=int, default=100)
    ap.add_argument("--random", type=int, default=100)
    ap.add_argument("--out-dir", default="/tmp/bench_brevitas")
    ap.add_argument("--finn-streamline", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    args.out = args.out or str(STREAMLINED if args.finn_streamline else RESULTS)

    from bireal_fpga.export.brevitas_export import export_brevitas
    from bireal_fpga.flow import BuildConfig, build, verify
    from bireal_fpga.flow.verify import open_images, random_images
    from bireal_fpga.importer.bireal import read_qonnx
    from bireal_fpga.integer.derive import integer_form
    from bireal_fpga.integer.forward import integer_layers
    from bireal_fpga.models.bireal import BiRealNet
    from bireal_fpga.models.calibration import calibrated_random_model
    from bireal_fpga.spec import preset
    from bireal_fpga.train.checkpoint import save_checkpoint

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = calibrated_random_model(BiRealNet(preset("bireal18-cifar")), seed=0)
    save_checkpoint(out / "model.pt", model)
    direct = integer_form(model)

    t0 = time.perf_counter()
    onnx_file = export_brevitas(model, out / "bireal18_cifar_brevitas.onnx")
    export_s = time.perf_counter() - t0
    streamline_s = None
    if args.finn_streamline:
        t0 = time.perf_counter()
        onnx_file = finn_streamline(onnx_file, out / "bireal18_cifar_streamlined.onnx")
        streamline_s = round(time.perf_counter() - t0, 1)
        print(f"FINN front end {streamline_s} s", file=sys.stderr)
    t0 = time.perf_counter()
    imported, smap, details = read_qonnx(onnx_file)
    import_s = time.perf_counter() - t0
    forms = compare_forms(direct, imported)
    print(f"export {export_s:.1f} s, import {import_s:.1f} s: {forms}", file=sys.stderr)

    folder = out / f"build_{args.board}{'_streamlined' if args.finn_streamline else ''}"
    t0 = time.perf_counter()
    cfg = BuildConfig(
        str(onnx_file),
        args.board,
        str(folder),
        target_fps=args.target_fps,
        synth=False,
        to_step="rtlsim",
    )
    result = build(cfg, log=lambda m: print(m, file=sys.stderr))
    build_s = time.perf_counter() - t0
    report = result.report

    shape = tuple(direct.input_shape)
    sets = {
        "real": open_images(shape, args.real, args.data, 0),  # type: ignore[arg-type]
        "random": random_images(shape, args.random, 1),  # type: ignore[arg-type]
    }
    stages = ["source", "golden", "python", "rtlsim"]
    verified = {}
    same_as_direct = {}
    for label, images in sets.items():
        t0 = time.perf_counter()
        npz = out / f"{label}.npz"
        np.savez(npz, images=images.batch(0, images.n))
        r = verify(folder, stages, n=images.n, images=str(npz), jobs=os.cpu_count())
        r["seconds"] = round(time.perf_counter() - t0, 1)
        verified[label] = r
        print(f"verify {label}: {r['stages']}", file=sys.stderr)
        x = images.batch(0, images.n)
        a, b = integer_layers(direct, x), integer_layers(imported, x)
        same_as_direct[label] = {
            "n": images.n,
            "equal_layers": all(np.array_equal(a[k], b[k]) for k in a),
            "differing_values": {k: int(np.sum(a[k] != b[k])) for k in a if np.any(a[k] != b[k])},
        }
    record = {
        "benchmark": "brevitas_import",
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "model": "bireal18-cifar (random weights, calibrated BN; seed 0)",
        "board": args.board,
        "target_fps": args.target_fps,
        "export_seconds": round(export_s, 1),
        "finn_streamline_seconds": streamline_s,
        "import_seconds": round(import_s, 2),
        "imported": {"nodes": smap.nodes, **details},
        "integer_forms": forms,
        "build_seconds": round(build_s, 1),
        "build_stage_seconds": {s["name"]: round(s["seconds"], 1) for s in report["stages"]},
        "rtl_fps": report.get("rtl", {}).get("fps"),
        "verify": verified,
        "outputs_equal_to_direct": same_as_direct,
        # the build computes its file exactly; equal_to_direct: and that file the checkpoint
        "exact": all(s["mismatches"] == 0 for r in verified.values() for s in r["stages"].values()),
        "equal_to_direct": all(v["equal_layers"] for v in same_as_direct.values()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(
        json.dumps({k: record[k] for k in ("integer_forms", "exact", "equal_to_direct")}, indent=2)
    )


if __name__ == "__main__":
    main()
