"""Checkpoints that carry the spec, the model and the full training state.

A checkpoint is a ``torch.save`` dict::

    {"format": "bireal-fpga-checkpoint", "version": 1, "spec": {...}, "mode": "real"|"binary",
     "model": state_dict, "train": {"config", "stage", "epoch", "optimizer", "scheduler",
     "rng", "history"} | None}

:func:`load_checkpoint` reads packed inference checkpoints too (:mod:`bireal_fpga.train.packed`,
``bireal-fpga pack``: one bit per binary weight, a model card, no training state): their
:class:`Checkpoint` has ``packed = True``, ``train = None`` and latent weights rebuilt so that
the model computes what the packed model computed, bit for bit.

Writes are atomic (temporary file + rename), so an interrupted run never leaves a
half-written file under the checkpoint's name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bireal_fpga.errors import CheckpointError
from bireal_fpga.models.bireal import BiRealNet
from bireal_fpga.spec import BiRealSpec, SpecError
from bireal_fpga.train import packed as packed_format

FORMAT = "bireal-fpga-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A checkpoint as read: ``packed`` for a packed inference checkpoint (then ``train`` is
    None and ``card`` its model card; a full checkpoint's ``card`` is ``{}``)."""

    spec: BiRealSpec
    mode: str
    model_state: dict[str, Any]
    train: dict[str, Any] | None
    path: Path | None = None
    packed: bool = False
    card: dict[str, Any] = field(default_factory=dict)

    def build_model(self) -> BiRealNet:
        """The model with this checkpoint's weights, in its mode, in eval()."""
        model = BiRealNet(self.spec)
        try:
            model.load_state_dict(self.model_state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise CheckpointError(
                f"checkpoint '{self.path}' does not fit its spec: {first}"
            ) from None
        model.set_mode(self.mode)  # type: ignore[arg-type]
        return model.eval()


def save_checkpoint(
    path: str | Path, model: BiRealNet, train: dict[str, Any] | None = None
) -> None:
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "spec": model.spec.to_dict(),
        "mode": model.mode,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "train": train,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, *, expect_spec: BiRealSpec | None = None) -> Checkpoint:
    """Read a checkpoint, full or packed; with ``expect_spec``, refuse one made for another
    spec."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint files
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"'{path}' is not a bireal-fpga checkpoint ({first[:120]})") from None
    formats = (FORMAT, packed_format.FORMAT)
    if not isinstance(payload, dict) or payload.get("format") not in formats:
        raise CheckpointError(f"'{path}' is not a bireal-fpga checkpoint")
    is_packed = payload["format"] == packed_format.FORMAT
    version = packed_format.VERSION if is_packed else VERSION
    if payload.get("version") != version:
        kind = "packed checkpoint" if is_packed else "checkpoint"
        raise CheckpointError(
            f"{kind} '{path}' has version {payload.get('version')}, "
            f"this bireal-fpga reads version {version}"
        )
    if not isinstance(payload.get("spec"), dict):
        raise CheckpointError(f"checkpoint '{path}': the entry 'spec' is missing or not a dict")
    try:
        spec = BiRealSpec.from_dict(payload["spec"], source=f"checkpoint '{path}'")
    except SpecError as exc:
        raise CheckpointError(f"checkpoint '{path}' holds an invalid spec: {exc}") from None
    if expect_spec is not None and spec != expect_spec:
        diff = [
            k for k, v in expect_spec.to_dict().items() if k != "name" and spec.to_dict()[k] != v
        ]
        if diff:
            k = diff[0]
            raise CheckpointError(
                f"checkpoint '{path}' is for another spec: {k} = {spec.to_dict()[k]!r}, "
                f"expected {expect_spec.to_dict()[k]!r}"
            )
    if is_packed:
        state, card = packed_format.unpack_model_state(payload, spec, path)
        return Checkpoint(spec, "binary", state, None, path, packed=True, card=card)
    return Checkpoint(spec, payload["mode"], payload["model"], payload.get("train"), path)
