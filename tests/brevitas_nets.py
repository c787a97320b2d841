"""Bi-Real-shaped networks written as a Brevitas user writes them (Brevitas layers and
quantizers, not the project's classes), exported with ``brevitas.export.export_qonnx``.

The import tests build these, so that what the importer reads is what Brevitas emits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BrevitasNet:
    """One test network: stages ``(width, blocks, stride)``, and how it is quantized.

    ``residual_bits``: the residual QuantIdentity's width; ``fixed_point``: a power-of-two
    residual scale (else a float scale learned from statistics); ``weight_scaling``: the
    binary weights' scale per tensor (a constant) or per output channel (statistics);
    ``pad``: where the -1 padding of the binary convs is (``"after"`` the sign as
    ``-scale``, ``"before"`` it as a negative residual value); ``binary_padding``:
    ``"minus_one"`` or ``"zero"`` (the conv pads the signs with 0); ``relu``: a ReLU on the
    residual (not Bi-Real: the import must refuse it); ``act_bits``: the bits of the
    activations of the binary convs (2 is not binary: refused)."""

    stages: tuple[tuple[int, int, int], ...] = ((8, 1, 1), (16, 1, 2))
    stem_width: int = 8
    input_size: int = 8
    channels: int = 3
    classes: int = 10
    stem: str = "cifar"
    residual_bits: int = 8
    fixed_point: bool = False
    weight_scaling: str = "per_tensor"
    pad: str = "after"
    binary_padding: str = "minus_one"
    head_bias: bool = False
    relu: bool = False
    act_bits: int = 1
    seed: int = 0


def build(cfg: BrevitasNet) -> nn.Module:
    import brevitas.nn as qnn
    from brevitas.core.scaling import ScalingImplType
    from brevitas.inject.enum import StatsOp
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8ActPerTensorFloat,
        Int8WeightPerChannelFloat,
        Int8WeightPerTensorFloat,
        SignedBinaryActPerTensorConst,
        SignedBinaryWeightPerTensorConst,
        Uint8ActPerTensorFloat,
    )

    class BinaryWeightPerChannel(SignedBinaryWeightPerTensorConst):
        scaling_impl_type = ScalingImplType.STATS
        scaling_stats_op = StatsOp.AVE
        scaling_per_output_channel = True

    binary_weight = (
        SignedBinaryWeightPerTensorConst
        if cfg.weight_scaling == "per_tensor"
        else BinaryWeightPerChannel
    )
    residual_quant = Int8ActPerTensorFixedPoint if cfg.fixed_point else Int8ActPerTensorFloat

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, res: nn.Module) -> None:
            super().__init__()
            if cfg.act_bits == 1:
                self.sign = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
            else:
                self.sign = qnn.QuantIdentity(bit_width=cfg.act_bits)
            zero = cfg.binary_padding == "zero"
            self.conv = qnn.QuantConv2d(
                cin,
                cout,
                3,
                stride,
                padding=1 if zero else 0,
                bias=False,
                weight_quant=binary_weight,
            )
            self.bn = nn.BatchNorm2d(cout)
            self.res = res
            self.down: nn.Module | None = None
            self.stride = stride
            if stride != 1 or cin != cout:
                self.dconv = qnn.QuantConv2d(
                    cin, cout, 1, bias=False, weight_quant=Int8WeightPerChannelFloat
                )
                self.dbn = nn.BatchNorm2d(cout)
                self.down = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = x
            if cfg.binary_padding == "minus_one" and cfg.pad == "before":
                a = F.pad(a, (1, 1, 1, 1), value=-1.0)
            a = self.sign(a)
            if cfg.binary_padding == "minus_one" and cfg.pad == "after":
                a = F.pad(a, (1, 1, 1, 1), value=-1.0)
            y = self.res(self.bn(self.conv(a)))
            if self.down is None:
                sc = x
            else:
                s = x
                if self.stride == 2:
                    h = s.shape[-1]
                    if h % 2:
                        s = F.pad(s, (0, 1, 0, 1))
                    s = F.avg_pool2d(s, 2)
                sc = self.res(self.dbn(self.dconv(s)))
            return self.res(y + sc)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inq = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
            self.res = qnn.QuantIdentity(act_quant=residual_quant, bit_width=cfg.residual_bits)
            k, s, p = (3, 1, 1) if cfg.stem == "cifar" else (7, 2, 3)
            self.stem = qnn.QuantConv2d(
                cfg.channels,
                cfg.stem_width,
                k,
                s,
                padding=p,
                bias=False,
                weight_quant=Int8WeightPerChannelFloat,
            )
            self.bn = nn.BatchNorm2d(cfg.stem_width)
            blocks = []
            cin = cfg.stem_width
            for width, n, stride in cfg.stages:
                for i in range(n):
                    blocks.append(Block(cin, width, stride if i == 0 else 1, self.res))
                    cin = width
            self.blocks = nn.Sequential(*blocks)
            self.fc = qnn.QuantLinear(
                cin, cfg.classes, bias=False, weight_quant=Int8WeightPerTensorFloat
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.res(self.bn(self.stem(self.inq(x))))
            if cfg.relu:
                x = torch.relu(x)
            if cfg.stem == "imagenet":
                x = F.max_pool2d(x, 3, 2, 1)
            x = self.blocks(x)
            return self.fc(x.mean(dim=(2, 3)))

    torch.manual_seed(cfg.seed)
    net = Net()
    with torch.no_grad():  # varied BN parameters: thresholds that are not trivial
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(-1.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    net.train()
    g = torch.Generator().manual_seed(cfg.seed)
    size = (8, cfg.channels, cfg.input_size, cfg.input_size)
    with torch.no_grad():  # BN statistics and the activation scales from data
        for _ in range(4):
            net(torch.randint(0, 256, size, generator=g).float() / 255)
    return net.eval()


def export(cfg: BrevitasNet, path: Path) -> Path:
    """``cfg`` built and exported with ``export_qonnx`` to ``path``."""
    import warnings

    from brevitas.export import export_qonnx

    net = build(cfg)
    x = torch.rand(1, cfg.channels, cfg.input_size, cfg.input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(net, x, str(path))
    return path


def finn_front_end(src: Path, dst: Path, *, streamline: bool = True, lower: bool = False) -> Path:
    """FINN's front end on an export, as a FINN user runs it before building:
    ``ConvertQONNXtoFINN``, then (``streamline``) ``Streamline``, then (``lower``, past what
    the import takes) ``LowerConvsToMatMul``; saved to ``dst``."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    from bireal_fpga.hwlayers.finn_env import finn_ready

    finn_ready()
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from finn.transformation.streamline import Streamline
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    model = cleanup_model(ModelWrapper(str(src))).transform(ConvertQONNXtoFINN())
    if streamline:
        model = model.transform(Streamline())
    if lower:
        model = model.transform(LowerConvsToMatMul())
    model.save(str(dst))
    return dst
