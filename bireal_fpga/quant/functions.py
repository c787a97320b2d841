"""Differentiable quantization functions of the Bi-Real training algorithm.

All forward passes compute exactly what the integer hardware computes; only the backward
passes are approximations (the paper's).

- :func:`approx_sign` -- activation sign, ``sign(0) = +1``, with the ApproxSign gradient
  ``dF/dx = 2 + 2x`` on ``[-1, 0)``, ``2 - 2x`` on ``[0, 1)``, ``0`` elsewhere
  (derivative of the piecewise polynomial ``F``, Bi-Real Net eq. 4/5).
- :func:`magnitude_aware_sign` -- binary weights ``W_b = alpha * sign(W)`` with
  ``alpha = mean(|W|)`` per output channel and the magnitude-aware gradient
  ``dL/dW = dL/dW_b * alpha * 1{|W| < 1}`` (alpha treated as a constant, as in the paper's
  approximation ``dW_b/dW ~ ||W||_1/n * dSign(W)/dW`` with the clipped STE for dSign/dW).
- :func:`clipped_ste_sign` -- same forward, the official PyTorch code's gradient
  ``dL/dW = dL/dW_b * 1{|W| <= 1}`` (gradient of clamp(W, -1, 1); alpha detached).
- :func:`fixed_point` -- signed fixed-point quantizer ``clamp(floor(x / s + 1/2), lo, hi) * s``
  with the straight-through gradient inside the range and 0 outside.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _sign(x: Tensor) -> Tensor:
    """+1 where x >= 0, -1 elsewhere (hardware bit 1 / bit 0)."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


class _ApproxSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return _sign(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        # 2 + 2x on [-1, 0) and 2 - 2x on [0, 1) are both 2 - 2|x|; <= 0 outside (-1, 1)
        return grad * torch.clamp_min(2 - 2 * x.abs(), 0)


def approx_sign(x: Tensor) -> Tensor:
    """Binary activation: ``+1`` if ``x >= 0`` else ``-1``; backward: ApproxSign (Bi-Real Net).

    >>> approx_sign(torch.tensor([-0.5, 0.0, 2.0]))
    tensor([-1.,  1.,  1.])
    """
    return _ApproxSign.apply(x)


def channel_alpha(w: Tensor) -> Tensor:
    """Per-output-channel scale ``alpha = mean(|W|)`` over all but the first dimension."""
    return w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)


class _MagnitudeAwareSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w: Tensor) -> Tensor:  # type: ignore[override]
        alpha = channel_alpha(w)
        ctx.save_for_backward(w, alpha)
        return alpha * _sign(w)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        w, alpha = ctx.saved_tensors
        return grad * alpha * (w.abs() < 1).to(grad.dtype)


class _ClippedSteSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(w)
        return channel_alpha(w) * _sign(w)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= 1).to(grad.dtype)


def magnitude_aware_sign(w: Tensor) -> Tensor:
    """Binary weights ``alpha * sign(W)``, ``alpha = mean|W|`` per output channel (dim 0).

    Backward: the paper's magnitude-aware gradient ``dL/dW = dL/dW_b * alpha * 1{|W| < 1}``.
    """
    return _MagnitudeAwareSign.apply(w)


def clipped_ste_sign(w: Tensor) -> Tensor:
    """Binary weights ``alpha * sign(W)`` with the official code's clipped STE gradient."""
    return _ClippedSteSign.apply(w)


class _FixedPoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float, lo: int, hi: int) -> Tensor:  # type: ignore[override]
        q = torch.floor(x / scale + 0.5)
        ctx.save_for_backward((q >= lo) & (q <= hi))
        return q.clamp(lo, hi) * scale

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside.to(grad.dtype), None, None, None


def fixed_point(x: Tensor, scale: float, lo: int, hi: int) -> Tensor:
    """Signed fixed point: ``clamp(floor(x/scale + 1/2), lo, hi) * scale`` (round half up).

    Gradient: straight through where the rounded value is inside ``[lo, hi]``, 0 outside.
    """
    return _FixedPoint.apply(x, scale, lo, hi)
