"""FINN-streamlined models in: the Brevitas test nets (``brevitas_nets``) exported with
``export_qonnx`` and taken through FINN's front end (``ConvertQONNXtoFINN`` + ``Streamline``),
read into the integer form (``importer.streamlined``), executed as given (the ``source``
stage), built to RTL and verified; and the graphs the import must refuse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import brevitas_nets
import numpy as np
import pytest
from conftest import assert_ok, cifar_crops, cli, edited_onnx
from test_import_brevitas import NETS

from bireal_fpga import names
from bireal_fpga.errors import ImportModelError
from bireal_fpga.flow.compare import Tally
from bireal_fpga.importer.bireal import read_qonnx
from bireal_fpga.importer.source import SourceModel
from bireal_fpga.importer.streamlined import integer_thresholds
from bireal_fpga.integer.forward import integer_layers


def test_integer_thresholds_are_exact() -> None:
    """``ceil(t / c)`` against rationals, on thresholds that fall exactly on, just above and
    just below multiples of ``c`` (where float64 division alone can be wrong)."""
    from fractions import Fraction
    from math import ceil

    rng = np.random.default_rng(0)
    for c in (0.1, 0.040403325110673904 / 4, 2.0**-12, 3.0):
        n = rng.integers(-3000, 3000, 200)
        exact = n.astype(np.float64) * c  # on a multiple, as float64 rounds it
        t = np.concatenate([exact, np.nextafter(exact, np.inf), np.nextafter(exact, -np.inf)])
        t = np.concatenate([t, rng.normal(0, 100, 200)]).reshape(4, -1)
        got = integer_thresholds(t, c)
        cf = Fraction(c)
        want = np.array([[ceil(Fraction(float(x)) / cf) for x in row] for row in t])
        assert np.array_equal(got, want), c
    assert integer_thresholds(np.array([[np.inf, -np.inf, 1e30]]), 1.0).tolist() == [
        [2**40, -(2**40), 2**40]
    ]


@pytest.mark.parametrize("name", list(NETS))
def test_streamlined_equals_source_layer_by_layer(name: str, streamlined_qonnx) -> None:
    """Every layer of the streamlined file executed as given (float64) == the integer form
    read from it, on random images; and that integer form == the one read from the QONNX
    export before streamlining on (nearly) every activation: FINN derived the streamlined
    thresholds in float32, so a few may sit one step off."""
    path = streamlined_qonnx(**NETS[name])
    net, smap, details = read_qonnx(path)
    assert details["dialect"] == "FINN-streamlined"
    images = np.random.default_rng(3).integers(0, 256, (24, *net.input_shape), dtype=np.uint8)
    ref = integer_layers(net, images)
    tally = Tally()
    tally.add(ref, SourceModel(path, smap).trace(images), 0)
    assert tally.mismatches == 0, tally.first_mismatch
    assert len(np.unique(ref[names.STEM])) > 4
    assert len(np.unique(ref[names.HEAD])) > 20
    before, _, _ = read_qonnx(path.with_name("model.onnx"))
    assert {**before.spec, "name": ""} == {**net.spec, "name": ""}
    other = integer_layers(before, images)
    for layer in (names.STEM, *(names.block(i) for i in range(len(net.blocks)))):
        differ = np.mean(other[layer] != ref[layer])
        assert differ <= 1e-3, (layer, differ)


def test_streamlined_reads_the_structure(streamlined_qonnx) -> None:
    net, smap, _ = read_qonnx(streamlined_qonnx(**NETS["zero-pad-imagenet-stem-21"]))
    assert net.maxpool and net.spec["stem"] == "imagenet"
    assert net.spec["widths"] == [8, 16] and net.spec["blocks"] == [1, 2]
    assert net.spec.get("binary_padding") == "zero"
    assert [b.down is not None for b in net.blocks] == [False, True, False]
    assert all(b.conv.binary and b.conv.binary_pad == 0 for b in net.blocks)
    assert list(smap.layers) == ["stem", "blocks.0", "blocks.1", "blocks.2", "head"]
    assert smap.input_scale == pytest.approx(1 / 255, rel=1e-6)


def test_sixteen_bit_streamlined_keeps_its_quant_chains(streamlined_qonnx) -> None:
    """``ConvertQONNXtoFINN`` leaves quantizers above 8 bits as ``Quant`` (after the
    ``Mul``/``Add`` of the BatchNorm): the import derives their thresholds exactly."""
    import onnx

    path = streamlined_qonnx(**NETS["fixed-point-16bit"])
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"MultiThreshold", "Quant"} <= ops
    net, _, details = read_qonnx(path)
    assert (net.residual_min, net.residual_max) == (-(2**15), 2**15 - 1)
    assert details["residual"].startswith("16-bit signed")


# ---- build and verify ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def streamlined_rtl(streamlined_qonnx, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A streamlined net (binary convs zero-padded, per-channel binary weights, odd 9x9
    input, three stages with zero-padded average-pool shortcuts) built through the CLI to
    simulated RTL for ZCU104."""
    src = streamlined_qonnx(**NETS["zero-pad-per-channel-odd-9"])
    out = tmp_path_factory.mktemp("streamlined") / "build"
    proc = cli("build", src, "--board", "ZCU104", "--out", out, "--until", "rtl", "--no-synth")
    assert_ok(proc)
    return out


