"""The deployment folder: everything a board needs to run one build, checked, written whole.

::

    DIR/README.md          the two commands to run on the board
    DIR/requirements.txt   what the board's Python needs (numpy; matplotlib for the notebooks)
    DIR/driver/            the driver as a wheel (numpy alone; installs offline)
    DIR/bitstream/         <base>.bit, <base>.hwh, manifest.json, weights.bin (the board)
    DIR/shell_sim/         the compiled model of shell + accelerator (the simulation backend)
    DIR/notebooks/         inference.ipynb, inspect.ipynb
    DIR/samples/           cifar10_test.npz: images [N, H, W, C] uint8, labels, classes, and
                           expected: PyTorch's integer form of them (what run() must return)
    DIR/report.json        the build's report (the inspection notebook plots it)
    DIR/deploy.json        what this is: build, board, every file's sha256

It is written into a temporary folder beside ``DIR`` and renamed into place at the end, so a
failed deploy leaves nothing that looks like a deployment.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga import names
from bireal_fpga.deploy.wheel import DIST, EPOCH, write_wheel
from bireal_fpga.driver.errors import DriverError
from bireal_fpga.driver.files import check_bitstream, check_sim, locate, sha256_file
from bireal_fpga.errors import BiRealError
from bireal_fpga.hw_files import notebooks_dir
from bireal_fpga.vivado import project_version

FORMAT = "bireal-fpga deployment 1"
SAMPLES = "samples/cifar10_test.npz"
NOTEBOOKS = ("inference.ipynb", "inspect.ipynb")
DEFAULT_SAMPLES = 256
REQUIREMENTS = """\
# What the board's Python needs for the driver and the notebooks. PYNQ images ship both
# (PYNQ 3.x: Python 3.10, numpy 1.21-1.26); the driver works with numpy 1.21 and later, 2.x too.
numpy>=1.21
matplotlib>=3.5
"""


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed``, byte for byte the same for the same arrays (fixed entry
    timestamps; numpy's own stamps the time of writing)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for key, arr in arrays.items():
            entry = zipfile.ZipInfo(f"{key}.npy", date_time=EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            with z.open(entry, "w") as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)


class DeployError(BiRealError):
    """A build that cannot be deployed (no simulation, no bitstream, an unusable data set)."""


def _samples(
    data: str | None, n: int, shape: tuple[int, int, int], seed: int
) -> dict[str, np.ndarray]:
    """``n`` test images of ``data`` at the accelerator's ``shape`` (H, W, C), with labels and
    class names; without ``data``: random images, labels -1."""
    h, w, c = shape
    if data is None:
        rng = np.random.default_rng(seed)
        return {
            "images": rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8),
            "labels": np.full(n, -1, dtype=np.int64),
            "classes": np.array([], dtype=str),
            "source": np.array(f"random (seed {seed}): no --data given"),
        }
    from PIL import Image

    from bireal_fpga.data import open_data

    src = open_data(data)
    if src.channels != c:
        raise DeployError(f"data '{data}' has {src.channels} channels, the accelerator takes {c}")
    test = src.test
    count = min(n, len(test))
    images = np.empty((count, h, w, c), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    for i in range(count):
        x, y = test[i]
        img = x.numpy().transpose(1, 2, 0)  # uint8 CHW -> HWC
        if img.shape[:2] != (h, w):
            pil = Image.fromarray(img[..., 0] if c == 1 else img)
            img = np.asarray(pil.resize((w, h), Image.Resampling.BOX)).reshape(h, w, c)
        images[i], labels[i] = img, int(y)
    size = f"{src.size[0]}x{src.size[1]}" + ("" if src.size == (h, w) else f" resized to {h}x{w}")
    return {
        "images": images,
        "labels": labels,
        "classes": np.array(src.classes, dtype=str),
        "source": np.array(f"{src.format} '{data}', test split, first {count} ({size})"),
    }


def expected_outputs(build: Path, images: np.ndarray, shell: dict[str, Any]) -> np.ndarray:
    """What ``Accelerator.run(images)`` must return: PyTorch's integer form of the build
    (class scores ``[N, classes]``, or ``[N, 1]`` best classes for a ``--top1`` build), so
    the board checks itself bit for bit."""
    from bireal_fpga.integer.forward import integer_layers
    from bireal_fpga.integer.params import IntegerNet

    path = build / names.INTEGER
    if not path.is_file():
        raise DeployError(f"'{path}' is missing: not a finished build")
    layers = integer_layers(IntegerNet.load(path), images.transpose(0, 3, 1, 2))
    if shell["output"].get("values") == "top1":
        return np.asarray(layers[names.TOP1], dtype=np.int64).reshape(-1, 1)
    return np.asarray(layers[names.HEAD], dtype=np.int64)


def _readme(info: dict[str, Any], wheel: str) -> str:
    board = info["board"] or "the board"
    bit = info["bitstream"]
    lines = [
        f"# bireal-fpga deployment: build {info['build_id']} for {board}",
        "",
        "Copy this folder to the board (e.g. `scp -r` into `~/jupyter_notebooks/`), then, in a "
        "terminal on the board with PYNQ's Python active (a terminal of the board's Jupyter, or "
        "`sudo -i` then `source /etc/profile.d/pynq_venv.sh`), in this folder:",
        "",
        "```",
        f"python3 -m pip install --no-deps --no-index driver/{wheel}",
        "python3 -m jupyter nbconvert --to notebook --execute notebooks/inference.ipynb",
        "```",
        "",
        "The first installs the driver into PYNQ's Python (numpy is already there; nothing is "
        "downloaded); the second runs the inference notebook (or open `notebooks/` in the "
        "board's Jupyter, port 9090). The notebooks pick the board when pynq finds one and the "
        "simulation (`shell_sim/`) otherwise, so the same folder runs on a Linux PC: "
        f"`python3 -m pip install numpy driver/{wheel}`.",
        "",
        "From Python: `from bireal_fpga.driver import Accelerator; "
        "acc = Accelerator.open('.'); acc.run(images)`.",
        "",
        f"- bitstream: {'bitstream/ (' + str(bit) + ')' if bit else 'none (simulation only)'}",
        f"- samples: {info['samples']}",
        "- `requirements.txt`: the board's Python needs; `deploy.json`: every file's sha256.",
        "",
    ]
    return "\n".join(lines)


def deploy(
    build: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    data: str | None = None,
    n_samples: int = DEFAULT_SAMPLES,
    sim_only: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> Path:
    """Write the deployment folder of the build folder ``build`` to ``out`` (new or empty);
    its path. ``data``: the data set the sample images come from (its test split); without
    it the samples are random images. ``sim_only``: deploy a build without a bitstream (it
    then runs on the simulation only)."""
    build, out = Path(build), Path(out)
    try:
        where = locate(build)
    except DriverError as exc:
        raise DeployError(str(exc)) from None
    if where.root != build or where.sim is None:
        raise DeployError(
            f"'{build}' is not a build folder with {names.SHELL_SIM}/ (build through shell-sim)"
        )
    if n_samples < 1:
        raise DeployError(f"--samples {n_samples} is not a positive number of images")
    try:
        sim_manifest, shell = check_sim(where.sim)
        bitstream = check_bitstream(where.bitstream) if where.bitstream else None
    except DriverError as exc:
        raise DeployError(str(exc)) from None
    if bitstream is None and not sim_only:
        raise DeployError(
            f"'{build}' has no {names.BITSTREAM}/ (Vivado has not run): build the bitstream, "
            "or pass --sim-only for a deployment that runs on the simulation only"
        )
    if bitstream is not None and bitstream.get("build_id") != shell["build_id"]:
        raise DeployError(
            f"'{where.bitstream}' is of build {bitstream.get('build_id')}, '{where.sim}' of "
            f"{shell['build_id']}"
        )
    report = build / names.REPORT
    if not report.is_file():
        raise DeployError(f"'{report}' is missing: not a finished build")
    nb_dir = notebooks_dir()
    if nb_dir is None or not all((nb_dir / nb).is_file() for nb in NOTEBOOKS):
        raise DeployError(
            "the notebooks are not installed (notebooks/ of the repository beside the package)"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DeployError(f"'{out}' is not empty: a deployment folder is made new")
    h, w, c = (int(s) for s in shell["image"]["shape"])
    samples = _samples(data, n_samples, (h, w, c), seed)  # before anything is written
    samples["expected"] = expected_outputs(build, samples["images"], shell)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        log(f"deploy: {names.SHELL_SIM}/" + (f", {names.BITSTREAM}/" if bitstream else ""))
        shutil.copytree(where.sim, tmp / names.SHELL_SIM)
        if where.bitstream is not None:
            shutil.copytree(where.bitstream, tmp / names.BITSTREAM)
        (tmp / "notebooks").mkdir()
        for nb in NOTEBOOKS:
            shutil.copyfile(nb_dir / nb, tmp / "notebooks" / nb)
        (tmp / "samples").mkdir()
        write_npz(tmp / SAMPLES, samples)
        shutil.copyfile(report, tmp / names.REPORT)
        (tmp / "driver").mkdir()
        version = project_version()
        wheel = write_wheel(tmp / "driver", version if version != "unknown" else "0.0.0")
        log(f"deploy: driver/{wheel.name}, {len(samples['images'])} sample images")
        (tmp / "requirements.txt").write_text(REQUIREMENTS)
        info = {
            "format": FORMAT,
            "build_id": shell["build_id"],
            "board": sim_manifest.get("board"),
            "bitstream": (bitstream or {}).get("files", {}).get("bitstream"),
            "driver": f"driver/{wheel.name}",
            "driver_dist": DIST,
            "samples": str(samples["source"]),
            "project_version": version,
        }
        (tmp / "README.md").write_text(_readme(info, wheel.name))
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        info["sha256"] = {str(p.relative_to(tmp)): sha256_file(p) for p in files}
        (tmp / "deploy.json").write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
