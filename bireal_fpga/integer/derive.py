"""Derive the integer inference form (:class:`IntegerNet`) of a trained :class:`BiRealNet`.

Each "accumulator -> BN -> fixed-point quantizer" chain of the training form is a monotone
function of an integer accumulator, ``q(acc) = clamp(floor((a*acc + b)/s + 1/2), lo, hi)``,
with ``a = gamma * in_scale / sqrt(var + eps)`` and ``b = beta - gamma * mean / sqrt(var + eps)``
(``in_scale`` = alpha of the binary conv, or input scale * weight scale of an integer conv).
It becomes one threshold per output level: ``T_k = min{acc : q(acc) >= k}``, computed in float64
and corrected by evaluating ``q`` on both sides. A negative slope ``a`` negates that output
channel's weights (``acc -> -acc``) so every threshold unit is increasing; ``a == 0`` gives a
constant (thresholds at +-``BIG``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bireal_fpga.errors import ExportError
from bireal_fpga.integer.params import Block, ConvLayer, IntegerNet, ThresholdUnit
from bireal_fpga.models.bireal import PIXEL_SCALE, BiRealBlock, BiRealNet, Downsample
from bireal_fpga.quant.functions import channel_alpha

BIG = 2**40  # beyond any accumulator: "never" / "always" thresholds


def _levels(a: np.ndarray, b: np.ndarray, s: float, acc: np.ndarray) -> np.ndarray:
    return np.floor((a * acc + b) / s + 0.5)


def thresholds_for(
    a: np.ndarray, b: np.ndarray, s: float, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds of ``q(acc) = clamp(floor((a*acc+b)/s + 1/2), lo, hi)`` per channel.

    Returns ``(T, flip)``: ``T`` int64 ``[C, hi-lo]`` such that
    ``q(acc) = lo + #{k: sign*acc >= T[c, k]}`` with ``sign = -1`` where ``flip[c]``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    flip = a < 0
    a_pos = np.abs(a)[:, None]
    b_col = b[:, None]
    k = np.arange(lo + 1, hi + 1, dtype=np.float64)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.ceil(((k - 0.5) * s - b_col) / a_pos)
    t = np.clip(np.nan_to_num(t, nan=BIG, posinf=BIG, neginf=-BIG), -BIG, BIG)
    # correct float64 rounding: T must be the least acc with level >= k
    for _ in range(3):
        lower = _levels(a_pos, b_col, s, t - 1) >= k
        t = np.where(lower & (t > -BIG), t - 1, t)
        upper = _levels(a_pos, b_col, s, t) < k
        t = np.where(upper & (t < BIG), t + 1, t)
    const = a == 0
    if const.any():
        q0 = np.clip(np.floor(b / s + 0.5), lo, hi)
        t[const] = np.where(k <= q0[const, None], -BIG, BIG)
    return t.astype(np.int64), flip


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """BN (eval) as ``gain * y + bias`` per channel, float64."""
    assert bn.running_var is not None and bn.running_mean is not None
    var = bn.running_var.detach().double()
    mean = bn.running_mean.detach().double()
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(var)
    inv = gamma / torch.sqrt(var + bn.eps)
    return inv.numpy(), (beta - mean * inv).numpy()


def _conv_unit(
    weight: np.ndarray,
    in_scale: np.ndarray,
    bn: nn.BatchNorm2d,
    s: float,
    lo: int,
    hi: int,
    **geometry,
) -> ConvLayer:
    gain, bias = _bn_affine(bn)
    t, flip = thresholds_for(gain * in_scale, bias, s, lo, hi)
    w = weight.astype(np.int8).copy()
    w[flip] = -w[flip]
    return ConvLayer(weight=w, act=ThresholdUnit(t, lo), **geometry)


def _int_weight(conv: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    qw = conv.quant_weight()  # type: ignore[operator]
    w_int = qw.int().detach().cpu().numpy().astype(np.int8)
    scale = qw.scale.detach().double().reshape(-1).cpu().numpy()
    if scale.size == 1:
        scale = np.full(w_int.shape[0], scale.item())
    return w_int, scale


def integer_form(model: BiRealNet) -> IntegerNet:
    """The integer inference form of ``model`` (binary mode; BN running stats are used)."""
    if model.mode != "binary":
        raise ExportError("the model is in 'real' (pre-training) mode: binarize it first")
    spec = model.spec
    q = model.quant
    lo, hi, s = q.lo, q.hi, q.scale
    with torch.no_grad():
        w, ws = _int_weight(model.stem.conv)
        k, stride, pad = spec.stem_geometry()
        stem = _conv_unit(
            w,
            ws * PIXEL_SCALE,  # input scale * weight scale
            model.stem.bn,
            s,
            lo,
            hi,
            stride=stride,
            pad=pad,
            binary=False,
            pool=False,
        )
        blocks = []
        for block in model.blocks:
            assert isinstance(block, BiRealBlock)
            wt = block.conv.weight.detach().float()
            alpha = channel_alpha(wt).reshape(-1).double().numpy()
            signs = torch.where(wt >= 0, 1, -1).to(torch.int8).numpy()
            conv = _conv_unit(
                signs,
                alpha,
                block.bn,
                s,
                lo,
                hi,
                stride=block.conv.stride[0],
                pad=block.conv.pad,
                binary=True,
                pool=False,
                binary_pad=0 if spec.binary_padding == "zero" else -1,
            )
            down = None
            if block.downsample is not None:
                ds: Downsample = block.downsample
                dw, dws = _int_weight(ds.conv)
                pool = ds.stride == 2
                down = _conv_unit(
                    dw,
                    dws * s / (4.0 if pool else 1.0),
                    ds.bn,
                    s,
                    lo,
                    hi,
                    stride=1,
                    pad=0,
                    binary=False,
                    pool=pool,
                )
            blocks.append(Block(conv=conv, down=down))
        head_w, _ = _int_weight(model.head.fc)
        acc_scale = model.head.acc_scale().detach()
        head_b = torch.floor(model.head.bias.detach() / acc_scale + 0.5).long().numpy()
    c, h = spec.input_channels, spec.input_size
    return IntegerNet(
        spec=spec.to_dict(),
        input_shape=(c, h, h),
        residual_min=lo,
        residual_max=hi,
        stem=stem,
        maxpool=spec.stem == "imagenet",
        blocks=tuple(blocks),
        head_weight=head_w.reshape(head_w.shape[0], -1),
        head_bias=head_b.astype(np.int64),
    )
