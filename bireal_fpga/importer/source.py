"""The imported model as the user gave it, executed: the ``source`` verify stage.

The file runs unchanged under ONNX's reference evaluator (``onnx.reference``) in float64, with
QONNX's own quantizer functions (``qonnx.custom_op.general``: ``int_quant``,
``binary_quant``) for its ``Quant`` / ``BipolarQuant`` nodes. Weight quantizers (on constants)
give the integers the file's float32 gives, as Brevitas trained with them; they are folded
into float64 constants first (integer times scale, exact). float64 rather than the file's
float32: onnxruntime (behind ``qonnx.core.onnx_exec``) has no float64 Conv, and in float32
a BatchNorm output lands on the wrong side of a rounding boundary about once per 10^5
activations (a Bi-Real-18 image has 10^6), which would make a layer-by-layer comparison with
the exact integer form meaningless. In float64 that happens about once per 10^14.

Each layer tensor that :class:`~bireal_fpga.importer.bireal.SourceMap` names is divided by
its scale (the residual scale; the head's accumulator scale) and must be an integer there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga import names
from bireal_fpga.errors import ImportModelError
from bireal_fpga.importer.bireal import SourceMap
from bireal_fpga.importer.graph import QUANT_OPS, SourceGraph, weight_integers

_INTEGRAL = 1e-6  # |value / scale - round| above this: the mapping or the model is wrong


def _float64(proto: Any) -> Any:
    """A copy of ``proto`` whose float32 initializers, constants and tensor types are float64
    (every value exactly the file's)."""
    from onnx import TensorProto, numpy_helper

    proto = type(proto).FromString(proto.SerializeToString())
    g = proto.graph
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT:
            a = numpy_helper.to_array(init).astype(np.float64)
            init.CopyFrom(numpy_helper.from_array(a, init.name))
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.DOUBLE
    for n in g.node:
        for a in n.attribute:
            if a.HasField("t") and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float64)))
    return proto


def _fold_weight_quantizers(proto: Any, path: Path) -> Any:
    """``proto`` with each quantizer of a constant (weights, biases) replaced by its value:
    the integers as the file's float32 gives them (:func:`weight_integers`, as Brevitas
    trained and QONNX executes), times the scale in float64 (exact)."""
    from onnx import numpy_helper

    g = proto.graph
    graph = SourceGraph(proto, path)
    keep = []
    for n in g.node:
        if n.op_type in QUANT_OPS and graph.const(n.input[0]) is not None:
            p = graph.quant(n)
            ints = weight_integers(graph.consts[n.input[0]], p)
            value = (ints - p.zero_point) * p.scale if not p.bipolar else ints * p.scale
            g.initializer.append(numpy_helper.from_array(value.astype(np.float64), n.output[0]))
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    return proto


def _ops() -> list[type]:
    from onnx.reference.op_run import OpRun
    from qonnx.custom_op.general.bipolar_quant import binary_quant
    from qonnx.custom_op.general.intquant import int_quant
    from qonnx.custom_op.general.multithreshold import multithreshold

    class Quant(OpRun):
        op_domain = "qonnx.custom_op.general"

        def _run(self, x, scale, zeropt, bitwidth, signed=1, narrow=0, rounding_mode="ROUND"):  # type: ignore[no-untyped-def]
            mode = rounding_mode.decode() if isinstance(rounding_mode, bytes) else rounding_mode
            return (int_quant(x, scale, zeropt, bitwidth, signed, narrow, mode),)

    class IntQuant(Quant):
        pass

    class BipolarQuant(OpRun):
        op_domain = "qonnx.custom_op.general"

        def _run(self, x, scale):  # type: ignore[no-untyped-def]
            return (binary_quant(x, scale),)

    class MultiThreshold(OpRun):  # a FINN-streamlined file's activations (NCHW or NC)
        op_domain = "qonnx.custom_op.general"

        def _run(self, v, thresholds, out_dtype="", out_scale=1.0, out_bias=0.0, data_layout=""):  # type: ignore[no-untyped-def]
            return (multithreshold(v, thresholds, out_scale, out_bias).astype(v.dtype),)

    # the same op under the domain of files from older FINN (the evaluator keys on the name)
    finn_mt = type("MultiThreshold", (MultiThreshold,), {"op_domain": "finn.custom_op.general"})
    return [Quant, IntQuant, BipolarQuant, MultiThreshold, finn_mt]


class SourceModel:
    """``SourceModel(onnx_file, source_map).trace(uint8 images)``: the integer value of every
    layer the map names (and ``top1``), from the file executed in float64."""

    def __init__(self, path: str | Path, smap: SourceMap) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        self.path = Path(path)
        self.map = smap
        proto = _fold_weight_quantizers(_float64(onnx.load(str(self.path))), self.path)
        keep = set(smap.layers.values())
        outputs = {o.name for o in proto.graph.output}
        for tensor in smap.layers.values():  # expose the layer tensors as outputs
            if tensor not in outputs:
                proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(tensor))
        self.tensors = [o.name for o in proto.graph.output if o.name in keep]
        self.evaluator = ReferenceEvaluator(proto, new_ops=_ops())
        self._as_given: Any = None

    def float_top1(self, images: np.ndarray) -> np.ndarray:
        """The best class of the file in its own precision (float32, unchanged)."""
        import onnx
        from onnx.reference import ReferenceEvaluator

        if self._as_given is None:
            self._as_given = ReferenceEvaluator(onnx.load(str(self.path)), new_ops=_ops())
        out = []
        for img in images:
            x = (img[None].astype(np.float64) * self.map.input_scale).astype(np.float32)
            (scores,) = self._as_given.run(None, {self.map.input: x})
            out.append(int(np.asarray(scores).reshape(-1).argmax()))
        return np.array(out, dtype=np.int64)

    def scale(self, key: str) -> float:
        return self.map.output_scale if key == names.HEAD else self.map.residual_scale

    def trace(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8, got {images.dtype}")
        per: dict[str, list[np.ndarray]] = {k: [] for k in self.map.layers}
        by_tensor = {t: k for k, t in self.map.layers.items()}
        for img in images:  # one at a time: exports fix the batch size of their reshapes
            x = img[None].astype(np.float64) * self.map.input_scale
            outs = self.evaluator.run(self.tensors, {self.map.input: x})
            for tensor, value in zip(self.tensors, outs, strict=True):
                key = by_tensor[tensor]
                v = np.asarray(value, dtype=np.float64) / self.scale(key)
                r = np.rint(v)
                worst = float(np.max(np.abs(v - r))) if v.size else 0.0
                if worst > _INTEGRAL * max(1.0, float(np.max(np.abs(r)))):
                    raise ImportModelError(
                        f"'{self.path}': tensor '{tensor}' ({key}) is not an integer multiple of "
                        f"its scale {self.scale(key):.6g} (off by {worst:.3g})"
                    )
                per[key].append(r.astype(np.int64).reshape(r.shape[1:]))
        out = {k: np.stack(v) for k, v in per.items()}
        if names.HEAD in out:
            out[names.HEAD] = out[names.HEAD].reshape(len(images), -1)
            out[names.TOP1] = out[names.HEAD].argmax(axis=1)
        return out
