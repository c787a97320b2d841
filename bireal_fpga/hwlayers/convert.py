"""Convert the exported QONNX graph into FINN hardware layers, and partition / specialize it.

The conversion is FINN's own ``Infer*`` transformations in a fixed order, plus the project's
``SumPoolDownsample`` (first: the downsample's 2x2 conv with repeated weights becomes a
depthwise 2x2 window, a sum pool and a 1x1 conv), ``InferGlobalSumPool`` and, last,
``NarrowBorderCorrection`` (a zero-padded binary conv's popcount and its border-corrected sum
narrowed from FINN's 32 bits by FINN's own width minimization). Afterwards every
node between the input and the output must be a HW layer; anything else is an error naming the
node and its op type.
"""

from __future__ import annotations

from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.general import GiveUniqueNodeNames
from qonnx.transformation.infer_data_layouts import InferDataLayouts

from bireal_fpga.errors import BiRealError
from bireal_fpga.hwlayers.finn_env import finn_ready
from bireal_fpga.hwlayers.infer_global_sum_pool import InferGlobalSumPool
from bireal_fpga.hwlayers.mark_uniform_thresholds import MarkUniformThresholds
from bireal_fpga.hwlayers.narrow_border_correction import NarrowBorderCorrection
from bireal_fpga.hwlayers.sum_pool_downsample import SumPoolDownsample
from bireal_fpga.hwlayers.widen_accumulators import WidenAccumulators

HW_DOMAIN = "finn.custom_op.fpgadataflow"


class MappingError(BiRealError):
    """A node the compiler cannot map to a hardware layer."""


def to_hw_layers(model: ModelWrapper) -> ModelWrapper:
    """FINN HW layers for every node of an exported Bi-Real graph (generic, not specialized)."""
    finn_ready()
    from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
        InferBinaryMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import (
        InferDuplicateStreamsLayer,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.elementwise_binary_operation import (
        InferElementwiseBinaryOperation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.label_select import (
        InferLabelSelectLayer,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (  # noqa: E501
        InferQuantizedMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import (
        InferThresholdingLayer,
    )

    steps = [
        SumPoolDownsample(),  # the downsample's 2x2 conv -> 2x2 sum pool + 1x1 conv
        InferDataLayouts(),
        InferPool(),
        InferConvInpGen(),
        InferBinaryMatrixVectorActivation(),
        InferQuantizedMatrixVectorActivation(),
        InferThresholdingLayer(),
        InferGlobalSumPool(),
        InferQuantizedMatrixVectorActivation(),  # the classifier, once the pool is a HW layer
        # only the adds: a Mul or Sub becoming a HW node would cut the partition (toolchain notes)
        InferElementwiseBinaryOperation(lambda _m, node: node.op_type == "Add"),
        InferDuplicateStreamsLayer(),
        InferLabelSelectLayer(),
        NarrowBorderCorrection(),  # a zero-padded conv's popcount + correction: own widths
        WidenAccumulators(),  # a wide residual stream's classifier: beyond INT32
    ]
    for step in steps:
        model = model.transform(step)
    check_all_hw(model)  # before renaming, so the error names the user's node
    return model.transform(GiveUniqueNodeNames())


def check_all_hw(model: ModelWrapper) -> None:
    for node in model.graph.node:
        if node.domain != HW_DOMAIN:
            raise MappingError(
                f"node '{node.name}' (op type {node.op_type}) cannot be mapped to a hardware layer"
            )


def partition_and_specialize(model: ModelWrapper, part: str, workdir: Path) -> ModelWrapper:
    """The dataflow partition's child model, every layer specialized (HLS/RTL) for ``part``."""
    finn_ready(workdir)
    from finn.transformation.fpgadataflow.create_dataflow_partition import (
        CreateDataflowPartition,
    )
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    parent = model.transform(CreateDataflowPartition())
    partitions = [n for n in parent.graph.node if n.op_type == "StreamingDataflowPartition"]
    if len(partitions) != 1 or len(parent.graph.node) != 1:
        outside = [f"{n.name} ({n.op_type})" for n in parent.graph.node if n not in partitions]
        raise MappingError(
            f"expected one dataflow partition holding every node; outside it: {outside}"
        )
    child = ModelWrapper(getCustomOp(partitions[0]).get_nodeattr("model"))
    child = child.transform(SpecializeLayers(part))
    return child.transform(MarkUniformThresholds())
