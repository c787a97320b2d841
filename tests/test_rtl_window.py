"""RTL of the window layers (FMPadding, ConvolutionInputGenerator, Pool) against FINN's python
execution of the same node: every such node of the tiny and ImageNet-stem graphs, and one-node
graphs for foldings and shapes they lack (odd sizes, 1x1 kernels, 1-D, non-square kernels,
signed max pooling, the full network's first stage). Under random back-pressure the output is
bit-exact; without it a frame takes exactly ``RtlLayer.cycles`` in steady state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.flow import BuildConfig, build
from bireal_fpga.hwlayers.finn_env import finn_ready
from bireal_fpga.rtl.layers import generate_layer
from bireal_fpga.rtl.layers.base import RtlParamError
from bireal_fpga.rtlsim import node_check
from bireal_fpga.rtlsim.node_check import NodeMismatch, check_node

RTL = "finn.custom_op.fpgadataflow.rtl"
HLS = "finn.custom_op.fpgadataflow.hls"
WINDOW_OPS = ("FMPadding", "ConvolutionInputGenerator", "Pool_")
IMAGENET = (
    '{"name":"in","stem":"imagenet","stem_width":8,"widths":[8,16],"blocks":[1,1],'
    '"strides":[1,2],"input_size":32,"input_channels":3,"num_classes":10}'
)
TINY_NODES = [
    "FMPadding_rtl_0",
    "ConvolutionInputGenerator_rtl_0",
    "FMPadding_rtl_1",
    "ConvolutionInputGenerator_rtl_1",
    "ConvolutionInputGenerator_rtl_2",
    "FMPadding_rtl_2",
    "Pool_hls_0",  # the downsample shortcut's 2x2 sum pool (AccPool, INT8 -> INT10, PE 2)
    "ConvolutionInputGenerator_rtl_3",
]
# the stem: 7x7/2 whole-window conv input, 3x3/2 depthwise window + max pool
IMAGENET_NODES = [
    "ConvolutionInputGenerator_rtl_0",
    "ConvolutionInputGenerator_rtl_1",
    "Pool_hls_0",
]


@pytest.fixture
def tiny(tiny_folded: ModelWrapper) -> ModelWrapper:
    return tiny_folded


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory: pytest.TempPathFactory) -> ModelWrapper:
    out = tmp_path_factory.mktemp("imagenet") / "build"
    cfg = BuildConfig(IMAGENET, "PYNQ-Z2", str(out), n_check=1, to_step="folding")
    build(cfg, log=lambda _m: None)
    finn_ready()
    return ModelWrapper(str(out / "folded.onnx"))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulation folders shared by the tests (a model built once is reused)."""
    return tmp_path_factory.mktemp("sim")


def one_node(op_type: str, domain: str, ishape, oshape, dtype: str, **attrs) -> ModelWrapper:
    node = helper.make_node(
        op_type, ["inp"], ["outp"], domain=domain, name=op_type, backend="fpgadataflow", **attrs
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("inp", TensorProto.FLOAT, list(ishape))],
        [helper.make_tensor_value_info("outp", TensorProto.FLOAT, list(oshape))],
    )
    finn_ready()
    model = ModelWrapper(helper.make_model(graph))
    model.set_tensor_datatype("inp", DataType[dtype])
    model.set_tensor_datatype("outp", DataType[dtype])
    return model


