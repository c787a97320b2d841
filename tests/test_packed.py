"""Packed inference checkpoints (``bireal_fpga.train.packed``, ``bireal-fpga pack``) and the
shipped-models manifest (``bireal_fpga.models.shipped``, ``models/manifest.json``).

A packed file must load through ``load_checkpoint`` as the full checkpoint it came from: the
same integer form array for array, the same float outputs bit for bit, the stored ``alpha``
bit for bit (also where a float32 mean of equal values misses it); it is several times
smaller, holds no training state, and every corrupt or refused input is one clear error that
names the file and the entry, with nothing written.

Budget: a few seconds in process (one intra-op thread: for nets this small a second gains
little, and beside a busy core it costs several times over), plus four ``bireal-fpga``
commands run two at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import assert_error, assert_ok, cli

from bireal_fpga import names
from bireal_fpga.cli.main import main
from bireal_fpga.errors import CheckpointError
from bireal_fpga.integer.derive import integer_form
from bireal_fpga.integer.params import IntegerNet
from bireal_fpga.models import shipped
from bireal_fpga.models.bireal import BiRealNet, preprocess
from bireal_fpga.models.calibration import calibrated_random_model
from bireal_fpga.models.shipped import (
    ManifestError,
    ShippedModel,
    default_manifest,
    load_manifest,
    repo_root,
    shipped_for_board,
    verify_shipped,
)
from bireal_fpga.quant.functions import channel_alpha
from bireal_fpga.spec import BiRealSpec, preset
from bireal_fpga.train import packed
from bireal_fpga.train.checkpoint import load_checkpoint, save_checkpoint
from bireal_fpga.train.config import TrainConfig
from bireal_fpga.train.run import resume_state

TINY = preset("tiny-mnist")
ZERO_PAD = TINY.replace(name="tiny-mnist-zero", binary_padding="zero")
CARD = {"dataset": "MNIST", "top1": 0.5, "notes": ["random weights"]}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread for this file's tests (the module docstring says why)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_model(spec: BiRealSpec = TINY, seed: int = 5) -> BiRealNet:
    """A fresh ``spec`` net with random BN affine and calibrated statistics (eval)."""
    torch.manual_seed(seed)
    return calibrated_random_model(BiRealNet(spec), seed=seed)


def integer_arrays(net: IntegerNet) -> dict[str, np.ndarray]:
    """Every array of an integer form, by layer and field."""
    arrays = {"stem.weight": net.stem.weight, "stem.thresholds": net.stem.act.thresholds}
    for i, block in enumerate(net.blocks):
        for part, layer in (("conv", block.conv), ("down", block.down)):
            if layer is not None:
                arrays[f"blocks.{i}.{part}.weight"] = layer.weight
                arrays[f"blocks.{i}.{part}.thresholds"] = layer.act.thresholds
    arrays["head.weight"] = net.head_weight
    arrays["head.bias"] = net.head_bias
    return arrays


def images(spec: BiRealSpec, n: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (n, spec.input_channels, spec.input_size, spec.input_size)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("spec", [TINY, ZERO_PAD], ids=["minus-one-pad", "zero-pad"])
def test_packed_gives_the_same_integer_form_and_outputs(tmp_path: Path, spec) -> None:
    model = random_model(spec)
    save_checkpoint(tmp_path / "full.pt", model)
    packed.save_packed(tmp_path / "packed.pt", model, CARD)
    full, small = load_checkpoint(tmp_path / "full.pt"), load_checkpoint(tmp_path / "packed.pt")
    assert small.packed and not full.packed
    assert small.train is None and small.card == CARD and small.spec == spec
    a, b = full.build_model(), small.build_model()

    ia, ib = integer_arrays(integer_form(a)), integer_arrays(integer_form(b))
    assert list(ia) == list(ib)
    for key in ia:
        assert np.array_equal(ia[key], ib[key]), key
        assert ia[key].dtype == ib[key].dtype, key
    with torch.no_grad():
        x = preprocess(images(spec))
        assert torch.equal(a(x), b(x))

    binary = packed.binary_weight_keys(a)
    assert binary == [f"blocks.{i}.conv.weight" for i in range(len(a.blocks))]
    sa, sb = a.state_dict(), b.state_dict()
    for key in sa:
        if key in binary:  # the signs and alpha (bit for bit); magnitudes may differ
            assert torch.equal(sa[key] >= 0, sb[key] >= 0), key
            assert torch.equal(channel_alpha(sa[key]), channel_alpha(sb[key])), key
        else:
            assert torch.equal(sa[key], sb[key]), key


def test_packed_file_layout(tmp_path: Path) -> None:
    """The documented layout: sign bits MSB first in C order, float32 alpha per channel."""
    model = random_model()
    packed.save_packed(tmp_path / "p.pt", model)
    payload = torch.load(tmp_path / "p.pt", weights_only=True)
    assert payload["format"] == "bireal-fpga-packed" and payload["version"] == 1
    assert payload["mode"] == "binary" and payload["card"] == {}
    w = model.blocks[0].conv.weight.detach()
    entry = payload["binary"]["blocks.0.conv.weight"]
    assert entry["shape"] == list(w.shape)
    assert entry["bits"].dtype == torch.uint8 and entry["bits"].numel() == math.ceil(w.numel() / 8)
    flat = (w >= 0).reshape(-1).tolist()
    byte0 = sum(int(bit) << (7 - i) for i, bit in enumerate(flat[:8]))
    assert int(entry["bits"][0]) == byte0
    assert entry["alpha"].dtype == torch.float32
    assert torch.equal(entry["alpha"], channel_alpha(w).reshape(-1))
    assert not set(payload["binary"]) & set(payload["model"])


def test_packed_is_much_smaller_for_a_cifar_net(tmp_path: Path) -> None:
    """bireal-small-cifar: 294,912 of its 308,650 parameters are binary. The full checkpoint
    (no training state) holds every parameter as float32 (~1.23 MB); the packed one 36,864
    bytes of bits, the other 13,738 float32 parameters (~55 KB), 448 alphas and torch.save's
    per-tensor overhead: measured 1,254,399 vs 114,721 bytes (10.9x) on CPU. 8x leaves room
    for the container's overhead."""
    torch.manual_seed(0)
    model = BiRealNet(preset("bireal-small-cifar")).eval()
    save_checkpoint(tmp_path / "full.pt", model)
    packed.save_packed(tmp_path / "packed.pt", model)
    full, small = (tmp_path / "full.pt").stat().st_size, (tmp_path / "packed.pt").stat().st_size
    assert small < full / 8, (full, small)
    b = load_checkpoint(tmp_path / "packed.pt").build_model()
    with torch.no_grad():
        x = preprocess(images(model.spec, n=2))
        assert torch.equal(model(x), b(x))


