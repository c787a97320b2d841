"""Checkpoints that carry the spec, the model and the full training state.

A checkpoint is a ``torch.save`` dict::

    {"format": "bireal-fpga-checkpoint", "version": 1, "spec": {...}, "mode": "real"|"binary",
     "model": state_dict, "train": {"config", "stage", "epoch", "optimizer", "scheduler",
     "rng", "history"} | None}

Writes are atomic (temporary file + rename), so an interrupted run never leaves a
half-written file under the checkpoint's name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bireal_fpga.errors import CheckpointError
from bireal_fpga.models.bireal import BiRealNet
from bireal_fpga.spec import BiRealSpec, SpecError

FORMAT = "bireal-fpga-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    spec: BiRealSpec
    mode: str
    model_state: dict[str, Any]
    train: dict[str, Any] | None
    path: Path | None = None

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
    """Read a checkpoint; with ``expect_spec``, refuse one made for another spec."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint files
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"'{path}' is not a bireal-fpga checkpoint ({first[:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a bireal-fpga checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint '{path}' has version {payload.get('version')}, "
            f"this bireal-fpga reads version {VERSION}"
        )
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
    return Checkpoint(spec, payload["mode"], payload["model"], payload.get("train"), path)
