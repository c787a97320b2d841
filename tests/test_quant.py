"""The paper's gradients, exactly (autograd vs the formulas), and the quantizers' forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bireal_fpga.quant import approx_sign, clipped_ste_sign, fixed_point, magnitude_aware_sign
from bireal_fpga.quant.layers import BinaryConv2d


def _points(seed: int, shape=(4096,)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 1.2
    # the interval ends, where the piecewise formula switches
    edges = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, -1.5, 1.5], dtype=torch.float64)
    return torch.cat([x.flatten(), edges])


def test_approx_sign_forward_sign_of_zero_is_plus_one() -> None:
    x = torch.tensor([-2.0, -1e-9, 0.0, -0.0, 1e-9, 3.0])
    assert torch.equal(approx_sign(x), torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]))


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["s0", "s1", "s2"])
def test_approx_sign_gradient_equals_formula(seed: int) -> None:
    x = _points(seed).requires_grad_(True)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 10), dtype=x.dtype)
    approx_sign(x).backward(g)
    xd = x.detach()
    expected = torch.zeros_like(xd)
    neg = (xd >= -1) & (xd < 0)
    pos = (xd >= 0) & (xd < 1)
    expected[neg] = 2 + 2 * xd[neg]
    expected[pos] = 2 - 2 * xd[pos]
    assert torch.equal(x.grad, g * expected)


def test_approx_sign_gradient_is_derivative_of_polynomial() -> None:
    """dF/dx of F = 2x + x^2 on [-1,0), 2x - x^2 on [0,1): compare with autograd of F."""
    x = _points(3).requires_grad_(True)
    xd = x.detach()
    f = torch.where(xd < -1, -torch.ones_like(xd), torch.zeros_like(xd))
    f = torch.where((x >= -1) & (x < 0), 2 * x + x * x, f)
    f = torch.where((x >= 0) & (x < 1), 2 * x - x * x, f)
    f = torch.where(xd >= 1, torch.ones_like(xd), f)
    (grad_f,) = torch.autograd.grad(f.sum(), x)
    y = x.detach().clone().requires_grad_(True)
    approx_sign(y).sum().backward()
    assert torch.allclose(y.grad, grad_f, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 3, 3, 3), (5, 7), (16, 4, 1, 1)], ids=["conv", "fc", "1x1"])
def test_magnitude_aware_sign_forward_and_gradient(shape: tuple[int, ...]) -> None:
    w = (torch.randn(shape, dtype=torch.float64) * 0.8).requires_grad_(True)
    with torch.no_grad():
        w.view(-1)[0] = 0.0  # sign(0) = +1
    out = magnitude_aware_sign(w)
    dims = tuple(range(1, len(shape)))
    alpha = w.detach().abs().mean(dim=dims, keepdim=True)
    sign = torch.where(w.detach() >= 0, 1.0, -1.0).double()
    assert torch.equal(out, alpha * sign)
    g = torch.randn(shape, dtype=torch.float64)
    out.backward(g)
    assert torch.equal(w.grad, g * alpha * (w.detach().abs() < 1).double())


def test_clipped_ste_gradient_is_official_code() -> None:
    w = (torch.randn(6, 2, 3, 3, dtype=torch.float64) * 1.5).requires_grad_(True)
    g = torch.randn(w.shape, dtype=torch.float64)
    clipped_ste_sign(w).backward(g)
    # official code: alpha.detach() * sign(W) forward, gradient of clamp(W, -1, 1)
    w2 = w.detach().clone().requires_grad_(True)
    torch.clamp(w2, -1, 1).backward(g)
    assert torch.equal(w.grad, w2.grad)


def test_fixed_point_round_half_up_saturates_and_passes_gradient_inside() -> None:
    s = 2.0**-4
    x = torch.tensor([0.03125, -0.03125, 0.1, 7.96875, 9.0, -9.0, -8.0], requires_grad=True)
    y = fixed_point(x, s, -128, 127)
    assert torch.equal(y / s, torch.tensor([1.0, 0.0, 2.0, 127.0, 127.0, -128.0, -128.0]))
    y.sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]))


@pytest.mark.parametrize("stride", [1, 2], ids=["s1", "s2"])
def test_binary_conv_pads_with_minus_one(stride: int) -> None:
    conv = BinaryConv2d(3, 4, 3, stride)
    x = approx_sign(torch.randn(2, 3, 7, 7))
    w = magnitude_aware_sign(conv.weight.detach())
    expected = F.conv2d(F.pad(x, (1, 1, 1, 1), value=-1.0), w, stride=stride)
    assert torch.equal(conv(x), expected)
    zero_padded = F.conv2d(x, w, stride=stride, padding=1)
    assert not torch.equal(conv(x), zero_padded)