# --------------------------------------------------------------------------- alpha, bit exact


def equal_mean_misses(alpha: torch.Tensor, signs: torch.Tensor, steps: int) -> torch.Tensor:
    """Per channel: no magnitude within ``steps`` ulps of alpha, all weights equal, has the
    mean ``alpha`` (float32, as the model computes it)."""
    view = (-1,) + (1,) * (signs.dim() - 1)
    miss = torch.ones_like(alpha, dtype=torch.bool)
    for direction in (math.inf, -math.inf):
        m = alpha.clone()
        for _ in range(steps + 1):
            miss &= channel_alpha(m.view(view) * signs).reshape(-1) != alpha
            m = torch.nextafter(m, torch.full_like(m, direction))
    return miss


def test_loaded_alpha_is_bit_exact_where_a_mean_of_equal_values_misses(tmp_path: Path) -> None:
    model = random_model()
    w = model.blocks[0].conv.weight.detach()
    alpha = channel_alpha(w).reshape(-1)
    signs = torch.where(w >= 0, 1.0, -1.0)
    equal = channel_alpha(alpha.view(-1, 1, 1, 1) * signs).reshape(-1)
    # alpha * sign alone is not enough: its mean differs from alpha in some channels, and in
    # some no ulp nudge of the equal magnitudes reaches alpha (the exact-sum fallback)
    assert bool((equal != alpha).any())
    assert bool(equal_mean_misses(alpha, signs, packed.MAX_NUDGES).any())
    packed.save_packed(tmp_path / "p.pt", model)
    ck = load_checkpoint(tmp_path / "p.pt")
    for key in packed.binary_weight_keys(model):
        stored = torch.load(tmp_path / "p.pt", weights_only=True)["binary"][key]["alpha"]
        assert torch.equal(channel_alpha(ck.model_state[key]).reshape(-1), stored), key
        assert torch.equal(stored, channel_alpha(model.state_dict()[key]).reshape(-1)), key


