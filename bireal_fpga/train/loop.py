"""The paper's two-stage training algorithm.

Stage 1 ("real"): the real-valued net with ``clip(x, -1, 1)`` where the sign will be and real
weights. Stage 2 ("binary"): ApproxSign activations and magnitude-aware binary weights,
initialised from stage 1. Each stage: Adam, learning rate decayed linearly to 0, label
smoothing, per-sample random crop + flip. Runs on CPU or CUDA (bf16 autocast), in one process
or under ``torchrun`` (DistributedDataParallel; gloo on CPU, NCCL on CUDA).

Output folder: ``last.pt`` (after every epoch, for ``--resume``), ``real.pt`` (end of stage 1),
``model.pt`` (end of stage 2) and ``history.json``.
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

from bireal_fpga.integer.forward import run_integer
from bireal_fpga.integer.params import IntegerNet
from bireal_fpga.models.bireal import BiRealNet, preprocess
from bireal_fpga.quant.layers import BinaryConv2d
from bireal_fpga.train.batches import augment, iterate
from bireal_fpga.train.checkpoint import Checkpoint, save_checkpoint
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
) -> tuple[int, int]:
    """Top-1 counts ``(correct, n)`` of ``model`` on ``dataset`` (uint8 images, int labels).

    ``model`` is the float training form (a :class:`BiRealNet`, run in ``eval()`` on
    ``device`` on :func:`preprocess`-ed images) or the integer inference form (an
    :class:`IntegerNet` from :func:`bireal_fpga.integer.derive.integer_form`, run by
    :func:`bireal_fpga.integer.forward.run_integer` on the uint8 pixels, on the CPU).
    ``limit`` > 0 evaluates only the first ``limit`` images. Under DDP (``dinfo``) each
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
            pred = run_integer(model, x).argmax(1).to(device)
        else:
            pred = model(preprocess(x.to(device))).argmax(1)
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


def _check_in_sync(model: nn.Module) -> None:
    """Under DDP, every process must hold the same parameters after an epoch."""
    sums = torch.stack([p.detach().double().sum() for p in model.parameters()]).cpu()
    lo, hi = sums.clone(), sums.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise RuntimeError("DDP processes diverged: parameters differ between ranks")


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
    ) -> None:
        self.model = model
        self.data = data
        self.cfg = cfg
        self.out = Path(out_dir)
        self.progress = progress
        self.device = pick_device(cfg.device, int(os.environ.get("LOCAL_RANK", 0)))
        self.dinfo = init_distributed(self.device)
        self.history: list[dict[str, Any]] = []
        self.stop_after_epochs = stop_after_epochs  # 0: run to the end
        self.epochs_run = 0
        self.stopped_early = False

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

    def _stage(self, mode: str, epochs: int, first_epoch: int, opt_state, sched_state) -> dict:
        cfg, dinfo, device = self.cfg, self.dinfo, self.device
        model = self.model
        model.set_mode(mode)  # type: ignore[arg-type]
        model.set_weight_grad(cfg.weight_grad)
        net: nn.Module = model
        if dinfo.world > 1:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        per_rank_batch = max(1, cfg.batch_size // dinfo.world)
        n_train = len(self.data.train)
        per_rank = math.ceil(n_train / dinfo.world)
        steps = math.ceil(per_rank / per_rank_batch)
        if cfg.max_steps_per_epoch:
            steps = min(steps, cfg.max_steps_per_epoch)
        total = max(1, steps * epochs)
        opt = torch.optim.Adam(param_groups(model, cfg), lr=cfg.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total))
        if opt_state is not None:
            opt.load_state_dict(opt_state)
            sched.load_state_dict(sched_state)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if device.type == "cuda" and cfg.bf16
            else nullcontext()
        )
        record: dict[str, Any] = {}
        for epoch in range(first_epoch, epochs):
            if self.stop_after_epochs and self.epochs_run >= self.stop_after_epochs:
                self.stopped_early = True
                return record
            self.epochs_run += 1
            net.train()
            gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch * 31 + dinfo.rank)
            t0 = time.perf_counter()
            seen, correct, loss_sum = 0, 0, 0.0
            bar = tqdm(
                total=steps,
                desc=f"{mode} {epoch + 1}/{epochs}",
                disable=not (self.progress and dinfo.main),
                leave=False,
                dynamic_ncols=True,
            )
            batches = iterate(
                self.data.train,
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
                with autocast:
                    logits = net(preprocess(x))
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                seen += len(y)
                correct += int((logits.argmax(1) == y).sum())
                loss_sum += float(loss.detach()) * len(y)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            bar.close()
            elapsed = time.perf_counter() - t0
            if dinfo.world > 1:
                _check_in_sync(model)
            if cfg.bn_recalibration_batches:
                recalibrate_bn(
                    model,
                    self.data.train,
                    cfg.bn_recalibration_batches,
                    per_rank_batch,
                    device,
                    cfg.seed,
                )
            top1_correct, n_test = evaluate(
                model, self.data.test, cfg.eval_batch_size, device, dinfo
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
            }
            self.history.append(record)
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
        return record
