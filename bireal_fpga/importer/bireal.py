"""Read a Bi-Real-shaped QONNX graph (``brevitas.export.export_qonnx``) into the integer form.

What is recognised, node by node from the image input (Brevitas layers in brackets):

- input: ``Quant``, unsigned 8-bit, zero point 0 [``QuantIdentity(Uint8Act...)``]: the
  accelerator takes its integers (uint8 pixels);
- stem: ``Conv`` with integer weights (``Quant``, per-tensor or per-channel scale) [+ bias]
  -> [``BatchNormalization``] -> the residual quantizer (``Quant``, signed) [-> ``MaxPool``
  3x3/2 pad 1];
- block: from the residual tensor ``r``, the sign (``BipolarQuant`` or 1-bit ``Quant``), padded
  with -1 (``Pad`` with a negative value before the sign, or ``-scale`` after it) or with 0
  (``Pad`` with 0 after the sign, or the ``Conv``'s own ``pads``: a zero-padded binary conv)
  -> ``Conv`` 3x3 with bipolar weights -> [BN] -> residual quantizer -> ``Add`` with the
  shortcut ``r`` or ``[Pad to even] -> AveragePool 2x2/2 -> Conv 1x1 (int) -> [BN] ->
  residual quantizer`` (no pool at stride 1) -> residual quantizer;
- head: ``ReduceMean`` / ``GlobalAveragePool`` over H, W -> [``Reshape``/``Flatten``] ->
  ``Gemm`` / ``MatMul`` with integer weights (one scale) [+ a bias that is a multiple of the
  accumulator scale] -> the graph output.

Every residual quantizer must share one grid (scale, range, zero point 0): the integer add of
the accelerator is then the add of the file. Thresholds come from :mod:`.exact`. Anything else
ends with :class:`~bireal_fpga.errors.ImportModelError` naming the node and why. A file in
FINN's dialect (``MultiThreshold`` nodes: streamlined by FINN) is read by
:mod:`.streamlined`, which walks the graph the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga import names
from bireal_fpga.errors import ImportModelError, SpecError
from bireal_fpga.importer.exact import Chain, thresholds
from bireal_fpga.importer.graph import QUANT_OPS, QuantParams, SourceGraph, node_label
from bireal_fpga.integer.params import Block, ConvLayer, IntegerNet, ThresholdUnit

POOL_OPS = ("ReduceMean", "GlobalAveragePool")
FINN_DIALECT = ("MultiThreshold", "XnorPopcountMatMul", "Im2Col")  # a streamlined graph's ops
RESHAPE_OPS = ("Reshape", "Flatten", "Squeeze")


@dataclass
class SourceMap:
    """Where the integer form's layers are in the imported graph, and their scales: the
    ``source`` verify stage reads these tensors and divides by these scales."""

    input: str
    input_scale: float
    input_shape: tuple[int, int, int]
    residual_scale: float
    output_scale: float
    layers: dict[str, str] = field(default_factory=dict)  # trace key -> tensor
    nodes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "input_scale": self.input_scale,
            "input_shape": list(self.input_shape),
            "residual_scale": self.residual_scale,
            "output_scale": self.output_scale,
            "layers": dict(self.layers),
            "nodes": self.nodes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourceMap:
        return cls(
            d["input"],
            float(d["input_scale"]),
            tuple(int(x) for x in d["input_shape"]),  # type: ignore[arg-type]
            float(d["residual_scale"]),
            float(d["output_scale"]),
            dict(d["layers"]),
            int(d.get("nodes", 0)),
        )


def _ints(v: Any) -> list[int]:
    return [int(x) for x in (v or [])]


@dataclass
class _Stage:
    width: int
    blocks: int
    stride: int


class QonnxReader:
    """The matcher of a QONNX (Brevitas-exported) graph; :mod:`.streamlined` reads FINN's
    streamlined dialect with the same walk and helpers, overriding the parts that differ."""

    DIALECT = "QONNX"

    def __init__(self, g: SourceGraph) -> None:
        self.g = g
        self.grid: QuantParams | None = None  # the residual stream's quantizer grid
        self.used: set[str] = set()  # the nodes matched, by their first output (unique)
        self.int_bits = 2

    # ---- helpers ------------------------------------------------------------------------------
    def fail(self, node: Any, why: str) -> ImportModelError:
        return ImportModelError(f"node {node_label(node)} ({node.op_type}): {why}")

    def take(self, node: Any) -> Any:
        self.used.add(node.output[0])
        q = [self.g.producer.get(t) for t in node.input if t]
        for p in q:  # a weight / bias quantizer on a constant belongs to this node
            if p is not None and p.op_type in QUANT_OPS and self.g.const(p.input[0]) is not None:
                self.used.add(p.output[0])
        return node

    def residual_quant(self, node: Any, after: Any) -> QuantParams:
        """``node`` must be a quantizer on the residual grid (the first one sets it)."""
        if node.op_type not in ("Quant", "IntQuant"):
            raise self.fail(
                node,
                f"follows {node_label(after)} ({after.op_type}) where the residual quantizer (a "
                "QuantIdentity) must be; a Bi-Real conv ends in BatchNorm and the quantizer of "
                "the residual stream",
            )
        p = self.g.quant(node)
        if p.bipolar or not p.signed:
            raise self.fail(node, f"the residual stream must be signed, this is {p.describe()}")
        if np.any(p.zero_point != 0):
            raise self.fail(node, "the residual stream's quantizer has a zero point")
        p.scalar_scale("the residual stream")
        if p.bits > 16:
            raise self.fail(node, f"a {p.bits}-bit residual stream (at most 16 bits)")
        self.set_grid(node, p)
        self.take(node)
        return p

    def set_grid(self, node: Any, p: QuantParams) -> None:
        """``p``, the grid of residual quantizer ``node``, is the residual grid: the first
        one sets it, every other must equal it."""
        if self.grid is None:
            self.grid = p
        elif not p.same_grid(self.grid):
            raise self.fail(
                node,
                f"quantizes the residual stream as {p.describe()}, but {self.grid.node} as "
                f"{self.grid.describe()}: every residual quantizer must share one scale and range "
                "(share one QuantIdentity)",
            )

    def check_conv(self, conv: Any) -> tuple[int, int, int]:
        """``(k, stride, pad)`` of a square, undilated, ungrouped conv."""
        g = self.g
        if conv.op_type != "Conv":
            raise self.fail(conv, "a Conv was expected here")
        if int(g.attr(conv, "group", 1)) != 1:
            raise self.fail(conv, "grouped / depthwise convs are not supported")
        if any(d != 1 for d in _ints(g.attr(conv, "dilations", [1, 1]))):
            raise self.fail(conv, "dilated convs are not supported")
        if g.attr(conv, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise self.fail(conv, "auto_pad is not supported: give explicit pads")
        w = g.producer.get(conv.input[1])  # a weight quantizer, or (streamlined) none
        wconst = g.const(w.input[0]) if w is not None else g.const(conv.input[1])
        wshape = wconst.shape if wconst is not None else None
        ks = _ints(g.attr(conv, "kernel_shape", list(wshape[2:]) if wshape else []))
        strides = _ints(g.attr(conv, "strides", [1, 1]))
        pads = _ints(g.attr(conv, "pads", [0, 0, 0, 0]))
        if len(ks) != 2 or ks[0] != ks[1]:
            raise self.fail(conv, f"kernel {ks}: square 2-d kernels only")
        if strides[0] != strides[1]:
            raise self.fail(conv, f"strides {strides}: equal strides only")
        if len(set(pads)) > 1:
            raise self.fail(conv, f"pads {pads}: equal padding on every side only")
        return ks[0], strides[0], pads[0] if pads else 0

    def unit(
        self,
        conv: Any,
        in_factors: tuple[Any, ...],
        *,
        binary: bool,
        pool: bool,
        pad: int,
        binary_pad: int = -1,
    ) -> tuple[ConvLayer, str, Any]:
        """The conv ``conv`` with its BN and residual quantizer: the integer layer, the
        quantizer's output tensor and node. A binary conv's ``pad`` / ``binary_pad`` are those
        of a ``Pad`` before it; its own ``pads`` pad the +-1 input with 0."""
        g = self.g
        self.check_conv(conv)
        self.take(conv)
        w, wq = g.quantized_weight(conv, 1)
        if binary != wq.bipolar:
            raise self.fail(
                conv,
                "binary conv with non-binary weights (" + wq.describe() + ")"
                if binary
                else "an integer conv (stem / downsample) with binary weights",
            )
        if not binary:
            if not wq.signed or wq.bits > 8:
                raise self.fail(conv, f"weights {wq.describe()}: signed, at most 8 bits")
            self.int_bits = max(self.int_bits, wq.bits)
        co = w.shape[0]
        ws = wq.scale.reshape(-1)
        if ws.size not in (1, co):
            raise self.fail(conv, f"{ws.size} weight scales for {co} output channels")
        bias = np.zeros(co)
        if len(conv.input) > 2 and conv.input[2]:
            bias = self.value(conv.input[2], conv, "bias").reshape(-1)
        nxt = g.only_user(conv.output[0], conv)
        mean, gamma, var, beta, eps = np.zeros(co), np.ones(co), np.ones(co), np.zeros(co), 0.0
        if nxt.op_type == "BatchNormalization":
            bn = self.take(nxt)
            gamma = g.need_const(bn, 1, "scale").astype(np.float64).reshape(-1)
            beta = g.need_const(bn, 2, "bias").astype(np.float64).reshape(-1)
            mean = g.need_const(bn, 3, "mean").astype(np.float64).reshape(-1)
            var = g.need_const(bn, 4, "var").astype(np.float64).reshape(-1)
            eps = float(g.attr(bn, "epsilon", 1e-5))
            if int(g.attr(bn, "training_mode", 0)):
                raise self.fail(bn, "BatchNormalization in training mode")
            nxt = g.only_user(bn.output[0], bn)
        q = self.residual_quant(nxt, conv)
        lo, hi = q.lo, q.hi
        chain = Chain(
            c_in_factors=(*in_factors, ws),
            bias=bias,
            mean=mean,
            gamma=gamma,
            var=var,
            eps=eps,
            beta=beta,
            s=q.scalar_scale("the residual stream"),
            lo=lo,
            hi=hi,
            mode=q.rounding,
        )
        t, flip = thresholds(chain)
        layer = self.layer(conv, w, flip, ThresholdUnit(t, lo), binary, pool, pad, binary_pad)
        return layer, nxt.output[0], nxt

    def layer(
        self,
        conv: Any,
        w: np.ndarray,
        flip: np.ndarray,
        act: ThresholdUnit,
        binary: bool,
        pool: bool,
        pad: int,
        binary_pad: int,
    ) -> ConvLayer:
        """The integer layer of ``conv``: its integer weights ``w`` (the channels ``flip``
        negated: a negative gain) and activation ``act``; a binary conv's ``pad`` /
        ``binary_pad`` are those of a ``Pad`` before it, its own ``pads`` pad the +-1 input
        with 0."""
        _, stride, conv_pad = self.check_conv(conv)
        w = w.copy()
        w[flip] = -w[flip]
        pad, binary_pad = self.padding(conv, w, binary, conv_pad, pad, binary_pad)
        return ConvLayer(
            weight=w.astype(np.int8),
            stride=stride,
            pad=pad,
            binary=binary,
            pool=pool,
            act=act,
            binary_pad=binary_pad if binary else -1,
        )

    def padding(
        self, conv: Any, w: np.ndarray, binary: bool, conv_pad: int, pad: int, binary_pad: int
    ) -> tuple[int, int]:
        """``(pad, binary_pad)`` of a conv with weights ``w`` and its own ``pads``
        (``conv_pad``)."""
        if not binary:
            return conv_pad, binary_pad
        if conv_pad:
            if pad:
                raise self.fail(conv, "the binary conv's input is padded twice")
            pad, binary_pad = conv_pad, 0  # the conv's own pads: the value 0
        if binary_pad == 0 and w.shape[1] % 2:
            raise self.fail(
                conv,
                f"zero-padded binary conv with {w.shape[1]} input channels: the hardware "
                "adds half the padded taps' weight sum, an integer only for an even number",
            )
        return pad, binary_pad

    def value(self, tensor: str, node: Any, what: str) -> np.ndarray:
        """A constant, or a quantizer on a constant, as float64."""
        g = self.g
        c = g.const(tensor)
        if c is not None:
            return c.astype(np.float64)
        p = g.producer.get(tensor)
        if p is not None and p.op_type in QUANT_OPS and g.const(p.input[0]) is not None:
            from qonnx.custom_op.general.intquant import int_quant

            q = g.quant(p)
            x = g.const(p.input[0]).astype(np.float64)  # type: ignore[union-attr]
            return int_quant(
                x, q.scale, q.zero_point, np.float64(q.bits), q.signed, q.narrow, q.rounding
            )
        raise self.fail(node, f"its {what} '{tensor}' is not a constant")

    def pad_node(self, node: Any) -> tuple[list[int], float]:
        """``(pads [t, l, b, r], value)`` of a constant-mode ``Pad`` on an NCHW tensor."""
        g = self.g
        if str(g.attr(node, "mode", "constant")) != "constant":
            raise self.fail(node, "only constant padding is supported")
        given = g.const(node.input[1]) if len(node.input) > 1 else None
        if given is None:
            given = np.array(g.attr(node, "pads", []))
        pads = [int(p) for p in np.asarray(given).reshape(-1)]
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
            raise self.fail(node, f"pads {pads}: only H and W of an NCHW tensor may be padded")
        value = 0.0
        if len(node.input) > 2 and node.input[2]:
            value = float(g.need_const(node, 2, "pad value").reshape(()))
        else:
            value = float(g.attr(node, "value", 0.0))
        self.take(node)
        return [pads[2], pads[3], pads[6], pads[7]], value

    # ---- the network --------------------------------------------------------------------------
    def read(self, name: str) -> tuple[IntegerNet, SourceMap, dict[str, Any]]:
        g = self.g
        x, ch, h, w = self.image_input()
        s_in, qin = self.input_quantizer(x)
        stem_conv = g.only_user(qin.output[0], qin)
        k, s, p = self.check_conv(stem_conv)
        stem, r, pool = self.stem(stem_conv, s_in)
        size = (h + 2 * p - k) // s + 1
        users = g.users(r)
        if pool is None and len(users) == 1 and users[0].op_type == "MaxPool":
            pool = self.take(users[0])
            r = pool.output[0]
        maxpool = pool is not None
        if pool is not None:
            size = self.check_maxpool(pool, size)
        stem_kind = self.stem_kind(stem_conv, k, s, p, maxpool)
        smap = SourceMap(x, s_in, (ch, h, w), 0.0, 0.0)
        smap.layers[names.STEM] = r
        blocks: list[Block] = []
        shapes: list[tuple[int, int, int, bool]] = []  # cin, cout, stride, downsample
        cin = stem.weight.shape[0]
        while True:
            users = g.users(r)
            if any(u.op_type in POOL_OPS for u in users):
                break
            block, r, stride, size = self.block(r, size)
            cout = block.conv.weight.shape[0]
            shapes.append((cin, cout, stride, block.down is not None))
            blocks.append(block)
            smap.layers[names.block(len(blocks) - 1)] = r
            cin = cout
        assert self.grid is not None
        s_r = self.grid.scalar_scale("the residual stream")
        head_w, head_b, out, acc_scale = self.head(r, size, s_r)
        smap.layers[names.HEAD] = out
        smap.residual_scale, smap.output_scale = s_r, acc_scale
        left = [n for n in g.nodes if n.output[0] not in self.used]
        if left:
            n = left[0]
            raise self.fail(n, "is not part of a Bi-Real-shaped network this flow can build")
        smap.nodes = len(g.nodes)
        paddings = {b.conv.binary_pad for b in blocks}
        if len(paddings) > 1:
            raise ImportModelError(
                "the binary convs pad their +-1 inputs differently (some with -1, some with 0): "
                "a Bi-Real spec has one binary padding for every block"
            )
        spec = self.spec(name, stem_kind, stem.weight.shape[0], shapes, h, ch, head_w.shape[0])
        if paddings == {0}:
            spec["binary_padding"] = "zero"
        net = IntegerNet(
            spec=spec,
            input_shape=(ch, h, w),
            residual_min=self.grid.lo,
            residual_max=self.grid.hi,
            stem=stem,
            maxpool=maxpool,
            blocks=tuple(blocks),
            head_weight=head_w.astype(np.int8),
            head_bias=head_b.astype(np.int64),
        )
        details = {
            "residual": self.grid.describe(),
            "input_scale": s_in,
            "stem": stem_kind,
            "dialect": self.DIALECT,
        }
        return net, smap, details

    def input_quantizer(self, x: str) -> tuple[float, Any]:
        """The scale of the uint8 input quantizer that reads image input ``x``, and its node."""
        g = self.g
        users = g.users(x)
        if len(users) != 1 or users[0].op_type not in ("Quant", "IntQuant"):
            ops = ", ".join(f"{node_label(u)} ({u.op_type})" for u in users)
            raise ImportModelError(
                f"input '{x}' is read by {ops or 'nothing'}: it must be quantized first (uint8, "
                "e.g. QuantIdentity(act_quant=Uint8ActPerTensorFloat))"
            )
        qin = users[0]
        pin = g.quant(qin)
        if pin.signed or pin.bits != 8 or np.any(pin.zero_point != 0):
            raise self.fail(
                qin,
                f"the input quantizer must be unsigned 8-bit, zero point 0 "
                f"(the accelerator takes uint8 pixels); it is {pin.describe()}",
            )
        self.take(qin)
        return pin.scalar_scale("the input"), qin

    def stem(self, conv: Any, s_in: float) -> tuple[ConvLayer, str, Any]:
        """The stem conv with its activation: the layer, its output tensor on the residual
        grid, and the max pool matched with it (None: any comes after that tensor)."""
        stem, r, _ = self.unit(conv, (np.float64(s_in),), binary=False, pool=False, pad=0)
        return stem, r, None

    def check_maxpool(self, mp: Any, size: int) -> int:
        """The stem's max pool must be 3x3 stride 2 pad 1: the size after it."""
        g = self.g
        ks = _ints(g.attr(mp, "kernel_shape"))
        st = _ints(g.attr(mp, "strides", [1, 1]))
        pads = _ints(g.attr(mp, "pads", [0, 0, 0, 0]))
        if ks != [3, 3] or st != [2, 2] or pads != [1, 1, 1, 1] or g.attr(mp, "ceil_mode", 0):
            raise self.fail(mp, f"max pool {ks}/{st} pads {pads}: only 3x3 stride 2 pad 1")
        return (size + 2 - 3) // 2 + 1

    def image_input(self) -> tuple[str, int, int, int]:
        """The graph's image input: ``(name, C, H, W)`` (NCHW, square)."""
        x = self.g.inputs[0]
        shape = self.g.shapes.get(x)
        if shape is None or len(shape) != 4:
            raise ImportModelError(f"input '{x}' has shape {shape}: an NCHW image was expected")
        _, ch, h, w = shape
        if h != w:
            raise ImportModelError(f"input '{x}' is {h}x{w}: square images only")
        return x, ch, h, w

    def stem_kind(self, conv: Any, k: int, s: int, p: int, maxpool: bool) -> str:
        if (k, s, p, maxpool) == (3, 1, 1, False):
            return "cifar"
        if (k, s, p, maxpool) == (7, 2, 3, True):
            return "imagenet"
        raise self.fail(
            conv,
            f"stem {k}x{k} stride {s} pad {p}{' + max pool' if maxpool else ''} is neither the "
            "CIFAR stem (3x3/1 pad 1) nor the ImageNet stem (7x7/2 pad 3 + 3x3/2 max pool)",
        )

    def block(self, r: str, size: int) -> tuple[Block, str, int, int]:
        g = self.g
        assert self.grid is not None
        s_r = self.grid.scalar_scale("the residual stream")
        users = g.users(r)
        sign_path = [u for u in users if self.is_sign_path(u)]
        if len(sign_path) != 1:
            bad = [u for u in users if u not in sign_path]
            for u in bad:
                if u.op_type in ("Quant", "IntQuant") and not self.g.quant(u).bipolar:
                    raise self.fail(
                        u,
                        f"quantizes the residual stream to {self.g.quant(u).describe()} for a "
                        "conv: only binary (1-bit) activations feed the binary convs",
                    )
            ops = ", ".join(f"{node_label(u)} ({u.op_type})" for u in users)
            raise ImportModelError(
                f"residual tensor '{r}' is read by {ops}: a Bi-Real block reads it with one "
                "sign (BipolarQuant) and its shortcut"
            )
        others = [u for u in users if u is not sign_path[0]]
        # the binary branch: [Pad(<0)] -> sign -> [Pad(-scale | 0)] -> Conv(pads: 0) -> [BN] -> Q
        node = sign_path[0]
        pad = 0
        binary_pad = -1
        if node.op_type == "Pad":
            (t, left, b, right), value = self.pad_node(node)
            if not (t == left == b == right) or value >= 0:
                raise self.fail(
                    node,
                    f"pads the residual with {value} before the sign: the sign of the padding "
                    "must be -1 (a negative value), equal on every side",
                )
            pad = t
            node = g.only_user(node.output[0], node)
        sq = g.quant(node)
        s_a = sq.scalar_scale("the sign activation")
        self.take(node)
        nxt = g.only_user(node.output[0], node)
        if nxt.op_type == "Pad":
            (t, left, b, right), value = self.pad_node(nxt)
            if not (t == left == b == right):
                raise self.fail(nxt, "binary conv padding must be equal on every side")
            if value == 0.0:
                binary_pad = 0
            elif math.isclose(value, -s_a, rel_tol=1e-6):
                binary_pad = -1
            else:
                raise self.fail(
                    nxt,
                    f"pads the +-{s_a} signs with {value}: only -{s_a} (bit 0) or 0 is supported",
                )
            if pad:
                raise self.fail(nxt, "the binary conv's input is padded twice")
            pad = t
            nxt = g.only_user(nxt.output[0], nxt)
        conv_node = nxt
        k, stride, _ = self.check_conv(conv_node)
        if k != 3:
            raise self.fail(conv_node, f"a {k}x{k} binary conv: Bi-Real blocks are 3x3")
        if stride not in (1, 2):
            raise self.fail(conv_node, f"stride {stride}: 1 or 2 only")
        conv, main, _ = self.unit(
            conv_node,
            (np.float64(s_a),),
            binary=True,
            pool=False,
            pad=pad,
            binary_pad=binary_pad,
        )
        if conv.pad != 1:
            raise self.fail(conv_node, f"binary 3x3 conv with padding {conv.pad}: pad 1 only")
        out_size = (size + 2 - 3) // stride + 1
        add, down = self.add_and_shortcut(main, g.producer[main], others, r, size, stride, s_r)
        q = g.only_user(add.output[0], add)
        self.residual_quant(q, add)
        self.check_block(conv, down, stride, add)
        return Block(conv=conv, down=down), q.output[0], stride, out_size

    def add_and_shortcut(
        self, main: str, after: Any, others: list[Any], r: str, size: int, stride: int, s_r: float
    ) -> tuple[Any, ConvLayer | None]:
        """The residual ``Add`` of a block's binary branch ``main`` (made by ``after``) and its
        shortcut (``r`` itself, or read by the one node in ``others``): the Add, the
        downsample layer or None."""
        g = self.g
        add = g.only_user(main, after)
        if add.op_type != "Add":
            raise self.fail(add, "follows a binary conv's quantizer where the residual Add must be")
        down = None
        if len(others) == 1 and others[0] is add:
            shortcut = r
            if stride != 1:
                raise self.fail(add, "identity shortcut around a stride-2 conv")
        elif len(others) == 1:
            down, shortcut = self.downsample(others[0], size, s_r)
        else:
            ops = ", ".join(f"{node_label(u)} ({u.op_type})" for u in others)
            raise ImportModelError(
                f"residual tensor '{r}' is read by {ops}: not a Bi-Real shortcut"
            )
        if sorted(add.input) != sorted([main, shortcut]):
            raise self.fail(add, "does not add the block's binary branch and its shortcut")
        self.take(add)
        return add, down

    def check_block(self, conv: ConvLayer, down: ConvLayer | None, stride: int, add: Any) -> None:
        if down is not None and down.pool != (stride == 2):
            raise self.fail(add, "the shortcut pools where the binary conv does not stride")
        if down is None and conv.weight.shape[0] != conv.weight.shape[1]:
            raise self.fail(add, "identity shortcut where the width changes")

    def is_sign_path(self, u: Any) -> bool:
        g = self.g
        if u.op_type == "BipolarQuant":
            return True
        if u.op_type in ("Quant", "IntQuant"):
            return g.quant(u).bipolar
        if u.op_type == "Pad":
            nxt = g.users(u.output[0])
            return len(nxt) == 1 and self.is_sign_path(nxt[0]) and nxt[0].op_type != "Pad"
        return False

    def downsample(self, node: Any, size: int, s_r: float) -> tuple[ConvLayer, str]:
        g = self.g
        pool = False
        if node.op_type == "Pad":
            (t, left, b, right), value = self.pad_node(node)
            if (t, left) != (0, 0) or (b, right) != (size % 2, size % 2) or value != 0.0:
                raise self.fail(
                    node,
                    "before the shortcut's average pool only a zero pad of the bottom/right "
                    "row/column of an odd-sized map is supported",
                )
            node = g.only_user(node.output[0], node)
            size += size % 2
        if node.op_type == "AveragePool":
            ap = self.take(node)
            ks = _ints(g.attr(ap, "kernel_shape"))
            st = _ints(g.attr(ap, "strides", [1, 1]))
            pads = _ints(g.attr(ap, "pads", [0, 0, 0, 0]))
            if ks != [2, 2] or st != [2, 2] or any(pads) or g.attr(ap, "ceil_mode", 0):
                raise self.fail(ap, f"average pool {ks}/{st} pads {pads}: only 2x2 stride 2")
            if size % 2:
                raise self.fail(
                    ap,
                    f"2x2 average pool of an odd {size}x{size} map drops its last row: pad it "
                    "to even with zeros first (F.pad(x, (0, 1, 0, 1)))",
                )
            pool = True
            node = g.only_user(ap.output[0], ap)
        if node.op_type != "Conv":
            raise self.fail(
                node,
                "reads the residual stream where a shortcut (average pool, 1x1 conv) or "
                "the sign must be: not Bi-Real-shaped",
            )
        k, stride, pad = self.check_conv(node)
        if (k, stride, pad) != (1, 1, 0):
            raise self.fail(node, f"shortcut conv {k}x{k}/{stride} pad {pad}: 1x1/1 only")
        return self.shortcut_conv(node, s_r, pool)

    def shortcut_conv(self, conv: Any, s_r: float, pool: bool) -> tuple[ConvLayer, str]:
        """The shortcut's 1x1 conv (after a 2x2 average pool: ``pool``) with its activation:
        the layer and its output tensor on the residual grid."""
        factors = (np.float64(s_r), np.float64(0.25)) if pool else (np.float64(s_r),)
        layer, out, _ = self.unit(conv, factors, binary=False, pool=pool, pad=0)
        return layer, out

    def head(self, r: str, size: int, s_r: float) -> tuple[np.ndarray, np.ndarray, str, float]:
        """The classifier after the global pool: ``(W [classes, C], b, output tensor,
        accumulator scale)``, ``b`` in accumulator units."""
        g = self.g
        node = self.global_pool(r)
        if node.op_type not in ("Gemm", "MatMul"):
            raise self.fail(node, "follows the global pool where the classifier must be")
        fc = self.take(node)
        w, wq = g.quantized_weight(fc, 1)
        if fc.op_type == "Gemm":
            if float(g.attr(fc, "alpha", 1.0)) != 1.0 or int(g.attr(fc, "transA", 0)):
                raise self.fail(fc, "Gemm with alpha != 1 or transA")
            if not int(g.attr(fc, "transB", 0)):
                w = w.T
        else:
            w = w.T
        if wq.bipolar or not wq.signed or wq.bits > 8:
            raise self.fail(fc, f"classifier weights {wq.describe()}: signed, at most 8 bits")
        self.int_bits = max(self.int_bits, wq.bits)
        s_w = wq.scalar_scale("the classifier's weights (integer scores compare across classes)")
        acc_scale = s_r * s_w / (size * size)
        bias = np.zeros(w.shape[0])
        if fc.op_type == "Gemm" and len(fc.input) > 2 and fc.input[2]:
            bias = self.value(fc.input[2], fc, "bias").reshape(-1)
            if float(g.attr(fc, "beta", 1.0)) != 1.0:
                raise self.fail(fc, "Gemm with beta != 1")
        b, out = self.scores(fc, fc.output[0], bias, acc_scale)
        return w.astype(np.int64), b, out, acc_scale

    def global_pool(self, r: str) -> Any:
        """The global average pool of the last residual tensor ``r`` (and any reshapes after
        it): the node after them."""
        g = self.g
        users = g.users(r)
        if len(users) != 1:
            ops = ", ".join(f"{node_label(u)} ({u.op_type})" for u in users)
            raise ImportModelError(f"the last residual tensor '{r}' is read by {ops}")
        gap = self.take(users[0])
        if gap.op_type == "ReduceMean":
            axes = g.attr(gap, "axes")
            if axes is None and len(gap.input) > 1:
                axes = g.need_const(gap, 1, "axes").tolist()
            if sorted(int(a) % 4 for a in (axes or [])) != [2, 3]:
                raise self.fail(gap, f"mean over axes {axes}: the global pool averages H and W")
        node = g.only_user(gap.output[0], gap)
        while node.op_type in RESHAPE_OPS:
            self.take(node)
            node = g.only_user(node.output[0], node)
        return node

    def scores(
        self, fc: Any, out: str, bias: np.ndarray, acc_scale: float
    ) -> tuple[np.ndarray, str]:
        """A bias ``Add`` after the classifier's ``out`` (optional), which must then be the
        graph output: the whole bias in accumulator units (int64) and the output tensor."""
        g = self.g
        users = g.users(out)
        if users and users[0].op_type == "Add" and len(users) == 1:
            add = self.take(users[0])
            other = [t for t in add.input if t != out][0]
            bias = bias + self.value(other, add, "bias").reshape(-1)
            out = add.output[0]
            users = g.users(out)
        if out not in g.outputs or users:
            nxt = users[0] if users else fc
            raise self.fail(nxt, "the classifier's scores must be the graph output")
        b = bias / acc_scale
        b_int = np.rint(b)
        if np.any(np.abs(b - b_int) > 1e-3 * np.maximum(1.0, np.abs(b))):
            raise self.fail(
                fc,
                f"its bias is not a multiple of the accumulator scale {acc_scale:.6g} (residual "
                "scale x weight scale / pool size): quantize it to that scale or drop it",
            )
        return b_int.astype(np.int64), out

    def spec(
        self,
        name: str,
        stem_kind: str,
        stem_width: int,
        shapes: list[tuple[int, int, int, bool]],
        size: int,
        channels: int,
        classes: int,
    ) -> dict[str, Any]:
        from bireal_fpga.spec import BiRealSpec

        if not shapes:
            raise ImportModelError("the network has no Bi-Real block")
        stages: list[_Stage] = []
        for cin, cout, stride, has_down in shapes:
            new = not stages or stride != 1 or cout != stages[-1].width
            if has_down != (stride != 1 or cin != cout):
                raise ImportModelError(
                    f"a block {cin}->{cout} stride {stride} {'has' if has_down else 'lacks'} a "
                    "downsample shortcut: Bi-Real blocks downsample exactly where the stride is "
                    "2 or the width changes"
                )
            if new:
                stages.append(_Stage(cout, 1, stride))
            else:
                stages[-1].blocks += 1
        assert self.grid is not None
        s_r = self.grid.scalar_scale("the residual stream")
        frac = -math.log2(s_r)
        bits = self.grid.bits
        frac_bits = int(frac) if frac == int(frac) and 0 <= frac < bits else 0
        try:
            return BiRealSpec(
                name=name,
                stem=stem_kind,  # type: ignore[arg-type]
                stem_width=stem_width,
                widths=tuple(st.width for st in stages),
                blocks=tuple(st.blocks for st in stages),
                strides=tuple(st.stride for st in stages),
                input_size=size,
                input_channels=channels,
                num_classes=classes,
                residual_bits=bits,
                residual_frac_bits=frac_bits,
                int_bits=self.int_bits,
            ).to_dict()
        except SpecError as exc:
            raise ImportModelError(f"the imported network is not a Bi-Real spec: {exc}") from None


def read_qonnx(path: str | Path) -> tuple[IntegerNet, SourceMap, dict[str, Any]]:
    """The integer form of the Bi-Real-shaped QONNX file ``path``, where its layers are in the
    file, and a few details for the report. Raises :class:`ImportModelError`."""
    import onnx

    path = Path(path)
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ImportModelError(f"'{path}' is not an ONNX model ({first[:120]})") from None
    g = SourceGraph(proto, path)
    name = f"imported-{path.stem}"
    if any(n.op_type in FINN_DIALECT for n in g.nodes):
        from bireal_fpga.importer.streamlined import StreamlinedReader

        return StreamlinedReader(g).read(name)
    return QonnxReader(g).read(name)
