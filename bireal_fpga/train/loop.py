"""The paper's two-stage training algorithm.

Stage 1 ("real"): the real-valued net with ``clip(x, -1, 1)`` where the sign will be and real
weights. Stage 2 ("binary"): ApproxSign activations and magnitude-aware binary weights,
initialised from stage 1. Each stage: Adam, learning rate decayed linearly to 0, label
smoothing, per-sample random crop + flip. Runs on CPU or CUDA (bf16 autocast), in one process
or under ``torchrun`` (DistributedDataParallel; gloo on CPU, NCCL on CUDA).

Options beyond the paper (:class:`TrainConfig`), none of which adds anything at inference:
cosine schedule and warm-up, learning rate scaled with the batch, distillation from a teacher
(the stage-1 net or a given checkpoint). For speed: an in-memory split is held on the device
(uint8), batches are indexed and augmented there with a generator on the device, losses and
accuracies are summed there (the host waits only every ``log_every`` steps, for the progress
bar, and once per epoch), channels-last on CUDA, optionally ``torch.compile``.

Output folder: ``last.pt`` (after every epoch, for ``--resume``), ``real.pt`` (end of stage 1),
``model.pt`` (end of stage 2), ``teacher.pt`` (the teacher of a distilled run, so that the
folder resumes on another machine) and ``history.json``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from bireal_fpga.data import ImageDataset
from bireal_fpga.errors import CheckpointError
from bireal_fpga.integer.forward import run_integer
from bireal_fpga.integer.params import IntegerNet
from bireal_fpga.models.bireal import BiRealNet, preprocess
from bireal_fpga.quant.layers import BinaryConv2d
from bireal_fpga.spec import BiRealSpec
from bireal_fpga.train.batches import augment, iterate
from bireal_fpga.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from bireal_fpga.train.config import TrainConfig


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def param_groups(model: BiRealNet, cfg: TrainConfig) -> list[dict[str, Any]]:
    binary, weights, other = [], [], []
    binary_ids = {id(m.weight) for m in model.modules() if isinstance(m, BinaryConv2d)}
    for p in model.parameters():
        if id(p) in binary_ids:
            binary.append(p)
        elif p.ndim >= 2:
            weights.append(p)
        else:
            other.append(p)
    return [
        {"params": binary, "weight_decay": cfg.binary_weight_decay},
        {"params": weights, "weight_decay": cfg.weight_decay},
        {"params": other, "weight_decay": 0.0},
    ]


@torch.no_grad()
def evaluate(
    model: nn.Module | IntegerNet,
    dataset,
    batch_size: int,
    device: torch.device | None = None,
    dinfo: DistInfo | None = None,
    *,
    limit: int = 0,
    dtype: torch.dtype = torch.float32,
) -> tuple[int, int]:
    """Top-1 counts ``(correct, n)`` of ``model`` on ``dataset`` (uint8 images, int labels).

    ``model`` is the float training form (a :class:`BiRealNet`, run in ``eval()`` on
    ``device`` on :func:`preprocess`-ed images) or the integer inference form (an
    :class:`IntegerNet` from :func:`bireal_fpga.integer.derive.integer_form`, run by
    :func:`bireal_fpga.integer.forward.run_integer` on the uint8 pixels, on the CPU).
    ``limit`` > 0 evaluates only the first ``limit`` images. ``dtype=torch.float64`` runs the
    float form in the precision in which it agrees with the integer form
    (:data:`bireal_fpga.quant.layers.EXACT_DTYPE`; :mod:`bireal_fpga.train.forms` counts the
    images where the two differ). Under DDP (``dinfo``) each
    process takes every ``world``-th image and the counts are summed over the processes.
    """
    dinfo = dinfo or DistInfo()
    device = device or torch.device("cpu")
    if isinstance(model, nn.Module):
        model.eval()
    n_images = min(limit, len(dataset)) if limit else len(dataset)
    idx = torch.arange(n_images)[dinfo.rank :: dinfo.world]
    images = getattr(dataset, "images", None)
    batches: Iterable[tuple[Tensor, Tensor]]
    if images is not None:
        batches = (
            (images[idx[i : i + batch_size]], dataset.labels[idx[i : i + batch_size]])
            for i in range(0, len(idx), batch_size)
        )
    else:
        sub = torch.utils.data.Subset(dataset, idx.tolist())
        batches = iterate(sub, batch_size, shuffle=False)
    counts = torch.zeros(2, dtype=torch.long, device=device)
    for x, y in batches:
        if isinstance(model, IntegerNet):
            pred = run_integer(model, x.cpu()).argmax(1).to(device)
        else:
            pred = model(preprocess(x.to(device), dtype)).argmax(1)
        counts[0] += (pred == y.to(device)).sum()
        counts[1] += len(y)
    if dinfo.world > 1:
        dist.all_reduce(counts)
    return int(counts[0]), int(counts[1])


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module, dataset, batches: int, batch_size: int, device: torch.device, seed: int
) -> None:
    """Re-estimate BN running statistics as exact averages over ``batches`` training batches
    (no augmentation, same batches on every process). Running statistics are used only at
    inference, so this changes no trained parameter; it removes the lag of the exponential
    average behind binary weights whose per-channel scale ``alpha`` moves every step."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average = exact mean over the batches
    model.train()
    for i, (x, _) in enumerate(iterate(dataset, batch_size, shuffle=True, seed=seed, epoch=10**6)):
        if i >= batches:
            break
        model(preprocess(x.to(device)))
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    model.eval()


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Learning-rate multiplier at ``step`` of a stage of ``total`` steps: linear warm-up
    over the first ``warmup`` steps, then ``schedule`` ("linear" or "cosine") down to 0."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return max(0.0, 1.0 - t)


