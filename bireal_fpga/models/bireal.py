"""The Bi-Real model family (Liu et al., "Bi-Real Net", ECCV 2018), built from a spec.

Training form, as the integer hardware computes it:

- input: uint8 image / 255 (:func:`preprocess`; no mean/std normalization, the stem BN absorbs
  it), zero padding;
- stem: int-weight conv (Brevitas, per-channel scale) + BN -> residual quantizer
  [+ 3x3/2 maxpool for the ImageNet stem];
- block: ``r' = Q(Q(BN(BinConv(Sign(r)))) + shortcut(r))``, shortcut = ``r`` or
  ``Q(BN(Conv1x1_int(AvgPool2x2(pad_even(r)))))``; ``Q`` the shared fixed-point quantizer;
- head: global average pool + int-weight FC whose bias is quantized to the accumulator scale.

``model.set_mode("real")`` gives the paper's real-valued pre-training net (clip in place of
sign, real weights); ``"binary"`` the Bi-Real net.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bireal_fpga.quant.layers import (
    EXACT_DTYPE,
    BinaryConv2d,
    Mode,
    ResidualQuant,
    SignActivation,
    WeightGrad,
    batch_norm,
    int_conv2d,
    int_linear,
    quant_layer,
    round_ste,
)
from bireal_fpga.spec import BiRealSpec

PIXEL_MAX = 255.0
"""The largest uint8 pixel: the model sees ``pixel / PIXEL_MAX``, so the input scale (one
pixel level) is ``1 / PIXEL_MAX`` (README, numerics, "input")."""

PIXEL_SCALE = float(torch.tensor(1.0 / PIXEL_MAX, dtype=torch.float32))
"""One pixel level as the integer form holds it: ``1/255`` rounded to float32, the number an
exported QONNX file holds (a file cannot hold 1/255 itself; the two differ by 6e-9 relative,
enough to move a stem threshold, so the integer form takes the one a file can carry)."""


def preprocess(images: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """The model input of a batch of uint8 images: ``images / 255`` as float32 in ``[0, 1]``.

    This is the whole preprocessing (README, numerics, "input"): no mean/std normalization
    (the stem BN absorbs it), no resizing; the stem pads with pixel 0. The integer form and
    the hardware take the uint8 pixels themselves. ``images``: uint8 ``[N, C, H, W]`` on any
    device; the result is on the same device. ``dtype=torch.float64`` gives the input of the
    exact evaluation: ``pixel * PIXEL_SCALE`` in float64, the input scale the integer form
    holds (so the float form in float64 agrees with the integer form).
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 pixels, got {images.dtype}")
    if dtype == EXACT_DTYPE:
        return images.to(EXACT_DTYPE) * PIXEL_SCALE
    if dtype != torch.float32:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return images.float() / PIXEL_MAX


