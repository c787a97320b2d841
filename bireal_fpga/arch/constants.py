"""What a constant broadcast over a stream stores: the one decision for the ElementwiseAdd
generator (``rtl.layers.elementwise_add`` -> ``bireal_add``) and the cost model.

A constant operand (an FC bias, the per-pixel popcount correction of a zero-padded binary
conv: ``export.qonnx_export.border_correction``) is an integer array broadcast to the output
shape ``[..., H, W, C]``; it streams in FINN's order (channels fastest) as words of ``PE``
elements. Two forms of storing it:

- **period** (:data:`PERIOD`): the frame's words repeat with the smallest period ``P`` that
  divides the frame (:func:`const_period`; a per-channel bias: ``C / PE`` words), and those
  ``P`` words are stored, read with one address counter that wraps at ``P``;
- **border** (:data:`BORDER`): the value depends only on ``(row class, column class,
  channel)``. Rows (``H``: all the dimensions before ``W`` together, for a frame that is not
  ``[1, H, W, C]``) fall into classes of equal row slices ``[W, C]``, columns into classes of
  equal column slices ``[H, C]``, both numbered in order of first appearance (row 0 and column
  0 are class 0). ``NR * NC`` pixels of ``C / PE`` words are stored::

      value(h, w, word) = table[(row_class[h] * NC + col_class[w]) * (C / PE) + word]

  Two rows of one class hold the same values, two columns of one class too, so every pixel
  equals the stored pixel of its classes; :func:`const_layout` checks that the table
  reproduces the constant all the same. A border correction has at most three row and three
  column classes (top, interior, bottom; only a top / left border with stride 2 and even
  sizes): ``9 C / PE`` words where the period form stores the whole frame.

The form that stores fewer words is taken; on a tie the period form (the RTL of designs
whose constants are per-channel biases stays as it was).

The decision is made from a :class:`ConstProfile` of the constant (:func:`const_profile`),
which does not depend on ``PE``: the element period ``p`` of the frame gives the word period
``lcm(p, PE) / PE`` for every ``PE`` (the periods dividing a cyclic sequence's length are the
multiples of the smallest one). The cost model keeps one profile per constant and prices any
folding by :func:`const_storage`; the generator builds the table by :func:`const_layout`,
which takes the same decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bireal_fpga.errors import BiRealError

PERIOD, BORDER = "period", "border"
FORMS = (PERIOD, BORDER)


class ConstLayoutError(BiRealError, ValueError):
    """A constant that cannot be laid out: not integers, or words that do not divide it."""


def const_period(words: np.ndarray) -> int:
    """The smallest number of words P dividing len(words) with words[i] == words[i % P]
    (``words``: one row per word)."""
    n = len(words)
    for p in range(1, n + 1):
        if n % p == 0 and (words.reshape(n // p, p, -1) == words[None, :p]).all():
            return p
    return n


@dataclass(frozen=True)
class ConstProfile:
    """What the storage decision needs of a constant, whatever the PE: its frame of ``elems``
    elements, ``channels`` (the last dimension), the smallest element ``period`` dividing the
    frame and, for a frame of pixels (at least 3 dimensions), its ``rows`` and ``cols`` and
    their ``row_classes`` and ``col_classes`` (all 0 when it has fewer dimensions)."""

    elems: int
    channels: int
    period: int
    rows: int = 0
    cols: int = 0
    row_classes: int = 0
    col_classes: int = 0

    @property
    def pixels(self) -> bool:
        """Whether the frame has rows and columns (the border form is possible)."""
        return self.rows > 0


@dataclass(frozen=True)
class ConstStorage:
    """The stored form of a constant at ``pe`` elements per word: ``form`` (:data:`PERIOD` or
    :data:`BORDER`), ``words`` stored (the ROM depth) of the ``frame_words`` a frame streams;
    for the border form the frame's ``rows`` x ``cols`` pixels of ``wpp`` words and the
    ``row_classes`` x ``col_classes`` stored pixels (0 for the period form)."""

    form: str
    pe: int
    words: int
    frame_words: int
    rows: int = 0
    cols: int = 0
    wpp: int = 0
    row_classes: int = 0
    col_classes: int = 0

    def bits(self, elem_bits: int) -> int:
        """The ROM's bits at ``elem_bits`` per element."""
        return self.words * self.pe * elem_bits