@pytest.mark.parametrize("cin", [1, 16, 64])
@pytest.mark.parametrize("scale", [1e-5, 1e-2, 3.0])
def test_rebuild_weight_hits_every_alpha(cin: int, scale: float) -> None:
    g = torch.Generator().manual_seed(cin)
    w = torch.randn(64, cin, 3, 3, generator=g) * scale
    w[0] = w[0].abs()  # a channel of +1 only
    alpha = channel_alpha(w).reshape(-1)
    signs = torch.where(w >= 0, 1.0, -1.0)
    rebuilt = packed.rebuild_weight(signs, alpha)
    assert torch.equal(channel_alpha(rebuilt).reshape(-1), alpha)
    assert torch.equal(rebuilt >= 0, w >= 0)
    zero = packed.rebuild_weight(torch.ones(2, cin, 3, 3), torch.zeros(2))
    assert torch.equal(channel_alpha(zero).reshape(-1), torch.zeros(2))


# --------------------------------------------------------------------------- refusals


def test_save_packed_refuses_a_real_mode_model(tmp_path: Path) -> None:
    model = BiRealNet(TINY).set_mode("real")
    with pytest.raises(CheckpointError, match="'real' mode"):
        packed.save_packed(tmp_path / "p.pt", model)
    with pytest.raises(CheckpointError, match="model card"):
        packed.save_packed(tmp_path / "p.pt", BiRealNet(TINY), {"x": object()})
    assert listing(tmp_path) == []


def _corrupt(how: str, payload: dict[str, Any]) -> str:
    """Damage ``payload`` as ``how`` says; the entry the error must name."""
    key = "blocks.1.conv.weight"
    entry = payload["binary"][key]
    if how == "bits-short":
        entry["bits"] = entry["bits"][:-1]
    elif how == "alpha-length":
        entry["alpha"] = entry["alpha"][:-1]
    elif how == "alpha-negative":
        entry["alpha"] = -entry["alpha"]
    elif how == "shape":
        entry["shape"] = [32, 16, 3, 1]
    elif how == "missing":
        del payload["binary"][key]
    elif how == "model-missing":
        del payload["model"]["head.bias"]
        return "head.bias"
    elif how == "version":
        payload["version"] = 99
        return "version 99"
    return key


CORRUPTIONS = [
    "bits-short",
    "alpha-length",
    "alpha-negative",
    "shape",
    "missing",
    "model-missing",
    "version",
]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_corrupt_packed_files_name_the_file_and_the_entry(tmp_path: Path, how: str) -> None:
    packed.save_packed(tmp_path / "good.pt", random_model())
    payload = torch.load(tmp_path / "good.pt", weights_only=True)
    name = _corrupt(how, payload)
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    msg = str(info.value)
    assert str(bad) in msg and name in msg, msg
    assert "\n" not in msg


def test_padding_bits_and_truncated_files_are_refused(tmp_path: Path) -> None:
    spec = TINY.replace(name="odd", stem_width=3, widths=(3, 32))  # 3*3*9 = 81 bits: 1 pad bit
    packed.save_packed(tmp_path / "good.pt", random_model(spec))
    payload = torch.load(tmp_path / "good.pt", weights_only=True)
    payload["binary"]["blocks.0.conv.weight"]["bits"][-1] |= 1
    torch.save(payload, tmp_path / "pad.pt")
    with pytest.raises(CheckpointError, match=r"pad\.pt.*blocks\.0\.conv\.weight.*padding"):
        load_checkpoint(tmp_path / "pad.pt")

    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt"):
        load_checkpoint(tmp_path / "cut.pt")


def test_resume_refuses_a_packed_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    packed.save_packed(run / "last.pt", random_model())
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    with pytest.raises(CheckpointError, match=r"last\.pt.*packed.*no training state"):
        resume_state(run, TINY, TrainConfig())
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