def test_build_streamlined_to_rtl(streamlined_rtl: Path) -> None:
    report = json.loads((streamlined_rtl / names.REPORT).read_text())
    assert report["imported"]["dialect"] == "FINN-streamlined"
    assert report["source_check"]["mismatches"] == 0
    assert report["rtl"]["fps"]["measured"] == report["rtl"]["fps"]["estimated"]
    assert report["spec"]["binary_padding"] == "zero"


@pytest.mark.parametrize("images", ["random", "real"])
def test_verify_streamlined_source_golden_python_rtlsim(
    streamlined_rtl: Path, images: str, tmp_path: Path
) -> None:
    extra = [] if images == "random" else ["--images", str(cifar_crops(tmp_path / "r.npz", 9, 30))]
    proc = cli(
        "verify",
        streamlined_rtl,
        "--stages",
        "source,golden,python,rtlsim",
        "--n",
        "30",
        "--json",
        *extra,
    )
    assert_ok(proc)
    result = json.loads(proc.stdout)
    for stage in ("source", "golden", "python", "rtlsim"):
        assert result["stages"][stage] == {"n": 30, "mismatches": 0, "first_mismatch": None}


def test_imagenet_stem_streamlined_builds_and_verifies(
    streamlined_qonnx, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The 7x7/2 stem with its max pool (streamlining moves the scale past the pool), -1
    padding after the sign: built and exact through rtlsim."""
    src = streamlined_qonnx(**NETS["imagenet-stem-21"])
    out = tmp_path_factory.mktemp("streamlined-imagenet") / "build"
    assert_ok(cli("build", src, "--board", "ZCU104", "--out", out, "--until", "rtl", "--no-synth"))
    proc = cli("verify", out, "--stages", "source,golden,python,rtlsim", "--n", "20", "--json")
    assert_ok(proc)
    for stage, result in json.loads(proc.stdout)["stages"].items():
        assert result["mismatches"] == 0, (stage, result)


def _shift_stem_thresholds(src: Path, dst: Path) -> None:
    """A copy of ``src`` whose stem MultiThreshold has every threshold one step higher."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(src))
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    mt = next(n for n in proto.graph.node if n.input and n.input[0] == conv.output[0])
    init = next(i for i in proto.graph.initializer if i.name == mt.input[1])
    t = numpy_helper.to_array(init) + np.float32(1.0)
    init.CopyFrom(numpy_helper.from_array(t.astype(np.float32), init.name))
    onnx.save(proto, str(dst))


def test_changed_threshold_changes_the_hardware(streamlined_rtl: Path, tmp_path: Path) -> None:
    """A streamlined file's stem thresholds moved: the build's hardware no longer computes
    that file, and verify says so at the stem."""
    folder = tmp_path / "build"
    shutil.copytree(streamlined_rtl, folder, symlinks=True)
    _shift_stem_thresholds(streamlined_rtl / names.SOURCE, folder / names.SOURCE)
    proc = cli("verify", folder, "--stages", "source,golden,python,rtlsim", "--n", "10", "--json")
    result = json.loads(proc.stdout)
    assert proc.returncode != 0, result
    assert result["stages"]["source"]["mismatches"] == 0  # the changed file == its own reading
    for stage in ("golden", "python", "rtlsim"):
        assert result["stages"][stage]["mismatches"] > 0, stage
        assert "layer stem" in result["stages"][stage]["first_mismatch"], result["stages"][stage]


# ---- what the import refuses -------------------------------------------------------------------


def test_unstreamlined_and_lowered_graphs_are_refused(brevitas_qonnx, tmp_path: Path) -> None:
    """FINN's dialect before streamlining (BatchNorms left) or after lowering the convs
    (Im2Col, Transpose): one line naming the node, and nothing written by the build."""
    src = brevitas_qonnx()
    cases = {
        "converted-only": (
            brevitas_nets.finn_front_end(src, tmp_path / "converted.onnx", streamline=False),
            ["streamlined?"],
        ),
        "lowered": (
            brevitas_nets.finn_front_end(src, tmp_path / "lowered.onnx", lower=True),
            ["past FINN's streamlining", "LowerConvsToMatMul"],
        ),
    }
    for label, (path, named) in cases.items():
        with pytest.raises(ImportModelError) as e:
            read_qonnx(path)
        msg = str(e.value)
        assert msg.startswith("node ") and "\n" not in msg, msg
        for n in named:
            assert n in msg, (label, msg)
        out = tmp_path / f"out_{label}"
        proc = cli("build", path, "--board", "ZCU104", "--out", out, "--until", "integer")
        assert proc.returncode == 2, (label, proc.stderr)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and msg in errors[0], proc.stderr
        assert not (out / names.INTEGER).exists(), label


def test_edited_streamlined_graphs_fail_naming_the_node(streamlined_qonnx, tmp_path: Path) -> None:
    """A sign whose threshold is not at 0, a residual Mul of another scale, a requantizer
    that is not the clamp of the residual sum: each refused in one line naming the node."""
    from onnx import numpy_helper

    src = streamlined_qonnx()

    def tensor(proto, name: str) -> np.ndarray:
        return numpy_helper.to_array(next(i for i in proto.graph.initializer if i.name == name))

    def put(proto, name: str, value: np.ndarray) -> None:
        init = next(i for i in proto.graph.initializer if i.name == name)
        init.CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))

    def signs(proto) -> list:
        return [
            n
            for n in proto.graph.node
            if n.op_type == "MultiThreshold" and tensor(proto, n.input[1]).size == 1
        ]

    def sign_moved(proto) -> None:
        put(proto, signs(proto)[0].input[1], np.array([[0.5]]))

    def other_scale(proto) -> None:
        mul = [n for n in proto.graph.node if n.op_type == "Mul"][2]
        put(proto, mul.input[1], tensor(proto, mul.input[1]) * 1.5)

    def not_a_clamp(proto) -> None:
        add = next(n for n in proto.graph.node if n.op_type == "Add")
        mt = next(n for n in proto.graph.node if n.input and n.input[0] == add.output[0])
        put(proto, mt.input[1], tensor(proto, mt.input[1]) * 0.75)

    cases = {
        "sign-moved": (sign_moved, ["MultiThreshold", ">= 0"]),
        "other-scale": (other_scale, ["share one scale"]),
        "not-a-clamp": (not_a_clamp, ["does not clamp the residual sum"]),
    }
    for label, (fn, named) in cases.items():
        with pytest.raises(ImportModelError) as e:
            read_qonnx(edited_onnx(src, tmp_path / f"{label}.onnx", fn))
        msg = str(e.value)
        assert msg.startswith("node ") and "\n" not in msg, (label, msg)
        for n in named:
            assert n in msg, (label, msg)