def training_loss(
    logits: Tensor, y: Tensor, teacher_logits: Tensor | None, cfg: TrainConfig
) -> Tensor:
    """Cross-entropy with label smoothing; with a teacher
    ``(1 - a) * CE + a * T^2 * KL(teacher || student)`` at temperature ``T``."""
    ce = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
    if teacher_logits is None:
        return ce
    t = cfg.distill_temperature
    kl = F.kl_div(
        F.log_softmax(logits / t, dim=1),
        F.log_softmax(teacher_logits.float() / t, dim=1),
        log_target=True,
        reduction="batchmean",
    )
    a = cfg.distill_weight
    return (1.0 - a) * ce + a * (t * t) * kl


TEACHER_FILE = "teacher.pt"


def load_teacher(path: Path, student: BiRealSpec) -> BiRealNet:
    """The teacher net of checkpoint ``path`` (any spec, in its stored mode, eval); it must
    see the input of the ``student`` spec's net and give its classes."""
    ck = load_checkpoint(path)
    a, b = ck.spec, student
    for name in ("input_size", "input_channels", "num_classes"):
        if getattr(a, name) != getattr(b, name):
            raise CheckpointError(
                f"teacher '{path}' has {name} = {getattr(a, name)}, the student {getattr(b, name)}"
            )
    teacher = ck.build_model()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


def _check_in_sync(model: nn.Module) -> None:
    """Under DDP, every process must hold the same parameters after an epoch."""
    sums = torch.stack([p.detach().double().sum() for p in model.parameters()]).cpu()
    lo, hi = sums.clone(), sums.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise RuntimeError("DDP processes diverged: parameters differ between ranks")


def _on_device(split, device: torch.device):
    """An in-memory split (``.images``) as an :class:`ImageDataset` held on ``device``; any
    other split as it is."""
    if getattr(split, "images", None) is None:
        return split
    return ImageDataset(split.images.to(device), split.labels.to(device))