# --------------------------------------------------------------------------- manifest


def test_the_repository_manifest_loads_and_verifies() -> None:
    manifest = default_manifest()
    assert manifest == repo_root() / "models" / "manifest.json" and manifest.is_file()
    entries = load_manifest(manifest)
    for entry in entries:
        verify_shipped(entry, repo_root())
    assert (repo_root() / "models" / "README.md").is_file()


@pytest.fixture
def shipped_root(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A repository root with one packed model and its card, and its manifest entry."""
    (tmp_path / "models").mkdir()
    pt = tmp_path / "models" / "tiny-mnist.pt"
    packed.save_packed(pt, random_model(), CARD)
    (tmp_path / "models" / "tiny-mnist.md").write_text("# tiny-mnist\n")
    entry = {
        "name": "tiny-mnist-random",
        "boards": ["PYNQ-Z2"],
        "path": "models/tiny-mnist.pt",
        "sha256": hashlib.sha256(pt.read_bytes()).hexdigest(),
        "top1_float": 0.1,
        "top1_int": 0.1,
        "dataset": "MNIST",
        "disagreements": 0,
        "card": "models/tiny-mnist.md",
    }
    return tmp_path, entry


def write_manifest(root: Path, entries: list) -> Path:
    path = root / "models" / "manifest.json"
    path.write_text(json.dumps(entries))
    return path


def test_a_good_manifest_entry_verifies(shipped_root) -> None:
    root, entry = shipped_root
    [model] = load_manifest(write_manifest(root, [entry]))
    assert model == ShippedModel(**{**entry, "boards": ("PYNQ-Z2",)})
    assert verify_shipped(model, root) == root / "models" / "tiny-mnist.pt"
    assert shipped_for_board("pynq-z2", [model]) is model
    assert shipped_for_board("ZCU104", [model]) is None
    ck = load_checkpoint(verify_shipped(model, root))  # what `build` of the board reads
    assert ck.packed and ck.card == CARD
    integer_form(ck.build_model())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"boards": ["NoSuchBoard"]}, "boards"),
        ({"path": "../elsewhere/model.pt"}, "path"),
        ({"path": "/abs/model.pt"}, "path"),
        ({"top1_float": 1.5}, "top1_float"),
        ({"top1_int": "0.9"}, "top1_int"),
        ({"sha256": "abc"}, "sha256"),
        ({"disagreements": -1}, "disagreements"),
        ({"card": "models/../x.md"}, "card"),
        ({"extra": 1}, "extra"),
        ({"name": None}, "name"),
    ],
)
def test_manifest_fields_are_validated(shipped_root, change: dict, field: str) -> None:
    root, entry = shipped_root
    path = write_manifest(root, [{**entry, **change}])
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    msg = str(info.value)
    assert str(path) in msg and f"field '{field}'" in msg, msg


def test_manifest_names_and_boards_are_unique(shipped_root) -> None:
    root, entry = shipped_root
    path = write_manifest(root, [entry, {**entry, "boards": ["KV260"]}])
    with pytest.raises(ManifestError, match=r"entry 1 \('tiny-mnist-random'\): field 'name'"):
        load_manifest(path)
    path = write_manifest(root, [entry, {**entry, "name": "other"}])
    with pytest.raises(ManifestError, match=r"\('other'\): field 'boards' lists 'PYNQ-Z2'"):
        load_manifest(path)
    del entry["dataset"]
    with pytest.raises(ManifestError, match="field 'dataset' is missing"):
        load_manifest(write_manifest(root, [entry]))


def test_verify_shipped_refuses_a_wrong_or_missing_file(shipped_root) -> None:
    root, entry = shipped_root
    [model] = load_manifest(write_manifest(root, [{**entry, "sha256": "0" * 64}]))
    with pytest.raises(ManifestError, match=r"'tiny-mnist-random': field 'sha256'"):
        verify_shipped(model, root)
    [model] = load_manifest(write_manifest(root, [{**entry, "path": "models/gone.pt"}]))
    with pytest.raises(ManifestError, match=r"field 'path': .*gone\.pt' does not exist"):
        verify_shipped(model, root)
    [model] = load_manifest(write_manifest(root, [{**entry, "card": "models/gone.md"}]))
    with pytest.raises(ManifestError, match=r"field 'card'"):
        verify_shipped(model, root)


# --------------------------------------------------------------------------- the command


def test_pack_command_writes_a_loadable_file_and_refuses_bad_inputs(tmp_path: Path) -> None:
    model = random_model()
    save_checkpoint(tmp_path / "model.pt", model)
    save_checkpoint(tmp_path / "real.pt", BiRealNet(TINY).set_mode("real"))
    (tmp_path / "card.json").write_text(json.dumps(CARD))
    out = tmp_path / "ship" / "tiny.pt"
    runs = {
        "ok": ["pack", tmp_path / "model.pt", "--out", out, "--card-json", tmp_path / "card.json"],
        "suffix": ["pack", tmp_path / "model.pt", "--out", tmp_path / "no" / "x.pth"],
        "real": ["pack", tmp_path / "real.pt", "--out", tmp_path / "no" / "r.pt"],
        "missing": ["pack", tmp_path / "absent.pt", "--out", tmp_path / "no" / "m.pt"],
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = {name: pool.submit(cli, *argv) for name, argv in runs.items()}
        results = {name: future.result() for name, future in procs.items()}

    assert_ok(results["ok"])
    full, small = (tmp_path / "model.pt").stat().st_size, out.stat().st_size
    assert results["ok"].stdout.splitlines() == [
        f"wrote {out}",
        f"{tmp_path / 'model.pt'}: {full:,} bytes; {out}: {small:,} bytes "
        f"({full / small:.1f}x smaller)",
    ]
    ck = load_checkpoint(out)
    assert ck.packed and ck.card == CARD
    ia = integer_arrays(integer_form(model))
    ib = integer_arrays(integer_form(ck.build_model()))
    assert all(np.array_equal(ia[k], ib[k]) for k in ia)

    assert_error(results["suffix"], "x.pth", ".pt")
    assert_error(results["real"], "real.pt", "'real' mode")
    assert_error(results["missing"], "absent.pt", "does not exist")
    assert not (tmp_path / "no").exists()
    assert listing(tmp_path / "ship") == ["tiny.pt"]


def test_a_boards_shipped_model_is_what_build_builds_by_default(
    shipped_root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bireal-fpga build --board B`` without a source: B's shipped checkpoint (verified),
    read through load_checkpoint as any checkpoint; in process, the manifest a temporary one."""
    root, entry = shipped_root
    write_manifest(root, [entry])
    monkeypatch.setattr(shipped, "repo_root", lambda: root)
    monkeypatch.setattr(shipped, "default_manifest", lambda: root / "models" / "manifest.json")
    out = root / "build"
    args = ["build", "--board", "PYNQ-Z2", "--out", str(out), "--to-step", "model"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    source = root / "models" / "tiny-mnist.pt"
    assert json.loads((out / names.CONFIG).read_text())["source"] == str(source)
    built = load_checkpoint(out / names.MODEL).build_model()
    expected = load_checkpoint(source).build_model()
    ia, ib = integer_arrays(integer_form(built)), integer_arrays(integer_form(expected))
    assert all(np.array_equal(ia[k], ib[k]) for k in ia)

    (root / "models" / "tiny-mnist.pt").write_bytes(b"altered")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "field 'sha256'" in result.output, result.output


def test_models_shipped_lists_the_manifest(shipped_root, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(main, ["models", "--shipped", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == len(load_manifest(default_manifest()))

    root, entry = shipped_root
    write_manifest(root, [entry])
    monkeypatch.setattr(shipped, "repo_root", lambda: root)
    monkeypatch.setattr(shipped, "default_manifest", lambda: root / "models" / "manifest.json")
    result = CliRunner().invoke(main, ["models", "--shipped", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{**entry, "boards": ["PYNQ-Z2"]}]
    result = CliRunner().invoke(main, ["models", "--shipped"])
    assert result.exit_code == 0, result.output
    assert "tiny-mnist-random" in result.output and "models/tiny-mnist.pt" in result.output
