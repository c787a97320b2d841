"""cppsim of whole graphs: every node of a build's folded graph in finn-hlslib C++ (g++, no
Vitis), through ``verify --stages cppsim`` and the build's ``--cppsim`` check, equals the
PyTorch integer form layer by layer, exactly: on every spec shape the tests know (random
weights), in top-1 mode, on random and real images. A changed threshold and a flipped weight
bit are caught, naming the node. Skipped, with the reason, only where finn-hlslib is not found.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ENV, SHARED_CIFAR, assert_ok, cli, run

from bireal_fpga import names

SHAPES = [
    "tiny",
    "odd-sizes",
    "one-block-width-change-stride1",
    "grey-28",
    "narrow-bits",
    "imagenet-stem",
    "zero-pad-odd-11",
]
"""Every spec shape of ``test_integer_exact.SPECS``."""


def _verify(folder: Path, n: int, **kw) -> dict:
    from bireal_fpga.flow.verify import verify

    result = verify(folder, ["cppsim"], n=n, **kw)
    return result["stages"]["cppsim"]


@pytest.mark.parametrize("name", SHAPES, ids=SHAPES)
def test_cppsim_equals_pytorch(name: str, spec_hw, cppsim_toolchain) -> None:
    r = _verify(spec_hw(name), 3, seed=5)
    assert r["n"] == 3
    assert r["mismatches"] == 0, r["first_mismatch"]


def test_cppsim_top1(spec_hw, cppsim_toolchain) -> None:
    """A --top1 build's graph (LabelSelect) in C++: the class index, and every layer."""
    r = _verify(spec_hw("tiny", top1=True), 4, seed=6)
    assert r["mismatches"] == 0, r["first_mismatch"]


def test_cppsim_real_images(tiny_hw: Path, cppsim_toolchain, tmp_path: Path) -> None:
    """CIFAR-10 test images (their central 16x16 pixels: the tiny net's input)."""
    if not SHARED_CIFAR.is_file():
        pytest.skip(f"real images not found: {SHARED_CIFAR} (this project's ../shared/data)")
    from bireal_fpga.data import open_data

    test = open_data(str(SHARED_CIFAR), image_size=32, channels=3).test
    photos = np.stack([test[i][0].numpy() for i in range(12)])[:, :, 8:24, 8:24]
    np.savez(tmp_path / "real.npz", images=np.ascontiguousarray(photos))
    r = _verify(tiny_hw, 12, images=str(tmp_path / "real.npz"))
    assert r["n"] == 12
    assert r["mismatches"] == 0, r["first_mismatch"]


