"""RTL of the matrix-vector units (MVAU: XNOR-popcount and integer, fused thresholds or raw
accumulators) and the threshold units (Thresholding: binary search or uniform clamp) against
FINN's python execution of the same node, simulated by Verilator with random back-pressure,
and at full rate without it (F frames take F x RtlLayer.cycles cycles plus the latency)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.multithreshold import multithreshold
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.arch.dsp import FAMILY_PROP
from bireal_fpga.arch.streams import StreamFormat
from bireal_fpga.rtl.layers import generate_layer
from bireal_fpga.rtl.layers.base import RtlLayer, RtlParamError
from bireal_fpga.rtl.layers.thresholding import plan_thresholds
from bireal_fpga.rtlsim import node_check
from bireal_fpga.rtlsim.node_check import NodeMismatch, check_node, single_node_model


@pytest.fixture
def graph(tiny_folded: ModelWrapper) -> ModelWrapper:
    """The tiny net, specialized and folded."""
    return tiny_folded


@pytest.fixture(scope="session")
def sims(tmp_path_factory) -> Path:
    """One work folder per node for the whole session, so a Verilator build is reused."""
    return tmp_path_factory.mktemp("sims")


def node_of(model: ModelWrapper, name: str):
    node = model.get_node_from_name(name)
    assert node is not None, name
    return node


def near_inputs(model, node, frames, seed, focus: tuple[int, int] | None):
    """Random inputs of the node's type; with ``focus``, three quarters of them in that range
    (around the thresholds), so that every threshold is exercised. Values stay below 2**31 - 256
    (FINN carries them as float32)."""
    single = single_node_model(model, node)
    rng = np.random.default_rng(seed)
    frames_in = []
    for _ in range(frames):
        ctx = {}
        for t in single.graph.input:
            dt = single.get_tensor_datatype(t.name)
            lo, hi = int(dt.min()), min(int(dt.max()), 2**31 - 256)
            shape = single.get_tensor_shape(t.name)
            x = rng.integers(lo, hi + 1, size=shape)
            if focus is not None:
                a, b = max(lo, focus[0]), min(hi, focus[1])
                near = rng.integers(a, b + 1, size=shape)
                x = np.where(rng.random(size=shape) < 0.75, near, x)
            ctx[t.name] = x.astype(np.float32)
        frames_in.append(ctx)
    return frames_in


def verify(model, node, workdir: Path, *, frames=2, focus=None) -> tuple[RtlLayer, int]:
    """Bit-exact with random stalls, then full rate without: returns (layer, cycles)."""
    layer = generate_layer(model, node)
    # the same number of frames in both runs: one Verilator build
    check_node(model, node, workdir, inputs=near_inputs(model, node, frames, 1, focus), stall=0.2)
    res = check_node(
        model, node, workdir, inputs=near_inputs(model, node, frames, 2, focus), stall=0
    )
    latency = dict(layer.resources)["latency"]
    assert frames * layer.cycles <= res.cycles <= frames * layer.cycles + latency + 2, (
        res.cycles,
        layer.cycles,
        latency,
    )
    return layer, res.cycles


def variant(model: ModelWrapper, name: str, attrs: dict, inits: dict | None = None, odt=None):
    """A copy of the graph with one node's attributes / initializers (input index) changed."""
    m = ModelWrapper(copy.deepcopy(model.model))
    node = node_of(m, name)
    inst = getCustomOp(node)
    for k, v in attrs.items():
        inst.set_nodeattr(k, v)
    for i, arr in (inits or {}).items():
        m.set_initializer(node.input[i], np.asarray(arr, dtype=np.float32))
        m.set_tensor_datatype(node.input[i], DataType["FLOAT32"])
    if odt is not None:
        inst.set_nodeattr("outputDataType", odt)
        m.set_tensor_datatype(node.output[0], DataType[odt])
    return m, node


# ---- every MVAU and Thresholding node of the tiny graph -------------------------------------

