"""Quantized layers of the Bi-Real model.

- :class:`SignActivation` -- ``approx_sign`` in binary mode, ``clip(x, -1, 1)`` in the paper's
  real-valued pre-training stage.
- :class:`BinaryConv2d` -- 1-bit conv: binary weights ``alpha * sign(W)``, inputs padded with
  ``-1`` (bit 0 in hardware), never 0.
- :class:`ResidualQuant` -- the fixed-point residual stream (one scale shared by every add).
- :func:`int_conv2d` / :func:`int_linear` -- Brevitas layers with integer weights for the stem,
  the downsample 1x1 convs and the classifier.

Every layer follows its input's dtype where it is float64 (:data:`EXACT_DTYPE`): the weights
are quantized as trained (float32: ``alpha``, the Brevitas scales, the BN parameters) and then
widened, exactly, to float64, so that the chain "accumulator -> BN -> quantizer" runs in the
precision in which the integer form derives its thresholds
(:mod:`bireal_fpga.integer.derive`). In float32 that chain rounds at about 1e-7 of a value,
enough to put an element whose real value lies within that distance of a quantizer boundary on
the other side of it; float64 leaves about 1e-16. Training runs in float32 (or bf16 autocast).
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
EXACT_DTYPE = torch.float64
"""The evaluation dtype in which the float form agrees with the integer form."""
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
        if x.dtype == EXACT_DTYPE:
            w = w.to(EXACT_DTYPE)  # alpha * sign in float32, widened exactly
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
        # float32 from bf16 autocast; float64 stays (exact evaluation)
        return fixed_point(x if x.dtype == EXACT_DTYPE else x.float(), self.scale, self.lo, self.hi)

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


def quant_layer(layer: QuantConv2d | QuantLinear, x: Tensor) -> Tensor:
    """``layer(x)``; for a float64 ``x`` the same layer with weights ``int * scale`` formed in
    float64 from the integers and the float32 scale Brevitas derives (its own float32 product
    ``int * scale`` is rounded, by up to 1e-7 of each weight)."""
    if x.dtype != EXACT_DTYPE:
        return layer(x)
    qw = layer.quant_weight()
    w = qw.int().to(EXACT_DTYPE) * qw.scale.to(EXACT_DTYPE)
    if isinstance(layer, QuantLinear):
        return F.linear(x, w)
    return F.conv2d(x, w, None, layer.stride, layer.padding, layer.dilation, layer.groups)


def batch_norm(bn: nn.BatchNorm2d, x: Tensor) -> Tensor:
    """``bn(x)``; for a float64 ``x`` in eval mode, with the float32 running statistics and
    affine parameters widened to float64."""
    if x.dtype != EXACT_DTYPE or bn.training:
        return bn(x)
    assert bn.running_mean is not None and bn.running_var is not None

    def wide(t: Tensor | None) -> Tensor | None:
        return None if t is None else t.to(EXACT_DTYPE)

    return F.batch_norm(
        x,
        wide(bn.running_mean),
        wide(bn.running_var),
        wide(bn.weight),
        wide(bn.bias),
        False,
        0.0,
        bn.eps,
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
