"""Quantized layers of the Bi-Real model.

- :class:`SignActivation` -- ``approx_sign`` in binary mode, ``clip(x, -1, 1)`` in the paper's
  real-valued pre-training stage.
- :class:`BinaryConv2d` -- 1-bit conv: binary weights ``alpha * sign(W)``, inputs padded with
  ``-1`` (bit 0 in hardware), never 0.
- :class:`ResidualQuant` -- the fixed-point residual stream (one scale shared by every add).
- :func:`int_conv2d` / :func:`int_linear` -- Brevitas layers with integer weights for the stem,
  the downsample 1x1 convs and the classifier.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantLinear
from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerTensorFloat
from torch import Tensor, nn

from bireal_fpga.quant.functions import (
    approx_sign,
    clipped_ste_sign,
    fixed_point,
    magnitude_aware_sign,
)

Mode = Literal["real", "binary"]
WeightGrad = Literal["magnitude_aware", "clipped_ste"]


class SignActivation(nn.Module):
    """Activation where the sign sits: ApproxSign (binary) or clip(-1, 1) (real pre-training)."""

    def __init__(self) -> None:
        super().__init__()
        self.mode: Mode = "binary"

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "binary":
            return approx_sign(x)
        return torch.clamp(x, -1.0, 1.0)


class BinaryConv2d(nn.Conv2d):
    """Binary conv, no bias. Binary mode: weights ``alpha*sign(W)``; the +-1 input padded with
    ``pad_value``: ``-1`` (the default, FINN's bit-0 border) or ``0`` (border taps add nothing).

    ``weight_grad`` picks the backward of the weight binarization: the paper's
    magnitude-aware gradient (default) or the official code's clipped STE.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        weight_grad: WeightGrad = "magnitude_aware",
        pad_value: float = -1.0,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, bias=False)
        self.pad = kernel_size // 2
        self.pad_value = pad_value
        self.mode: Mode = "binary"
        self.weight_grad: WeightGrad = weight_grad
        nn.init.uniform_(self.weight, -1e-2, 1e-2)  # inside the STE window |W| < 1

    def binary_weight(self) -> Tensor:
        if self.weight_grad == "magnitude_aware":
            return magnitude_aware_sign(self.weight)
        return clipped_ste_sign(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        w = self.binary_weight() if self.mode == "binary" else self.weight
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, value=self.pad_value)
        return F.conv2d(x, w, None, self.stride)


class ResidualQuant(nn.Module):
    """Signed fixed-point quantizer of the residual stream: ``bits`` bits, scale ``2**-frac``.

    One instance's scale is shared by both inputs and the output of every add, so the add is
    an exact integer add followed by a saturation to ``[-2**(bits-1), 2**(bits-1) - 1]``.
    """

    def __init__(self, bits: int, frac_bits: int) -> None:
        super().__init__()
        self.bits = bits
        self.frac_bits = frac_bits
        self.scale = 2.0**-frac_bits
        self.lo = -(2 ** (bits - 1))
        self.hi = 2 ** (bits - 1) - 1

    def forward(self, x: Tensor) -> Tensor:
        return fixed_point(x.float(), self.scale, self.lo, self.hi)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, frac_bits={self.frac_bits}"


def int_conv2d(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int, bits: int
) -> QuantConv2d:
    """Brevitas conv with per-output-channel integer weights (narrow range), no bias."""
    return QuantConv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=padding,
        bias=False,
        weight_quant=Int8WeightPerChannelFloat,
        weight_bit_width=bits,
    )


def int_linear(in_features: int, out_features: int, bits: int) -> QuantLinear:
    """Brevitas linear with per-tensor integer weights (so integer scores compare across
    classes); the bias is quantized separately to the accumulator scale."""
    return QuantLinear(
        in_features,
        out_features,
        bias=False,
        weight_quant=Int8WeightPerTensorFloat,
        weight_bit_width=bits,
    )


class _RoundSte(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.floor(x + 0.5)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad


def round_ste(x: Tensor) -> Tensor:
    """``floor(x + 1/2)`` with a straight-through gradient."""
    return _RoundSte.apply(x)
