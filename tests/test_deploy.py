"""``bireal-fpga deploy``: the folder for the board, checked, whole and reproducible; the
driver wheel installed into a fresh virtual environment with numpy 1.26 and nothing else runs
the inference notebook's code there on the simulation, exactly."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_error, cli, run

from bireal_fpga import names
from bireal_fpga.deploy import DeployError, deploy
from bireal_fpga.deploy.wheel import MODULES
from bireal_fpga.integer.forward import integer_layers
from bireal_fpga.integer.params import IntegerNet


def test_deploy_folder_is_whole(tiny_deploy: Path) -> None:
    d = tiny_deploy
    info = json.loads((d / "deploy.json").read_text())
    for rel, digest in info["sha256"].items():
        assert hashlib.sha256((d / rel).read_bytes()).hexdigest() == digest, rel
    listed = set(info["sha256"])
    on_disk = {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()} - {"deploy.json"}
    assert listed == on_disk
    assert {"README.md", "requirements.txt", "report.json"} <= listed
    assert {"notebooks/inference.ipynb", "notebooks/inspect.ipynb"} <= listed
    assert "bitstream/bireal.bit" in listed and "bitstream/bireal.hwh" in listed
    assert "shell_sim/sim" in listed and os.access(d / "shell_sim" / "sim", os.X_OK)
    assert not [p for p in d.parent.iterdir() if ".partial" in p.name]
    # the wheel: the driver and exactly the modules it imports
    (wheel,) = (d / "driver").glob("*.whl")
    assert info["driver"] == f"driver/{wheel.name}"
    with zipfile.ZipFile(wheel) as z:
        got = {n for n in z.namelist() if not n.split("/")[0].endswith(".dist-info")}
        meta = next(n for n in z.namelist() if n.endswith("METADATA"))
        assert "Requires-Dist: numpy>=1.21" in z.read(meta).decode()
    assert got == {"bireal_fpga/__init__.py", *(f"bireal_fpga/{m}" for m in MODULES)}
    readme = (d / "README.md").read_text()
    assert f"pip install --no-deps --no-index driver/{wheel.name}" in readme
    assert "notebooks/inference.ipynb" in readme
    with np.load(d / "samples" / "cifar10_test.npz") as z:
        assert z["images"].shape == (64, 16, 16, 3) and z["images"].dtype == np.uint8
        assert z["labels"].shape == (64,)


def test_deploy_is_reproducible(tiny_deploy: Path, tiny_board: Path, tmp_path: Path) -> None:
    """The same build and data deploy to the same bytes (samples and wheel included)."""
    from conftest import SHARED_CIFAR

    data = str(SHARED_CIFAR) if SHARED_CIFAR.is_file() else None
    again = deploy(tiny_board, tmp_path / "again", data=data, n_samples=64, log=lambda _m: None)
    first = json.loads((tiny_deploy / "deploy.json").read_text())
    second = json.loads((again / "deploy.json").read_text())
    assert first == second


def test_deploy_refuses_with_one_line(tiny_rtl: Path, tiny_board: Path, tmp_path: Path) -> None:
    out = tmp_path / "d"
    line = assert_error(cli("deploy", tiny_rtl, "--out", out), "no bitstream/", "--sim-only")
    assert str(tiny_rtl) in line and not out.exists()
    (out / "x").mkdir(parents=True)
    assert_error(cli("deploy", tiny_board, "--out", out), "is not empty")
    assert_error(cli("deploy", tmp_path / "none", "--out", tmp_path / "n"), "is not a folder")
    assert_error(
        cli("deploy", tiny_board, "--out", tmp_path / "s", "--samples", "0"), "--samples 0"
    )
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(Exception, match="bad.npz"):
        deploy(tiny_board, tmp_path / "b", data=str(bad), log=lambda _m: None)
    assert not (tmp_path / "b").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    # a build without a bitstream deploys for the simulation when asked to
    sim_only = deploy(tiny_rtl, tmp_path / "sim", sim_only=True, n_samples=4, log=lambda _m: None)
    assert not (sim_only / names.BITSTREAM).exists()
    assert "none (simulation only)" in (sim_only / "README.md").read_text()
    with pytest.raises(DeployError):
        deploy(tiny_rtl, tmp_path / "sim2", n_samples=4, log=lambda _m: None)


def notebook_code(path: Path, *, skip_tag: str = "figure") -> str:
    """The code cells of a notebook not tagged ``skip_tag``, as one script."""
    nb = json.loads(path.read_text())
    cells = [
        "".join(c["source"])
        for c in nb["cells"]
        if c["cell_type"] == "code" and skip_tag not in c.get("metadata", {}).get("tags", [])
    ]
    return "\n\n".join(cells) + "\n"


def python310() -> str | None:
    """A Python 3.10 (PYNQ 3.x's), where this machine has one: on PATH, or pyenv's."""
    pyenv = sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.10.*/bin/python3.10"))
    for python in [*reversed(pyenv), shutil.which("python3.10")]:
        if python is None:
            continue
        probe = subprocess.run(
            [python, "-c", "import sys, venv; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 10)":  # not a bare shim
            return python
    return None


# (the interpreter, the numpy): this project's Python with a numpy 1.x; PYNQ 3.0's pairing
BOARD_PYTHONS = {
    "py311-numpy1.26": (sys.executable, "1.26.4"),
    "py310-numpy1.21": (python310(), "1.21.6"),
}


@pytest.fixture(scope="module", params=sorted(BOARD_PYTHONS))
def board_like_venv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A fresh virtual environment with an old numpy and nothing else (pip's own excepted):
    (its python, the numpy version)."""
    python, numpy_version = BOARD_PYTHONS[request.param]
    if python is None:
        pytest.skip("no Python 3.10 here (PYNQ 3.x's): install one, e.g. with pyenv, to check")
    venv = tmp_path_factory.mktemp(request.param) / "venv"
    proc = run([python, "-m", "venv", venv], timeout=300)
    assert proc.returncode == 0, proc.stderr
    py = venv / "bin" / "python"
    wheelhouse = os.environ.get("WHEELHOUSE")
    src = ["--no-index", "--find-links", wheelhouse] if wheelhouse else []
    proc = run([py, "-m", "pip", "install", "-q", *src, f"numpy=={numpy_version}"], timeout=600)
    if proc.returncode != 0 and "No matching distribution" in proc.stderr + proc.stdout:
        pytest.skip(f"numpy {numpy_version} cannot be installed here: {proc.stderr[-200:]}")
    assert proc.returncode == 0, proc.stderr
    return py, numpy_version


def test_deployed_driver_runs_in_a_fresh_venv_with_old_numpy(
    tiny_deploy: Path, tiny_board: Path, board_like_venv: tuple[Path, str], tmp_path: Path
) -> None:
    """The wheel installs offline (no dependencies fetched) beside numpy alone, and the
    inference notebook's code (its figure cells aside: no matplotlib here) runs on the
    simulation there and finds the outputs bit-exact."""
    py, numpy_version = board_like_venv
    (wheel,) = (tiny_deploy / "driver").glob("*.whl")
    proc = run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], timeout=300)
    assert proc.returncode == 0, proc.stderr
    listed = run([py, "-m", "pip", "list", "--format=json"], timeout=120)
    have = {p["name"].lower(): p["version"] for p in json.loads(listed.stdout)}
    assert have.pop("numpy") == numpy_version and "bireal-fpga-driver" in have
    assert set(have) - {"pip", "setuptools", "wheel"} == {"bireal-fpga-driver"}, have
    script = tmp_path / "inference.py"
    script.write_text(
        notebook_code(tiny_deploy / "notebooks" / "inference.ipynb")
        + "import sys\nprint('driver from', sys.modules['bireal_fpga'].__file__)\n"
    )
    env = {"PATH": os.environ["PATH"], "BIREAL_DEPLOY": str(tiny_deploy), "BIREAL_BACKEND": "sim"}
    proc = subprocess.run(
        [py, script],
        cwd=tiny_deploy / "notebooks",
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "accuracy" in proc.stdout.lower(), proc.stdout
    assert "bit-exact: 64/64 images equal PyTorch's integer form" in proc.stdout, proc.stdout
    assert f"driver from {py.parent.parent}" in proc.stdout, proc.stdout
    # what the deployment expects is PyTorch's integer form of its samples
    net = IntegerNet.load(tiny_board / names.INTEGER)
    with np.load(tiny_deploy / "samples" / "cifar10_test.npz") as z:
        ref = integer_layers(net, z["images"].transpose(0, 3, 1, 2))[names.HEAD]
        assert np.array_equal(z["expected"], ref)