@dataclass(frozen=True)
class ConstLayout:
    """A constant as the RTL stores it: its :class:`ConstStorage`, the stored words
    (``table``: ``storage.words`` rows of ``pe`` elements) and, for the border form, the class
    of every row and column (empty for the period form)."""

    storage: ConstStorage
    table: np.ndarray = field(compare=False, repr=False)
    row_class: tuple[int, ...] = ()
    col_class: tuple[int, ...] = ()

    @property
    def form(self) -> str:
        return self.storage.form

    @property
    def words(self) -> int:
        return self.storage.words

    def frame(self) -> np.ndarray:
        """The frame's words (one row of ``pe`` elements per word) this layout reads out."""
        s = self.storage
        if s.form == PERIOD:
            return np.tile(self.table, (s.frame_words // s.words, 1))
        t = self.table.reshape(s.row_classes, s.col_classes, s.wpp, s.pe)
        return t[np.asarray(self.row_class)][:, np.asarray(self.col_class)].reshape(-1, s.pe)


def _integers(full: np.ndarray) -> np.ndarray:
    a = np.asarray(full)
    if a.ndim == 0 or a.size == 0:
        raise ConstLayoutError(f"a constant of shape {list(a.shape)}: expected a frame")
    ints = np.rint(a).astype(np.int64) if a.dtype.kind == "f" else a.astype(np.int64)
    if not np.array_equal(ints, a):
        raise ConstLayoutError("the constant holds values that are not integers")
    return ints


def _classes(slices: np.ndarray) -> tuple[tuple[int, ...], list[int]]:
    """The class of each slice (equal slices, numbered by first appearance) and the index of
    each class's first slice."""
    seen: dict[bytes, int] = {}
    first: list[int] = []
    cls = []
    for i, s in enumerate(slices):
        key = np.ascontiguousarray(s).tobytes()
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        cls.append(seen[key])
    return tuple(cls), first


def _pixels(ints: np.ndarray) -> np.ndarray:
    """The frame as [rows, cols, channels]."""
    return ints.reshape(-1, ints.shape[-2], ints.shape[-1])


def _profile(ints: np.ndarray) -> tuple[ConstProfile, tuple | None]:
    """The profile of an integer frame and, for a frame of pixels, its classes: (row class
    of each row, first row of each class, the same for the columns)."""
    flat = ints.reshape(-1, 1)
    channels = int(ints.shape[-1])
    period = const_period(flat)
    if ints.ndim < 3:
        return ConstProfile(int(flat.shape[0]), channels, period), None
    px = _pixels(ints)
    rc, rows = _classes(px)
    cc, cols = _classes(px.transpose(1, 0, 2))
    profile = ConstProfile(
        int(flat.shape[0]), channels, period, px.shape[0], px.shape[1], max(rc) + 1, max(cc) + 1
    )
    return profile, (rc, rows, cc, cols)


def const_profile(full: np.ndarray) -> ConstProfile:
    """The :class:`ConstProfile` of a constant broadcast to its output shape (integers)."""
    return _profile(_integers(full))[0]


def const_storage(profile: ConstProfile, pe: int) -> ConstStorage:
    """The stored form at ``pe`` elements per word: the border form where it stores fewer
    words than the period form, else the period form."""
    if pe < 1 or profile.channels % pe:
        raise ConstLayoutError(
            f"{pe} elements per word do not divide the constant's {profile.channels} channels"
        )
    period = math.lcm(profile.period, pe) // pe
    frame = profile.elems // pe
    if profile.pixels:
        wpp = profile.channels // pe
        border = profile.row_classes * profile.col_classes * wpp
        if border < period:
            return ConstStorage(
                BORDER,
                pe,
                border,
                frame,
                profile.rows,
                profile.cols,
                wpp,
                profile.row_classes,
                profile.col_classes,
            )
    return ConstStorage(PERIOD, pe, period, frame)


def const_layout(full: np.ndarray, pe: int) -> ConstLayout:
    """The layout of a constant broadcast to its output shape (integers), at ``pe`` elements
    per word: the form :func:`const_storage` chooses, its table and class maps; checked to
    reproduce the constant exactly."""
    ints = _integers(full)
    profile, classes = _profile(ints)
    storage = const_storage(profile, pe)
    words = ints.reshape(-1, pe)
    if storage.form == PERIOD:
        layout = ConstLayout(storage, np.ascontiguousarray(words[: storage.words]))
    else:
        assert classes is not None  # the border form needs pixels
        rc, rows, cc, cols = classes
        table = _pixels(ints)[np.asarray(rows)][:, np.asarray(cols)].reshape(-1, pe)
        layout = ConstLayout(storage, np.ascontiguousarray(table), rc, cc)
    if not np.array_equal(layout.frame(), words):
        raise ConstLayoutError(f"the {storage.form} form does not reproduce the constant")
    return layout
