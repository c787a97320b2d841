"""Batches for training and evaluation, with per-sample augmentation on the device.

In-memory datasets (``.images`` uint8 tensor, on the CPU or held on the training device) are
batched by indexing where they are; lazily decoded ones (ImageFolder) go through a
``DataLoader``. Data order depends only on ``(seed, epoch)``, so a
resumed run sees the same batches; under DDP each process takes its own shard.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool, rank: int, world: int) -> Tensor:
    """Sample order of one epoch for one process (padded so every process gets as many)."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    if world > 1:
        per = -(-n // world)
        order = torch.cat([order, order[: per * world - n]]) if per * world > n else order
        order = order[rank::world]
    return order


def iterate(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    rank: int = 0,
    world: int = 1,
    workers: int = 0,
    drop_last: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(uint8 images [B, C, H, W], int64 labels [B])`` on the dataset's device (the CPU
    for a ``DataLoader``)."""
    order = epoch_order(len(dataset), seed, epoch, shuffle, rank, world)  # type: ignore[arg-type]
    images = getattr(dataset, "images", None)
    if images is not None:
        labels = dataset.labels  # type: ignore[attr-defined]
        order = order.to(images.device)  # a split held on the device is indexed there
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield images[idx], labels[idx]
        return
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=order.tolist(),
        num_workers=workers,
        drop_last=drop_last,
        persistent_workers=False,
    )
    for x, y in loader:
        yield x, y.long()


def augment(x: Tensor, padding: int, flip: bool, generator: torch.Generator) -> Tensor:
    """Per-sample random crop (after zero padding) and horizontal flip of a uint8 batch.

    The random numbers are drawn on ``generator``'s device: a generator on the batch's device
    keeps the whole step there (no host-to-device copy, so no wait for the device)."""
    n, c, h, w = x.shape
    gdev = generator.device
    if padding:
        xp = F.pad(x, (padding,) * 4)
        oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev).to(x.device)
        ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev).to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        b = torch.arange(n, device=x.device)[:, None, None, None]
        ch = torch.arange(c, device=x.device)[None, :, None, None]
        x = xp[b, ch, rows, cols]
    if flip:
        mask = (torch.rand(n, generator=generator, device=gdev) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x
