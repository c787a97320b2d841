"""Ship a trained model: measured, packed, described and listed in the manifest.

:func:`ship_model` is what ``bireal-fpga ship`` does. From a trained checkpoint (binary mode,
with its training history) and the data it was trained on it

1. evaluates the float form (float64) and the integer form on the whole test split and counts
   the images whose top-1 differs (:func:`bireal_fpga.train.forms.compare_forms`);
2. writes ``models/<name>.pt`` (packed, :mod:`bireal_fpga.train.packed`, the card inside),
   ``models/<name>.md`` (the model card: data, recipe, epochs, seed, accuracy, device) and the
   new ``models/manifest.json`` (this entry replacing one of the same name).

Everything is computed and the new manifest validated before the first file is written; each
file is written atomically (temporary file + rename).
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bireal_fpga.errors import CheckpointError
from bireal_fpga.models.shipped import ManifestError, ShippedModel, load_manifest, sha256_of
from bireal_fpga.train.checkpoint import Checkpoint, load_checkpoint
from bireal_fpga.train.forms import FormsAgreement, compare_forms
from bireal_fpga.train.packed import save_packed


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def card_text(
    name: str,
    ck: Checkpoint,
    boards: list[str],
    dataset: str,
    forms: FormsAgreement,
    n_train: int,
    rel_path: str,
) -> str:
    """The model card (Markdown) of a shipped model."""
    train = ck.train or {}
    cfg: dict[str, Any] = train.get("config", {})
    history: list[dict[str, Any]] = train.get("history", [])
    stages = {m: sum(1 for r in history if r.get("stage") == m) for m in ("real", "binary")}
    speed = [r["images_per_s"] for r in history if "images_per_s" in r]
    devices = sorted({str(r["device"]) for r in history if r.get("device")})
    lines = [
        f"# {name}",
        "",
        f"Bi-Real net `{ck.spec.name}` ({ck.spec.input_size}x{ck.spec.input_size}x"
        f"{ck.spec.input_channels}, {ck.spec.num_classes} classes), the shipped model of "
        f"{', '.join(boards)}.",
        "",
        "| | |",
        "|---|---|",
        f"| data | {dataset}: {n_train:,} training images, {forms.n:,} test images |",
        f"| top-1, integer form (the hardware's) | **{forms.top1_int:.4f}** |",
        f"| top-1, float form ({forms.dtype}) | {forms.top1_float:.4f} |",
        f"| images whose top-1 differs between the forms | {forms.disagreements} of {forms.n} |",
        f"| epochs | {stages['real']} real (stage 1) + {stages['binary']} binary (stage 2) |",
        f"| seed | {cfg.get('seed', '?')} |",
        f"| training device | {', '.join(devices) or cfg.get('device', '?')} |",
        f"| training images/s (median epoch) | "
        f"{statistics.median(speed) if speed else float('nan'):,.0f} |",
        f"| file | `{rel_path}` (packed: 1 bit per binary weight) |",
        "",
        "## Recipe (`bireal-fpga train` options, `TrainConfig`)",
        "",
        "| option | value |",
        "|---|---|",
        *(f"| {k} | {v!r} |" for k, v in sorted(cfg.items())),
        "",
        "## Training history",
        "",
        "| stage | epoch | train loss | train acc | test top-1 (float32) | lr |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {r['stage']} | {r['epoch']} | {r['train_loss']:.4f} | {r['train_acc']:.4f} | "
            f"{r['test_top1']:.4f} | {r['lr']:.3g} |"
            for r in history
        ),
        "",
    ]
    if forms.disagreements:
        lines += [
            f"Test images whose top-1 differs (first {len(forms.first_differing)}): "
            f"{', '.join(map(str, forms.first_differing))}.",
            "",
        ]
    return "\n".join(lines)


def ship_model(
    ckpt: str | os.PathLike,
    data: str | os.PathLike,
    *,
    name: str,
    boards: list[str],
    dataset: str,
    root: str | os.PathLike,
    progress: bool = False,
) -> ShippedModel:
    """Ship the checkpoint ``ckpt`` as ``models/<name>.pt`` under ``root`` (module docstring).

    Raises:
        CheckpointError: a checkpoint that is not a trained binary (stage 2) net.
        ManifestError: a name or board the manifest refuses (nothing is written then).
        DataError: data that do not fit the checkpoint's spec.
    """
    from bireal_fpga.train.run import open_data_for

    root = Path(root)
    ck = load_checkpoint(Path(ckpt))
    if ck.mode != "binary":
        raise CheckpointError(f"checkpoint '{ckpt}' is a real-mode (stage 1) net: ship stage 2")
    if ck.packed or ck.train is None or not ck.train.get("history"):
        raise CheckpointError(
            f"checkpoint '{ckpt}' has no training history: ship the run's model.pt"
        )
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ManifestError(f"model name '{name}' must be a plain file name")
    rel_pt, rel_md = f"models/{name}.pt", f"models/{name}.md"
    manifest = root / "models" / "manifest.json"
    entries = load_manifest(manifest) if manifest.exists() else []
    source = open_data_for(ck.spec, data)
    model = ck.build_model()
    forms = compare_forms(model, source.test, 500, progress=progress)
    card = card_text(name, ck, boards, dataset, forms, len(source.train), rel_pt)
    meta = {
        "name": name,
        "dataset": dataset,
        "boards": boards,
        "forms": forms.to_dict(),
        "config": ck.train.get("config", {}),
        "epochs": len(ck.train["history"]),
    }
    # the packed file first to a temporary name: its sha256 goes into the manifest
    pt = root / rel_pt
    pt.parent.mkdir(parents=True, exist_ok=True)
    tmp_pt = pt.with_name(f".{pt.name}.tmp{os.getpid()}")
    tmp_manifest = manifest.with_name(f".{manifest.name}.tmp{os.getpid()}")
    try:
        save_packed(tmp_pt, model, meta)
        entry = ShippedModel(
            name=name,
            boards=tuple(boards),
            path=rel_pt,
            sha256=sha256_of(tmp_pt),
            top1_float=forms.top1_float,
            top1_int=forms.top1_int,
            dataset=dataset,
            disagreements=forms.disagreements,
            card=rel_md,
        )
        rows = [asdict(e) for e in entries if e.name != name] + [asdict(entry)]
        for r in rows:
            r["boards"] = list(r["boards"])
        tmp_manifest.write_text(json.dumps(rows, indent=2) + "\n")
        load_manifest(tmp_manifest)  # refuses a board already shipped by another entry
        _atomic_write(root / rel_md, lambda p: p.write_text(card))
        os.replace(tmp_pt, pt)
        os.replace(tmp_manifest, manifest)
    except ManifestError as exc:
        raise ManifestError(str(exc).replace(str(tmp_manifest), str(manifest))) from None
    finally:
        tmp_pt.unlink(missing_ok=True)
        tmp_manifest.unlink(missing_ok=True)
    return entry
