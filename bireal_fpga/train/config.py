"""Training configuration: one frozen dataclass, round-trips to JSON (stored in checkpoints)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from bireal_fpga.errors import BiRealError


class TrainConfigError(BiRealError):
    """An invalid training option."""


@dataclass(frozen=True)
class TrainConfig:
    """The paper's two-stage algorithm with the official PyTorch recipe as defaults.

    Attributes:
        epochs_real: stage 1 epochs: the real-valued net with clip(-1, 1) where the sign will
            be (the paper's initialisation). 0 = train the binary net from scratch.
        epochs_binary: stage 2 epochs: binarize and fine-tune from stage 1.
        batch_size: global batch size (split across DDP processes).
        lr: Adam learning rate, decayed linearly to 0 over each stage.
        weight_decay: L2 on real-valued weights (stem, downsample, FC), BN excluded.
        binary_weight_decay: L2 on the latent weights of the binary convs (official: 0).
        label_smoothing: cross-entropy label smoothing (official: 0.1).
        weight_grad: backward of weight binarization: the paper's "magnitude_aware"
            gradient or the official code's "clipped_ste".
        crop_padding: per-sample random crop after zero-padding this many pixels (0 = off).
        flip: per-sample random horizontal flip.
        seed: seeds model init, data order and augmentation.
        device: "auto" (CUDA if present), "cpu" or "cuda".
        bf16: bf16 autocast on CUDA (ignored on CPU).
        workers: data-loader processes for lazily decoded (ImageFolder) data.
        max_steps_per_epoch: cap on steps per epoch (0 = full epochs); for quick runs.
        eval_batch_size: batch size of evaluation.
        bn_recalibration_batches: after each epoch, re-estimate BN running statistics as the
            exact mean over this many un-augmented training batches (0 = keep the running
            averages). Binary weights' scale moves every step, so the exponential averages
            lag behind; this changes no trained parameter, only the statistics used at
            inference.
        lr_scaling: how ``lr`` scales with ``batch_size``: ``"none"`` (``lr`` as given),
            ``"sqrt"`` (``lr * sqrt(batch_size / lr_base_batch)``, the usual rule for Adam) or
            ``"linear"`` (``lr * batch_size / lr_base_batch``).
        lr_base_batch: the batch size at which ``lr`` is the learning rate.
        lr_schedule: decay over each stage after the warm-up: ``"linear"`` to 0 (the official
            recipe) or ``"cosine"`` to 0.
        warmup_epochs: linear warm-up from 0 over this many epochs (fractions allowed) at the
            start of each stage (0 = none).
        teacher: distillation (nothing is added at inference): ``""`` none; ``"real"`` the
            stage-1 real-valued net of this run (or the ``init`` checkpoint) teaches stage 2;
            otherwise the path of a checkpoint of any Bi-Real spec whose net (in its mode)
            teaches both stages.
        distill_weight: ``alpha`` of ``(1 - alpha) * CE + alpha * T^2 * KL(teacher || student)``.
        distill_temperature: ``T``, the softmax temperature of both distributions.
        channels_last: channels-last memory format on CUDA (faster convolutions with bf16);
            ignored on CPU.
        compile: ``torch.compile`` the training forward (pays on long GPU runs; a minute of
            compilation per stage on CPU).
        data_on_device: keep an in-memory split (uint8) on the training device for the whole
            run and index batches there (no per-step host-to-device copy).
        log_every: update the progress bar's loss and accuracy every this many steps: each
            update waits for the device, so none happens between.
    """

    epochs_real: int = 0
    epochs_binary: int = 1
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    binary_weight_decay: float = 0.0
    label_smoothing: float = 0.1
    weight_grad: Literal["magnitude_aware", "clipped_ste"] = "magnitude_aware"
    crop_padding: int = 4
    flip: bool = True
    seed: int = 0
    device: str = "auto"
    bf16: bool = True
    workers: int = 2
    max_steps_per_epoch: int = 0
    eval_batch_size: int = 500
    bn_recalibration_batches: int = 20
    lr_scaling: Literal["none", "sqrt", "linear"] = "none"
    lr_base_batch: int = 256
    lr_schedule: Literal["linear", "cosine"] = "linear"
    warmup_epochs: float = 0.0
    teacher: str = ""
    distill_weight: float = 1.0
    distill_temperature: float = 1.0
    channels_last: bool = True
    compile: bool = False
    data_on_device: bool = True
    log_every: int = 25

    RUN_OPTIONS = ("device", "workers", "compile", "data_on_device", "channels_last", "log_every")
    """Options that say where and how to run, not what is trained: a resumed run takes these
    from the caller, the rest from its checkpoint."""

    @property
    def effective_lr(self) -> float:
        """``lr`` scaled to ``batch_size`` as ``lr_scaling`` says."""
        ratio = self.batch_size / self.lr_base_batch
        power = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}[self.lr_scaling]
        return self.lr * ratio**power

    def __post_init__(self) -> None:
        def check(ok: bool, field: str, value: Any, want: str) -> None:
            if not ok:
                raise TrainConfigError(f"training option '{field}' must be {want}, got {value!r}")

        check(self.epochs_real >= 0, "epochs_real", self.epochs_real, ">= 0")
        check(self.epochs_binary >= 0, "epochs_binary", self.epochs_binary, ">= 0")
        check(self.epochs_real + self.epochs_binary > 0, "epochs_binary", 0, "> 0 (or epochs_real)")
        check(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        check(self.lr > 0, "lr", self.lr, "> 0")
        check(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        check(
            self.binary_weight_decay >= 0, "binary_weight_decay", self.binary_weight_decay, ">= 0"
        )
        check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "in [0, 1)")
        check(
            self.weight_grad in ("magnitude_aware", "clipped_ste"),
            "weight_grad",
            self.weight_grad,
            "'magnitude_aware' or 'clipped_ste'",
        )
        check(self.crop_padding >= 0, "crop_padding", self.crop_padding, ">= 0")
        check(self.device in ("auto", "cpu", "cuda"), "device", self.device, "auto, cpu or cuda")
        check(self.workers >= 0, "workers", self.workers, ">= 0")
        check(
            self.max_steps_per_epoch >= 0, "max_steps_per_epoch", self.max_steps_per_epoch, ">= 0"
        )
        check(
            self.bn_recalibration_batches >= 0,
            "bn_recalibration_batches",
            self.bn_recalibration_batches,
            ">= 0",
        )
        check(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, ">= 1")
        check(
            self.lr_scaling in ("none", "sqrt", "linear"),
            "lr_scaling",
            self.lr_scaling,
            "'none', 'sqrt' or 'linear'",
        )
        check(self.lr_base_batch >= 1, "lr_base_batch", self.lr_base_batch, ">= 1")
        check(
            self.lr_schedule in ("linear", "cosine"),
            "lr_schedule",
            self.lr_schedule,
            "'linear' or 'cosine'",
        )
        check(self.warmup_epochs >= 0, "warmup_epochs", self.warmup_epochs, ">= 0")
        check(0 <= self.distill_weight <= 1, "distill_weight", self.distill_weight, "in [0, 1]")
        check(
            self.distill_temperature > 0,
            "distill_temperature",
            self.distill_temperature,
            "> 0",
        )
        check(self.log_every >= 1, "log_every", self.log_every, ">= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise TrainConfigError(f"unknown training option '{sorted(unknown)[0]}'")
        return cls(**data)
