"""A random Bi-Real model whose every threshold unit is non-degenerate.

An untrained net has BN running statistics at their initial values (mean 0, var 1) while the
binary convs' outputs are tiny (``alpha`` ~ 1e-2), so its integer form is nearly constant. For
builds of an untrained spec (hardware sizing) and for the exactness tests, this draws random BN
affine parameters (some negative and one zero gamma per layer, exercising the weight-flip and
constant paths) and sets the BN statistics to exact averages over random images.
"""

from __future__ import annotations

import torch
from torch import nn

from bireal_fpga.models.bireal import BiRealNet


def calibrated_random_model(model: BiRealNet, *, seed: int = 0, batches: int = 3) -> BiRealNet:
    """Randomize ``model``'s BN affine and head bias, calibrate BN statistics; eval mode."""
    spec = model.spec
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 3.0 - 1.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 2.0 - 1.0)
                m.weight[0] = 0.0
                m.reset_running_stats()
                m.momentum = None  # exact averages over the calibration batches
        model.head.bias.copy_(torch.rand(model.head.bias.shape, generator=g) * 2.0 - 1.0)
        model.train()
        shape = (32, spec.input_channels, spec.input_size, spec.input_size)
        for _ in range(batches):
            model(torch.rand(shape, generator=g))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
    return model.eval()
