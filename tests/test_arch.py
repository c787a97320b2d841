"""Hardware decisions made once (bireal_fpga.arch): the layer-type registries agree, the RTL
generators and the cost model take every memory's style from the same ladder, the memory-image
writer is exact for narrow and wide words, and folding by each cost-model object gives the tiny
net the folding it had before the cost models became objects."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import qonnx_make_model

from bireal_fpga.arch import memory
from bireal_fpga.arch.images import ImageError, memory_image, write_hex
from bireal_fpga.arch.ops import LAYER_TYPES, generic_op
from bireal_fpga.arch.resources import Resources
from bireal_fpga.boards import load_board
from bireal_fpga.hwlayers.finn_cost import FinnCostModel
from bireal_fpga.hwlayers.finn_env import finn_ready
from bireal_fpga.hwlayers.folding import fold, folding_config
from bireal_fpga.rtl.layers import GENERATORS, generate_layer, generator
from bireal_fpga.rtl.layers import sliding_window as swg
from bireal_fpga.synth.cost_model import (
    COST_FUNCTIONS,
    CostModelError,
    RtlCostModel,
    bram36_packed,
    node_cost,
)

DATA = Path(__file__).parent / "data"
HLS, RTL = "finn.custom_op.fpgadataflow.hls", "finn.custom_op.fpgadataflow.rtl"

# ---- the layer types ------------------------------------------------------------------------


def test_layer_type_registries_agree() -> None:
    """Every layer type the project implements has a generator and a cost function, and
    neither registry has a key the other lacks."""
    assert len(set(LAYER_TYPES)) == len(LAYER_TYPES)
    assert set(GENERATORS) == set(LAYER_TYPES)
    assert set(COST_FUNCTIONS) == set(LAYER_TYPES)
    for op in LAYER_TYPES:
        assert generator(f"{op}_hls") is not None and generator(f"{op}_rtl") is not None, op
    assert generator("Foo_hls") is None


@pytest.mark.parametrize(
    "op_type,generic",
    [("MVAU_hls", "MVAU"), ("MVAU_rtl", "MVAU"), ("Thresholding", "Thresholding"),
     ("StreamingFIFO_rtl", "StreamingFIFO"), ("Foo_hls_rtl", "Foo_hls")],
    ids=["hls", "rtl", "generic", "fifo", "one_suffix"],
)  # fmt: skip
def test_generic_op(op_type: str, generic: str) -> None:
    assert generic_op(op_type) == generic


# ---- the ladder -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "depth,width,requested,style",
    [
        (64, 4096, "auto", "distributed"),  # shallow: LUTs whatever the width
        (128, 1024, "auto", "distributed"),
        (129, 31, "auto", "distributed"),  # 3999 bits: small
        (129, 32, "auto", "block"),  # 4128 bits, deeper than 128 words
        (4096, 1, "auto", "distributed"),
        (4097, 1, "auto", "block"),
        (16, 8, "block", "block"),  # explicit styles as asked
        (100000, 64, "distributed", "distributed"),
        (16, 8, "ultra", "ultra"),
    ],
    ids=lambda v: str(v),
)
def test_memory_ladder(depth: int, width: int, requested: str, style: str) -> None:
    assert memory.memory_style(depth, width, requested) == style
    assert memory.rom_style(depth, width, requested) == ("block" if style == "ultra" else style)


def test_memory_style_errors_and_triggers() -> None:
    with pytest.raises(memory.MemoryStyleError, match="ram_style 'flash'"):
        memory.memory_style(8, 8, "flash")
    with pytest.raises(memory.MemoryStyleError, match="FIFO ram_style 'flash'"):
        memory.fifo_style(40, 8, "flash")
    # FINN's depth_trigger_bram replaces the ladder of auto
    assert memory.memory_style(16, 8, "auto", bram_depth=16) == "block"
    assert memory.memory_style(15, 4096, "auto", bram_depth=16) == "distributed"
    assert [memory.style_code(s) for s in ("distributed", "block", "ultra")] == [0, 1, 2]


@pytest.mark.parametrize(
    "depth,width,requested,style",
    [(2, 64, "block", "srl"), (33, 64, "auto", "srl"), (64, 8, "auto", "srl"),
     (64, 16, "auto", "distributed"), (257, 32, "auto", "distributed"),
     (4000, 4, "auto", "block"), (258, 8, "auto", "block"), (258, 8, "ultra", "ultra"),
     (40, 8, "srl", "srl")],
    ids=lambda v: str(v),
)  # fmt: skip
def test_fifo_ladder_is_finns(depth: int, width: int, requested: str, style: str) -> None:
    assert memory.fifo_style(depth, width, requested) == style


def _model(nodes, inputs, outputs, inits=None, dtypes=None) -> ModelWrapper:
    """A graph of FINN nodes: inputs / outputs as (tensor, shape), initializers by tensor."""
    inits = inits or {}
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(t, TensorProto.FLOAT, s) for t, s in inputs],
        [helper.make_tensor_value_info(t, TensorProto.FLOAT, s) for t, s in outputs],
        [
            helper.make_tensor(t, TensorProto.FLOAT, v.shape, v.astype(np.float32).ravel())
            for t, v in inits.items()
        ],
    )
    finn_ready()
    model = ModelWrapper(qonnx_make_model(graph))
    for t, dt in (dtypes or {}).items():
        model.set_tensor_datatype(t, DataType[dt])
    return model


def _expect_cost(r: Resources, style: str, width: int, depth: int) -> None:
    """The cost model priced the layer's only RAMB/URAM memory in ``style``."""
    bram = bram36_packed(width, depth) if style == "block" else 0.0
    uram = memory.uram(width, depth) if style == "ultra" else 0
    assert (r.BRAM36, r.URAM) == (bram, uram), (r, style, width, depth)


