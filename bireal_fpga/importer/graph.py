"""The imported ONNX graph as the matcher reads it: producers, consumers, constants, and the
parameters of QONNX's quantizer nodes (``Quant``, ``BipolarQuant``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga.errors import ImportModelError

QUANT_OPS = ("Quant", "IntQuant", "BipolarQuant")


def node_label(node: Any) -> str:
    """A node's name, or for an unnamed one the tensor it makes."""
    return node.name or f"<unnamed, output '{node.output[0] if node.output else ''}'>"


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


@dataclass(frozen=True)
class QuantParams:
    """One quantizer node: ``clamp(R(x / scale + zp), lo, hi) - zp`` times ``scale``, or for
    ``BipolarQuant`` (and 1-bit signed ``Quant``) ``+-scale`` (``x >= 0 -> +1``)."""

    node: str
    scale: np.ndarray  # float64, as in the file
    zero_point: np.ndarray
    bits: int
    signed: bool
    narrow: bool
    rounding: str
    bipolar: bool

    @property
    def lo(self) -> int:
        if self.bipolar:
            return -1
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def hi(self) -> int:
        if self.bipolar:
            return 1
        return (2 ** (self.bits - 1) if self.signed else 2**self.bits) - 1

    def scalar_scale(self, what: str) -> float:
        if self.scale.size != 1:
            raise ImportModelError(
                f"node {self.node}: {what} has {self.scale.size} scales (per channel); "
                "this flow needs one scale per tensor here"
            )
        s = float(self.scale.reshape(()))
        if not s > 0:
            raise ImportModelError(f"node {self.node}: {what} has scale {s}, not positive")
        return s

    def same_grid(self, other: QuantParams) -> bool:
        return (
            self.bipolar == other.bipolar
            and np.array_equal(self.scale.reshape(-1), other.scale.reshape(-1))
            and (self.lo, self.hi) == (other.lo, other.hi)
            and np.array_equal(self.zero_point.reshape(-1), other.zero_point.reshape(-1))
        )

    def describe(self) -> str:
        if self.bipolar:
            return "bipolar"
        scale = float(self.scale.reshape(-1)[0]) if self.scale.size == 1 else "per-channel"
        return f"{self.bits}-bit {'signed' if self.signed else 'unsigned'}, scale {scale}"


