"""Export the integer inference form as a QONNX graph in FINN's streamlined dialect.

The graph is NHWC, integer end to end, built from QONNX's standard custom ops:

- stem / downsample: ``Im2Col -> MatMul (INT weights) -> MultiThreshold (-> INT8)``;
  the downsample's AvgPool2x2 + 1x1 conv is one 2x2 stride-2 conv whose four taps repeat the
  1x1 weights (sum pooling folded into the conv), preceded by bottom/right zero padding where
  the size is odd;
- binary block: ``MultiThreshold (sign: x >= 0 -> bit 1) -> Im2Col (pad value 0 = bit 0 = -1)
  -> XnorPopcountMatMul -> MultiThreshold (popcount thresholds ceil((T + K) / 2))``, then
  ``Add`` with the shortcut and a saturating ``MultiThreshold`` back to the residual width;
  a zero-padded binary conv (``binary_pad`` 0) adds, between the popcount and its thresholds,
  a constant ``[1, Ho, Wo, Co]`` (:func:`border_correction`): at a border pixel the padded
  taps' bit 0 counted ``-w`` each, and half their weight sum restores ``2 * pop - K`` to the
  dot product over the valid taps (exact in integers for an even number of input channels);
- head: ``ReduceSum`` over H, W (global sum pool) ``-> MatMul -> Add (bias)``.

Input ``global_in``: uint8 NHWC ``[1, H, W, C]``; output ``global_out``: class scores
``[1, classes]`` (integers, INT32 range). Because the thresholds come from the integer form,
this graph computes exactly what the PyTorch integer form computes: no float re-derivation.
"""

from __future__ import annotations

import numpy as np
import onnx
import qonnx.core.data_layout as DataLayout
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from bireal_fpga import names
from bireal_fpga.errors import ExportError
from bireal_fpga.integer.params import ConvLayer, IntegerNet

QONNX_DOMAIN = "qonnx.custom_op.general"


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}
        self.dtypes: dict[str, DataType] = {}
        self.shapes: dict[str, list[int]] = {}
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, prefix: str, value: np.ndarray, dtype: DataType) -> str:
        name = self.name(prefix)
        self.inits[name] = container(value)
        self.dtypes[name] = dtype
        return name

    def node(
        self, op: str, inputs: list[str], prefix: str, qonnx: bool = False, out: str = "", **attrs
    ) -> str:
        out = out or self.name(prefix)
        kwargs = {"domain": QONNX_DOMAIN} if qonnx else {}
        self.nodes.append(
            helper.make_node(op, inputs, [out], name=self.name(op), **kwargs, **attrs)
        )
        return out


def container(value: np.ndarray) -> np.ndarray:
    """The float array an integer initializer is stored as: FINN's float32 where it holds every
    value exactly (every design with 8-bit residual streams), else float64. The thresholds of a
    wide residual stream's integer convs reach past 2**24 (a 16-bit stream's downsample: ~2**27),
    where float32 would move a third of them by up to 8 and the hardware with them."""
    v32 = np.asarray(value).astype(np.float32)
    if np.array_equal(v32.astype(np.float64), np.asarray(value, dtype=np.float64)):
        return v32
    return np.asarray(value, dtype=np.float64)


def sum_type(dt: DataType, terms: int) -> DataType:
    """The type of a sum of ``terms`` values of type ``dt``: the downsample's 2x2 sum pool as
    ``hwlayers/sum_pool_downsample.py`` types it, and so the range its 1x1 conv's thresholds
    are clipped to here."""
    bits = dt.bitwidth() + int(terms - 1).bit_length()
    return DataType[f"INT{bits}"] if dt.signed() else DataType[f"UINT{bits}"]


def _int_dtype(lo: int, hi: int) -> DataType:
    bits = 1
    while not (-(2 ** (bits - 1)) <= lo and hi <= 2 ** (bits - 1) - 1):
        bits += 1
    return DataType[f"INT{bits}"]


