"""RTL of the stream layers (ElementwiseAdd, GlobalAccPool, LabelSelect, StreamingFIFO,
StreamingDataWidthConverter) against FINN's python execution of the same node, simulated by
Verilator with random back-pressure, and at full rate without it (F frames take about
F x RtlLayer.cycles cycles)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import qonnx_make_model

from bireal_fpga.flow import BuildConfig, build
from bireal_fpga.hwlayers.finn_env import finn_ready
from bireal_fpga.rtl.layers import generate_layer
from bireal_fpga.rtl.layers import width_converter as wc
from bireal_fpga.rtl.layers.base import RtlParamError
from bireal_fpga.rtl.prepare import prepare_rtl_graph
from bireal_fpga.rtl.render import library_file
from bireal_fpga.rtlsim import node_check
from bireal_fpga.rtlsim.node_check import NodeMismatch, check_node, single_node_model
from bireal_fpga.rtlsim.verilator_sim import SimPort, SimulationStalled, VerilatorSim

FINN_DOMAIN = "finn.custom_op.fpgadataflow"
LATENCY = 8  # cycles a frame may take beyond its initiation interval at full rate


@pytest.fixture(scope="session")
def graph(tmp_path_factory) -> ModelWrapper:
    """The tiny net with --top1 (all stream layers), FIFOs and width converters inserted (the
    graph RTL is generated from, before FIFO sizing). Folded by FINN's cost models: the node
    names and widths below are those of that folding."""
    out = tmp_path_factory.mktemp("tiny_top1") / "build"
    cfg = BuildConfig("tiny", "PYNQ-Z2", str(out), top1=True, cost_model="finn", to_step="folding")
    build(cfg, log=lambda _m: None)
    finn_ready()
    return prepare_rtl_graph(ModelWrapper(str(out / "folded.onnx")))


@pytest.fixture(scope="session")
def sims(tmp_path_factory) -> Path:
    """One work folder per node for the whole session, so a Verilator build is reused."""
    return tmp_path_factory.mktemp("sims")


def node_of(model: ModelWrapper, name: str):
    node = model.get_node_from_name(name)
    assert node is not None, name
    return node


def bounded_inputs(model, node, frames, seed=0, lo=-(1 << 22), hi=1 << 22):
    """Random integer inputs within the node's types and [lo, hi]: FINN's python execution
    carries values as float32, exact only below 2**24."""
    single = single_node_model(model, node)
    rng = np.random.default_rng(seed)
    frames_in = []
    for _ in range(frames):
        ctx = {}
        for t in single.graph.input:
            dt = single.get_tensor_datatype(t.name)
            a, b = max(int(dt.min()), lo), min(int(dt.max()), hi)
            shape = single.get_tensor_shape(t.name)
            ctx[t.name] = rng.integers(a, b + 1, size=shape).astype(np.float32)
        frames_in.append(ctx)
    return frames_in


def verify(model, node, workdir: Path, *, frames=2, **bounds):
    """Bit-exact with random stalls, then full rate without: returns (layer, cycles)."""
    layer = generate_layer(model, node)
    # the same number of frames in both runs: one Verilator build
    stalled = bounded_inputs(model, node, frames, seed=1, **bounds)
    check_node(model, node, workdir, inputs=stalled, stall=0.2)
    full = bounded_inputs(model, node, frames, seed=2, **bounds)
    res = check_node(model, node, workdir, inputs=full, stall=0.0)
    assert frames * layer.cycles <= res.cycles <= frames * layer.cycles + LATENCY, (
        res.cycles,
        layer.cycles,
    )
    return layer, res.cycles


def one_node(op_type, name, attrs, inputs, outputs, inits=None) -> tuple[ModelWrapper, object]:
    """A FINN HW node alone: inputs/outputs as (tensor, shape, FINN type), inits by tensor."""
    inits = inits or {}
    node = helper.make_node(
        op_type,
        [t for t, _, _ in inputs],
        [t for t, _, _ in outputs],
        name=name,
        domain=FINN_DOMAIN,
        backend="fpgadataflow",
        **attrs,
    )
    vi = [helper.make_tensor_value_info(t, TensorProto.FLOAT, s) for t, s, _ in inputs]
    graph = helper.make_graph(
        [node],
        name,
        [v for v in vi if v.name not in inits],
        [helper.make_tensor_value_info(t, TensorProto.FLOAT, s) for t, s, _ in outputs],
        [
            helper.make_tensor(t, TensorProto.FLOAT, v.shape, v.astype(np.float32).ravel())
            for t, v in inits.items()
        ],
    )
    model = ModelWrapper(qonnx_make_model(graph))
    for t, _, dt in list(inputs) + list(outputs):
        model.set_tensor_datatype(t, DataType[dt])
    return model, model.graph.node[0]


# ---- the stream layers of the tiny graph ----------------------------------------------------

GRAPH_NODES = [
    "ElementwiseAdd_hls_0",  # two INT8 streams -> INT32
    "ElementwiseAdd_hls_1",
    "ElementwiseAdd_hls_2",  # INT32 + constant FC bias
    "GlobalAccPool_hls_0",  # INT8 -> INT14, 8x8 pixels, PE 1
    "LabelSelect_hls_0",  # top-1 of 10 INT32 scores
]


@pytest.mark.parametrize("name", GRAPH_NODES, ids=GRAPH_NODES)
def test_graph_node(graph, sims, name):
    verify(graph, node_of(graph, name), sims / name)


# ---- foldings and type variants -------------------------------------------------------------


def test_add_two_streams_pe4_mixed_types(sims):
    shape = [1, 3, 5, 8]
    model, node = one_node(
        "ElementwiseAdd",
        "add_pe4",
        dict(
            lhs_dtype="UINT4", rhs_dtype="INT3", out_dtype="INT6", lhs_shape=shape,
            rhs_shape=shape, out_shape=shape, lhs_style="input", rhs_style="input", PE=4,
        ),
        [("a", shape, "UINT4"), ("b", shape, "INT3")],
        [("y", shape, "INT6")],
    )  # fmt: skip
    layer, _ = verify(model, node, sims / "add_pe4")
    assert layer.cycles == 3 * 5 * 2


def test_add_const_lhs_per_channel_pe2(sims):
    """A constant lhs of shape [C], broadcast over the pixels: one ROM period of C/PE words."""
    shape = [1, 4, 4, 6]
    bias = np.array([-16, 15, 3, 0, -7, 9])
    model, node = one_node(
        "ElementwiseAdd",
        "add_const",
        dict(
            lhs_dtype="INT5", rhs_dtype="INT8", out_dtype="INT9", lhs_shape=[6],
            rhs_shape=shape, out_shape=shape, lhs_style="const", rhs_style="input", PE=2,
        ),
        [("bias", [6], "INT5"), ("x", shape, "INT8")],
        [("y", shape, "INT9")],
        inits={"bias": bias},
    )  # fmt: skip
    layer, _ = verify(model, node, sims / "add_const")
    assert [p.port for p in layer.inputs] == ["in0_V"]
    assert layer.files[1][1].count("\n") == 3  # 6 channels / PE 2


def border_constant(rng, row_class, col_class, channels, lo, hi):
    """A constant [1, H, W, C] that depends only on (row class, column class, channel): random
    values per class pair (a zero-padded conv's border correction has this form)."""
    nr, nc = max(row_class) + 1, max(col_class) + 1
    table = rng.integers(lo, hi + 1, size=(nr, nc, channels))
    return table[np.asarray(row_class)][:, np.asarray(col_class)][None]


# (row classes, column classes, channels, PE, constant side): all four borders of an odd 7 x 5
# frame (stride 1), only a top / left border (stride 2 of an even input), one word per pixel
BORDER_CASES = {
    "7x5_all_borders_pe2": ((0, 1, 1, 1, 1, 1, 2), (0, 1, 1, 1, 2), 6, 2, "rhs"),
    "7x5_all_borders_pe1": ((0, 1, 1, 1, 1, 1, 2), (0, 1, 1, 1, 2), 3, 1, "rhs"),
    "4x6_top_left_pe1_lhs": ((0, 1, 1, 1), (0, 1, 1, 1, 1, 1), 4, 1, "lhs"),
    "5x3_top_left_wpp1": ((0, 1, 1, 1, 1), (0, 1, 1), 4, 4, "rhs"),
}


@pytest.mark.parametrize("case", list(BORDER_CASES), ids=list(BORDER_CASES))
def test_add_border_constant(sims, case):
    """A constant of the border form (one pixel of words per row class x column class, the
    class of each row and column as parameters of bireal_add) against FINN's execution, with
    random stalls and at full rate; the ROM holds NR * NC * C / PE words."""
    row_class, col_class, channels, pe, side = BORDER_CASES[case]
    h, w = len(row_class), len(col_class)
    shape = [1, h, w, channels]
    rng = np.random.default_rng(len(case))
    value = border_constant(rng, row_class, col_class, channels, -8, 7)
    const, stream = ("c", shape, "INT4"), ("x", shape, "UINT6")
    ins = [const, stream] if side == "lhs" else [stream, const]
    model, node = one_node(
        "ElementwiseAdd",
        f"add_{case}",
        dict(
            lhs_dtype=ins[0][2], rhs_dtype=ins[1][2], out_dtype="INT8", lhs_shape=shape,
            rhs_shape=shape, out_shape=shape, PE=pe,
            lhs_style="const" if side == "lhs" else "input",
            rhs_style="const" if side == "rhs" else "input",
        ),
        ins,
        [("y", shape, "INT8")],
        inits={"c": value},
    )  # fmt: skip
    layer, _ = verify(model, node, sims / f"add_{case}", frames=3)
    nr, nc = max(row_class) + 1, max(col_class) + 1
    words = nr * nc * channels // pe
    assert words < h * w * channels // pe
    assert layer.files[1][1].count("\n") == words
    assert dict(layer.resources)["const_bits"] == words * pe * 4
    sv = layer.files[0][1]
    assert ".BORDER(1'b1)" in sv and f".NCONST({words})" in sv, sv


def test_global_pool_unsigned_pe3(sims):
    model, node = one_node(
        "GlobalAccPool",
        "pool_pe3",
        dict(NumChannels=6, PE=3, inputDataType="UINT4", numInputVectors=[1, 3, 5]),
        [("x", [1, 3, 5, 6], "UINT4")],
        [("y", [1, 1, 1, 6], "UINT8")],
    )
    layer, _ = verify(model, node, sims / "pool_pe3")
    assert layer.cycles == 15 * 2


def test_label_select_top3_ties_pe4(sims):
    """Top-3 of 12 narrow values (many ties: the lower index first), 4 lanes, 3 vectors."""
    model, node = one_node(
        "LabelSelect",
        "topk_pe4",
        dict(Labels=12, PE=4, K=3, inputDataType="INT3", numInputVectors=[3]),
        [("x", [3, 12], "INT3")],
        [("y", [3, 3], "UINT8")],
    )
    layer, _ = verify(model, node, sims / "topk_pe4", frames=4)
    assert layer.cycles == 3 * 3


# ---- FIFOs ------------------------------------------------------------------------------------


def fifo_capacity(layer, workdir: Path, frames: int) -> int:
    """Words the FIFO takes while its output is never ready (the build of check_node reused)."""
    p_in, p_out = layer.inputs[0], layer.outputs[0]
    sim = VerilatorSim(
        layer.module,
        [library_file(n) for n in layer.library] + [workdir / f"{layer.module}.sv"],
        [SimPort(p_in.port, p_in.fmt.width)],
        [SimPort(p_out.port, p_out.fmt.width, p_out.words * frames)],
        workdir / "sim",
        seed=1,
    )
    words = list(range(p_in.words))
    with pytest.raises(SimulationStalled) as e:
        sim.run({p_in.port: words}, stall_out=1.0, max_idle=50, rundir=workdir / "cap")
    taken = str(e.value).split("(", 1)[1].split("/", 1)[0]
    return int(taken)


FIFO_CASES = {
    "depth2_regs": (2, "auto", "srl", 2, None),
    "depth20_srl": (20, "auto", "srl", 20, None),
    "depth20_wide_srl": (20, "auto", "srl", 20, 96),
    "depth300_block": (300, "auto", "block", 302, None),
}


@pytest.mark.parametrize("case", list(FIFO_CASES), ids=list(FIFO_CASES))
def test_fifo(graph, sims, case):
    depth, requested, style, capacity, min_width = FIFO_CASES[case]
    if min_width is None:
        node = node_of(graph, "StreamingFIFO_15")  # INT32 after the first add
    else:  # a wide word: one shift register per bit lane
        node = next(
            n
            for n in graph.graph.node
            if n.op_type.startswith("StreamingFIFO")
            and getCustomOp(n).get_instream_width() >= min_width
        )
    inst = getCustomOp(node)
    inst.set_nodeattr("depth", depth)
    inst.set_nodeattr("ram_style", requested)
    try:
        layer, _ = verify(graph, node, sims / case, frames=2)
        assert f'RAM_STYLE("{style}")' in layer.files[0][1]
        assert fifo_capacity(layer, sims / case, 2) == capacity
    finally:
        inst.set_nodeattr("depth", 2)
        inst.set_nodeattr("ram_style", "auto")


def test_srl_fifo_forms_agree_cycle_by_cycle(graph, sims):
    """The shift-register FIFO is simulated (and built by Vivado) word-wide; the yosys estimate
    reads its per-bit-lane form (BIREAL_SRL_LANES). Both take and give the same words in the
    same cycles under random back-pressure, and a wrong head index would not."""
    node = next(
        n
        for n in graph.graph.node
        if n.op_type.startswith("StreamingFIFO") and getCustomOp(n).get_instream_width() >= 96
    )
    inst = getCustomOp(node)
    inst.set_nodeattr("depth", 13)
    try:
        layer = generate_layer(graph, node)
    finally:
        inst.set_nodeattr("depth", 2)
    assert 'RAM_STYLE("srl")' in layer.files[0][1]
    work = sims / "srl_forms"
    work.mkdir(parents=True, exist_ok=True)
    for name, text in layer.files:
        (work / name).write_text(text)
    p_in, p_out = layer.inputs[0], layer.outputs[0]
    rng = np.random.default_rng(3)
    words = [int.from_bytes(rng.bytes(p_in.fmt.width // 8 + 1), "little") for _ in range(400)]
    words = [w & ((1 << p_in.fmt.width) - 1) for w in words]
    runs = {}
    for form, defines in (("word", ()), ("lanes", ("BIREAL_SRL_LANES",))):
        sim = VerilatorSim(
            layer.module,
            [library_file(n) for n in layer.library] + [work / f"{layer.module}.sv"],
            [SimPort(p_in.port, p_in.fmt.width)],
            [SimPort(p_out.port, p_out.fmt.width, len(words))],
            work / form,
            defines=defines,
        )
        res = sim.run({p_in.port: words}, stall_in=0.3, stall_out=0.5)
        runs[form] = (res.outputs[p_out.port], res.out_cycles[p_out.port])
    assert runs["word"][0] == words  # a FIFO: every word, in order
    assert runs["word"] == runs["lanes"]


# ---- width converters -------------------------------------------------------------------------

DWC_CASES = {
    # name: (node, inWidth, outWidth or None to keep the graph's, decouple limit)
    "up_8_24": ("StreamingDataWidthConverter_0", None, None, wc.DECOUPLE_LIMIT_BITS),
    "down_24_16_lcm": ("StreamingDataWidthConverter_1", 24, 16, wc.DECOUPLE_LIMIT_BITS),
    "down_216_24_comb_ready": ("StreamingDataWidthConverter_1", None, None, 0),
}


@pytest.mark.parametrize("case", list(DWC_CASES), ids=list(DWC_CASES))
def test_width_converter(graph, sims, monkeypatch, case):
    name, iw, ow, limit = DWC_CASES[case]
    monkeypatch.setattr(wc, "DECOUPLE_LIMIT_BITS", limit)
    node = node_of(graph, name)
    inst = getCustomOp(node)
    saved = inst.get_nodeattr("inWidth"), inst.get_nodeattr("outWidth")
    if iw is not None:
        inst.set_nodeattr("inWidth", iw)
        inst.set_nodeattr("outWidth", ow)
    try:
        layer, _ = verify(graph, node, sims / case)
        assert layer.cycles == max(layer.inputs[0].words, layer.outputs[0].words)
        comb = "combinational ready" in layer.files[0][1]
        assert comb == (limit == 0)
    finally:
        inst.set_nodeattr("inWidth", saved[0])
        inst.set_nodeattr("outWidth", saved[1])


# ---- errors, mismatches, determinism --------------------------------------------------------


def _set(model, name, attr, value):
    inst = getCustomOp(node_of(model, name))
    old = inst.get_nodeattr(attr)
    inst.set_nodeattr(attr, value)
    return inst, old


BAD = {
    "fifo_depth": ("StreamingFIFO_15", "depth", 1),
    "add_pe": ("ElementwiseAdd_hls_0", "PE", 3),
    "pool_pe": ("GlobalAccPool_hls_0", "PE", 5),
    "label_k": ("LabelSelect_hls_0", "K", 11),
    "dwc_width": ("StreamingDataWidthConverter_0", "outWidth", 20),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_parameter_one_line(graph, case):
    name, attr, value = BAD[case]
    inst, old = _set(graph, name, attr, value)
    try:
        with pytest.raises(RtlParamError) as e:
            generate_layer(graph, node_of(graph, name))
    finally:
        inst.set_nodeattr(attr, old)
    msg = str(e.value)
    assert "\n" not in msg and f"'{name}'" in msg and attr in msg, msg


def test_corrupt_constant_is_caught(graph, sims, monkeypatch):
    """A wrong bias word in the ROM image is reported as a mismatch against FINN."""
    name = "ElementwiseAdd_hls_2"

    def corrupted(model, node):
        layer = generate_layer(model, node)
        (sv, text), (hexname, image) = layer.files
        words = image.splitlines()
        words[3] = f"{(int(words[3], 16) + 1) % (1 << 32):08x}"
        files = ((sv, text), (hexname, "\n".join(words) + "\n"))
        return dataclasses.replace(layer, files=files)

    monkeypatch.setattr(node_check, "generate_layer", corrupted)
    node = node_of(graph, name)
    with pytest.raises(NodeMismatch, match=name):
        check_node(graph, node, sims / name, inputs=bounded_inputs(graph, node, 2), stall=0.0)


def test_deterministic(graph):
    for name in GRAPH_NODES + ["StreamingFIFO_15", "StreamingDataWidthConverter_1"]:
        a = generate_layer(graph, node_of(graph, name))
        b = generate_layer(graph, node_of(graph, name))
        assert a.files == b.files