GRAPH_NODES = {
    "MVAU_hls_0": None,  # stem: UINT8 x INT8, 27 -> 8, SIMD 3 PE 8, 255 thresholds
    "MVAU_hls_1": None,  # XNOR popcount 72 -> 8, SIMD 72 (one step: pipelined search)
    "MVAU_hls_2": None,  # downsample INT8 x INT8 32 -> 16, SIMD 4 PE 4 (input replay)
    "MVAU_hls_3": None,  # XNOR popcount 72 -> 16, SIMD 36 (two stages per search engine)
    "MVAU_rtl_0": None,  # classifier INT14 x INT8, raw accumulators
    "Thresholding_rtl_0": (-4, 4),  # sign: INT8 -> BINARY, one threshold
    "Thresholding_rtl_1": (-140, 140),  # saturation INT32 -> INT8: uniform (clamp)
    "Thresholding_rtl_2": (-4, 4),
    "Thresholding_rtl_3": (-140, 140),
}


@pytest.mark.parametrize("name", list(GRAPH_NODES), ids=list(GRAPH_NODES))
def test_graph_node(graph, sims, name):
    layer, _ = verify(graph, node_of(graph, name), sims / name, focus=GRAPH_NODES[name])
    res = dict(layer.resources)
    if name.startswith("MVAU"):
        inst = getCustomOp(node_of(graph, name))
        assert res["lanes"] == inst.get_nodeattr("PE") * inst.get_nodeattr("SIMD")
        assert res["weight_bits"] > 0
    if name in ("Thresholding_rtl_1", "Thresholding_rtl_3"):
        assert res["uniform"] == 1 and res["threshold_bits"] == 0


# ---- foldings and parameter variants ----------------------------------------------------------


def test_xnor_pe4_simd8_unsorted_thresholds_block_memories(graph, sims):
    """SF 9, NF 4 (input replay), per-channel thresholds out of order, fractional and huge
    (+2**40: never), block RAM styles honoured, ActVal -2 into INT2."""
    rng = np.random.default_rng(5)
    thr = np.concatenate(
        [np.full((16, 1), 2.0**40), rng.uniform(-3, 80, size=(16, 2))], axis=1
    )  # column 0 is the largest: unsorted rows
    m, node = variant(
        graph,
        "MVAU_hls_3",
        dict(PE=4, SIMD=8, ram_style="block", ram_style_thresholds="block", ActVal=-2),
        {2: thr},
        odt="INT2",
    )
    layer, _ = verify(m, node, sims / "xnor_pe4")
    res = dict(layer.resources)
    assert layer.cycles == 64 * 9 * 4
    assert res["weight_block"] == 1 and res["threshold_steps"] == 3
    text = layer.files[0][1]
    assert ".W_STYLE(1)" in text and ".T_S(2)" in text


def test_integer_no_activation_pe2_simd4(graph, sims):
    """The classifier folded: integer MACs, 5 neuron folds replaying 4 input words."""
    m, node = variant(graph, "MVAU_rtl_0", dict(PE=2, SIMD=4))
    layer, _ = verify(m, node, sims / "fc_pe2", frames=3)
    assert layer.cycles == 4 * 5
    assert dict(layer.resources)["multipliers"] == 8


EXTREME_WEIGHTS = np.array([-127, -126, -1, 0, 1, 126, 127])


def extreme_weights(shape, seed: int, lowest: int = -127) -> np.ndarray:
    """Weights at the ends of INT8 and around 0 (every sign pair of a packed lane pair, and a
    negative low weight under w_hi = -127, whose stored w_hi' is -128), one at ``lowest``."""
    rng = np.random.default_rng(seed)
    w = rng.choice(EXTREME_WEIGHTS, size=shape).astype(np.float32)
    w.flat[0] = lowest
    return w


@pytest.mark.parametrize("pe,simd", [(8, 9), (2, 27)], ids=["pe8_simd9", "pe2_simd27"])
def test_stem_two_products_per_multiplier(graph, sims, pe, simd):
    """On UltraScale+ the stem (UINT8 x narrow-range INT8) packs lane pairs into one multiplier
    each (arch.dsp: products in [-32385, 32385], a 16-bit low field, c of 24 bits): bit-exact
    against FINN with weights at the extremes and inputs mostly at 240..255, where the low
    products are largest."""
    inst = getCustomOp(node_of(graph, "MVAU_hls_0"))
    shape = (inst.get_nodeattr("MW"), inst.get_nodeattr("MH"))
    m, node = variant(graph, "MVAU_hls_0", dict(PE=pe, SIMD=simd), {1: extreme_weights(shape, 3)})
    m.set_metadata_prop(FAMILY_PROP, "xcup")
    layer, _ = verify(m, node, sims / f"stem_pack_{pe}_{simd}", focus=(240, 255))
    res = dict(layer.resources)
    assert res["packed_pairs"] == pe // 2 and res["multipliers"] == pe // 2 * simd
    assert ".PACK(1), .PACK_S(16)" in layer.files[0][1]