@pytest.mark.parametrize(
    "mw,simd,mh,ram_style,load",
    [
        (256, 4, 64, "auto", 0),  # 64 x 256: LUTs
        (256, 2, 64, "auto", 0),  # 128 x 128 (16 kbit): LUTs, at the ladder's depth
        (512, 2, 32, "auto", 0),  # 256 x 64: block RAM
        (512, 1, 8, "auto", 0),  # 512 x 8 = 4096 bits: LUTs
        (64, 1, 8, "block", 0),
        (512, 2, 32, "ultra", 1),  # URAM, loaded at run time
    ],
    ids=["64x256", "128x128", "256x64", "512x8", "block", "ultra"],
)
def test_mvau_weights_one_ladder(mw: int, simd: int, mh: int, ram_style: str, load: int) -> None:
    """PE = MH (one neuron fold: no input buffer), no activation: the weights are the MVAU's
    only memory; the generator's style is the ladder's, and the cost model prices it so."""
    node = helper.make_node(
        "MVAU_hls", ["x", "w"], ["y"], name="mvau", domain=HLS, backend="fpgadataflow",
        MW=mw, MH=mh, SIMD=simd, PE=mh, inputDataType="BINARY", weightDataType="BINARY",
        outputDataType="UINT16", binaryXnorMode=1, noActivation=1, numInputVectors=[1],
        mem_mode="internal_embedded", ram_style=ram_style, runtime_writeable_weights=load,
    )  # fmt: skip
    w = np.random.default_rng(mw + simd).integers(0, 2, size=(mw, mh))
    model = _model(
        [node], [("x", [1, mw])], [("y", [1, mh])], {"w": w},
        {"x": "BINARY", "w": "BINARY", "y": "UINT16"},
    )  # fmt: skip
    depth, width = mw // simd, mh * simd
    style = memory.memory_style(depth, width, ram_style)
    layer = generate_layer(model, node)
    res = dict(layer.resources)
    assert (res["weight_depth"], res["weight_width"]) == (depth, width)
    assert f".W_STYLE({memory.style_code(style)})" in layer.files[0][1]
    _expect_cost(node_cost(node, "xcup", model), style, width, depth)


