"""Exceptions raised by bireal-fpga.

Every user-facing failure is a :class:`BiRealError` whose message is one line naming the
offending thing (file, field, node, board). The CLI prints it and exits non-zero.
"""

from __future__ import annotations


class BiRealError(Exception):
    """Base class: a problem the user can fix, reported as one line."""


class SpecError(BiRealError):
    """An invalid network spec: unknown preset, unknown field, invalid value."""


class DataError(BiRealError):
    """A data path that does not exist, or holds an unsupported / inconsistent format."""


class CheckpointError(BiRealError):
    """A checkpoint that cannot be read, or belongs to another spec."""


class ExportError(BiRealError):
    """The model cannot be put into its integer inference form."""


class ImportModelError(BiRealError):
    """An imported (Brevitas / QONNX) model that is not a network this flow can build
    exactly: the message names the node and why."""
