"""``bireal-fpga verify``: every stage's integer outputs against the PyTorch integer form.

Reference: the PyTorch integer inference form of the build's model (``model.pt``), derived
afresh. Stages:

``pytorch``  the build's stored ``integer.npz`` run by the PyTorch integer form (catches a
             stale or foreign integer form)
``golden``   the numpy golden model on ``integer.npz``
``python``   FINN's python execution of the HW-layer graph ``hw.onnx``

Comparison is exact (``np.array_equal`` on integers), layer by layer (``stem``,
``blocks.<i>``, ``head``); the first difference names the image, layer and index. Also
reported: top-1 agreement of the float training form with the integer form.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga.errors import BiRealError

STAGES = ("pytorch", "golden", "python", "rtlsim")


def _first_difference(ref: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> str | None:
    """``"image I, layer L at (c, y, x)"`` of the first mismatch in layer order, or None."""
    order = ["stem"] + sorted(
        (k for k in ref if k.startswith("blocks.")), key=lambda k: int(k.split(".")[1])
    )
    order += ["head", "top1"]
    for name in order:
        if name not in got:
            continue
        a, b = ref[name], got[name]
        if a.shape != b.shape:
            return f"layer {name}: shape {b.shape} != {a.shape}"
        if not np.array_equal(a, b):
            idx = tuple(int(i) for i in np.argwhere(a != b)[0])
            where = f" at {idx[1:]}" if len(idx) > 1 else ""
            return f"image {idx[0]}, layer {name}{where}: {int(b[idx])} != {int(a[idx])}"
    return None


def load_images(spec: dict[str, Any], n: int, images_file: str | None, seed: int) -> np.ndarray:
    """``n`` uint8 NCHW images: from ``images_file`` (an ``.npz`` with ``images`` [N,C,H,W],
    or any data path the readers accept: its test split), else random with ``seed``."""
    c, h = spec["input_channels"], spec["input_size"]
    if images_file is None:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (n, c, h, h), dtype=np.uint8)
    if images_file.endswith(".npz") and Path(images_file).is_file():
        with np.load(images_file, allow_pickle=False) as z:
            if "images" in z.files:
                images = z["images"]
                if images.dtype != np.uint8 or images.shape[1:] != (c, h, h):
                    raise BiRealError(
                        f"images '{images_file}' must be uint8 [N, {c}, {h}, {h}], got "
                        f"{images.dtype} {list(images.shape)}"
                    )
                return images[:n]
    from bireal_fpga.data import open_data

    source = open_data(images_file, image_size=h, channels=c)
    test = source.test
    take = min(n, len(test))
    if hasattr(test, "images"):
        return test.images[:take].numpy()
    return np.stack([test[i][0].numpy() for i in range(take)])


def verify(
    build_dir: str | Path,
    stages: list[str],
    *,
    n: int,
    images_file: str | None = None,
    seed: int = 0,
    progress: bool = False,
    jobs: int | None = None,
) -> dict[str, Any]:
    import torch  # here: `sim` needs no torch (a second of start-up)

    from bireal_fpga.golden.model import GoldenModel
    from bireal_fpga.integer.derive import integer_form
    from bireal_fpga.integer.forward import run_integer
    from bireal_fpga.integer.params import IntegerNet
    from bireal_fpga.train.checkpoint import load_checkpoint

    out = Path(build_dir)
    for stage in stages:
        if stage not in STAGES:
            raise BiRealError(f"unknown stage '{stage}' (known: {', '.join(STAGES)})")
    if n < 1:
        raise BiRealError(f"--n must be >= 1, got {n}")
    report_path = out / "report.json"
    if not report_path.is_file():
        raise BiRealError(f"'{out}' is not a build folder (no report.json)")
    needs = {
        "pytorch": "integer.npz",
        "golden": "integer.npz",
        "python": "hw.onnx",
        "rtlsim": "rtl/manifest.json",
    }
    for stage in stages:
        if not (out / needs[stage]).is_file():
            raise BiRealError(f"build '{out}' has no {needs[stage]} for stage '{stage}'")
    model = load_checkpoint(out / "model.pt").build_model()
    images = load_images(model.spec.to_dict(), n, images_file, seed)
    n_img = len(images)
    ref_net = integer_form(model)
    ref_t: dict[str, torch.Tensor] = {}
    ref_scores = run_integer(ref_net, torch.from_numpy(images), trace=ref_t).numpy()
    ref = {k: v.numpy() for k, v in ref_t.items()}
    result: dict[str, Any] = {"stages": {}}
    for stage in stages:
        got: dict[str, np.ndarray] = {}
        if stage == "pytorch":
            stored = IntegerNet.load(out / "integer.npz")
            tr: dict[str, torch.Tensor] = {}
            run_integer(stored, torch.from_numpy(images), trace=tr)
            got = {k: v.numpy() for k, v in tr.items()}
        elif stage == "golden":
            GoldenModel(out / "integer.npz").run(images, trace=got)
        elif stage == "rtlsim":
            outputs, timing, _ = _run_stitched(out, images, progress=progress, jobs=jobs)
            if outputs.shape[1] == 1:
                got["top1"] = outputs[:, 0]
                ref["top1"] = ref_scores.argmax(1)
            else:
                got["head"] = outputs
            result.setdefault("rtlsim_timing", timing.to_dict())
            del result["rtlsim_timing"]["frame_end_cycles"]
        else:
            from qonnx.core.modelwrapper import ModelWrapper

            from bireal_fpga.execution.finn_python import run_finn_python

            outputs = run_finn_python(
                ModelWrapper(str(out / "hw.onnx")), images, trace=got, progress=progress
            )
            if outputs.shape[1] == 1:  # a top-1 build: the output is the best class index
                got["top1"] = outputs[:, 0]
                ref["top1"] = ref_scores.argmax(1)
        bad = [
            i
            for i in range(n_img)
            if any(not np.array_equal(ref[k][i], got[k][i]) for k in got if k in ref)
        ]
        first = None
        if bad and stage == "rtlsim":  # replay the first bad image, recording every layer
            replay, _, got = _run_stitched(out, images[bad[:1]], trace=True)
            if "top1" in ref:
                got["top1"] = replay[:, 0]
            bad_ref = {k: v[bad[:1]] for k, v in ref.items()}
            first = _first_difference(bad_ref, got)
            first = first.replace("image 0", f"image {bad[0]}", 1) if first else first
        elif bad:
            first = _first_difference(
                {k: v[bad[:1]] for k, v in ref.items()}, {k: v[bad[:1]] for k, v in got.items()}
            )
            first = first.replace("image 0", f"image {bad[0]}", 1) if first else first
        result["stages"][stage] = {"n": n_img, "mismatches": len(bad), "first_mismatch": first}
    with torch.no_grad():
        float_top1 = model(torch.from_numpy(images).float() / 255.0).argmax(1).numpy()
    agree = float_top1 == ref_scores.argmax(1)
    result["float_top1_agreement"] = float(agree.mean())
    result["float_top1_disagreements"] = int((~agree).sum())
    return result


def _run_stitched(
    out: Path,
    images: np.ndarray,
    *,
    progress: bool = False,
    trace: bool = False,
    jobs: int | None = None,
) -> tuple[np.ndarray, Any, dict[str, np.ndarray]]:
    """The stitched design's outputs, timing and (``trace``) recorded layer outputs."""
    from bireal_fpga.rtl.stitch import load_design
    from bireal_fpga.rtlsim.stitched import StitchedSim

    design = load_design(out / "rtl")
    if progress:
        print(f"[rtlsim] {len(images)} images through {design.top} (Verilator) ...", flush=True)
    layers: dict[str, np.ndarray] = {}
    outputs, timing, _ = StitchedSim(design, out / "sim").run(
        images, trace=layers if trace else None, jobs=jobs
    )
    if trace and "head" not in layers and outputs.shape[1] > 1:
        layers["head"] = outputs
    return outputs, timing, layers


def simulate(
    build_dir: str | Path,
    *,
    n: int,
    images_file: str | None = None,
    seed: int = 0,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Outputs and measured cycles of the stitched RTL on ``n`` images."""
    out = Path(build_dir)
    if not (out / "report.json").is_file():
        raise BiRealError(f"'{out}' is not a build folder (no report.json)")
    if not (out / "rtl" / "manifest.json").is_file():
        raise BiRealError(f"build '{out}' has no RTL (build it with --until rtl)")
    report = json.loads((out / "report.json").read_text())
    images = load_images(report["spec"], n, images_file, seed)
    outputs, timing, _ = _run_stitched(out, images, jobs=jobs)
    clock = float(report["board"]["clock_mhz"])
    return {
        "n": len(images),
        "outputs": outputs.tolist(),
        "timing": timing.to_dict(),
        "clock_mhz": clock,
        "fps": timing.fps(clock),
    }
