"""The DMA buffers of the board driver, vectorized (``arch.shell.pack_images`` /
``unpack_results`` on ``arch.streams.pack_bytes`` / ``unpack_bytes``) == the Python-int
reference (``streams.pack`` / ``unpack``, one int per word) and == FINN's own packing
(``finn.util.data_packing``, as FINN's PYNQ driver calls it: ``reverse_inner=True,
reverse_endian=True``) for every stream format of the builds and a parametrized set.

FINN packs a word in ``ceil(bits / 8)`` bytes; a DMA beat is ``dma_bits / 8`` bytes, the rest
zeros: the comparisons strip (or check) that padding.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bireal_fpga.arch import shell as arch
from bireal_fpga.arch.streams import (
    StreamError,
    StreamFormat,
    fit_bytes,
    pack,
    pack_bytes,
    unpack,
    unpack_bytes,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261201
DMA_BITS = (8, 16, 32, 64, 128, 256, 512, 1024)


def _rng(*key: object) -> np.random.Generator:
    """A generator seeded by ``key`` (the same in every process)."""
    return np.random.default_rng([SEED, *(zlib.crc32(str(k).encode()) for k in key)])


def _values(rng: np.random.Generator, fmt: StreamFormat, shape: tuple[int, ...]) -> np.ndarray:
    """Random int64 values of ``fmt``'s whole range, its ends included."""
    hi = min(fmt.hi, 2**63 - 1)
    v = rng.integers(fmt.lo, hi, size=shape, dtype=np.int64, endpoint=True)
    flat = v.reshape(-1)
    flat[: min(2, flat.size)] = [fmt.lo, hi][: min(2, flat.size)]
    return v


def _ref_bytes(values: np.ndarray, fmt: StreamFormat, beat: int) -> np.ndarray:
    """The Python-int reference: each word of ``streams.pack`` as ``beat`` little-endian bytes."""
    words = pack(values, fmt)
    data = b"".join(w.to_bytes(beat, "little") for w in words)
    return np.frombuffer(data, dtype=np.uint8).reshape(len(words), beat)


def _ref_unpack(raw: np.ndarray, fmt: StreamFormat) -> np.ndarray:
    return unpack([int.from_bytes(row.tobytes(), "little") for row in raw], fmt)


