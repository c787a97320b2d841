"""Lazy ImageFolder dataset: decodes, crops and resizes one image file per item."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from bireal_fpga.errors import DataError

#: Random-resized-crop area range (fraction of the image) and aspect-ratio range.
CROP_SCALE = (0.35, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
#: Eval resize: the shorter side goes to ``round(size * EVAL_RESIZE_RATIO)``.
EVAL_RESIZE_RATIO = 8 / 7

Box = tuple[int, int, int, int]


def load_image(path: str, channels: int) -> Image.Image:
    """Decode ``path`` with Pillow as RGB (or L when ``channels == 1``).

    Raises :class:`DataError` naming the file when it cannot be decoded.
    """
    try:
        with Image.open(path) as img:
            return img.convert("L" if channels == 1 else "RGB")
    except Exception as exc:  # Pillow raises many types for a broken file; all mean "undecodable"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"cannot decode image '{path}': {reason}") from exc


def eval_box(width: int, height: int, size: int) -> tuple[tuple[int, int], Box]:
    """Resize target and centre crop box for evaluation.

    The shorter side is resized to ``round(size * 8 / 7)`` (aspect kept), then the centre
    ``size x size`` square is cropped. Returns ``((new_w, new_h), (left, top, right, bottom))``.
    """
    short = max(size, round(size * EVAL_RESIZE_RATIO))
    if width <= height:
        new_w, new_h = short, max(size, round(height * short / width))
    else:
        new_w, new_h = max(size, round(width * short / height)), short
    left = round((new_w - size) / 2)
    top = round((new_h - size) / 2)
    return (new_w, new_h), (left, top, left + size, top + size)


def random_crop_box(width: int, height: int, rng: random.Random) -> Box:
    """A random-resized-crop box: area fraction in ``CROP_SCALE``, aspect in ``CROP_RATIO``.

    Tries ten random boxes (as torchvision does); falls back to the largest centred box
    whose aspect ratio lies in ``CROP_RATIO``.
    """
    area = width * height
    log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    for _ in range(10):
        target = area * rng.uniform(*CROP_SCALE)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = rng.randint(0, width - w)
            top = rng.randint(0, height - h)
            return left, top, left + w, top + h
    in_ratio = width / height
    if in_ratio < CROP_RATIO[0]:
        w, h = width, round(width / CROP_RATIO[0])
    elif in_ratio > CROP_RATIO[1]:
        w, h = round(height * CROP_RATIO[1]), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def to_tensor(img: Image.Image) -> torch.Tensor:
    """A Pillow L/RGB image as a uint8 ``[C, H, W]`` tensor."""
    arr = np.array(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


class ImageFolderDataset(Dataset):
    """Images listed as ``(path, label)`` and decoded lazily, one per item.

    Evaluation (``train=False``): shorter side resized to ``round(size * 8 / 7)``, then a
    centre ``size x size`` crop. Training (``train=True``): a random-resized crop (area
    0.35..1 of the image, aspect 3/4..4/3) resized to ``size x size``; the randomness comes
    from a ``random.Random`` seeded with ``(seed, epoch, index)``, so an item is the same in
    every process and run, and changes with :meth:`set_epoch`. Items are
    ``(uint8 [channels, size, size], label)``.

    With ``DataLoader(persistent_workers=True)`` the workers hold their own copy, so call
    :meth:`set_epoch` before the loader is first iterated or use non-persistent workers.
    """

    def __init__(
        self,
        samples: Sequence[tuple[str, int]],
        classes: Sequence[str],
        size: int,
        *,
        channels: int = 3,
        train: bool = False,
        seed: int = 0,
    ) -> None:
        if channels not in (1, 3):
            raise DataError(f"ImageFolder images need 1 or 3 channels, not {channels}")
        if size <= 0:
            raise DataError(f"ImageFolder image size must be positive, not {size}")
        self.samples: list[tuple[str, int]] = [(str(p), int(c)) for p, c in samples]
        self.classes: tuple[str, ...] = tuple(classes)
        self.size = int(size)
        self.channels = int(channels)
        self.train = bool(train)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random crops of ``epoch`` (only matters when ``train=True``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Number of image files."""
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """Image ``i`` decoded, cropped and resized, as uint8 ``[C, size, size]``, and its label."""
        path, label = self.samples[i]
        img = load_image(path, self.channels)
        side = (self.size, self.size)
        if self.train:
            rng = random.Random(f"{self.seed}/{self.epoch}/{i}")
            box = random_crop_box(img.width, img.height, rng)
            img = img.resize(side, Image.Resampling.BILINEAR, box=box)
        else:
            new_size, box = eval_box(img.width, img.height, self.size)
            img = img.resize(new_size, Image.Resampling.BILINEAR).crop(box)
        return to_tensor(img), label

    def __repr__(self) -> str:
        mode = "train" if self.train else "eval"
        return (
            f"ImageFolderDataset(n={len(self)}, classes={len(self.classes)}, "
            f"size={self.size}, channels={self.channels}, {mode})"
        )
