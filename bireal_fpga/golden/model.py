"""Golden integer model of the accelerator's arithmetic, in numpy only.

It reads the integer-form ``.npz`` file itself and shares no code with the model, the
integer-form derivation or (later) the compiler, so a bug in any of those cannot agree with
itself here. Binary convs run as the hardware does: activation bits ``x >= 0`` and weight bits
``w > 0`` packed into 64-bit words, ``popcount(xnor)`` with ``np.bitwise_count``, then
``dot = 2 * popcount - K``; padding inserts bit 0 (= -1). A zero-padded binary conv
(``binary_pad`` 0) counts over the valid taps only: ``dot = 2 * popcount(xnor & valid) - #valid``
with the tap-validity bits packed the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_CHUNK_ROWS = 4096


class GoldenLayer:
    def __init__(self, name: str, meta: dict, weight: np.ndarray, thresholds: np.ndarray) -> None:
        self.name = name
        self.stride = int(meta["stride"])
        self.pad = int(meta["pad"])
        self.binary = bool(meta["binary"])
        self.pool = bool(meta["pool"])
        self.out_min = int(meta["out_min"])
        self.zero_pad = self.binary and int(meta.get("binary_pad", -1)) == 0
        self.cout, self.cin, self.k, _ = weight.shape
        self.thresholds = thresholds.astype(np.int64)
        flat = weight.reshape(self.cout, -1)
        self.fan_in = flat.shape[1]
        if self.binary:
            self.words = _pack_bits(flat > 0)
            self.pad_bits = self.words.shape[1] * 64 - self.fan_in
        else:
            self.weight_t = flat.astype(np.float64).T.copy()

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        """Integer accumulator ``[N, Co, Ho, Wo]`` of this layer's conv on ``x``."""
        if self.pool:
            x = _sum_pool2(x)
        if self.binary:
            x = (x >= 0).astype(np.uint8)
        cols, (n, ho, wo) = _im2col(x, self.k, self.stride, self.pad)
        if self.zero_pad:
            ones = np.ones((1,) + x.shape[1:], dtype=np.uint8)
            valid, _ = _im2col(ones, self.k, self.stride, self.pad)  # [Ho*Wo, K], 1 = real tap
            acc = self._masked_popcount(_pack_bits(cols), _pack_bits(valid), n)
        elif self.binary:
            acc = self._xnor_popcount(_pack_bits(cols))
        else:
            acc = np.rint(cols.astype(np.float64) @ self.weight_t).astype(np.int64)
        return acc.reshape(n, ho, wo, self.cout).transpose(0, 3, 1, 2)

    def _xnor_popcount(self, act: np.ndarray) -> np.ndarray:
        out = np.empty((act.shape[0], self.cout), dtype=np.int64)
        for start in range(0, act.shape[0], _CHUNK_ROWS):
            a = act[start : start + _CHUNK_ROWS, None, :]
            same = np.bitwise_count(~(a ^ self.words[None, :, :])).sum(axis=2, dtype=np.int64)
            popcount = same - self.pad_bits
            out[start : start + _CHUNK_ROWS] = 2 * popcount - self.fan_in
        return out

    def _masked_popcount(self, act: np.ndarray, valid: np.ndarray, n: int) -> np.ndarray:
        """``2 * popcount(xnor & valid) - #valid`` per row; ``valid`` is per pixel (one image)."""
        valid = np.tile(valid, (n, 1))
        count = np.bitwise_count(valid).sum(axis=1, dtype=np.int64)
        out = np.empty((act.shape[0], self.cout), dtype=np.int64)
        for start in range(0, act.shape[0], _CHUNK_ROWS):
            stop = start + _CHUNK_ROWS
            a, v = act[start:stop, None, :], valid[start:stop, None, :]
            same = np.bitwise_count(~(a ^ self.words[None, :, :]) & v).sum(axis=2, dtype=np.int64)
            out[start:stop] = 2 * same - count[start:stop, None]
        return out

    def threshold(self, acc: np.ndarray) -> np.ndarray:
        out = np.empty_like(acc)
        for c in range(self.cout):
            out[:, c] = np.searchsorted(self.thresholds[c], acc[:, c], side="right")
        return out + self.out_min

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.threshold(self.accumulate(x))


def _pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack a ``[M, K]`` boolean matrix into ``[M, ceil(K/64)]`` uint64 words (tail zero)."""
    m, k = bits.shape
    nbytes = -(-k // 64) * 8
    packed = np.zeros((m, nbytes), dtype=np.uint8)
    packed[:, : -(-k // 8)] = np.packbits(bits.astype(np.uint8), axis=1)
    return packed.view(np.uint64)


def _im2col(x: np.ndarray, k: int, stride: int, pad: int) -> tuple[np.ndarray, tuple]:
    """Rows ``[N*Ho*Wo, C*k*k]`` ordered (c, ky, kx); pads with 0 (= bit 0 = -1 for binary)."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
    return cols, (n, ho, wo)


def _sum_pool2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    x = np.pad(x, ((0, 0), (0, 0), (0, h % 2), (0, w % 2)))
    return x.reshape(n, c, (h + 1) // 2, 2, (w + 1) // 2, 2).sum(axis=(3, 5))


def _max_pool3s2(x: np.ndarray) -> np.ndarray:
    lowest = np.iinfo(np.int64).min
    x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=lowest)
    return sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::2, ::2].max(axis=(4, 5))


class GoldenModel:
    """Numpy integer reference: ``GoldenModel(npz).run(uint8 images) -> int64 scores``."""

    def __init__(self, path: str | Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data["meta"]))
        self.meta = meta
        self.lo = int(meta["residual_min"])
        self.hi = int(meta["residual_max"])
        self.maxpool = bool(meta["maxpool"])

        def layer(name: str) -> GoldenLayer:
            return GoldenLayer(
                name, meta["layers"][name], data[f"{name}.weight"], data[f"{name}.thresholds"]
            )

        self.stem = layer("stem")
        self.blocks = []
        for i in range(int(meta["num_blocks"])):
            down = f"blocks.{i}.down"
            self.blocks.append(
                (layer(f"blocks.{i}.conv"), layer(down) if down in meta["layers"] else None)
            )
        self.head_weight = data["head.weight"].astype(np.float64)
        self.head_bias = data["head.bias"].astype(np.int64)

    def run(self, images: np.ndarray, trace: dict[str, np.ndarray] | None = None) -> np.ndarray:
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8, got {images.dtype}")
        x = self.stem(images.astype(np.int64))
        if self.maxpool:
            x = _max_pool3s2(x)
        if trace is not None:
            trace["stem"] = x
        for i, (conv, down) in enumerate(self.blocks):
            short = x if down is None else down(x)
            x = np.clip(conv(x) + short, self.lo, self.hi)
            if trace is not None:
                trace[f"blocks.{i}"] = x
        pooled = x.sum(axis=(2, 3)).astype(np.float64)
        scores = np.rint(pooled @ self.head_weight.T).astype(np.int64) + self.head_bias
        if trace is not None:
            trace["head"] = scores
        return scores