class Trainer:
    """Runs the stages of :class:`TrainConfig` on a :class:`BiRealNet`."""

    def __init__(
        self,
        model: BiRealNet,
        data,
        cfg: TrainConfig,
        out_dir: str | Path,
        *,
        progress: bool = True,
        stop_after_epochs: int = 0,
        time_limit_s: float = 0.0,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.out = Path(out_dir)
        self.progress = progress
        self.device = pick_device(cfg.device, int(os.environ.get("LOCAL_RANK", 0)))
        self.dinfo = init_distributed(self.device)
        self.history: list[dict[str, Any]] = []
        self.stop_after_epochs = stop_after_epochs  # 0: run to the end
        self.time_limit_s = time_limit_s  # 0: none; else stop before an epoch that would pass it
        self.started = time.perf_counter()
        self.longest_epoch_s = 0.0
        self.epochs_run = 0
        self.stopped_early = False
        self.device_name = (
            torch.cuda.get_device_name(self.device)
            if self.device.type == "cuda"
            else f"CPU ({torch.get_num_threads()} threads)"
        )
        self.train_split, self.test_split = data.train, data.test
        if cfg.data_on_device and self.device.type != "cpu":
            self.train_split = _on_device(data.train, self.device)
            self.test_split = _on_device(data.test, self.device)
        self.init_path: Path | None = None  # the checkpoint stage 2 starts from, if given

    # ------------------------------------------------------------------ stages
    def stages(self, start_mode: str | None) -> list[tuple[str, int]]:
        plan = [("real", self.cfg.epochs_real), ("binary", self.cfg.epochs_binary)]
        if start_mode == "binary":  # initialised from / resuming a binary net
            plan = plan[1:]
        return [(m, e) for m, e in plan if e > 0]

    def run(self, *, init: Checkpoint | None = None, resume: Checkpoint | None = None) -> dict:
        model = self.model.to(self.device)
        start_stage, start_epoch, opt_state, sched_state = None, 0, None, None
        if resume is not None and resume.train is not None:
            model.load_state_dict(resume.model_state)
            t = resume.train
            start_stage, start_epoch = t["stage"], t["epoch"]
            opt_state, sched_state = t["optimizer"], t["scheduler"]
            self.history = list(t.get("history", []))
            plan = self.stages(start_stage if start_stage == "binary" else None)
        elif init is not None:
            model.load_state_dict(init.model_state)
            self.init_path = init.path
            plan = self.stages("binary")  # stage 2 from the given (real or binary) weights
        else:
            plan = self.stages(None)
        result: dict[str, Any] = {}
        for mode, epochs in plan:
            first = 0
            if start_stage is not None:
                if mode != start_stage:
                    continue  # finished earlier
                first = start_epoch
            result = self._stage(mode, epochs, first, opt_state, sched_state)
            start_stage, opt_state, sched_state = None, None, None
            if self.stopped_early:
                break
        if self.dinfo.world > 1:
            dist.barrier()
        return result

    def out_of_time(self) -> bool:
        """Stop here? After ``stop_after_epochs`` epochs, or where one more epoch (as long as
        the longest so far, with its evaluation) would end past ``time_limit_s``. Under DDP
        the first process decides for all."""
        if self.stop_after_epochs and self.epochs_run >= self.stop_after_epochs:
            return True
        if not self.time_limit_s or not self.epochs_run:
            return False
        late = time.perf_counter() - self.started + self.longest_epoch_s > self.time_limit_s
        if self.dinfo.world > 1:
            flag = torch.tensor([int(late)], device=self.device)
            dist.broadcast(flag, 0)
            late = bool(flag.item())
        return late

    def teacher_for(self, mode: str) -> BiRealNet | None:
        """The teacher of a stage (``None``: plain cross-entropy), from the run folder's
        ``teacher.pt``, which the first stage that needs one writes."""
        cfg = self.cfg
        if not cfg.teacher or (cfg.teacher == "real" and mode != "binary"):
            return None
        path = self.out / TEACHER_FILE
        if path.exists():  # a resumed run: its own copy
            source = path
        elif cfg.teacher == "real":  # the net stage 2 starts from: init or this run's stage 1
            source = self.init_path or self.out / "real.pt"
            if not source.exists():
                raise CheckpointError(
                    f"teacher 'real' is the stage-1 net, but '{source}' does not exist: "
                    "train stage 1 (epochs_real > 0) or start stage 2 from a checkpoint"
                )
        else:
            source = Path(cfg.teacher)
        teacher = load_teacher(source, self.model.spec)
        if self.dinfo.world > 1:
            dist.barrier()  # every process has read the folder before the first writes to it
        if source != path and self.dinfo.main:
            save_checkpoint(path, teacher, None)
        return teacher.to(self.device)

    def _stage(self, mode: str, epochs: int, first_epoch: int, opt_state, sched_state) -> dict:
        cfg, dinfo, device = self.cfg, self.dinfo, self.device
        model = self.model
        teacher = self.teacher_for(mode)
        model.set_mode(mode)  # type: ignore[arg-type]
        model.set_weight_grad(cfg.weight_grad)
        memory_format = (
            torch.channels_last
            if cfg.channels_last and device.type == "cuda"
            else torch.contiguous_format
        )
        model.to(memory_format=memory_format)  # type: ignore[call-overload]
        if teacher is not None:
            teacher.to(memory_format=memory_format)  # type: ignore[call-overload]
        net: nn.Module = model
        if dinfo.world > 1:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        forward = torch.compile(net) if cfg.compile else net
        per_rank_batch = max(1, cfg.batch_size // dinfo.world)
        n_train = len(self.train_split)
        per_rank = math.ceil(n_train / dinfo.world)
        steps = math.ceil(per_rank / per_rank_batch)
        if cfg.max_steps_per_epoch:
            steps = min(steps, cfg.max_steps_per_epoch)
        total = max(1, steps * epochs)
        warmup = min(total, round(cfg.warmup_epochs * steps))
        opt = torch.optim.Adam(param_groups(model, cfg), lr=cfg.effective_lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, total, warmup, cfg.lr_schedule)
        )
        if opt_state is not None:
            opt.load_state_dict(opt_state)
            sched.load_state_dict(sched_state)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if device.type == "cuda" and cfg.bf16
            else nullcontext()
        )
        show = self.progress and dinfo.main
        record: dict[str, Any] = {}
        for epoch in range(first_epoch, epochs):
            if self.out_of_time():
                self.stopped_early = True
                return record
            self.epochs_run += 1
            net.train()
            gen = torch.Generator(device=device).manual_seed(
                cfg.seed * 7919 + epoch * 31 + dinfo.rank
            )
            t0 = time.perf_counter()
            seen = 0
            sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss * n, correct
            bar = tqdm(
                total=steps,
                desc=f"{mode} {epoch + 1}/{epochs}",
                disable=not show,
                leave=False,
                dynamic_ncols=True,
            )
            batches = iterate(
                self.train_split,
                per_rank_batch,
                shuffle=True,
                seed=cfg.seed,
                epoch=epoch + (1000 if mode == "binary" else 0),
                rank=dinfo.rank,
                world=dinfo.world,
                workers=cfg.workers,
                drop_last=n_train >= per_rank_batch,
            )
            for step, (x, y) in enumerate(batches):
                if step >= steps:
                    break
                x = augment(x.to(device, non_blocking=True), cfg.crop_padding, cfg.flip, gen)
                y = y.to(device, non_blocking=True)
                inputs = preprocess(x).contiguous(memory_format=memory_format)
                with autocast:
                    logits = forward(inputs)
                    teacher_logits = None
                    if teacher is not None:
                        with torch.no_grad():
                            teacher_logits = teacher(inputs)
                    loss = training_loss(logits.float(), y, teacher_logits, cfg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                seen += len(y)
                sums[0] += loss.detach() * len(y)
                sums[1] += (logits.argmax(1) == y).sum()
                bar.update(1)
                if show and (step + 1) % cfg.log_every == 0:  # waits for the device
                    loss_avg, acc = (sums / seen).tolist()
                    bar.set_postfix(loss=f"{loss_avg:.3f}", acc=f"{acc:.3f}")
            bar.close()
            loss_sum, correct = sums.tolist()  # waits for the epoch's last step
            elapsed = time.perf_counter() - t0
            if dinfo.world > 1:
                _check_in_sync(model)
            if cfg.bn_recalibration_batches:
                recalibrate_bn(
                    model,
                    self.train_split,
                    cfg.bn_recalibration_batches,
                    per_rank_batch,
                    device,
                    cfg.seed,
                )
            top1_correct, n_test = evaluate(
                model, self.test_split, cfg.eval_batch_size, device, dinfo
            )
            record = {
                "stage": mode,
                "epoch": epoch + 1,
                "train_loss": loss_sum / max(seen, 1),
                "train_acc": correct / max(seen, 1),
                "test_top1": top1_correct / max(n_test, 1),
                "test_n": n_test,
                "images_per_s": seen * dinfo.world / max(elapsed, 1e-9),
                "lr": opt.param_groups[0]["lr"],
                "device": self.device_name,
            }
            self.history.append(record)
            self.longest_epoch_s = max(self.longest_epoch_s, time.perf_counter() - t0)
            if dinfo.main:
                tqdm.write(
                    f"[{mode}] epoch {epoch + 1}/{epochs}: loss {record['train_loss']:.4f} "
                    f"train acc {record['train_acc']:.4f} test top-1 {record['test_top1']:.4f} "
                    f"({record['images_per_s']:.0f} img/s)"
                )
                train_state = {
                    "config": cfg.to_dict(),
                    "stage": mode,
                    "epoch": epoch + 1,
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "history": self.history,
                    "world_size": dinfo.world,
                }
                save_checkpoint(self.out / "last.pt", model, train_state)
                (self.out / "history.json").write_text(json.dumps(self.history, indent=2))
        if dinfo.main:
            final = self.out / ("real.pt" if mode == "real" else "model.pt")
            save_checkpoint(
                final,
                model,
                {
                    "config": cfg.to_dict(),
                    "stage": mode,
                    "epoch": epochs,
                    "history": self.history,
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                },
            )
        if dinfo.world > 1:
            dist.barrier()  # the next stage may read it (teacher 'real')
        return record
