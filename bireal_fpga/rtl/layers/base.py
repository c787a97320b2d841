"""What every layer generator returns: the rendered instance of one dataflow node."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga.arch.streams import StreamFormat, finn_format
from bireal_fpga.errors import BiRealError


class RtlParamError(BiRealError):
    """A node whose parameters the RTL cannot implement."""


def param_error(node: Any, param: str, value: object, why: str) -> RtlParamError:
    return RtlParamError(
        f"node '{node.name}' ({node.op_type}): {param}={value} cannot be implemented in RTL: {why}"
    )


@dataclass(frozen=True)
class StreamPort:
    port: str  # module port prefix, e.g. in0_V
    tensor: str  # ONNX tensor carried
    fmt: StreamFormat
    words: int  # words per frame
    folded_shape: tuple[int, ...]  # FINN's folded shape (batch 1): (..., words, elems)


# the weight bus of layers whose weights are loaded at run time (bireal_mvau W_LOAD)
WEIGHT_PORT = "wgt_V"
WEIGHT_BUS_BITS = 64


@dataclass(frozen=True)
class WeightLoad:
    """A layer's share of the weight bus: its memory words as 64-bit beats, in load order."""

    beats: tuple[int, ...]


@dataclass(frozen=True)
class RtlLayer:
    """One node's RTL: a wrapper module named after the node plus its memory images."""

    node: str
    op_type: str
    inputs: tuple[StreamPort, ...]
    outputs: tuple[StreamPort, ...]
    files: tuple[tuple[str, str], ...]  # (file name, text): the wrapper .sv first
    library: tuple[str, ...]  # modules under hw/rtl it instantiates
    cycles: int  # cycles per frame at full rate (the layer's initiation interval)
    resources: tuple[tuple[str, int], ...] = ()  # memory bits etc., for reports
    load: WeightLoad | None = None  # weights loaded at run time over the weight bus

    @property
    def module(self) -> str:
        return self.node

    def write(self, out_dir: Path) -> list[Path]:
        paths = []
        for name, text in self.files:
            path = out_dir / name
            path.write_text(text)
            paths.append(path)
        return paths


def input_port(inst: Any, node: Any, i: int, port: str | None = None) -> StreamPort:
    shape = tuple(int(x) for x in inst.get_folded_input_shape(i))
    fmt = finn_format(inst.get_input_datatype(i), shape[-1])
    return StreamPort(port or f"in{i}_V", node.input[i], fmt, int(np.prod(shape[:-1])), shape)


def output_port(inst: Any, node: Any, i: int, port: str | None = None) -> StreamPort:
    shape = tuple(int(x) for x in inst.get_folded_output_shape(i))
    fmt = finn_format(inst.get_output_datatype(i), shape[-1])
    return StreamPort(port or f"out{i}_V", node.output[i], fmt, int(np.prod(shape[:-1])), shape)
