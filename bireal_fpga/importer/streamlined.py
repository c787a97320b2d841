"""Read a FINN-streamlined Bi-Real graph into the integer form.

The file is what FINN's front end makes of a Brevitas export: ``ConvertQONNXtoFINN`` then
``Streamline`` (the graph still NCHW, its convs not lowered to matrix products). Streamlining
has folded every BatchNorm, bias and scale into ``MultiThreshold`` nodes (FINN derived their
thresholds in float32), so the file, not the Brevitas model before it, is the model here:
each threshold ``t`` compares a tensor that is an exact multiple ``c * n`` of an integer
``n`` (an accumulator, or a sum of residual values), and ``c * n >= t`` is
``n >= ceil(t / c)``, decided exactly (:func:`integer_thresholds`). Nothing is re-derived, so no
boundary moves. Widths that ``ConvertQONNXtoFINN`` leaves as ``Quant`` (more than 8 bits by
default) keep their ``[Mul] [Add] Quant`` chain; its thresholds come from
:mod:`.exact` as in a QONNX file.

What is recognised, node by node from the image input:

- input: ``MultiThreshold`` with 255 thresholds that is the identity on the pixel grid of
  one scale (the uint8 input quantizer);
- stem: ``Conv`` with integer weights -> activation [-> ``MaxPool`` 3x3/2 pad 1, either side
  of the ``Mul``];
- activation: [``Mul``: a per-channel gain Streamline() left, e.g. the signs -1/0/+1 of
  a BatchNorm with a zero gain] -> ``MultiThreshold`` (``out_scale`` 1, ``out_bias`` the
  lowest level) -> ``Mul`` by the residual scale; or ``[Mul] [Add] Quant``;
- block: from the residual tensor, the sign (``MultiThreshold``: one threshold, ``out_scale``
  2, ``out_bias`` -1) [after a ``Pad`` below the threshold] [-> ``Pad`` -1 or 0] -> ``Conv``
  3x3 with +-1 weights (its own ``pads``: padded with 0) -> activation -> ``Add`` with the
  shortcut -> activation that clamps the sum to the residual grid; the shortcut the residual
  tensor or ``[Pad to even] -> AveragePool 2x2/2 -> Conv 1x1`` (no pool at stride 1) ->
  activation;
- head: ``ReduceMean`` / ``GlobalAveragePool`` -> [``Reshape``/``Flatten``] -> ``MatMul`` with
  integer weights -> [``Mul``] -> [``Add`` a bias] -> the graph output.

As in a QONNX file every residual activation shares one grid. A graph past streamlining
(``Im2Col``, ``XnorPopcountMatMul``, layout ``Transpose`` nodes) or with a float op left over
ends with :class:`~bireal_fpga.errors.ImportModelError` naming the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from bireal_fpga.errors import ImportModelError
from bireal_fpga.importer.bireal import QonnxReader, SourceMap
from bireal_fpga.importer.exact import BIG, Chain, thresholds
from bireal_fpga.importer.graph import QuantParams, node_label
from bireal_fpga.integer.params import Block, ConvLayer, IntegerNet, ThresholdUnit

_PAST_STREAMLINING = ("Im2Col", "XnorPopcountMatMul", "Transpose")
_FLOAT_OPS = ("Mul", "Add", "Sub", "Div", "BatchNormalization")  # what Streamline() folds away
_EXACT_RANGE = 2**40  # |t / c| beyond this: beyond any accumulator
_NEAR = 1e-9  # t / c this close (relative) to an integer: decided in rationals


def integer_thresholds(t: np.ndarray, c: float) -> np.ndarray:
    """``T = ceil(t / c)`` exactly (``c > 0``): for an integer ``n``, ``c * n >= t`` is
    ``n >= T``. float64 decides where it is certain, rationals where ``t / c`` is within
    ``_NEAR`` of an integer; thresholds beyond any accumulator become ``+-BIG``."""
    t = np.asarray(t, dtype=np.float64)
    q = t / c
    out = np.ceil(np.nan_to_num(q, nan=BIG, posinf=BIG, neginf=-BIG))
    far = np.abs(out) >= _EXACT_RANGE
    out = np.where(far, np.where(out > 0, BIG, -BIG), out).astype(np.int64)
    with np.errstate(invalid="ignore"):  # inf - inf where a threshold is infinite (far)
        near = ~far & (np.abs(q - np.rint(q)) <= _NEAR * np.maximum(1.0, np.abs(q)))
    cf = Fraction(c)
    for i in zip(*np.nonzero(near), strict=True):
        out[i] = math.ceil(Fraction(float(t[i])) / cf)
    return out


def gained_thresholds(t: np.ndarray, gain: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """``(T, flip)`` of thresholds ``t [C, n]`` on ``gain[ch] * c * n`` (``gain`` per channel
    or one, any sign): sorted int64 ``T`` with ``gain * c * n >= t  <=>  s * n >= T`` (``s =
    -1`` where ``flip``: a negative gain, the channel's weights to be negated); a zero gain
    compares 0, so its thresholds are "always" (``-BIG``) or "never" (``BIG``)."""
    g = np.broadcast_to(np.asarray(gain, dtype=np.float64), (t.shape[0],))
    out = np.empty(t.shape, dtype=np.int64)
    for ch in range(t.shape[0]):
        if g[ch] == 0.0:
            out[ch] = np.where(0.0 >= t[ch], -BIG, BIG)  # NaN: never (as the file compares)
        else:
            out[ch] = integer_thresholds(t[ch], abs(float(g[ch])) * c)
    return np.sort(out, axis=1), g < 0


@dataclass
class _Act:
    """An activation read from the file: the integer unit, its levels, the real tensor after
    it (``scale`` times the unit's integers) and the node that set its grid."""

    unit: ThresholdUnit
    flip: np.ndarray  # bool [C]: channels whose weights are negated (a negative gain)
    lo: int
    hi: int
    tensor: str
    scale: float
    node: Any


class StreamlinedReader(QonnxReader):
    """The matcher of a FINN-streamlined graph (see the module docstring)."""

    DIALECT = "FINN-streamlined"

    def __init__(self, g: Any) -> None:
        super().__init__(g)
        self.stem_pool: Any = None

    # ---- helpers ------------------------------------------------------------------------------
    def fail(self, node: Any, why: str) -> ImportModelError:
        if node.op_type in _FLOAT_OPS:
            why += " (is the graph streamlined? Streamline() folds such ops into the thresholds)"
        return super().fail(node, why)

    def mt(self, node: Any) -> tuple[np.ndarray, float, float]:
        """``(thresholds [C|1, n] float64, out_scale, out_bias)`` of a MultiThreshold node."""
        if node.op_type != "MultiThreshold":
            raise self.fail(node, "a MultiThreshold was expected here")
        t = self.g.need_const(node, 1, "thresholds").astype(np.float64)
        if t.ndim != 2:
            raise self.fail(node, f"thresholds of shape {t.shape}: [channels, steps] expected")
        layout = str(self.g.attr(node, "data_layout", "") or "NCHW")
        if layout not in ("NCHW", "NC"):
            raise self.fail(node, f"data layout {layout}: the streamlined graph must be NCHW")
        return (
            t,
            float(self.g.attr(node, "out_scale", 1.0)),
            float(self.g.attr(node, "out_bias", 0.0)),
        )

    def const_scale(self, node: Any, what: str) -> float:
        """The one positive constant a ``Mul`` multiplies by."""
        c = [self.g.const(i) for i in node.input]
        vals = [v for v in c if v is not None]
        if len(vals) != 1 or vals[0].size != 1:
            raise self.fail(node, f"{what} must be one constant (a per-tensor scale)")
        s = float(vals[0].reshape(()))
        if not s > 0:
            raise self.fail(node, f"{what} {s} is not positive")
        return s

    def int_weight(self, conv: Any, binary: bool) -> np.ndarray:
        """A Conv's / MatMul's weights: integers as floats in the file (streamlining moved the
        scales out); +-1 for a binary conv, signed at most 8 bits otherwise."""
        if len(conv.input) > 2 and conv.input[2]:
            raise self.fail(conv, "a conv with a bias: streamlining moves biases into thresholds")
        w = self.g.need_const(conv, 1, "weight").astype(np.float64)
        if np.any(w != np.rint(w)):
            raise self.fail(
                conv,
                "its weights are not integers: a scale was left in them (streamline the graph, "
                "or give the QONNX export)",
            )
        w = np.rint(w).astype(np.int64)
        if binary:
            if not np.all(np.abs(w) == 1):
                raise self.fail(conv, "binary conv with weights other than +-1")
            return w
        bits = max(int(np.max(np.where(w < 0, -w - 1, w))).bit_length() + 1, 2)
        if bits > 8:
            raise self.fail(conv, f"weights up to {int(np.abs(w).max())}: signed, at most 8 bits")
        self.int_bits = max(self.int_bits, bits)
        return w

    def grid_of(self, node: Any, lo: int, hi: int, scale: float) -> None:
        """The residual grid: levels ``[lo, hi]`` of a signed width, ``scale``; the first one
        sets it, every other must equal it."""
        bits = (hi + 1).bit_length()
        if hi != 2 ** (bits - 1) - 1 or lo not in (-(2 ** (bits - 1)), -(2 ** (bits - 1)) + 1):
            raise self.fail(
                node, f"levels {lo}..{hi}: the residual stream must be a signed integer range"
            )
        if bits > 16:
            raise self.fail(node, f"a {bits}-bit residual stream (at most 16 bits)")
        p = QuantParams(
            node.name,
            np.array([scale]),
            np.zeros(1),
            bits,
            True,
            lo != -(2 ** (bits - 1)),
            "ROUND",
            False,
        )
        self.set_grid(node, p)

    def activation(
        self, tensor: str, c: float, after: Any, channels: int, *, maxpool: bool = False
    ) -> _Act:
        """The activation on ``tensor`` (``c`` times an integer accumulator of ``channels``
        channels), on the residual grid; ``maxpool``: the stem's MaxPool may sit between its
        MultiThreshold and its Mul (it is then ``self.stem_pool``)."""
        g = self.g
        node = g.only_user(tensor, after)
        gain = np.ones(1)
        if node.op_type == "Mul":  # a per-channel gain Streamline() could not absorb
            self.take(node)
            gain = self.const_of(node, tensor).reshape(-1)
            if gain.size not in (1, channels):
                raise self.fail(node, f"{gain.size} gains for {channels} channels")
            tensor = node.output[0]
            node = g.only_user(tensor, node)
        if node.op_type == "MultiThreshold":
            t, out_scale, out_bias = self.mt(node)
            if out_scale != 1.0 or out_bias != int(out_bias):
                raise self.fail(
                    node,
                    f"out_scale {out_scale}, out_bias {out_bias}: a quantizer's levels "
                    "(out_scale 1, an integer out_bias) were expected",
                )
            if t.shape[0] not in (1, channels):
                raise self.fail(node, f"{t.shape[0]} threshold rows for {channels} channels")
            self.take(node)
            ts, flip = gained_thresholds(np.broadcast_to(t, (channels, t.shape[1])), gain, c)
            lo = int(out_bias)
            hi = lo + ts.shape[1]
            unit = ThresholdUnit(ts, lo)
            out, scale, last = node.output[0], 1.0, node
            users = g.users(out)
            if maxpool and len(users) == 1 and users[0].op_type == "MaxPool":
                self.stem_pool = self.take(users[0])
                out, last = users[0].output[0], users[0]
                users = g.users(out)
            if len(users) == 1 and users[0].op_type == "Mul":
                mul = self.take(users[0])
                scale, out, last = self.const_scale(mul, "the residual scale"), mul.output[0], mul
            self.grid_of(node, lo, hi, scale)
            return _Act(unit, flip, lo, hi, out, scale, last)
        # [Mul] [Add] Quant: the widths ConvertQONNXtoFINN leaves as QONNX quantizers
        beta = np.zeros(1)
        if node.op_type == "Add":
            self.take(node)
            beta = self.const_of(node, tensor).reshape(-1)
            node = g.only_user(node.output[0], node)
        if node.op_type not in ("Quant", "IntQuant"):
            raise self.fail(
                node,
                f"follows {node_label(after)} ({after.op_type}) where an activation "
                "(MultiThreshold, or [Mul] [Add] Quant) must be: is the graph streamlined?",
            )
        q = self.residual_quant(node, after)
        n = channels
        if gain.size not in (1, n) or beta.size not in (1, n):
            raise self.fail(node, f"a scale or offset of the wrong size for {n} channels")
        chain = Chain(
            c_in_factors=(np.array(c, dtype=np.float64),),
            bias=np.zeros(n),
            mean=np.zeros(n),
            gamma=np.broadcast_to(gain, (n,)).astype(np.float64),
            var=np.ones(n),
            eps=0.0,
            beta=np.broadcast_to(beta, (n,)).astype(np.float64),
            s=q.scalar_scale("the residual stream"),
            lo=q.lo,
            hi=q.hi,
            mode=q.rounding,
        )
        t, flip = thresholds(chain)
        return _Act(ThresholdUnit(t, q.lo), flip, q.lo, q.hi, node.output[0], chain.s, node)

    def const_of(self, node: Any, tensor: str) -> np.ndarray:
        """The constant operand of an elementwise ``node`` whose other operand is ``tensor``."""
        other = [i for i in node.input if i != tensor]
        if len(other) != 1 or self.g.const(other[0]) is None:
            raise self.fail(node, "an elementwise op of a tensor and a constant was expected")
        return self.g.consts[other[0]].astype(np.float64)

    def conv_layer(
        self,
        conv: Any,
        c: float,
        *,
        binary: bool,
        pool: bool,
        pad: int = 0,
        binary_pad: int = -1,
        maxpool: bool = False,
    ) -> tuple[ConvLayer, _Act]:
        """A conv whose input is ``c`` times integers, with its activation."""
        self.take(conv)
        w = self.int_weight(conv, binary)
        act = self.activation(conv.output[0], c, conv, w.shape[0], maxpool=maxpool)
        return self.layer(conv, w, act.flip, act.unit, binary, pool, pad, binary_pad), act

    # ---- the network: QonnxReader's walk, with these parts ------------------------------------
    def read(self, name: str) -> tuple[IntegerNet, SourceMap, dict[str, Any]]:
        past = next((n for n in self.g.nodes if n.op_type in _PAST_STREAMLINING), None)
        if past is not None:
            raise self.fail(
                past,
                "the graph is past FINN's streamlining (convs lowered or the layout changed): "
                "give it as Streamline() left it, before LowerConvsToMatMul",
            )
        return super().read(name)

    def input_quantizer(self, x: str) -> tuple[float, Any]:
        users = self.g.users(x)
        if len(users) != 1 or users[0].op_type != "MultiThreshold":
            ops = ", ".join(f"{node_label(u)} ({u.op_type})" for u in users)
            raise ImportModelError(
                f"input '{x}' is read by {ops or 'nothing'}: in a streamlined graph the uint8 "
                "input quantizer is a MultiThreshold"
            )
        qin = self.take(users[0])
        return self.input_scale(qin), qin

    def stem(self, conv: Any, s_in: float) -> tuple[ConvLayer, str, Any]:
        stem, act = self.conv_layer(conv, 1.0, binary=False, pool=False, maxpool=True)
        return stem, act.tensor, self.stem_pool

    def input_scale(self, node: Any) -> float:
        """The scale ``s`` on whose grid the input MultiThreshold is the identity: pixel ``p``
        (the file's input ``p * s``) -> ``p`` for every ``p`` in 0..255."""
        t, out_scale, out_bias = self.mt(node)
        if t.shape != (1, 255) or (out_scale, out_bias) != (1.0, 0.0):
            raise self.fail(
                node,
                f"{t.shape[1]} thresholds per {t.shape[0]} channel(s), out_scale {out_scale}, "
                f"out_bias {out_bias}: the input quantizer must be unsigned 8-bit (255 shared "
                "thresholds, out_scale 1, out_bias 0)",
            )
        t = np.sort(t[0])
        pixels = np.arange(256, dtype=np.float64)
        for s in (2.0 * t[0], float(np.float32(t[-1] - t[-2])), float(np.median(np.diff(t)))):
            if s > 0 and np.array_equal(
                (pixels[:, None] * s >= t[None, :]).sum(axis=1), pixels.astype(np.int64)
            ):  # p * s is exact in float64 (a float32 s times 8 bits)
                return s
        raise self.fail(
            node,
            "its thresholds are not the identity on the grid of one input scale: the input "
            "must be a uint8 image quantizer (zero point 0)",
        )

    def sign_node(self, u: Any) -> bool:
        if u.op_type == "MultiThreshold":
            t, out_scale, out_bias = self.mt(u)
            return t.shape[1] == 1 and (out_scale, out_bias) == (2.0, -1.0)
        if u.op_type == "Pad":
            nxt = self.g.users(u.output[0])
            return len(nxt) == 1 and nxt[0].op_type == "MultiThreshold" and self.sign_node(nxt[0])
        return False

    def block(self, r: str, size: int) -> tuple[Block, str, int, int]:
        g = self.g
        assert self.grid is not None
        s_r = self.grid.scalar_scale("the residual stream")
        users = g.users(r)
        sign_path = [u for u in users if self.sign_node(u)]
        if len(sign_path) != 1:
            ops = ", ".join(f"{node_label(u)} ({u.op_type})" for u in users)
            raise ImportModelError(
                f"residual tensor '{r}' is read by {ops}: a Bi-Real block reads it with one "
                "sign (a MultiThreshold with one threshold, out_scale 2, out_bias -1) and its "
                "shortcut"
            )
        others = [u for u in users if u is not sign_path[0]]
        node = sign_path[0]
        pad, binary_pad, pad_value = 0, -1, None
        if node.op_type == "Pad":
            (t, left, b, right), pad_value = self.pad_node(node)
            if not (t == left == b == right):
                raise self.fail(node, "binary conv padding must be equal on every side")
            pad = t
            node = g.only_user(node.output[0], node)
        t_sign, _, _ = self.mt(node)
        self.take(node)
        if np.any(integer_thresholds(t_sign, s_r) != 0):
            raise self.fail(
                node,
                f"threshold {t_sign.reshape(-1)[0]} on the residual (scale {s_r}): the sign of "
                "a Bi-Real block is +1 exactly where the residual is >= 0",
            )
        if pad_value is not None and not pad_value < float(t_sign.min()):
            raise self.fail(
                node,
                f"its input is padded with {pad_value}, whose sign is +1: the padding of a "
                "binary conv's input must be -1 (a negative value) or 0 after the sign",
            )
        nxt = g.only_user(node.output[0], node)
        if nxt.op_type == "Pad":
            (t, left, b, right), value = self.pad_node(nxt)
            if not (t == left == b == right):
                raise self.fail(nxt, "binary conv padding must be equal on every side")
            if value not in (0.0, -1.0):
                raise self.fail(nxt, f"pads the +-1 signs with {value}: only -1 or 0")
            if pad:
                raise self.fail(nxt, "the binary conv's input is padded twice")
            pad, binary_pad = t, int(value)
            nxt = g.only_user(nxt.output[0], nxt)
        k, stride, _ = self.check_conv(nxt)
        if k != 3:
            raise self.fail(nxt, f"a {k}x{k} binary conv: Bi-Real blocks are 3x3")
        if stride not in (1, 2):
            raise self.fail(nxt, f"stride {stride}: 1 or 2 only")
        conv, main = self.conv_layer(
            nxt, 1.0, binary=True, pool=False, pad=pad, binary_pad=binary_pad
        )
        if conv.pad != 1:
            raise self.fail(nxt, f"binary 3x3 conv with padding {conv.pad}: pad 1 only")
        out_size = (size + 2 - 3) // stride + 1
        add, down = self.add_and_shortcut(main.tensor, main.node, others, r, size, stride, s_r)
        out = self.activation(add.output[0], s_r, add, conv.weight.shape[0])
        clamp = np.arange(out.lo + 1, out.hi + 1)
        if not np.all(out.unit.thresholds == clamp[None, :]) or np.any(out.flip):
            raise self.fail(
                out.node,
                "does not clamp the residual sum to the residual grid: the Add of a Bi-Real "
                "block is requantized to the same grid as its inputs",
            )
        self.check_block(conv, down, stride, add)
        return Block(conv=conv, down=down), out.tensor, stride, out_size

    def shortcut_conv(self, conv: Any, s_r: float, pool: bool) -> tuple[ConvLayer, str]:
        layer, act = self.conv_layer(conv, s_r / 4 if pool else s_r, binary=False, pool=pool)
        return layer, act.tensor

    def head(self, r: str, size: int, s_r: float) -> tuple[np.ndarray, np.ndarray, str, float]:
        g = self.g
        node = self.global_pool(r)
        if node.op_type != "MatMul":
            raise self.fail(node, "follows the global pool where the classifier (MatMul) must be")
        fc = self.take(node)
        w = self.int_weight(fc, binary=False).T  # [classes, C]
        out, scale = fc.output[0], 1.0
        users = g.users(out)
        if len(users) == 1 and users[0].op_type == "Mul":
            mul = self.take(users[0])
            scale, out = self.const_scale(mul, "the classifier's scale"), mul.output[0]
        acc_scale = s_r * scale / (size * size)
        b, out = self.scores(fc, out, np.zeros(w.shape[0]), acc_scale)
        return w, b, out, acc_scale