def test_gains_streamlining_leaves_before_a_threshold(brevitas_qonnx, tmp_path: Path) -> None:
    """A BatchNorm with a zero and a negative gain: FINN cannot absorb the sign Mul (-1, 0, +1)
    into the binary conv, leaves it before the MultiThreshold, and divides the thresholds by
    the zero (inf). The import folds that Mul (negative: the channel's weights negated; zero:
    a constant channel) and equals the streamlined file layer by layer."""
    import onnx
    from onnx import numpy_helper

    def gains(proto) -> None:
        for bn in [n for n in proto.graph.node if n.op_type == "BatchNormalization"][1:3]:
            init = next(i for i in proto.graph.initializer if i.name == bn.input[1])
            gamma = numpy_helper.to_array(init).copy()
            gamma[0], gamma[1] = 0.0, -abs(gamma[1])
            init.CopyFrom(numpy_helper.from_array(gamma, init.name))

    src = edited_onnx(brevitas_qonnx(), tmp_path / "gains.onnx", gains)
    path = brevitas_nets.finn_front_end(src, tmp_path / "streamlined.onnx")
    proto = onnx.load(str(path))
    producers = {o: n for n in proto.graph.node for o in n.output}
    assert any(
        n.op_type == "MultiThreshold" and producers[n.input[0]].op_type == "Mul"
        for n in proto.graph.node
        if n.input[0] in producers
    )
    net, smap, _ = read_qonnx(path)
    assert any(np.any(b.conv.act.thresholds == 2**40) for b in net.blocks)
    images = np.random.default_rng(4).integers(0, 256, (16, *net.input_shape), dtype=np.uint8)
    tally = Tally()
    tally.add(integer_layers(net, images), SourceModel(path, smap).trace(images), 0)
    assert tally.mismatches == 0, tally.first_mismatch