def test_every_node_runs_in_cpp(tiny_hw: Path, cppsim_toolchain, tmp_path: Path) -> None:
    """No node falls back to python: each has an executable, and the report says whose code
    it is and which finn-hlslib function it calls."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.cppsim.graph import CppsimGraph

    graph = CppsimGraph(ModelWrapper(str(tiny_hw / names.FOLDED)), tmp_path)
    report = graph.report_dict()
    nodes = report["nodes"]
    assert [n["node"] for n in nodes] == [n.name for n in graph.model.graph.node]
    assert all(p.exe.is_file() for p in graph.nodes)
    by_op = {n["op_type"]: n["code"] for n in nodes}
    assert by_op["ConvolutionInputGenerator_rtl"] == "bireal-fpga"
    assert by_op["FMPadding_rtl"] == "bireal-fpga"
    assert by_op["MVAU_hls"] == "finn-plus"
    assert "StreamingDataWidthConverter_hls" in by_op  # the RTL's width converters too
    assert all(n["function"] for n in nodes), nodes
    assert report["compile"]["nodes"] == len(nodes)
    # a second graph of the same build compiles nothing: every executable is cached
    again = CppsimGraph(ModelWrapper(str(tiny_hw / names.FOLDED)), tmp_path / "again")
    assert again.compile_stats.compiled == 0
    assert [p.exe for p in again.nodes] == [p.exe for p in graph.nodes]


def _tampered(tiny_hw: Path, tmp_path: Path, change) -> tuple[Path, str]:
    """A copy of the build whose folded graph has one parameter of one node changed by
    ``change(model) -> node name``."""
    from qonnx.core.modelwrapper import ModelWrapper

    folder = tmp_path / "build"
    shutil.copytree(tiny_hw, folder)
    model = ModelWrapper(str(folder / names.FOLDED))
    node = change(model)
    model.save(str(folder / names.FOLDED))
    return folder, node


def _binary_mvau(model) -> tuple[object, str, str]:
    from qonnx.core.datatype import DataType

    for node in model.graph.node:
        if node.op_type.startswith("MVAU") and model.get_tensor_datatype(node.input[1]) in (
            DataType["BINARY"],
            DataType["BIPOLAR"],
        ):
            return node, node.input[1], node.input[2]
    raise AssertionError("no binary MVAU")


def test_changed_threshold_is_caught(tiny_hw: Path, cppsim_toolchain, tmp_path: Path) -> None:
    def change(model) -> str:
        node = next(n for n in model.graph.node if n.op_type.startswith("MVAU"))  # the stem
        t = model.get_initializer(node.input[2]).copy()
        t[0] = t.min() - 1  # channel 0's thresholds below every accumulator: always the top level
        model.set_initializer(node.input[2], t)
        return node.name

    folder, node = _tampered(tiny_hw, tmp_path, change)
    r = _verify(folder, 4, seed=3)
    assert r["mismatches"] > 0
    assert f"first differing node: {node} " in r["first_mismatch"], r["first_mismatch"]
    assert "parameters differ" in r["first_mismatch"]


def test_flipped_weight_bit_is_caught(tiny_hw: Path, cppsim_toolchain, tmp_path: Path) -> None:
    def change(model) -> str:
        node, w, _ = _binary_mvau(model)
        weights = model.get_initializer(w).copy()
        weights.flat[5] = 1 - weights.flat[5]  # one binary weight bit flipped
        model.set_initializer(w, weights)
        return node.name

    folder, node = _tampered(tiny_hw, tmp_path, change)
    r = _verify(folder, 8, seed=3)
    assert r["mismatches"] > 0
    assert f"first differing node: {node} " in r["first_mismatch"], r["first_mismatch"]


def test_build_cppsim_check(tiny_hw: Path, cppsim_toolchain, tmp_path: Path) -> None:
    """``build --cppsim`` on a folded build: the check runs, exact; its report lists every
    node's code; without the flag the step records that it did not run."""
    folder = tmp_path / "build"
    shutil.copytree(tiny_hw, folder)
    r = cli(
        "build",
        "tiny",
        "--board",
        "PYNQ-Z2",
        "--out",
        str(folder),
        "--until",
        "hw",
        "--cppsim",
        "--n",
        "3",
    )
    assert_ok(r)
    report = json.loads((folder / names.REPORT).read_text())
    c = report["cppsim"]
    assert c["status"] == "exact" and c["n"] == 3 and c["mismatches"] == 0
    assert {n["code"] for n in c["nodes"]} == {"finn-plus", "bireal-fpga"}
    assert next(s for s in report["stages"] if s["name"] == "folding")["reused"]
    r = cli("build", "tiny", "--board", "PYNQ-Z2", "--out", str(folder), "--until", "hw")
    assert_ok(r)
    assert json.loads((folder / names.REPORT).read_text())["cppsim"] == {"status": "off"}


def test_verify_cli_names_layer_and_node(tiny_hw: Path, cppsim_toolchain, tmp_path: Path) -> None:
    def change(model) -> str:
        node, w, _ = _binary_mvau(model)
        weights = model.get_initializer(w).copy()
        model.set_initializer(w, 1 - weights)  # every weight bit of the node flipped
        return node.name

    folder, node = _tampered(tiny_hw, tmp_path, change)
    r = cli("verify", str(folder), "--stages", "cppsim", "--n", "3")
    assert r.returncode == 1, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("cppsim"))
    assert "3/3 mismatches" in line, line
    assert "stem" in line or "blocks." in line, line  # the first differing layer
    assert f"first differing node: {node} " in line, line


def test_missing_finn_hlslib_stops_a_cppsim_build(tiny_hw: Path, tmp_path: Path) -> None:
    folder = tmp_path / "build"
    shutil.copytree(tiny_hw, folder)
    argv = [sys.executable, "-m", "bireal_fpga", "build", "tiny", "--board", "PYNQ-Z2"]
    argv += ["--out", str(folder), "--until", "hw", "--cppsim"]
    r = run(argv, env={**ENV, "FINN_HLSLIB": str(tmp_path / "nowhere")})
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]  # after the build's progress lines
    assert last.startswith("error: finn-hlslib not found"), last
    assert "FINN_HLSLIB" in last and "git clone" in last, last
