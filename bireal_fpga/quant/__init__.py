"""Quantizers of the Bi-Real training algorithm (public, documented, differentiable)."""

from bireal_fpga.quant.functions import (
    approx_sign,
    channel_alpha,
    clipped_ste_sign,
    fixed_point,
    magnitude_aware_sign,
)

__all__ = [
    "approx_sign",
    "channel_alpha",
    "clipped_ste_sign",
    "fixed_point",
    "magnitude_aware_sign",
]
