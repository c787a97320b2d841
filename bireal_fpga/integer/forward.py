"""The PyTorch integer inference form: runs an :class:`IntegerNet` on uint8 images.

Convolutions run in float64 on integer-valued tensors (exact: every accumulator is far below
2**53), threshold units use ``torch.searchsorted``. This is the reference "PyTorch integer
form" that the golden model, FINN execution and RTL simulation are compared with.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bireal_fpga import names
from bireal_fpga.integer.params import ConvLayer, IntegerNet


def _threshold(acc: Tensor, layer: ConvLayer) -> Tensor:
    """``out_min + #{k: acc >= T[c, k]}`` per channel; acc int64 [N, C, H, W]."""
    t = torch.from_numpy(layer.act.thresholds)
    n, c, h, w = acc.shape
    flat = acc.permute(1, 0, 2, 3).reshape(c, -1).contiguous()
    count = torch.searchsorted(t, flat, right=True)
    return (count + layer.act.out_min).reshape(c, n, h, w).permute(1, 0, 2, 3).contiguous()


def _conv(x: Tensor, layer: ConvLayer) -> Tensor:
    """Integer accumulator of one conv layer on the int64 residual stream (or pixels)."""
    if layer.pool:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2))
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // 2, 2, w // 2, 2).sum(dim=(3, 5))
    xf = x.double()
    if layer.binary:
        xf = torch.where(x >= 0, 1.0, -1.0).double()
    if layer.pad:
        xf = F.pad(xf, (layer.pad,) * 4, value=float(layer.binary_pad) if layer.binary else 0.0)
    weight = torch.from_numpy(layer.weight).double()
    acc = F.conv2d(xf, weight, None, layer.stride)
    return torch.round(acc).long()


def run_integer(
    net: IntegerNet, images: Tensor, *, trace: dict[str, Tensor] | None = None
) -> Tensor:
    """Integer class scores (int64 ``[N, classes]``) for uint8 images ``[N, C, H, W]``.

    With ``trace`` (a dict), each layer's integer output is stored under its name
    (``stem``, ``blocks.<i>``, ``head``).
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    x = _threshold(_conv(images.long(), net.stem), net.stem)
    if net.maxpool:
        x = F.max_pool2d(x.double(), 3, 2, 1).long()
    if trace is not None:
        trace[names.STEM] = x
    for i, block in enumerate(net.blocks):
        main = _threshold(_conv(x, block.conv), block.conv)
        short = x if block.down is None else _threshold(_conv(x, block.down), block.down)
        x = torch.clamp(main + short, net.residual_min, net.residual_max)
        if trace is not None:
            trace[names.block(i)] = x
    pooled = x.sum(dim=(2, 3)).double()
    w = torch.from_numpy(net.head_weight).double()
    scores = torch.round(pooled @ w.T).long() + torch.from_numpy(net.head_bias)
    if trace is not None:
        trace[names.HEAD] = scores
    return scores


def integer_layers(net: IntegerNet, images: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`run_integer` on uint8 numpy images ``[N, C, H, W]``: every layer's output (the
    ``trace`` keys) and the best class per image (``names.TOP1``: among equal scores the lowest
    index, as the accelerator's LabelSelect), as numpy arrays."""
    trace: dict[str, Tensor] = {}
    scores = run_integer(net, torch.from_numpy(images), trace=trace).numpy()
    out = {k: v.numpy() for k, v in trace.items()}
    out[names.TOP1] = scores.argmax(axis=1)
    return out


class IntegerBiRealNet(nn.Module):
    """``nn.Module`` wrapper: uint8 images in, int64 class scores out."""

    def __init__(self, net: IntegerNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> Tensor:
        return run_integer(self.net, images)