class SourceGraph:
    """An ONNX graph with its constants (initializers and ``Constant`` nodes) by name."""

    def __init__(self, proto: Any, path: str | Path) -> None:
        from onnx import numpy_helper

        self.proto = proto
        self.path = str(path)
        g = proto.graph
        self.consts: dict[str, np.ndarray] = {
            i.name: numpy_helper.to_array(i) for i in g.initializer
        }
        self.nodes = [n for n in g.node if n.op_type != "Constant"]
        for n in g.node:
            if n.op_type == "Constant":
                value = _attr(n, "value")
                if value is None:
                    raise ImportModelError(f"node {node_label(n)} (Constant) has no tensor 'value'")
                self.consts[n.output[0]] = numpy_helper.to_array(value)
        self.producer: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for n in self.nodes:
            for t in n.output:
                self.producer[t] = n
            for t in n.input:
                if t:
                    self.consumers[t].append(n)
        self.inputs = [i.name for i in g.input if i.name not in self.consts]
        self.outputs = [o.name for o in g.output]
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise ImportModelError(
                f"'{self.path}' has {len(self.inputs)} inputs and {len(self.outputs)} outputs; "
                "a network for this flow has one image input and one score output"
            )
        self.shapes: dict[str, tuple[int, ...]] = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            dims = vi.type.tensor_type.shape.dim
            if dims and all(d.HasField("dim_value") for d in dims):
                self.shapes[vi.name] = tuple(int(d.dim_value) for d in dims)

    # ---- reading ------------------------------------------------------------------------------
    def const(self, tensor: str) -> np.ndarray | None:
        return self.consts.get(tensor)

    def need_const(self, node: Any, index: int, what: str) -> np.ndarray:
        if index >= len(node.input) or not node.input[index]:
            raise ImportModelError(f"node {node_label(node)} ({node.op_type}) has no {what} input")
        v = self.consts.get(node.input[index])
        if v is None:
            raise ImportModelError(
                f"node {node_label(node)} ({node.op_type}): its {what} '{node.input[index]}' "
                "is not a constant of the file"
            )
        return v

    def attr(self, node: Any, name: str, default: Any = None) -> Any:
        return _attr(node, name, default)

    def users(self, tensor: str) -> list[Any]:
        return list(self.consumers.get(tensor, []))

    def only_user(self, tensor: str, after: Any) -> Any:
        """The one node that reads ``tensor`` (the output of ``after``)."""
        users = self.users(tensor)
        if tensor in self.outputs and not users:
            raise ImportModelError(
                f"node {node_label(after)} ({after.op_type}): the graph ends here, before the "
                "classifier"
            )
        if len(users) != 1:
            ops = ", ".join(f"{node_label(u)} ({u.op_type})" for u in users) or "none"
            raise ImportModelError(
                f"node {node_label(after)} ({after.op_type}): its output feeds {len(users)} nodes "
                f"({ops}); one was expected here"
            )
        return users[0]

    def quant(self, node: Any) -> QuantParams:
        """The parameters of a quantizer node (scale, zero point and bit width constants)."""
        if node.op_type == "BipolarQuant":
            scale = self.need_const(node, 1, "scale").astype(np.float64)
            return QuantParams(node.name, scale, np.zeros(1), 1, True, False, "ROUND", bipolar=True)
        if node.op_type not in ("Quant", "IntQuant"):
            raise ImportModelError(f"node {node_label(node)} ({node.op_type}) is not a quantizer")
        scale = self.need_const(node, 1, "scale").astype(np.float64)
        zp = self.need_const(node, 2, "zero point").astype(np.float64)
        bits_arr = self.need_const(node, 3, "bit width")
        if bits_arr.size != 1 or float(bits_arr.reshape(())) != int(bits_arr.reshape(())):
            raise ImportModelError(
                f"node {node_label(node)}: bit width {bits_arr} is not one integer"
            )
        bits = int(bits_arr.reshape(()))
        signed = bool(self.attr(node, "signed", 1))
        narrow = bool(self.attr(node, "narrow", 0))
        rounding = str(self.attr(node, "rounding_mode", "ROUND")).upper()
        bipolar = bits == 1 and signed
        return QuantParams(node.name, scale, zp, bits, signed, narrow, rounding, bipolar)

    def quantized_weight(self, node: Any, index: int = 1) -> tuple[np.ndarray, QuantParams]:
        """The integer weights (int64, the conv's layout) and quantizer of a conv/linear whose
        input ``index`` is a quantizer node on a constant float weight.

        Weights are quantized as Brevitas quantized them while training, and as QONNX
        executes the file: in float32 (:func:`weight_integers`). Only the activations'
        chains are evaluated exactly; a weight's integer is data, fixed once."""
        tensor = node.input[index]
        q = self.producer.get(tensor)
        if q is None or q.op_type not in QUANT_OPS:
            raise ImportModelError(
                f"node {node_label(node)} ({node.op_type}): its weight '{tensor}' is not quantized "
                "(a float weight cannot be built exactly: use a Brevitas weight quantizer)"
            )
        w = self.need_const(q, 0, "float weight")
        p = self.quant(q)
        if np.any(p.scale <= 0):
            raise ImportModelError(f"node {q.name}: a weight scale is not positive")
        if not p.bipolar and np.any(p.zero_point != 0):
            raise ImportModelError(f"node {q.name}: weights with a zero point are not supported")
        return weight_integers(w, p), p


def weight_integers(w: np.ndarray, p: QuantParams) -> np.ndarray:
    """The integers of weights ``w`` under quantizer ``p``, computed as QONNX's ``int_quant``
    computes them on the file's float32 tensors (``w / scale + zp``, clamp, round)."""
    from qonnx.custom_op.general.intquant import max_int, min_int, resolve_rounding_mode

    w32 = np.asarray(w, dtype=np.float32)
    if p.bipolar:
        return np.where(w32 >= 0, 1, -1).astype(np.int64)
    y = w32 / p.scale.astype(np.float32) + p.zero_point.astype(np.float32)
    lo = min_int(p.signed, p.narrow, np.float32(p.bits))
    hi = max_int(p.signed, p.narrow, np.float32(p.bits))
    y = np.clip(y, np.float32(lo), np.float32(hi))
    return np.asarray(resolve_rounding_mode(p.rounding)(y)).astype(np.int64)