def test_seven_series_keeps_one_multiplier_per_lane(graph):
    """The tiny graph is folded for PYNQ-Z2 (xc7): its stem does not pack (yosys sums the
    unpacked products in the DSP48E1 cascade there; arch.dsp)."""
    assert graph.get_metadata_prop(FAMILY_PROP) == "xc7"
    for name in ("MVAU_hls_0", "MVAU_hls_2"):
        res = dict(generate_layer(graph, node_of(graph, name)).resources)
        assert res["packed_pairs"] == 0 and res["multipliers"] == res["lanes"], name


def test_full_range_weights_keep_one_multiplier_per_lane(graph, sims):
    """A weight of -128 (full-range INT8): w_hi - 1 would not fit 8 bits, so no lane is
    packed (and the result is exact all the same)."""
    inst = getCustomOp(node_of(graph, "MVAU_hls_0"))
    shape = (inst.get_nodeattr("MW"), inst.get_nodeattr("MH"))
    w = extreme_weights(shape, 4, lowest=-128)
    m, node = variant(graph, "MVAU_hls_0", dict(PE=8, SIMD=9), {1: w})
    m.set_metadata_prop(FAMILY_PROP, "xcup")
    layer, _ = verify(m, node, sims / "stem_full_range", focus=(240, 255))
    res = dict(layer.resources)
    assert res["packed_pairs"] == 0 and res["multipliers"] == 8 * 9
    assert ".PACK(" not in layer.files[0][1]


def test_odd_pe_packs_pairs_and_keeps_the_last_lane(graph, sims):
    """The classifier fed INT8 (products in 15 bits: packable) at PE 5: two packed pairs and
    one lane with its own multipliers, raw signed accumulators, weights at the extremes."""
    inst = getCustomOp(node_of(graph, "MVAU_rtl_0"))
    shape = (inst.get_nodeattr("MW"), inst.get_nodeattr("MH"))
    m, node = variant(
        graph,
        "MVAU_rtl_0",
        dict(PE=5, SIMD=4, inputDataType="INT8"),
        {1: extreme_weights(shape, 5)},
    )
    m.set_tensor_datatype(node.input[0], DataType["INT8"])
    m.set_metadata_prop(FAMILY_PROP, "xcu")
    layer, _ = verify(m, node, sims / "fc_pe5_packed", frames=3, focus=(-128, -120))
    res = dict(layer.resources)
    assert res["packed_pairs"] == 2 and res["multipliers"] == 3 * 4  # 2 pairs + 1 lane
    assert ".PACK(1), .PACK_S(15)" in layer.files[0][1]