def _clip_thresholds(t: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Thresholds outside the accumulator range ``[lo, hi]`` become ``lo`` / ``hi + 1``."""
    return np.clip(t, lo, hi + 1)


def _matrix(weight: np.ndarray) -> np.ndarray:
    """``[Co, Ci, kh, kw]`` conv weights as the ``[kh*kw*Ci, Co]`` matrix of NHWC Im2Col."""
    co = weight.shape[0]
    return weight.transpose(2, 3, 1, 0).reshape(-1, co)


def border_correction(weight: np.ndarray, h: int, w: int, stride: int, pad: int) -> np.ndarray:
    """The popcount correction ``[Ho, Wo, Co]`` of a zero-padded binary conv: at each output
    pixel half the sum of the weights ``[Co, Ci, k, k]`` (+-1) under its padded taps (0 inside).

    With bit-0 (-1) padding a padded tap adds ``-w`` to the dot product, so ``dot_zero =
    (2 * pop - K) + s`` with ``s`` that weight sum, ``= 2 * (pop + s / 2) - K``: the popcount
    thresholds stay ``ceil((T + K) / 2)``. ``s`` is even where ``Ci`` is; otherwise this raises.
    """
    co, ci, k, _ = weight.shape
    border = np.ones((h + 2 * pad, w + 2 * pad), dtype=np.int64)
    border[pad : pad + h, pad : pad + w] = 0
    win = sliding_window_view(border, (k, k))[::stride, ::stride]  # [Ho, Wo, k, k]
    s = np.einsum("hwyx,cyx->hwc", win, weight.astype(np.int64).sum(axis=1))
    if (s % 2).any():
        raise ExportError(
            f"a zero-padded binary conv needs an even number of input channels, this one has "
            f"{ci}: half the border taps' weight sum is not an integer"
        )
    return s // 2


def _conv(
    b: _GraphBuilder,
    x: str,
    shape: tuple[int, int, int],
    layer: ConvLayer,
    out_dtype: DataType,
    in_range: tuple[int, int],
    out: str = "",
) -> tuple[str, tuple[int, int, int]]:
    """One conv + threshold unit. ``shape`` = (H, W, C) of ``x``; returns output and shape."""
    h, w, c = shape
    weight = layer.weight.astype(np.int64)
    k, stride, pad = weight.shape[2], layer.stride, layer.pad
    pads = [pad, pad, pad, pad]
    if layer.pool:  # sum pool 2x2 + 1x1 conv == 2x2 stride-2 conv with repeated weights
        weight = np.repeat(np.repeat(weight, 2, axis=2), 2, axis=3)
        k, stride = 2, 2
        pads = [0, 0, h % 2, w % 2]
    ho = (h + pads[0] + pads[2] - k) // stride + 1
    wo = (w + pads[1] + pads[3] - k) // stride + 1
    co = weight.shape[0]
    if layer.binary:
        x = b.node(
            "MultiThreshold",
            [x, b.const("sign_thr", np.zeros((1, 1)), DataType["INT2"])],
            "bits",
            qonnx=True,
            out_dtype="BINARY",
            data_layout="NHWC",
        )
    cols = b.node(
        "Im2Col",
        [x],
        "cols",
        qonnx=True,
        stride=[stride, stride],
        kernel_size=[k, k],
        input_shape=f"(1, {h}, {w}, {c})",
        pad_amount=pads,
        pad_value=0,
    )
    fan_in = k * k * c
    if layer.binary:
        wbits = (_matrix(weight) > 0).astype(np.float32)
        acc = b.node(
            "XnorPopcountMatMul",
            [cols, b.const("w", wbits, DataType["BINARY"])],
            "pop",
            qonnx=True,
        )
        # dot = 2 * popcount - K  ->  dot >= T  <=>  popcount >= ceil((T + K) / 2)
        t = -((-(layer.act.thresholds + fan_in)) // 2)
        if layer.binary_pad == 0 and any(pads):
            corr = border_correction(weight, h, w, stride, pad)
            c_lo, c_hi = int(min(corr.min(), 0)), int(max(corr.max(), 0))
            border = b.const("border", corr[None], _int_dtype(c_lo, c_hi))
            acc = b.node("Add", [acc, border], "zpad")
            t = _clip_thresholds(t, c_lo, fan_in + c_hi)  # pop + correction
        else:
            t = _clip_thresholds(t, 0, fan_in)
    else:
        mat = _matrix(weight).astype(np.float32)
        wdt = _int_dtype(int(weight.min()), int(weight.max()))
        acc = b.node("MatMul", [cols, b.const("w", mat, wdt)], "acc")
        in_lo, in_hi = in_range
        if layer.pool:
            # FINN's graph runs it as a sum pool (of its type's range) + the 1x1 conv: clip to
            # the accumulator range seen there, which the RTL's exactness proof covers
            pooled = sum_type(_int_dtype(in_lo, in_hi), 4)
            in_lo, in_hi = int(pooled.min()), int(pooled.max())
            imat = _matrix(layer.weight.astype(np.int64))
        else:
            imat = _matrix(weight)  # int64: exact where wide ranges pass 2**24
        pos = np.clip(imat, 0, None).sum(axis=0)
        neg = np.clip(imat, None, 0).sum(axis=0)
        acc_hi = int(max((pos * in_hi + neg * in_lo).max(), 0))
        acc_lo = int(min((pos * in_lo + neg * in_hi).min(), 0))
        t = _clip_thresholds(layer.act.thresholds, acc_lo, acc_hi)
    result = b.node(
        "MultiThreshold",
        [acc, b.const("thr", t, _int_dtype(int(t.min()), int(t.max())))],
        "act",
        qonnx=True,
        out=out,
        out_dtype=out_dtype.name,
        out_bias=float(layer.act.out_min),
        data_layout="NHWC",
    )
    return result, (ho, wo, co)


def _stem_with_maxpool(
    b: _GraphBuilder, net: IntegerNet, shape: tuple[int, int, int], res_dt: DataType
) -> tuple[str, tuple[int, int, int]]:
    """Stem conv + 3x3/2 max pool (pad 1). FINN pads only with 0, which is not neutral for a
    signed max; so the stem's thresholds emit the level offset by ``-lo`` (unsigned, pad value
    0 <= every level), the pool runs on that, and a threshold unit shifts back:
    ``max(x) = max(x - lo) + lo`` exactly."""
    lo, hi = net.residual_min, net.residual_max
    stem = net.stem
    shifted = ConvLayer(
        weight=stem.weight,
        stride=stem.stride,
        pad=stem.pad,
        binary=False,
        pool=False,
        act=type(stem.act)(stem.act.thresholds, 0),
    )
    udt = DataType[f"UINT{res_dt.bitwidth()}"]
    x, (h, w, c) = _conv(b, "global_in", shape, shifted, udt, (0, 255))
    b.shapes[x] = [1, h, w, c]  # MaxPoolNHWC's shape inference needs its input's shape
    pooled = b.node(
        "MaxPoolNHWC",
        [x],
        "maxpool",
        qonnx=True,
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
        strides=[2, 2],
    )
    levels = np.arange(1, hi - lo + 1, dtype=np.float32)[None, :]
    out = b.node(
        "MultiThreshold",
        [pooled, b.const("unshift", levels, DataType[f"UINT{res_dt.bitwidth()}"])],
        "stem",
        qonnx=True,
        out=names.STEM,
        out_dtype=res_dt.name,
        out_bias=float(lo),
        data_layout="NHWC",
    )
    return out, ((h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1, c)


def export_qonnx(net: IntegerNet, *, top1: bool = False) -> ModelWrapper:
    """The QONNX (FINN-dialect, streamlined) model of ``net``; batch size 1, NHWC.

    Output ``global_out``: the integer class scores ``[1, 1, 1, classes]``, or with ``top1``
    the index of the best class ``[1, 1, 1, 1]`` (ONNX TopK: among equal scores the lowest
    index, as ``torch.argmax``), which FINN maps to a ``LabelSelect`` layer.
    """
    c, h, w = net.input_shape
    b = _GraphBuilder()
    res_dt = _int_dtype(net.residual_min, net.residual_max)
    res_range = (net.residual_min, net.residual_max)
    if net.maxpool:
        x, shape = _stem_with_maxpool(b, net, (h, w, c), res_dt)
    else:
        x, shape = _conv(b, "global_in", (h, w, c), net.stem, res_dt, (0, 255), out=names.STEM)
    for index, block in enumerate(net.blocks):
        main, out_shape = _conv(b, x, shape, block.conv, res_dt, res_range)
        short = x
        if block.down is not None:
            short, _ = _conv(b, x, shape, block.down, res_dt, res_range)
        total = b.node("Add", [main, short], "sum")
        # saturate the INT(bits+1) sum back to the residual range
        lo, hi = net.residual_min, net.residual_max
        sat = np.arange(lo + 1, hi + 1, dtype=np.float32)[None, :]
        x = b.node(
            "MultiThreshold",
            [total, b.const("sat", sat, _int_dtype(lo + 1, hi))],
            "res",
            qonnx=True,
            out=names.block(index),
            out_dtype=res_dt.name,
            out_bias=float(lo),
            data_layout="NHWC",
        )
        shape = out_shape
    axes = b.name("axes")
    pooled = b.node("ReduceSum", [x, axes], "pool", keepdims=1)
    head_w = net.head_weight.T.astype(np.float32)
    scores = b.node(
        "MatMul",
        [pooled, b.const("fc_w", head_w, _int_dtype(int(head_w.min()), int(head_w.max())))],
        "fc",
    )
    bias = net.head_bias.reshape(1, 1, 1, -1)
    logits = b.node(
        "Add", [scores, b.const("fc_b", bias, DataType["INT32"])], "scores", out=names.SCORES_TENSOR
    )
    n_out = net.head_bias.shape[0]
    if top1:
        k = b.name("k")
        b.nodes.append(
            helper.make_node(
                "TopK", [logits, k], [b.name("top_val"), "global_out"], axis=-1, name="TopK_0"
            )
        )
        n_out = 1
    else:
        b.nodes[-1].output[0] = "global_out"

    out_type = TensorProto.INT64 if top1 else TensorProto.FLOAT
    graph = helper.make_graph(
        b.nodes,
        "bireal",
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, h, w, c])],
        # ONNX TopK's indices are int64
        [helper.make_tensor_value_info("global_out", out_type, [1, 1, 1, n_out])],
    )
    graph.value_info.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
        for name, shape in b.shapes.items()
    )
    model = ModelWrapper(helper.make_model(graph, producer_name="bireal-fpga"))
    for name, value in b.inits.items():
        model.set_initializer(name, value)
    model.set_initializer(axes, np.array([1, 2], dtype=np.int64))
    if top1:
        model.set_initializer(k, np.array([1], dtype=np.int64))
    model.set_tensor_layout("global_in", DataLayout.NHWC)
    model.set_tensor_datatype("global_in", DataType["UINT8"])
    for name, dt in b.dtypes.items():
        model.set_tensor_datatype(name, dt)
    model = model.transform(InferShapes())
    model = model.transform(InferDataTypes())
    return model
