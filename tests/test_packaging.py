"""Packaging and layering: the hardware sources travel inside the wheel and are found from a
plain (non-editable) install; the import-linter contract of pyproject.toml holds, and breaks
when a forbidden import is added."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bireal_fpga"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _copy_sources(dest: Path) -> Path:
    """The project's sources (package, pyproject, README) in ``dest``."""
    shutil.copytree(
        PACKAGE, dest / "bireal_fpga", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = _copy_sources(tmp_path_factory.mktemp("src"))
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = dist.glob("bireal_fpga-*.whl")
    return whl


def test_every_hardware_source_is_in_the_wheel(wheel: Path) -> None:
    inside = set(zipfile.ZipFile(wheel).namelist())
    hw_files = [p for p in (PACKAGE / "hw").rglob("*") if p.is_file()]
    assert len(hw_files) > 30  # boards, rtl, templates
    missing = [
        p.relative_to(ROOT).as_posix()
        for p in hw_files
        if p.relative_to(ROOT).as_posix() not in inside
    ]
    assert not missing, f"not in the wheel: {missing}"


def test_a_plain_install_finds_templates_rtl_and_boards(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target)]
        + [str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = (
        "import bireal_fpga.hw_files as h, bireal_fpga.boards as b, bireal_fpga.rtl.render as r\n"
        "print(h.hw_dir())\n"
        "print(b.load_board('zcu104').part)\n"
        "print(r.library_file('bireal_mvau.sv').is_file())\n"
        "print(len(r.render('layers/fifo.sv.j2', p=type('P', (), dict(node='f', width=8, "
        "depth=4, ram_style='srl'))())) > 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.split()
    assert lines[0].startswith(str(target)), lines  # the installed copy, not this checkout
    assert lines[1:] == ["xczu7ev-ffvc1156-2-e", "True", "True"], lines


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        timeout=300,
    )


def test_the_import_contract_holds() -> None:
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 3 kept, 0 broken" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "module,line,contract,chain",
    [
        (
            "models/bireal.py",
            "from bireal_fpga.rtl import stitch  # noqa",
            "Stages import only the stages below them",
            "bireal_fpga.models.bireal -> bireal_fpga.rtl.stitch",
        ),
        (
            "rtl/prepare.py",
            "import bireal_fpga.flow.steps  # noqa",
            "Stages import only the stages below them",
            "bireal_fpga.rtl.prepare -> bireal_fpga.flow.steps",
        ),
        (
            "golden/model.py",
            "from bireal_fpga import names  # noqa",
            "The golden model imports nothing of the project",
            "bireal_fpga.golden.model -> bireal_fpga.names",
        ),
        (
            "driver/accelerator.py",
            "from bireal_fpga.boards import load_board  # noqa",
            "The board driver needs numpy alone",
            "bireal_fpga.driver.accelerator -> bireal_fpga.boards",
        ),
    ],
    ids=["models-to-rtl", "rtl-to-flow", "golden-to-names", "driver-to-boards"],
)
def test_a_forbidden_import_breaks_the_contract(
    tmp_path: Path, module: str, line: str, contract: str, chain: str
) -> None:
    root = _copy_sources(tmp_path)
    path = root / "bireal_fpga" / module
    path.write_text(path.read_text() + f"\n{line}\n")
    proc = _lint(root)
    assert proc.returncode != 0, proc.stdout
    assert "1 broken" in proc.stdout, proc.stdout
    assert contract in proc.stdout and chain in proc.stdout, proc.stdout