@pytest.mark.parametrize(
    "name,attrs",
    [
        ("MVAU_hls_3", dict(PE=2, SIMD=36)),  # XNOR, 72-bit words: two beats each
        ("MVAU_hls_3", dict(PE=4, SIMD=8)),  # XNOR, 32-bit words: one beat each
        ("MVAU_hls_2", dict(PE=2, SIMD=4)),  # integer INT8 weights, 64-bit words
    ],
    ids=["xnor_two_beats", "xnor_one_beat", "integer"],
)
def test_runtime_loaded_weights(graph, sims, name, attrs):
    """Weights in UltraRAM, loaded over the weight bus before the first input (UltraRAM
    cannot be initialized by the bitstream): no memory image, bit-exact against FINN."""
    m, node = variant(graph, name, dict(attrs, ram_style="ultra", runtime_writeable_weights=1))
    layer, _ = verify(m, node, sims / f"load_{name}_{attrs['PE']}_{attrs['SIMD']}")
    res = dict(layer.resources)
    assert layer.load is not None and res["weight_ultra"] == 1
    width = res["weight_width"]
    assert len(layer.load.beats) == res["weight_depth"] * -(-width // 64)
    assert not any(f.endswith("_weights.mem") for f, _ in layer.files)
    assert "wgt_V_TDATA" in layer.files[0][1]


def test_runtime_loaded_packed_weights(graph, sims):
    """A packed integer MVAU (xcup) with its weights in UltraRAM: the high lanes' adjusted
    weights (w_hi - [w_lo < 0]) travel on the weight bus like any others; bit-exact."""
    attrs = dict(PE=2, SIMD=4, ram_style="ultra", runtime_writeable_weights=1)
    m, node = variant(graph, "MVAU_hls_2", attrs)
    m.set_metadata_prop(FAMILY_PROP, "xcup")
    layer, _ = verify(m, node, sims / "load_packed")
    res = dict(layer.resources)
    assert layer.load is not None and res["packed_pairs"] == 1 and res["weight_ultra"] == 1


def test_ultra_weights_without_runtime_loading_is_an_error(graph):
    m, node = variant(graph, "MVAU_hls_3", dict(ram_style="ultra"))
    with pytest.raises(RtlParamError, match="'MVAU_hls_3'.*ram_style=ultra.*runtime_writeable"):
        generate_layer(m, node)


def test_integer_mvau_wide_affine_form(graph, sims):
    """Stem-like integer MVAU whose thresholds come from a float32 BN of large accumulators
    (spacing ~2000): the exact affine form needs a ~30-bit multiplier and a ~50-bit offset, so
    its {C, M} words are wider than 64 bits; still bit-exact against FINN."""
    rng = np.random.default_rng(11)
    inst = getCustomOp(node_of(graph, "MVAU_hls_0"))
    mh = inst.get_nodeattr("MH")
    scale = rng.uniform(1 / 2500, 1 / 1500, size=(mh, 1)).astype(np.float32)
    bias = rng.uniform(-100, 100, size=(mh, 1)).astype(np.float32)
    k = np.arange(255, dtype=np.float32)[None, :]
    thr = np.ceil((k + np.float32(0.5) - bias) / scale).astype(np.float32)
    m, node = variant(graph, "MVAU_hls_0", {}, {2: thr})
    layer, _ = verify(m, node, sims / "stem_wide_affine")
    text = layer.files[0][1]
    assert ".AFFINE(1)" in text
    m_bits = int(text.split(".A_M_BITS(")[1].split(")")[0])
    c_bits = int(text.split(".A_C_BITS(")[1].split(")")[0])
    assert m_bits + c_bits > 64, (m_bits, c_bits)
    assert dict(layer.resources)["threshold_bits"] == 0


def test_thresholding_per_channel_pe4_huge(graph, sims):
    """Per-channel unsorted thresholds with +-2**40 (always / never) on INT32 inputs."""
    rng = np.random.default_rng(7)
    thr = np.concatenate(
        [
            rng.integers(-150, 150, size=(16, 5)),
            np.full((16, 1), 2.0**40),
            np.full((16, 1), -(2.0**40)),
        ],
        axis=1,
    )
    m, node = variant(
        graph, "Thresholding_rtl_3", dict(PE=4, numSteps=7, uniform_thres=0), {1: thr}
    )
    layer, _ = verify(m, node, sims / "thr_pe4", focus=(-160, 160))
    assert dict(layer.resources)["uniform"] == 0
    assert layer.cycles == 64 * 4


def test_thresholding_shared_pe4_three_steps(graph, sims):
    """One row of thresholds for all channels (one table for every PE), 3 steps -> UINT2."""
    m, node = variant(graph, "Thresholding_rtl_0", dict(PE=4, numSteps=3), {1: [[5, -2, 0]]})
    m, node = variant(m, node.name, {}, odt="UINT2")
    layer, _ = verify(m, node, sims / "thr_shared", focus=(-6, 7))
    names = [n for n, _ in layer.files[1:]]
    assert names == ["Thresholding_rtl_0_thr_g00.mem", "Thresholding_rtl_0_thr_g01.mem"]


def test_thresholding_uniform_pe8(graph, sims):
    m, node = variant(graph, "Thresholding_rtl_1", dict(PE=8))
    layer, _ = verify(m, node, sims / "sat_pe8", focus=(-140, 140))
    assert layer.cycles == 256 and len(layer.files) == 1


# ---- errors, determinism, memory images ---------------------------------------------------------


@pytest.mark.parametrize(
    "name,attrs,param",
    [
        ("MVAU_hls_2", dict(SIMD=5), "SIMD"),
        ("MVAU_hls_2", dict(PE=3), "PE"),
        ("MVAU_hls_2", dict(mem_mode="external"), "mem_mode"),
        ("MVAU_hls_0", dict(ActVal=-100), "ActVal"),
        ("MVAU_rtl_0", dict(outputDataType="INT16"), "outputDataType"),
        ("Thresholding_rtl_1", dict(PE=3), "PE"),
    ],
    ids=["simd", "pe", "mem_mode", "actval", "acc_type", "thr_pe"],
)
def test_bad_parameter_one_line_error(graph, name, attrs, param):
    m, node = variant(graph, name, attrs)
    with pytest.raises(RtlParamError) as err:
        generate_layer(m, node)
    msg = str(err.value)
    assert "\n" not in msg and f"'{name}'" in msg and f"{param}=" in msg


def test_nonuniform_marked_uniform_is_an_error(graph):
    m, node = variant(graph, "Thresholding_rtl_3", {}, {1: [list(range(0, 510, 2))]})
    with pytest.raises(RtlParamError, match="uniform_thres=1"):
        generate_layer(m, node)


def test_generation_is_deterministic(graph):
    for name in ("MVAU_hls_3", "Thresholding_rtl_0"):
        a = generate_layer(graph, node_of(graph, name))
        b = generate_layer(ModelWrapper(copy.deepcopy(graph.model)), node_of(graph, name))
        assert a.files == b.files


def test_mismatch_is_caught(graph, sims, monkeypatch):
    """A wrong threshold image (the sign unit's 0 moved to 3) must not pass."""
    name = "Thresholding_rtl_0"
    real = node_check.generate_layer

    def corrupted(model, node):
        layer = real(model, node)
        files = tuple((n, "03\n" if n.endswith(".mem") else text) for n, text in layer.files)
        return RtlLayer(**{**layer.__dict__, "files": files})

    monkeypatch.setattr(node_check, "generate_layer", corrupted)
    node = node_of(graph, name)
    with pytest.raises(NodeMismatch, match=name):
        check_node(graph, node, sims / name, inputs=near_inputs(graph, node, 2, 1, (-4, 4)))


@pytest.mark.parametrize(
    "steps,spacing,pe,shared",
    [(255, 9, 2, False), (7, 1, 3, False), (5, 2, 2, True), (1, 4, 1, False)],
)
def test_threshold_tables_binary_search(steps, spacing, pe, shared):
    """The tables, read the way bireal_thresholds.sv reads them (engine g, stage s: address
    TNF*(2^s - 2^k0) + nf*2^s + prefix), give FINN's multithreshold count."""

    class Node:
        name, op_type = "t", "Thresholding"

    rng = np.random.default_rng(steps)
    channels, lo, hi = 2 * pe, -50, 60
    rows = 1 if shared else channels
    thr = rng.uniform(lo - 5, hi + 5, size=(rows, steps))
    plan = plan_thresholds(
        Node(), thr, channels=channels, pe=pe, lo=lo, hi=hi, act_val=0,
        out_fmt=StreamFormat(16, True, pe), prefix="t", style_attr="x", style_value="auto",
        spacing=spacing,
    )  # fmt: skip
    tables = {}
    for fname, text in plan.files:
        words = [int(w, 16) for w in text.split()]
        tables[fname] = [w - (1 << plan.bits) if w >> (plan.bits - 1) else w for w in words]
    x = np.arange(lo, hi + 1)
    want = multithreshold(
        np.tile(x[:, None], (1, channels)).astype(np.float64),
        np.tile(thr, (channels // rows, 1)) if shared else thr,
        channels_last=True,
    )
    for c in range(channels):
        nf, p = divmod(c, pe)
        for xi, xv in enumerate(x):
            count = 0
            for s in range(plan.k):
                g, k0 = divmod(s, plan.s)[0], (s // plan.s) * plan.s
                fname = f"t_g{g:02d}.mem" if plan.shared else f"t_g{g:02d}_p{p:04d}.mem"
                tnf_idx = 0 if plan.shared else nf
                addr = plan.tnf * ((1 << s) - (1 << k0)) + (tnf_idx << s) + (count >> (plan.k - s))
                trial = count | (1 << (plan.k - 1 - s))
                if xv >= tables[fname][addr]:
                    count = trial
            assert count == want[xi, c], (c, xv)
