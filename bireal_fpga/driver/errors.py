"""The driver's exceptions: each a one-line message naming the file, register or channel."""

from __future__ import annotations

from bireal_fpga.errors import BiRealError


class DriverError(BiRealError):
    """The accelerator cannot be opened or run: files missing or of another build, a
    bitstream that is not the one the manifest describes, a register that reads wrong."""


class InputError(DriverError, ValueError):
    """Images the accelerator cannot take (shape, dtype, channels, size)."""


class DmaTimeoutError(DriverError, TimeoutError):
    """A DMA transfer did not finish before its deadline (the message names the channel and
    its status registers, and the shell's)."""