def _image(shape: tuple[int, int, int], fmt: StreamFormat) -> dict[str, Any]:
    """A ``shell.json`` ``"image"`` entry."""
    h, w, c = shape
    return arch.stream_entry("s_axis_img", fmt, h * w * c // fmt.elems, shape)


def _output(classes: int, fmt: StreamFormat) -> dict[str, Any]:
    """A ``shell.json`` ``"output"`` entry."""
    return arch.stream_entry("m_axis_out", fmt, classes // fmt.elems, [classes])


def _fmt(entry: dict[str, Any]) -> StreamFormat:
    f = entry["format"]
    return StreamFormat(int(f["elem_bits"]), bool(f["signed"]), int(f["elems"]))


def _name(fmt: StreamFormat) -> str:
    return f"{'INT' if fmt.signed else 'UINT'}{fmt.elem_bits}x{fmt.elems}"


# ---- (a) == the Python-int reference, every element width ------------------------------------

FORMATS = [
    StreamFormat(bits, signed, elems)
    for bits in range(1, 65)
    for signed in (False, True)
    for elems in (1, 2, 3, 5, 8, 13, 32)
    if bits * elems <= arch.MAX_DMA_BITS
]


@pytest.mark.parametrize("fmt", FORMATS, ids=_name)
def test_bytes_equal_the_python_int_reference(fmt: StreamFormat) -> None:
    rng = _rng("ref", fmt)
    v = _values(rng, fmt, (37, fmt.elems))
    for dma in (d for d in DMA_BITS if d >= fmt.width):
        beat = dma // 8
        got = pack_bytes(v, fmt, beat)
        assert got.dtype == np.uint8 and got.shape == (37, beat)
        assert np.array_equal(got, _ref_bytes(v, fmt, beat)), (fmt, dma)
        back = unpack_bytes(got, fmt)
        assert back.dtype == np.int64
        assert np.array_equal(back, v) and np.array_equal(back, _ref_unpack(got, fmt))
    # bits beyond the word (a wider beat's padding, here noise) are ignored
    noisy = pack_bytes(v, fmt, 128)
    noisy = noisy | (rng.integers(0, 256, noisy.shape, dtype=np.uint8) & _pad_mask(fmt, 128))
    assert np.array_equal(unpack_bytes(noisy, fmt), v)


def _pad_mask(fmt: StreamFormat, beat: int) -> np.ndarray:
    """Per byte of a ``beat``-byte row, the bits above the word's width."""
    bits = np.arange(beat * 8) >= fmt.width
    return np.packbits(bits.astype(np.uint8), bitorder="little")


def test_pack_bytes_takes_any_integer_container() -> None:
    fmt = StreamFormat(8, True, 4)
    v = _values(_rng("containers"), fmt, (9, 4))
    want = pack_bytes(v, fmt)
    for dtype in (np.int8, np.int16, np.int32, np.float32, np.float64):
        assert np.array_equal(pack_bytes(v.astype(dtype), fmt), want), dtype
    u = StreamFormat(1, False, 16)
    bits = _rng("bool").integers(0, 2, (5, 16)).astype(bool)
    assert np.array_equal(pack_bytes(bits, u), _ref_bytes(bits.astype(np.int64), u, 2))
    assert np.array_equal(unpack_bytes(pack_bytes(bits, u), u), bits)
    empty = pack_bytes(np.zeros((0, 16), np.int64), u, 4)
    assert empty.shape == (0, 4) and unpack_bytes(empty, u).shape == (0, 16)


@pytest.mark.parametrize(
    "img_fmt, shape",
    [(StreamFormat(8, False, e), (8, 8, 3)) for e in (1, 3, 4, 12)]
    + [(StreamFormat(8, False, 48), (8, 8, 48)), (StreamFormat(8, True, 3), (8, 8, 3)),
       (StreamFormat(4, False, 6), (8, 8, 3)), (StreamFormat(7, True, 16), (8, 8, 48)),
       (StreamFormat(16, False, 3), (8, 8, 3)), (StreamFormat(5, False, 96), (8, 8, 48))],
    ids=lambda v: _name(v) if isinstance(v, StreamFormat) else "x".join(map(str, v)),
)  # fmt: skip
def test_pack_images_equals_the_reference(
    img_fmt: StreamFormat, shape: tuple[int, int, int]
) -> None:
    image = _image(shape, img_fmt)
    x = _values(_rng("img", img_fmt), img_fmt, (5, *image["shape"]))
    if not img_fmt.signed and img_fmt.elem_bits <= 8:
        x = x.astype(np.uint8)
    data = arch.pack_images(x, image)
    assert len(data) == 5 * image["bytes_per_image"]
    beat = image["dma_bits"] // 8
    assert data == _ref_bytes(x.astype(np.int64), img_fmt, beat).tobytes()


@pytest.mark.parametrize(
    "out_fmt",
    [StreamFormat(32, True, 1), StreamFormat(20, True, 2), StreamFormat(16, True, 5),
     StreamFormat(24, True, 10), StreamFormat(4, False, 1), StreamFormat(11, True, 10),
     StreamFormat(64, True, 2), StreamFormat(3, True, 10)],
    ids=_name,
)  # fmt: skip
def test_unpack_results_equals_the_reference(out_fmt: StreamFormat) -> None:
    output = _output(10 if out_fmt.elems > 1 or out_fmt.elem_bits > 8 else 1, out_fmt)
    n, beat = 7, output["dma_bits"] // 8
    v = _values(_rng("out", out_fmt), out_fmt, (n, output["shape"][0]))
    raw = _ref_bytes(v, out_fmt, beat)
    got = arch.unpack_results(raw.tobytes(), output, n)
    assert got.dtype == np.int64 and got.shape == (n, output["shape"][0])
    assert np.array_equal(got, v)
    assert np.array_equal(got, _ref_unpack(raw, out_fmt).reshape(n, -1))
    # a DMA buffer (a numpy array, as PYNQ's allocate gives) and a bytearray read the same
    assert np.array_equal(arch.unpack_results(raw.reshape(-1), output, n), v)
    assert np.array_equal(arch.unpack_results(bytearray(raw.tobytes()), output, n), v)


def test_fit_bytes_pads_and_cuts_rows() -> None:
    rows = _rng("fit").integers(0, 256, (9, 24), dtype=np.uint8)
    for cols in (slice(0, 12), slice(0, 24), slice(3, 14), slice(0, 24, 2)):
        src = rows[:, cols]  # contiguous or not, 12 / 24 / 11 / 12 columns
        for nbytes in (24, 32, 128):
            want = np.zeros((9, nbytes), np.uint8)
            want[:, : src.shape[1]] = src
            assert np.array_equal(fit_bytes(src, nbytes), want), (cols, nbytes)
    assert fit_bytes(rows, 24) is rows
    many = _rng("fit-many").integers(0, 256, (20000, 4), dtype=np.uint8)  # blocks of rows
    assert np.array_equal(fit_bytes(many, 128), np.pad(many, ((0, 0), (0, 124))))
    assert np.array_equal(fit_bytes(np.pad(rows, ((0, 0), (0, 8))), 24), rows)


# ---- errors ------------------------------------------------------------------------------------


def test_packing_errors_name_shape_and_byte_count() -> None:
    image = _image((32, 32, 3), StreamFormat(8, False, 1))
    with pytest.raises(arch.ShellError, match=r"\(2, 3, 32, 32\) are not \[N, 32, 32, 3\]"):
        arch.pack_images(np.zeros((2, 3, 32, 32), np.uint8), image)
    with pytest.raises(arch.ShellError, match=r"\(32, 32, 3\) are not \[N, 32, 32, 3\]"):
        arch.pack_images(np.zeros((32, 32, 3), np.uint8), image)
    output = _output(10, StreamFormat(20, True, 2))  # 5 beats of 8 bytes per image
    with pytest.raises(arch.ShellError, match="^7 result bytes for 1 images, expected 40$"):
        arch.unpack_results(b"\0" * 7, output, 1)
    with pytest.raises(arch.ShellError, match="^40 result bytes for 2 images, expected 80$"):
        arch.unpack_results(b"\0" * 40, output, 2)
    assert arch.unpack_results(b"", output, 0).shape == (0, 10)
    assert arch.pack_images(np.zeros((0, 32, 32, 3), np.uint8), image) == b""


def test_pack_rejects_values_outside_the_type() -> None:
    fmt = StreamFormat(4, True, 2)
    with pytest.raises(StreamError, match=r"values \[-9, 3\] outside the stream type \[-8, 7\]"):
        pack_bytes(np.array([[-9, 3]]), fmt)
    with pytest.raises(StreamError, match=r"values \[-9, 3\] outside"):
        pack(np.array([[-9, 3]]), fmt)  # the reference says the same
    image = _image((2, 2, 2), StreamFormat(4, True, 2))
    with pytest.raises(StreamError, match=r"values \[8, 8\] outside the stream type \[-8, 7\]"):
        arch.pack_images(np.full((1, 2, 2, 2), 8), image)
    with pytest.raises(StreamError, match="does not fit in 1 bytes"):
        pack_bytes(np.zeros((1, 2)), StreamFormat(5, False, 2), 1)
    with pytest.raises(StreamError, match=r"shape \(3, 1\) do not hold 16-bit words"):
        unpack_bytes(np.zeros((3, 1), np.uint8), StreamFormat(16, True, 1))


# ---- (b) == FINN's data_packing ------------------------------------------------------------


def _finn() -> Any:
    from bireal_fpga.hwlayers.finn_env import finn_ready

    finn_ready()
    from finn.util import data_packing

    return data_packing


def _dtype(fmt: StreamFormat) -> Any:
    from qonnx.core.datatype import DataType

    return DataType[f"{'INT' if fmt.signed else 'UINT'}{fmt.elem_bits}"]


def _container(v: np.ndarray, fmt: StreamFormat) -> np.ndarray:
    """``v`` as FINN's driver holds it: a numpy int of exactly the type's bytes when there is
    one (FINN's byte-view path), else float32 (its general path)."""
    if fmt.elem_bits in (8, 16, 32, 64):
        return v.astype(f"{'i' if fmt.signed else 'u'}{fmt.elem_bits // 8}")
    return v.astype(np.float32)


def _finn_range(rng: np.random.Generator, fmt: StreamFormat, shape: tuple[int, ...]) -> np.ndarray:
    """Random values FINN represents exactly: its general path goes through float32, so
    types wider than 24 bits without a container of their own keep to 24-bit magnitudes."""
    v = _values(rng, fmt, shape)
    if fmt.elem_bits > 24 and fmt.elem_bits not in (32, 64):
        v = np.clip(v, -(2**24), 2**24)
    return v


def _build_streams() -> list[tuple[str, str, dict[str, Any]]]:
    """Every ``"image"`` / ``"output"`` entry of the builds' ``shell.json`` (none without
    builds; the parametrized set below has their formats too)."""
    found = []
    for path in sorted(ROOT.glob("build/*/shell/shell.json")):
        manifest = json.loads(path.read_text())
        board = path.parents[1].name
        found += [(board, "image", manifest["image"]), (board, "output", manifest["output"])]
    return found


IMAGE_STREAMS = [
    ("uint8x1", _image((32, 32, 3), StreamFormat(8, False, 1))),  # the builds' (both boards)
    ("uint8x3", _image((32, 32, 3), StreamFormat(8, False, 3))),
    ("uint8x4", _image((32, 32, 3), StreamFormat(8, False, 4))),
    ("uint8x12", _image((32, 32, 3), StreamFormat(8, False, 12))),
    ("uint8x48", _image((32, 32, 3), StreamFormat(8, False, 48))),
    ("int8x3", _image((16, 16, 3), StreamFormat(8, True, 3))),
    ("uint4x6", _image((16, 16, 6), StreamFormat(4, False, 6))),
]
OUTPUT_STREAMS = [
    ("int32x1", _output(10, StreamFormat(32, True, 1))),  # the builds' (both boards)
    ("int20x2", _output(10, StreamFormat(20, True, 2))),
    ("int24x10", _output(10, StreamFormat(24, True, 10))),
    ("int16x1", _output(10, StreamFormat(16, True, 1))),
    ("int16x5", _output(10, StreamFormat(16, True, 5))),
    ("int8x10", _output(10, StreamFormat(8, True, 10))),
    ("int12x10", _output(100, StreamFormat(12, True, 10))),
    ("uint4x1", _output(1, StreamFormat(4, False, 1))),  # a top-1 index of 10 classes
    ("uint7x1", _output(1, StreamFormat(7, False, 1))),  # ... of 100 classes
    ("uint10x1", _output(1, StreamFormat(10, False, 1))),  # ... of 1000 classes
    ("uint8x1", _output(1, StreamFormat(8, False, 1))),
    ("int64x1", _output(10, StreamFormat(64, True, 1))),
]
BUILD = _build_streams()
FINN_IMAGES = IMAGE_STREAMS + [(f"{b}-{k}", e) for b, k, e in BUILD if k == "image"]
FINN_OUTPUTS = OUTPUT_STREAMS + [(f"{b}-{k}", e) for b, k, e in BUILD if k == "output"]


@pytest.mark.parametrize("image", [e for _, e in FINN_IMAGES], ids=[k for k, _ in FINN_IMAGES])
def test_pack_images_equals_finn(image: dict[str, Any]) -> None:
    dp, fmt = _finn(), _fmt(image)
    n, words, beat = 3, image["words_per_image"], image["dma_bits"] // 8
    x = _finn_range(_rng("finn-img", fmt, image["shape"]), fmt, (n, *image["shape"]))
    if fmt.elem_bits == 8 and not fmt.signed:
        x = x.astype(np.uint8)
    folded = _container(x, fmt).reshape(n, words, fmt.elems)
    finn = dp.finnpy_to_packed_bytearray(
        folded, _dtype(fmt), reverse_inner=True, reverse_endian=True
    )
    k = (fmt.width + 7) // 8
    assert finn.shape == (n, words, k) and k <= beat
    ours = np.frombuffer(arch.pack_images(x, image), np.uint8).reshape(n, words, beat)
    assert np.array_equal(ours[..., :k], finn)
    assert not ours[..., k:].any()


@pytest.mark.parametrize("output", [e for _, e in FINN_OUTPUTS], ids=[k for k, _ in FINN_OUTPUTS])
def test_unpack_results_equals_finn(output: dict[str, Any]) -> None:
    dp, fmt = _finn(), _fmt(output)
    n, words, beat = 50, output["words_per_image"], output["dma_bits"] // 8
    classes = words * fmt.elems
    v = _finn_range(_rng("finn-out", fmt, classes), fmt, (n, words, fmt.elems))
    dtype, k = _dtype(fmt), (fmt.width + 7) // 8
    # FINN packs the results as the accelerator sends them; a DMA beat pads them with zeros
    finn = dp.finnpy_to_packed_bytearray(
        _container(v, fmt), dtype, reverse_inner=True, reverse_endian=True
    )
    assert finn.shape == (n, words, k)
    buf = np.zeros((n, words, beat), np.uint8)
    buf[..., :k] = finn
    ours = arch.unpack_results(buf.tobytes(), output, n)
    assert np.array_equal(ours, v.reshape(n, classes))
    # and FINN reads the same values back from our bytes (stripped of the DMA padding); its
    # values are float32, its bit patterns (prepare_values) exact
    stripped = np.ascontiguousarray(
        np.frombuffer(_shell_results(v, output), np.uint8).reshape(n, words, beat)[..., :k]
    )
    assert np.array_equal(stripped, finn)
    shape = (n, words, fmt.elems)
    floats = dp.packed_bytearray_to_finnpy(
        stripped, dtype, shape, reverse_inner=True, reverse_endian=True
    )
    assert np.array_equal(floats, ours.reshape(shape).astype(np.float32))
    if fmt.elem_bits < 64:  # (FINN's prepare_values can't hold 64 bits)
        patterns = dp.prepare_values(stripped, dtype, shape, True, True).astype(np.uint64)
        mask = np.uint64((1 << fmt.elem_bits) - 1)
        assert np.array_equal(patterns, ours.reshape(shape).view(np.uint64) & mask)


def _shell_results(v: np.ndarray, output: dict[str, Any]) -> bytes:
    """Results as the shell sends them (the vectorized packing, as a testbench would)."""
    fmt = _fmt(output)
    return pack_bytes(v.reshape(-1, fmt.elems), fmt, output["dma_bits"] // 8).tobytes()


def test_the_builds_streams_are_covered() -> None:
    """Each build's stream formats are in the parametrized FINN sets (which run without
    builds too)."""
    ours_images = {(_fmt(e), e["dma_bits"]) for _, e in IMAGE_STREAMS}
    ours_outputs = {(_fmt(e), e["dma_bits"]) for _, e in OUTPUT_STREAMS}
    for board, kind, entry in BUILD:
        covered = ours_images if kind == "image" else ours_outputs
        assert (_fmt(entry), entry["dma_bits"]) in covered, (board, kind, entry)
        assert entry["dma_bits"] == arch.dma_width(entry["core_bits"])
        assert entry["core_bits"] == _fmt(entry).width