def pad_to_even(x: Tensor) -> Tensor:
    """Pad one zero row/column at the bottom/right where H/W is odd (before AvgPool2x2)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), value=0.0)
    return x


class Downsample(nn.Module):
    """Downsample shortcut: ``Q(BN(Conv1x1_int(AvgPool2x2(x))))``; no pool at stride 1."""

    def __init__(self, cin: int, cout: int, stride: int, bits: int, quant: ResidualQuant) -> None:
        super().__init__()
        self.stride = stride
        self.conv = int_conv2d(cin, cout, 1, 1, 0, bits)
        self.bn = nn.BatchNorm2d(cout)
        self.quant = quant

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 2:
            x = F.avg_pool2d(pad_to_even(x), 2, 2)
        return self.quant(batch_norm(self.bn, quant_layer(self.conv, x)))


class BiRealBlock(nn.Module):
    """One Bi-Real block: ``Q(Q(BN(BinConv3x3(Sign(x)))) + shortcut(x))``."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int,
        spec: BiRealSpec,
        quant: ResidualQuant,
        weight_grad: WeightGrad,
    ) -> None:
        super().__init__()
        self.act = SignActivation()
        self.conv = BinaryConv2d(
            cin,
            cout,
            3,
            stride,
            weight_grad=weight_grad,
            pad_value=0.0 if spec.binary_padding == "zero" else -1.0,
        )
        self.bn = nn.BatchNorm2d(cout)
        self.quant = quant
        self.downsample = (
            Downsample(cin, cout, stride, spec.int_bits, quant)
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.quant(batch_norm(self.bn, self.conv(self.act(x))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.quant(y + shortcut)


class Stem(nn.Module):
    def __init__(self, spec: BiRealSpec, quant: ResidualQuant) -> None:
        super().__init__()
        k, s, p = spec.stem_geometry()
        self.conv = int_conv2d(spec.input_channels, spec.stem_width, k, s, p, spec.int_bits)
        self.bn = nn.BatchNorm2d(spec.stem_width)
        self.quant = quant
        self.maxpool = spec.stem == "imagenet"

    def forward(self, x: Tensor) -> Tensor:
        x = self.quant(batch_norm(self.bn, quant_layer(self.conv, x)))
        if self.maxpool:
            x = F.max_pool2d(x, 3, 2, 1)
        return x


class Head(nn.Module):
    """Global average pool + int-weight FC; bias quantized to the accumulator's scale."""

    def __init__(self, cin: int, classes: int, bits: int, residual_scale: float, hw: int) -> None:
        super().__init__()
        self.fc = int_linear(cin, classes, bits)
        self.bias = nn.Parameter(torch.zeros(classes))
        self.residual_scale = residual_scale
        self.hw = hw

    def acc_scale(self) -> Tensor:
        """Scale of one accumulator LSB: residual scale * weight scale / (H*W)."""
        w_scale = self.fc.quant_weight().scale.reshape(())
        return self.residual_scale * w_scale / self.hw

    def forward(self, x: Tensor) -> Tensor:
        pooled = x.mean(dim=(2, 3))
        s = self.acc_scale().detach()
        if x.dtype == EXACT_DTYPE:
            # the integer bias as the integer form rounds it (float32), times the accumulator
            # scale in float64: logits = scale * (integer scores), up to 1e-16
            b_int = torch.floor(self.bias.detach() / s + 0.5).to(EXACT_DTYPE)
            w_scale = self.fc.quant_weight().scale.reshape(()).to(EXACT_DTYPE)
            return quant_layer(self.fc, pooled) + b_int * (self.residual_scale * w_scale / self.hw)
        return self.fc(pooled) + round_ste(self.bias / s) * s


class BiRealNet(nn.Module):
    """A Bi-Real net built from a :class:`~bireal_fpga.spec.BiRealSpec`.

    Input: float images in ``[0, 1]`` equal to ``uint8 / 255`` (:func:`preprocess`), shape
    ``[N, C, H, W]``.
    Output: class logits (float). Its integer inference form: :mod:`bireal_fpga.integer`.
    """

    def __init__(self, spec: BiRealSpec, *, weight_grad: WeightGrad = "magnitude_aware") -> None:
        super().__init__()
        self.spec = spec
        self.quant = ResidualQuant(spec.residual_bits, spec.residual_frac_bits)
        self.stem = Stem(spec, self.quant)
        blocks: list[nn.Module] = []
        cin = spec.stem_width
        for width, n, stride in zip(spec.widths, spec.blocks, spec.strides, strict=True):
            for i in range(n):
                blocks.append(
                    BiRealBlock(cin, width, stride if i == 0 else 1, spec, self.quant, weight_grad)
                )
                cin = width
        self.blocks = nn.Sequential(*blocks)
        last = spec.feature_sizes()[-1]
        self.head = Head(cin, spec.num_classes, spec.int_bits, self.quant.scale, last * last)
        self._mode: Mode = "binary"

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> BiRealNet:
        """``"real"``: clip activations and real weights (stage 1); ``"binary"``: Bi-Real."""
        if mode not in ("real", "binary"):
            raise ValueError(f"mode must be 'real' or 'binary', got {mode!r}")
        self._mode = mode
        for m in self.modules():
            if isinstance(m, (SignActivation, BinaryConv2d)):
                m.mode = mode
        return self

    def set_weight_grad(self, weight_grad: WeightGrad) -> None:
        for m in self.modules():
            if isinstance(m, BinaryConv2d):
                m.weight_grad = weight_grad

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


def build_model(spec: BiRealSpec, **kwargs) -> BiRealNet:
    """Typed factory: the Bi-Real net described by ``spec`` (binary mode)."""
    return BiRealNet(spec, **kwargs)