def swg(ifm, k, s, ch, simd, dtype="INT8", dw=0, pw=0, ram_style="distributed") -> ModelWrapper:
    ofm = [(ifm[i] - k[i]) // s[i] + 1 for i in range(2)]
    return one_node(
        "ConvolutionInputGenerator_rtl",
        RTL,
        [1, *ifm, ch],
        [1, *ofm, k[0] * k[1] * ch],
        dtype,
        ConvKernelDim=list(k),
        IFMChannels=ch,
        IFMDim=list(ifm),
        OFMDim=ofm,
        SIMD=simd,
        Stride=list(s),
        Dilation=[1, 1],
        inputDataType=dtype,
        outputDataType=dtype,
        depthwise=dw,
        parallel_window=pw,
        ram_style=ram_style,
    )


def fmpadding(img, pad, ch, simd, dtype="BINARY") -> ModelWrapper:
    odim = [img[0] + pad[0] + pad[2], img[1] + pad[1] + pad[3]]
    return one_node(
        "FMPadding_rtl",
        RTL,
        [1, *img, ch],
        [1, *odim, ch],
        dtype,
        ImgDim=list(img),
        Padding=list(pad),
        NumChannels=ch,
        SIMD=simd,
        inputDataType=dtype,
    )


def pool(odim, k, ch, pe, dtype="INT4", function="MaxPool") -> ModelWrapper:
    return one_node(
        "Pool_hls",
        HLS,
        [1, *odim, k[0] * k[1] * ch],
        [1, *odim, ch],
        dtype,
        Channels=ch,
        PE=pe,
        KernelSize=list(k),
        Function=function,
        OutImgDims=list(odim),
        InputDataType=dtype,
        OutputDataType=dtype,
    )


def check(model: ModelWrapper, node, workdir: Path, frames: int = 2) -> None:
    """Bit-exact under back-pressure; without it, exactly ``cycles`` per frame after the first
    frame, whose fill stays small."""
    layer = generate_layer(model, node)
    check_node(model, node, workdir, frames=frames, stall=0.2)
    one = check_node(model, node, workdir, frames=1, stall=0.0).cycles
    more = check_node(model, node, workdir, frames=frames + 1, stall=0.0).cycles
    assert more - one == frames * layer.cycles, (one, more, layer.cycles)
    assert layer.cycles <= one <= 1.25 * layer.cycles + 16, (one, layer.cycles)


def window_nodes(model: ModelWrapper) -> list[str]:
    return [n.name for n in model.graph.node if n.op_type.startswith(WINDOW_OPS)]


# --------------------------------------------------------------------------- real graphs


def test_graphs_hold_the_expected_window_nodes(tiny: ModelWrapper, imagenet: ModelWrapper):
    assert window_nodes(tiny) == TINY_NODES
    assert set(IMAGENET_NODES) <= set(window_nodes(imagenet))
    dw = getCustomOp(imagenet.get_node_from_name(IMAGENET_NODES[1]))
    assert dw.get_nodeattr("depthwise") == 1


def _rtl_text(model: ModelWrapper, name: str) -> str:
    """The node's generated files with its module name blanked out."""
    files = generate_layer(model, model.get_node_from_name(name)).files
    return "".join(text.replace(name, "NODE") for _, text in files)


@pytest.mark.parametrize("name", TINY_NODES, ids=TINY_NODES)
def test_tiny_node(tiny: ModelWrapper, work: Path, name: str):
    """Simulated, or the same RTL (up to its name) as an earlier node that is simulated."""
    text = _rtl_text(tiny, name)
    for earlier in TINY_NODES[: TINY_NODES.index(name)]:
        if _rtl_text(tiny, earlier) == text:
            return
    check(tiny, tiny.get_node_from_name(name), work / f"tiny_{name}")


@pytest.mark.parametrize("name", IMAGENET_NODES, ids=["stem_7x7s2_window", "dw_3x3s2", "maxpool"])
def test_imagenet_stem_node(imagenet: ModelWrapper, work: Path, name: str):
    check(imagenet, imagenet.get_node_from_name(name), work / f"in_{name}")


# --------------------------------------------------------------------------- other shapes

SHAPES = {
    # odd image, non-square kernel, 3 channel folds of 8-bit values
    "3x2s2_odd_7x9_fold3": lambda: swg((7, 9), (3, 2), (2, 2), 6, 2, "INT8"),
    # 1x1 kernel, stride 2, on a one-pixel-wide image (read as one row): a pixel filter
    "1x1s2_9x1_fold2": lambda: swg((9, 1), (1, 1), (2, 2), 4, 2, "INT3"),
    # FINN's padding order [top, left, bottom, right]
    "pad_asymmetric_fold4": lambda: fmpadding((5, 6), (0, 2, 1, 3), 4, 1, "BINARY"),
    # signed values, 2 channels per word, 2 folds
    "maxpool_signed_pe2": lambda: pool((3, 2), (2, 2), 4, 2, "INT4"),
}


@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_shape(work: Path, shape: str):
    model = SHAPES[shape]()
    check(model, model.graph.node[0], work / shape)


def test_first_stage_full_rate(work: Path):
    """The full network's first stage: 3x3/1 over 34x34 (32x32 padded), 64 binary channels,
    SIMD 64: 9216 output words per frame, one per cycle in steady state."""
    model = swg((34, 34), (3, 3), (1, 1), 64, 64, "BINARY")
    node = model.graph.node[0]
    layer = generate_layer(model, node)
    assert layer.cycles == 32 * 32 * 9
    one = check_node(model, node, work / "stage1", frames=1, stall=0.0).cycles
    three = check_node(model, node, work / "stage1", frames=3, stall=0.0).cycles
    assert three - one == 2 * layer.cycles
    assert one <= layer.cycles + 2 * 34 + 3 + 16  # + about one window's span of fill
    check_node(model, node, work / "stage1", frames=1, stall=0.2)


# --------------------------------------------------------------------------- memory choice


def test_buffer_memory_style():
    """LUTRAM for small buffers, block RAM for large ones, the node's block/ultra as asked;
    the circular buffer is FINN's minimum plus what keeps it at full rate."""

    def text(model: ModelWrapper) -> str:
        return generate_layer(model, model.graph.node[0]).files[0][1]

    small = text(swg((34, 34), (3, 3), (1, 1), 64, 64, "BINARY"))
    assert ".STYLE(0)" in small
    model = swg((34, 34), (3, 3), (1, 1), 64, 1)
    big = generate_layer(model, model.graph.node[0])
    assert ".STYLE(1)" in big.files[0][1]
    span = (2 * 34 + 3) * 64
    depth = int(big.files[0][1].split(".DEPTH(")[1].split(")")[0])
    assert span + 2 <= depth <= 2 * span
    assert dict(big.resources)["bram18"] >= 1
    ultra = text(swg((34, 34), (3, 3), (1, 1), 64, 64, "BINARY", ram_style="ultra"))
    assert ".STYLE(2)" in ultra


def test_generation_is_deterministic(tiny: ModelWrapper):
    for name in TINY_NODES:
        node = tiny.get_node_from_name(name)
        assert generate_layer(tiny, node).files == generate_layer(tiny, node).files


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "build, attr",
    [
        (lambda: _with(swg((8, 8), (3, 3), (1, 1), 4, 4), Dilation=[2, 2]), "Dilation"),
        (lambda: swg((8, 8), (3, 3), (1, 1), 4, 2, pw=1), "parallel_window"),
        (lambda: pool((2, 2), (3, 3), 4, 4, function="QuantAvgPool"), "Function"),
        (lambda: _with(fmpadding((4, 4), (1, 1, 1, 1), 6, 2), SIMD=4), "SIMD"),
    ],
    ids=["dilation", "parallel_window_folded", "quant_avg_pool", "padding_simd"],
)
def test_unsupported_parameter_is_a_one_line_error(build, attr: str):
    model = build()
    node = model.graph.node[0]
    with pytest.raises(RtlParamError) as err:
        generate_layer(model, node)
    msg = str(err.value)
    assert "\n" not in msg and node.name in msg and f"{attr}=" in msg


