"""The project's Bi-Real model written in Brevitas idiom and exported with
``brevitas.export.export_qonnx``: the front door that FINN and Brevitas users come through,
taken by the project's own models, so that building the exported file and building the
checkpoint directly must agree (a standing cross-check of both front ends).

The Brevitas module shares the model's parameters and quantizes exactly as the model does:

- input: ``QuantIdentity``, unsigned 8-bit, constant scale ``1/255`` (float32);
- residual stream: one shared ``QuantIdentity``, signed ``residual_bits``, constant
  power-of-two scale ``2**-residual_frac_bits`` (the model's fixed point);
- sign: ``SignedBinaryActPerTensorConst`` (scale 1), then ``F.pad(..., value=-1)``: the
  binary convs pad with -1 as the model does (a zero-padded model's binary convs pad with 0
  themselves, ``padding=1``, the Brevitas idiom);
- binary convs: ``QuantConv2d`` with a per-channel binary weight quantizer whose scale
  parameter is set to the model's ``alpha = mean|W|``;
- stem, downsample 1x1 convs and classifier: the model's own Brevitas layers;
- the classifier's bias: the model's bias rounded to the accumulator scale, a constant add.

Two differences, both exact ties of measure zero for trained weights, are documented where
the integer forms are compared (``tests/test_import_brevitas.py``): Brevitas rounds half to
even where the model's fixed point rounds half up, and the file holds the input scale
``1/255`` as a float32.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bireal_fpga.errors import ExportError
from bireal_fpga.models.bireal import BiRealBlock, BiRealNet, pad_to_even
from bireal_fpga.quant.functions import channel_alpha


def _quantizers(bits: int, frac_bits: int) -> dict[str, Any]:
    from brevitas.core.function_wrapper import InplaceTensorClampSte
    from brevitas.core.restrict_val import RestrictValueType
    from brevitas.core.scaling import ScalingImplType
    from brevitas.inject.enum import ScalingPerOutputType
    from brevitas.quant import SignedBinaryActPerTensorConst
    from brevitas.quant.base import IntQuant, SignedBinaryClampedConst
    from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver

    # the residual's range: scale = threshold / 2**(bits-1) for a signed constant scale
    threshold = float(2 ** (bits - 1 - frac_bits))

    class ResidualQuant(IntQuant, ActQuantSolver):
        scaling_impl_type = ScalingImplType.CONST
        restrict_scaling_type = RestrictValueType.FP
        scaling_per_output_type = ScalingPerOutputType.TENSOR
        bit_width = bits
        scaling_const = threshold
        max_val = threshold
        min_val = -threshold

    class PixelQuant(IntQuant, ActQuantSolver):  # scale = 1 / (2**8 - 1)
        scaling_impl_type = ScalingImplType.CONST
        restrict_scaling_type = RestrictValueType.FP
        scaling_per_output_type = ScalingPerOutputType.TENSOR
        signed = False
        bit_width = 8
        scaling_const = 1.0
        max_val = 1.0
        min_val = 0.0

    class BinaryWeightPerChannel(SignedBinaryClampedConst, WeightQuantSolver):
        tensor_clamp_impl = InplaceTensorClampSte
        scaling_impl_type = ScalingImplType.PARAMETER
        scaling_per_output_type = ScalingPerOutputType.CHANNEL
        scaling_init = 1.0

    return {
        "residual": ResidualQuant,
        "pixel": PixelQuant,
        "sign": SignedBinaryActPerTensorConst,
        "binary_weight": BinaryWeightPerChannel,
    }


class _Block(nn.Module):
    def __init__(self, block: BiRealBlock, res: nn.Module, q: dict[str, Any]) -> None:
        import brevitas.nn as qnn

        super().__init__()
        conv = block.conv
        self.sign = qnn.QuantIdentity(act_quant=q["sign"])
        self.conv = qnn.QuantConv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size[0],
            conv.stride[0],
            padding=conv.pad if conv.pad_value == 0.0 else 0,  # zero padding: the conv's own
            bias=False,
            weight_quant=q["binary_weight"],
        )
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight)
            scaling = self.conv.weight_quant.tensor_quant.scaling_impl  # type: ignore[union-attr]
            scaling.value.copy_(channel_alpha(conv.weight.detach().float()).reshape(-1, 1, 1, 1))
        self.pad = conv.pad if conv.pad_value != 0.0 else 0  # -1 padding: F.pad of the signs
        self.bn = block.bn
        self.res = res
        self.down = block.downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.sign(x)
        if self.pad:
            a = F.pad(a, (self.pad,) * 4, value=-1.0)
        y = self.res(self.bn(self.conv(a)))
        if self.down is None:
            shortcut = x
        else:
            s = x
            if self.down.stride == 2:
                s = F.avg_pool2d(pad_to_even(s), 2, 2)
            shortcut = self.res(self.down.bn(self.down.conv(s)))
        return self.res(y + shortcut)


class BrevitasBiReal(nn.Module):
    """``model`` (binary mode) as Brevitas layers: the same function on ``uint8 / 255``
    images, and what ``export_qonnx`` turns into QONNX ``Quant`` / ``BipolarQuant`` nodes."""

    def __init__(self, model: BiRealNet) -> None:
        import brevitas.nn as qnn

        super().__init__()
        if model.mode != "binary":
            raise ExportError("the model is in 'real' (pre-training) mode: binarize it first")
        spec = model.spec
        q = _quantizers(spec.residual_bits, spec.residual_frac_bits)
        self.inq = qnn.QuantIdentity(act_quant=q["pixel"])
        self.res = qnn.QuantIdentity(act_quant=q["residual"])
        self.stem_conv = model.stem.conv
        self.stem_bn = model.stem.bn
        self.maxpool = model.stem.maxpool
        blocks = []
        for b in model.blocks:
            assert isinstance(b, BiRealBlock)
            blocks.append(_Block(b, self.res, q))
        self.blocks = nn.Sequential(*blocks)
        self.fc = model.head.fc
        with torch.no_grad():
            s = model.head.acc_scale().detach()
            self.register_buffer("bias", torch.floor(model.head.bias.detach() / s + 0.5) * s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res(self.stem_bn(self.stem_conv(self.inq(x))))
        if self.maxpool:
            x = F.max_pool2d(x, 3, 2, 1)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3))) + self.bias


def export_brevitas(model: BiRealNet, path: str | Path) -> Path:
    """``model`` through ``brevitas.export.export_qonnx`` to ``path`` (written whole or not
    at all)."""
    from brevitas.export import export_qonnx

    path = Path(path)
    net = BrevitasBiReal(model).eval()
    spec = model.spec
    x = torch.rand(1, spec.input_channels, spec.input_size, spec.input_size)
    tmp = path.with_name(path.name + ".partial.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        export_qonnx(net, x, str(tmp))
    tmp.replace(path)
    return path