def _swg(ifm, k, ch, simd, dtype, ram_style, pw=0) -> ModelWrapper:
    ofm = [ifm[0] - k + 1, ifm[1] - k + 1]
    node = helper.make_node(
        "ConvolutionInputGenerator_rtl", ["inp"], ["outp"], name="swg", domain=RTL,
        backend="fpgadataflow", ConvKernelDim=[k, k], IFMChannels=ch, IFMDim=list(ifm),
        OFMDim=ofm, SIMD=simd, Stride=[1, 1], Dilation=[1, 1], inputDataType=dtype,
        outputDataType=dtype, depthwise=0, parallel_window=pw, ram_style=ram_style,
    )  # fmt: skip
    return _model(
        [node], [("inp", [1, *ifm, ch])], [("outp", [1, *ofm, k * k * ch])],
        dtypes={"inp": dtype, "outp": dtype},
    )  # fmt: skip


@pytest.mark.parametrize(
    "ifm,ch,simd,dtype,ram_style,pw,style",
    [
        ((34, 34), 64, 64, "BINARY", "distributed", 0, "distributed"),  # 73 x 64: <= 128 deep
        ((34, 34), 64, 1, "INT8", "distributed", 0, "block"),  # ~4.6k x 8
        ((34, 34), 64, 64, "BINARY", "ultra", 0, "ultra"),
        ((34, 34), 64, 64, "BINARY", "block", 0, "block"),
        ((10, 10), 8, 8, "INT8", "distributed", 1, "distributed"),  # line buffers 10 x 128
    ],
    ids=["lutram_73x64", "block", "ultra", "block_asked", "line_buffers"],
)
def test_sliding_window_one_ladder(ifm, ch, simd, dtype, ram_style, pw, style) -> None:
    """The buffer the generator builds (depth, style) is the plan the cost model prices."""
    model = _swg(ifm, 3, ch, simd, dtype, ram_style, pw)
    node = model.graph.node[0]
    width = simd * DataType[dtype].bitwidth()
    g = swg.geometry(ifm[0], ifm[1], 3, 3, 1, 1, ch // simd)
    plan = swg.plan_buffer(g, width, ram_style, bool(pw))
    assert plan.style == style
    text = generate_layer(model, node).files[0][1]
    assert f".STYLE({memory.style_code(style)})" in text
    if not pw:
        assert f".DEPTH({plan.depth})" in text
    _expect_cost(node_cost(node, "xcup", model), style, plan.width, plan.depth)


@pytest.mark.parametrize(
    "channels,ram_style,style",
    [(100, "auto", "distributed"), (200, "auto", "block"), (200, "ultra", "block"),
     (100, "block", "block")],
    ids=["100x32_lut", "200x32_block", "ultra_to_block", "block_asked"],
)  # fmt: skip
def test_add_constant_one_ladder(channels: int, ram_style: str, style: str) -> None:
    """A constant (bias) input: a ROM in the ladder's style, never URAM, priced so."""
    shape = [1, channels]
    node = helper.make_node(
        "ElementwiseAdd_hls", ["x", "b"], ["y"], name="add", domain=HLS, backend="fpgadataflow",
        lhs_dtype="INT32", rhs_dtype="INT32", out_dtype="INT32", lhs_shape=shape,
        rhs_shape=[channels], out_shape=shape, lhs_style="input", rhs_style="const", PE=1,
        ram_style=ram_style,
    )  # fmt: skip
    bias = np.arange(channels) - channels // 2
    model = _model(
        [node], [("x", shape)], [("y", shape)], {"b": bias},
        {"x": "INT32", "b": "INT32", "y": "INT32"},
    )  # fmt: skip
    layer = generate_layer(model, node)
    assert f'.RAM_STYLE("{style}")' in layer.files[0][1]
    _expect_cost(node_cost(node, "xcup", model), style, 32, channels)


@pytest.mark.parametrize(
    "depth,bits,requested", [(300, 8, "auto"), (100, 32, "auto"), (20, 64, "auto"),
                             (300, 8, "distributed"), (3000, 16, "auto")],
    ids=lambda v: str(v),
)  # fmt: skip
def test_fifo_one_ladder(depth: int, bits: int, requested: str) -> None:
    node = helper.make_node(
        "StreamingFIFO_rtl", ["x"], ["y"], name="fifo", domain=RTL, backend="fpgadataflow",
        depth=depth, folded_shape=[1, 16, 1], normal_shape=[1, 16], dataType=f"UINT{bits}",
        ram_style=requested,
    )  # fmt: skip
    model = _model([node], [("x", [1, 16])], [("y", [1, 16])], dtypes={"x": f"UINT{bits}"})
    style = memory.fifo_style(depth, bits, requested)
    assert f'.RAM_STYLE("{style}")' in generate_layer(model, node).files[0][1]
    _expect_cost(node_cost(node, "xcup", model), style, bits, depth)


# ---- memory images ----------------------------------------------------------------------------


def _reference(rows: list[list[int]], bits: int) -> str:
    """The image format spelled out: each row one word, element i at bits i * bits."""
    mask = (1 << bits) - 1
    digits = max(1, (bits * len(rows[0]) + 3) // 4)
    out = []
    for row in rows:
        word = sum((int(e) & mask) << (i * bits) for i, e in enumerate(row))
        out.append(f"{word:0{digits}x}\n")
    return "".join(out)


@pytest.mark.parametrize(
    "bits,elems", [(1, 72), (3, 5), (8, 4), (11, 1), (33, 3), (62, 1), (21, 3), (4, 17)],
    ids=lambda v: str(v),
)  # fmt: skip
def test_image_narrow_and_wide_words_agree(bits: int, elems: int) -> None:
    """Rows of narrow elements (numpy) give the image of the same words as one wide element
    each (Python integers, beyond 62 bits formatted exactly), and the format's reference."""
    rng = np.random.default_rng(bits * 100 + elems)
    v = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(37, elems))
    v[0] = -(1 << (bits - 1))  # the extremes of the type
    v[1] = (1 << (bits - 1)) - 1
    narrow = memory_image(v, bits)
    assert narrow == _reference(v.tolist(), bits)
    mask = (1 << bits) - 1
    words = [sum((int(e) & mask) << (i * bits) for i, e in enumerate(row)) for row in v.tolist()]
    assert memory_image(np.array(words, dtype=object), bits * elems) == narrow
    assert memory_image(v.astype(object), bits) == narrow


@pytest.mark.parametrize("bits", [63, 64, 80, 130], ids=str)
def test_image_wide_elements_exact(bits: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(bits)
    rows = [[int(x) << (bits - 62) for x in rng.integers(0, 1 << 62, size=3)] for _ in range(9)]
    rows[0][0], rows[1][1] = -(1 << (bits - 1)), (1 << bits) - 1
    text = memory_image(np.array(rows, dtype=object), bits)
    assert text == _reference(rows, bits)
    back = [int(line, 16) for line in text.split()]
    mask = (1 << bits) - 1
    assert [[(w >> (i * bits)) & mask for i in range(3)] for w in back] == [
        [e & mask for e in row] for row in rows
    ]
    beats = [(1 << 64) - 1, 0, 1 << 63, 12345]  # 64-bit bus beats: beyond int64
    write_hex(tmp_path / "b.hex", beats, 64)
    assert (tmp_path / "b.hex").read_text() == "".join(f"{b:016x}\n" for b in beats)


def test_image_refuses_what_it_cannot_hold() -> None:
    assert memory_image(np.zeros((0, 3), dtype=np.int64), 8) == ""
    with pytest.raises(ImageError, match=r"\[0, 256\] do not fit 8 bits"):
        memory_image(np.array([0, 256]), 8)
    with pytest.raises(ImageError, match=r"do not fit 8 bits"):
        memory_image(np.array([-129]), 8)
    with pytest.raises(ImageError, match="expected integers"):
        memory_image(np.array([0.5]), 8)
    with pytest.raises(ImageError, match="do not fit 64 bits"):
        memory_image(np.array([1 << 64], dtype=object), 64)


# ---- folding by the cost-model objects ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_specialized(tmp_path_factory: pytest.TempPathFactory) -> ModelWrapper:
    """The tiny spec's specialized graph for PYNQ-Z2, made as a build makes it (untrained,
    seed 0)."""
    from bireal_fpga.export.qonnx_export import export_qonnx
    from bireal_fpga.hwlayers.convert import partition_and_specialize, to_hw_layers
    from bireal_fpga.integer.derive import integer_form
    from bireal_fpga.models.bireal import BiRealNet
    from bireal_fpga.models.calibration import calibrated_random_model
    from bireal_fpga.spec import load_spec

    torch.manual_seed(0)
    model = calibrated_random_model(BiRealNet(load_spec("tiny")), seed=0)
    hw = to_hw_layers(export_qonnx(integer_form(model), top1=False))
    part = load_board("PYNQ-Z2").part
    return partition_and_specialize(hw, part, tmp_path_factory.mktemp("finn"))


def _expected(cost: str) -> dict:
    return json.loads((DATA / "tiny_PYNQ-Z2_folding.json").read_text())[cost]


def _config(model: ModelWrapper) -> dict:
    return json.loads(json.dumps(folding_config(model)))


def test_finn_cost_model_folds_tiny_as_before(tiny_specialized: ModelWrapper) -> None:
    board = load_board("PYNQ-Z2")
    folded, est = fold(copy.deepcopy(tiny_specialized), board, "max", cost=FinnCostModel())
    want = _expected("finn")
    assert _config(folded) == want["folding"]
    assert est.total == want["total"] and est.fps == want["fps"]
    assert est.max_cycles == want["max_cycles"] and est.fits


def _int8_mvau(mw: int, mh: int, vectors: list[int]) -> ModelWrapper:
    node = helper.make_node(
        "MVAU_hls", ["x", "w"], ["y"], name="MVAU_hls_0", domain=HLS, backend="fpgadataflow",
        MW=mw, MH=mh, SIMD=1, PE=1, inputDataType="UINT8", weightDataType="INT8",
        outputDataType="INT32", accDataType="INT32", binaryXnorMode=0, noActivation=1,
        numInputVectors=vectors, mem_mode="internal_decoupled", ram_style="auto",
    )  # fmt: skip
    w = np.random.default_rng(7).integers(-128, 128, size=(mw, mh))
    return _model(
        [node], [("x", [*vectors, mw])], [("y", [*vectors, mh])], {"w": w},
        {"x": "UINT8", "w": "INT8", "y": "INT32"},
    )  # fmt: skip


def test_rtl_folding_is_not_capped_by_the_hls_weight_stream() -> None:
    """An int8 MVAU (64 x 256, 4x4 pixels) whose target, 256 cycles, needs 8192 weight bits a
    cycle (RTL: SIMD 64 x PE 16 x 8; FINN's SIMD cap: 4 x 256 x 8): one past FINN's HLS
    weight-stream word (8191), where SetFolding reverts PE and misses the target (512 cycles;
    FINN's cost model keeps that). The RTL cost model's MVAU has no such stream: it meets the
    target, and the node keeps its mem_mode."""
    from bireal_fpga.hwlayers.folding import set_folding

    board = load_board("ZCU104")
    for cost, simd, pe, cycles in ((RtlCostModel(), 64, 16, 256), (FinnCostModel(), 4, 128, 512)):
        folded = set_folding(_int8_mvau(64, 256, [1, 4, 4]), 256, board, cost)
        node = folded.get_node_from_name("MVAU_hls_0")
        inst = getCustomOp(node)
        assert (inst.get_nodeattr("SIMD"), inst.get_nodeattr("PE")) == (simd, pe), cost.name
        assert inst.get_exp_cycles() == cycles, cost.name
        assert inst.get_nodeattr("mem_mode") == "internal_decoupled", cost.name


def test_rtl_cost_model_folds_tiny_as_before(tiny_specialized: ModelWrapper) -> None:
    board = load_board("PYNQ-Z2")
    folded, est = fold(copy.deepcopy(tiny_specialized), board, "max", cost=RtlCostModel())
    assert _config(folded) == _expected("rtl")["folding"]
    assert est.fits
    # a correction scales the totals before the fits check; per-layer prices stay
    corrected = RtlCostModel(correction={"LUT": 10.0}).estimate(folded, board)
    assert corrected.total["LUT"] == 10.0 * est.total["LUT"]
    assert corrected.total["BRAM36"] == est.total["BRAM36"]
    assert corrected.per_layer == est.per_layer
    assert not corrected.fits  # 10x the LUTs of a design that fits with room to spare
    with pytest.raises(CostModelError, match="'FF' is not one of LUT, BRAM36, URAM, DSP"):
        RtlCostModel(correction={"FF": 1.1})
    with pytest.raises(CostModelError, match="LUT=0"):
        RtlCostModel(correction={"LUT": 0})


@pytest.mark.parametrize(
    "bits,signed,w,family,field",
    [
        (8, False, (-127, 127), "xcup", 16),  # the stem (UINT8): c 24 bits
        (10, True, (-127, 127), "xcup", 17),  # a downsample's INT10: c 25 bits
        (10, True, (-127, 127), "xcu", 17),
        (12, True, (-127, 127), "xcup", None),  # INT12: c 27 bits > 25
        (8, False, (-128, 127), "xcup", None),  # -128 - 1 does not fit 8 bits
        (8, False, (-127, 127), "xc7", None),  # the DSP48E1 cascade sums instead
        (8, False, (-127, 127), None, None),  # a graph folded for no board
    ],
)
def test_dsp_packing_decision(bits, signed, w, family, field) -> None:
    from bireal_fpga.arch.dsp import dsp_packing

    got = dsp_packing(bits, signed, w[0], w[1], 8, 4, False, family)
    assert (None if got is None else got.field_bits) == field
    assert dsp_packing(bits, signed, w[0], w[1], 8, 1, False, family) is None
    assert dsp_packing(1, False, 0, 1, 1, 4, True, family) is None  # XNOR lanes


def test_packed_products_split_exactly() -> None:
    """The identity the RTL relies on, over every UINT8 x narrow INT8 pair: with the high lane
    storing w_hi - [w_lo < 0] and c = {w_hi', sign copies, w_lo}, x * c splits into x * w_lo
    (the low 16 bits, signed) and x * w_hi (the rest + the low field's sign bit)."""
    import numpy as np

    from bireal_fpga.arch.dsp import dsp_packing, stored_weights

    pack = dsp_packing(8, False, -127, 127, 8, 2, False, "xcup")
    s = pack.field_bits
    w = np.arange(-127, 128, dtype=np.int64)
    wl, wh = (a.ravel() for a in np.meshgrid(w, w, indexing="ij"))
    stored = stored_weights(np.stack([wl, wh], axis=1), 2, 1, pack)
    wl_s, wh_s = stored[:, 0], stored[:, 1]
    assert wh_s.min() >= -128 and wh_s.max() <= 127 and np.array_equal(wl_s, wl)
    c = wh_s * (1 << s) + np.where(wl_s < 0, wl_s + (1 << s), wl_s)  # {w_hi', sext(w_lo)}
    for x in range(256):
        p = x * c
        lo = (p & ((1 << s) - 1)) - ((p >> (s - 1)) & 1) * (1 << s)
        hi = (p >> s) + ((p >> (s - 1)) & 1)
        assert np.array_equal(lo, x * wl) and np.array_equal(hi, x * wh), x