def _with(model: ModelWrapper, **attrs) -> ModelWrapper:
    inst = getCustomOp(model.graph.node[0])
    for k, v in attrs.items():
        inst.set_nodeattr(k, v)
    return model


def test_mismatch_is_caught(tiny: ModelWrapper, work: Path, monkeypatch: pytest.MonkeyPatch):
    """A FINN-side expectation off by one element fails the check (reusing a built model)."""
    real = node_check.execute_onnx

    def corrupted(model, ctx):
        out = real(model, ctx)
        name = model.graph.output[0].name
        values = np.array(out[name], copy=True)
        values.reshape(-1)[values.size // 2] = 1 - values.reshape(-1)[values.size // 2]
        out[name] = values
        return out

    monkeypatch.setattr(node_check, "execute_onnx", corrupted)
    name = "ConvolutionInputGenerator_rtl_1"
    with pytest.raises(NodeMismatch, match=name):
        check_node(tiny, tiny.get_node_from_name(name), work / f"tiny_{name}", stall=0.2)


# --------------------------------------------------------------------------- sum pool (AccPool)


def acc_pool(odim, k, ch, pe, idt="INT8", odt="INT10") -> ModelWrapper:
    model = pool(odim, k, ch, pe, idt, function="AccPool")
    inst = getCustomOp(model.graph.node[0])
    inst.set_nodeattr("OutputDataType", odt)
    model.set_tensor_datatype("outp", DataType[odt])
    return model


def test_tiny_sum_pool_is_the_downsample(tiny: ModelWrapper):
    """The tiny graph's downsample shortcut: 2x2 depthwise window -> AccPool -> 1x1 MVAU."""
    node = tiny.get_node_from_name("Pool_hls_0")
    inst = getCustomOp(node)
    assert inst.get_nodeattr("Function") == "AccPool"
    assert list(inst.get_nodeattr("KernelSize")) == [2, 2]
    assert (inst.get_input_datatype().name, inst.get_output_datatype().name) == ("INT8", "INT10")
    mvau = tiny.find_consumer(node.output[0])
    assert mvau.op_type.startswith("MVAU")
    assert getCustomOp(mvau).get_nodeattr("MW") == inst.get_nodeattr("Channels")


ACC_SHAPES = {
    # unsigned input into a signed sum (zero-extended), 3x3 window, 4 channels per word
    "accpool_uint4_int9_3x3_pe4": lambda: acc_pool((3, 2), (3, 3), 8, 4, "UINT4", "INT9"),
    # one channel per word, 5 folds, a wider output type than needed
    "accpool_int3_int8_2x2_pe1": lambda: acc_pool((2, 3), (2, 2), 5, 1, "INT3", "INT8"),
}


@pytest.mark.parametrize("shape", list(ACC_SHAPES), ids=list(ACC_SHAPES))
def test_acc_pool_shape(work: Path, shape: str):
    model = ACC_SHAPES[shape]()
    check(model, model.graph.node[0], work / shape)


def test_acc_pool_too_narrow_output_is_a_one_line_error():
    model = acc_pool((2, 2), (2, 2), 4, 2, "INT8", "INT9")
    node = model.graph.node[0]
    with pytest.raises(RtlParamError) as err:
        generate_layer(model, node)
    msg = str(err.value)
    assert "\n" not in msg and node.name in msg and "OutputDataType=INT9" in msg
