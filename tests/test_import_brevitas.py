"""Brevitas models in: QONNX files from ``brevitas.export.export_qonnx`` of Bi-Real-shaped
nets written in Brevitas idiom (``brevitas_nets``), read into the integer form with exact
thresholds, executed as given (the ``source`` stage), built to RTL and verified."""

from __future__ import annotations

import decimal
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_CIFAR, assert_ok, cifar_crops, cli, edited_onnx

from bireal_fpga import names
from bireal_fpga.errors import ImportModelError
from bireal_fpga.flow.compare import Tally
from bireal_fpga.importer.bireal import read_qonnx
from bireal_fpga.importer.exact import ROUNDING_MODES, Chain, boundary, thresholds
from bireal_fpga.importer.source import SourceModel
from bireal_fpga.integer.forward import integer_layers
from bireal_fpga.integer.params import IntegerNet

_DEC_MODES = {
    "ROUND": decimal.ROUND_HALF_EVEN,
    "HALF_EVEN": decimal.ROUND_HALF_EVEN,
    "HALF_UP": decimal.ROUND_HALF_UP,  # decimal's HALF_UP is away from zero, as QONNX's
    "HALF_DOWN": decimal.ROUND_HALF_DOWN,
    "FLOOR": decimal.ROUND_FLOOR,
    "CEIL": decimal.ROUND_CEILING,
    "UP": decimal.ROUND_UP,
    "DOWN": decimal.ROUND_DOWN,
}


def _decimal_levels(ch: Chain, c: int, accs: range) -> list[int]:
    """The quantizer's levels computed independently: 60-digit decimals, decimal rounding."""
    ctx = decimal.Context(prec=60)
    D = ctx.create_decimal_from_float
    c_in = D(1)
    for f in ch.c_in_factors:
        c_in = ctx.multiply(c_in, D(float(np.broadcast_to(f, ch.gamma.shape)[c])))
    root = ctx.sqrt(ctx.add(D(float(ch.var[c])), D(ch.eps)))
    out = []
    for a in accs:
        y = ctx.add(
            ctx.multiply(D(a), c_in), ctx.subtract(D(float(ch.bias[c])), D(float(ch.mean[c])))
        )
        z = ctx.add(ctx.divide(ctx.multiply(y, D(float(ch.gamma[c]))), root), D(float(ch.beta[c])))
        x = ctx.divide(z, D(ch.s))
        q = int(x.quantize(decimal.Decimal(1), rounding=_DEC_MODES[ch.mode], context=ctx))
        out.append(min(max(q, ch.lo), ch.hi))
    return out


def _threshold_levels(t: np.ndarray, flip: np.ndarray, lo: int, c: int, accs: range) -> list[int]:
    sign = -1 if flip[c] else 1
    return [lo + int(np.sum(sign * a >= t[c])) for a in accs]


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_exact_thresholds_random_chains(mode: str) -> None:
    """Random float32 BN chains (negative and zero gains too): the thresholds give the
    quantizer's level at every accumulator, as 60-digit decimal arithmetic does."""
    rng = np.random.default_rng(ROUNDING_MODES.index(mode))
    c = 12
    f32 = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)  # noqa: E731
    gamma = f32(rng.uniform(-2, 2, c))
    gamma[3] = 0.0
    chain = Chain(
        c_in_factors=(f32(0.037), f32(rng.uniform(0.01, 0.2, c))),
        bias=f32(rng.uniform(-1, 1, c)),
        mean=f32(rng.uniform(-3, 3, c)),
        gamma=gamma,
        var=f32(rng.uniform(0.1, 4, c)),
        eps=float(np.float32(1e-5)),
        beta=f32(rng.uniform(-1, 1, c)),
        s=float(np.float32(0.05)),
        lo=-8,
        hi=7,
        mode=mode,
    )
    t, flip = thresholds(chain)
    accs = range(-700, 701)
    for ch in range(c):
        assert _threshold_levels(t, flip, chain.lo, ch, accs) == _decimal_levels(chain, ch, accs)


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_exact_thresholds_on_ties(mode: str) -> None:
    """Values that fall exactly on x.5 (no BN, power-of-two scales): each rounding mode's tie
    rule, checked against decimal arithmetic and QONNX's own ``int_quant``."""
    from qonnx.custom_op.general.intquant import int_quant

    ones = np.ones(2)
    chain = Chain(
        c_in_factors=(np.array([0.25, 0.5]),),
        bias=np.array([0.0, 0.25]),
        mean=np.zeros(2),
        gamma=ones,
        var=ones,
        eps=0.0,
        beta=np.zeros(2),
        s=0.5,
        lo=-8,
        hi=7,
        mode=mode,
    )
    t, flip = thresholds(chain)
    accs = range(-40, 41)
    for ch in range(2):
        got = _threshold_levels(t, flip, chain.lo, ch, accs)
        assert got == _decimal_levels(chain, ch, accs)
        z = np.array([a * chain.c_in_factors[0][ch] + chain.bias[ch] for a in accs])
        want = int_quant(z, np.float64(0.5), np.float64(0), np.float64(4), 1, 0, mode) / 0.5
        assert got == [int(v) for v in want]


def test_boundary_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="STOCHASTIC"):
        boundary(1, "STOCHASTIC")


# ---- import == the file as given ---------------------------------------------------------------

NETS = {
    "per-tensor-8bit": {},
    "per-channel-8bit": {"weight_scaling": "per_channel"},
    "pad-before-sign-4bit": {"pad": "before", "residual_bits": 4},
    "fixed-point-16bit": {"residual_bits": 16, "fixed_point": True},
    "odd-9-three-stages": {"input_size": 9, "stages": ((8, 2, 1), (16, 1, 2), (24, 1, 2))},
    "imagenet-stem-21": {"stem": "imagenet", "input_size": 21, "stages": ((8, 1, 1), (16, 2, 2))},
    "width-change-stride-1": {"stages": ((8, 1, 1), (12, 1, 1), (16, 1, 2)), "input_size": 7},
    "zero-pad-per-channel-odd-9": {
        "binary_padding": "zero",
        "weight_scaling": "per_channel",
        "input_size": 9,
        "stages": ((8, 2, 1), (16, 1, 2), (24, 1, 2)),
    },
    "zero-pad-imagenet-stem-21": {
        "binary_padding": "zero",
        "stem": "imagenet",
        "input_size": 21,
        "stages": ((8, 1, 1), (16, 2, 2)),
    },
}


@pytest.mark.parametrize("name", list(NETS))
def test_import_equals_source_layer_by_layer(name: str, brevitas_qonnx) -> None:
    """Every layer of the file executed as given (float64) == the integer form read from it,
    on random images; the thresholds are not degenerate (many levels are used)."""
    path = brevitas_qonnx(**NETS[name])
    net, smap, _ = read_qonnx(path)
    images = np.random.default_rng(3).integers(0, 256, (24, *net.input_shape), dtype=np.uint8)
    ref = integer_layers(net, images)
    got = SourceModel(path, smap).trace(images)
    tally = Tally()
    tally.add(ref, got, 0)
    assert tally.mismatches == 0, tally.first_mismatch
    assert set(got) == set(ref)
    assert len(np.unique(ref[names.STEM])) > 4
    assert len(np.unique(ref[names.HEAD])) > 20


def test_import_reads_the_structure(brevitas_qonnx) -> None:
    net, smap, details = read_qonnx(brevitas_qonnx(**NETS["imagenet-stem-21"]))
    assert net.maxpool and net.spec["stem"] == "imagenet"
    assert net.spec["widths"] == [8, 16] and net.spec["blocks"] == [1, 2]
    assert [b.down is not None for b in net.blocks] == [False, True, False]
    assert net.blocks[1].down.pool  # type: ignore[union-attr]
    assert all(b.conv.binary and b.conv.pad == 1 for b in net.blocks)
    assert (net.residual_min, net.residual_max) == (-128, 127)
    assert list(smap.layers) == ["stem", "blocks.0", "blocks.1", "blocks.2", "head"]
    net16, _, _ = read_qonnx(brevitas_qonnx(**NETS["fixed-point-16bit"]))
    assert net16.spec["residual_bits"] == 16 and net16.stem.act.thresholds.shape[1] == 2**16 - 1
    assert "16-bit signed" in read_qonnx(brevitas_qonnx(**NETS["fixed-point-16bit"]))[2]["residual"]


def test_import_equals_source_on_real_images(brevitas_qonnx) -> None:
    if not SHARED_CIFAR.is_file():
        pytest.skip(f"real images not found: {SHARED_CIFAR} (this project's ../shared/data)")
    from bireal_fpga.flow.verify import open_images

    path = brevitas_qonnx(input_size=32, stages=((8, 1, 1), (16, 1, 2)))
    net, smap, _ = read_qonnx(path)
    images = open_images(tuple(net.input_shape), 40, str(SHARED_CIFAR), 0).batch(0, 40)
    tally = Tally()
    tally.add(integer_layers(net, images), SourceModel(path, smap).trace(images), 0)
    assert tally.mismatches == 0, tally.first_mismatch


def test_float32_top1_of_the_file_agrees(brevitas_qonnx) -> None:
    """The file in its own float32 (the user's model) picks the integer form's class."""
    path = brevitas_qonnx()
    net, smap, _ = read_qonnx(path)
    images = np.random.default_rng(5).integers(0, 256, (30, *net.input_shape), dtype=np.uint8)
    top1 = integer_layers(net, images)[names.TOP1]
    assert np.mean(SourceModel(path, smap).float_top1(images) == top1) >= 0.9


# ---- build and verify ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imported_rtl(brevitas_qonnx, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An imported net (per-channel binary weights, -1 padding before the sign, 4-bit
    residual, a downsample stage) built through the CLI to simulated RTL for ZCU104."""
    src = brevitas_qonnx(weight_scaling="per_channel", pad="before", residual_bits=4)
    out = tmp_path_factory.mktemp("imported") / "build"
    proc = cli("build", src, "--board", "ZCU104", "--out", out, "--until", "rtl", "--no-synth")
    assert_ok(proc)
    assert "imported 29 nodes" in proc.stderr
    return out


def test_build_imported_to_rtl(imported_rtl: Path) -> None:
    report = json.loads((imported_rtl / names.REPORT).read_text())
    ran = [s["name"] for s in report["stages"]]
    assert ran[:3] == ["import-model", "source-check", "golden-check"]
    assert "model" not in ran and "rtlsim" in ran
    assert report["source_check"]["mismatches"] == 0
    assert report["imported"]["residual"].startswith("4-bit signed")
    assert report["rtl"]["fps"]["measured"] == report["rtl"]["fps"]["estimated"]
    for f in (names.SOURCE, names.SOURCE_MAP, names.INTEGER, names.RTL):
        assert (imported_rtl / f).exists()


def test_verify_imported_source_golden_python_rtlsim(imported_rtl: Path) -> None:
    proc = cli(
        "verify", imported_rtl, "--stages", "source,golden,python,rtlsim", "--n", "30", "--json"
    )
    assert_ok(proc)
    result = json.loads(proc.stdout)
    for stage in ("source", "golden", "python", "rtlsim"):
        assert result["stages"][stage] == {"n": 30, "mismatches": 0, "first_mismatch": None}


def test_verify_imported_on_real_images(imported_rtl: Path, tmp_path: Path) -> None:
    """CIFAR-10 test photographs (their central 8x8 pixels: the net's input)."""
    real = cifar_crops(tmp_path / "real.npz", 8, 30)
    proc = cli(
        "verify",
        imported_rtl,
        "--stages",
        "source,golden,python,rtlsim",
        "--n",
        "30",
        "--images",
        real,
        "--json",
    )
    assert_ok(proc)
    result = json.loads(proc.stdout)
    assert all(s["mismatches"] == 0 for s in result["stages"].values()), result


def test_zero_padded_import_builds_and_verifies(
    brevitas_qonnx, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A zero-padded net (the binary convs' own ``padding=1``, per-channel binary weights, an
    odd 9-pixel input, stride-2 stages) built through the CLI to simulated RTL: the border
    correction is in the hardware graph, and source, golden, FINN python and rtlsim are exact
    on random and real images."""
    src = brevitas_qonnx(
        binary_padding="zero",
        weight_scaling="per_channel",
        input_size=9,
        stages=((8, 1, 1), (16, 1, 2), (16, 1, 2)),
    )
    out = tmp_path_factory.mktemp("imported-zero") / "build"
    assert_ok(cli("build", src, "--board", "ZCU104", "--out", out, "--until", "rtl", "--no-synth"))
    report = json.loads((out / names.REPORT).read_text())
    assert report["rtl"]["fps"]["measured"] == report["rtl"]["fps"]["estimated"]
    net = IntegerNet.load(out / names.INTEGER)
    assert [b.conv.binary_pad for b in net.blocks] == [0, 0, 0]
    assert net.spec["binary_padding"] == "zero"
    from qonnx.core.modelwrapper import ModelWrapper

    hw = ModelWrapper(str(out / names.FOLDED))
    const_adds = [
        n
        for n in hw.graph.node
        if n.op_type.startswith("ElementwiseAdd") and hw.get_initializer(n.input[1]) is not None
    ]
    assert len(const_adds) == 3 + 1  # a border correction per binary conv, and the FC bias
    for extra in ([], ["real"]):
        if extra:  # skips (saying why) where ../shared/data is absent, after the random images
            extra = ["--images", str(cifar_crops(tmp_path_factory.mktemp("r9") / "r.npz", 9, 30))]
        proc = cli(
            "verify", out, "--stages", "source,golden,python,rtlsim", "--n", "30", "--json", *extra
        )
        assert_ok(proc)
        result = json.loads(proc.stdout)
        for stage in ("source", "golden", "python", "rtlsim"):
            assert result["stages"][stage]["mismatches"] == 0, (extra, stage, result)
            assert result["stages"][stage]["n"] == 30


def test_sixteen_bit_import_builds_and_verifies(
    brevitas_qonnx, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A 16-bit fixed-point residual stream (Brevitas ``QuantIdentity`` of 16 bits) built
    through the CLI to simulated RTL: every requantizer an affine unit (no table of 65535
    thresholds), and source, golden and rtlsim exact on random and real images; FINN's python
    execution (float32) exact too, or differing at the head only, where its scores pass 2**24,
    with the note saying why."""
    src = brevitas_qonnx(**NETS["fixed-point-16bit"])
    out = tmp_path_factory.mktemp("imported-16") / "build"
    assert_ok(cli("build", src, "--board", "ZCU104", "--out", out, "--until", "rtl", "--no-synth"))
    report = json.loads((out / names.REPORT).read_text())
    assert report["imported"]["residual"].startswith("16-bit signed")
    assert report["rtl"]["fps"]["measured"] == report["rtl"]["fps"]["estimated"]
    assert report["estimates"]["total"]["BRAM36"] <= 2, report["estimates"]["total"]
    rtl = {p.name for p in (out / "rtl").rglob("*.mem")}
    assert any(name.endswith("_affine.mem") for name in rtl)
    assert not any(name.startswith("MVAU") and "_thr_g" in name for name in rtl), rtl
    for extra in ([], ["real"]):
        if extra:  # skips (saying why) where ../shared/data is absent, after the random images
            extra = ["--images", str(cifar_crops(tmp_path_factory.mktemp("r16") / "r.npz", 8, 30))]
        proc = cli("verify", out, "--stages", "source,golden,rtlsim", "--n", "30", "--json", *extra)
        assert_ok(proc)
        result = json.loads(proc.stdout)["stages"]
        for stage in ("source", "golden", "rtlsim"):
            assert result[stage] == {"n": 30, "mismatches": 0, "first_mismatch": None}, extra
        proc = cli("verify", out, "--stages", "python", "--n", "30", "--json", *extra)
        python = json.loads(proc.stdout)["stages"]["python"]
        assert python["mismatches"] == 0 or (
            "float32" in proc.stderr and "layer head" in python["first_mismatch"]
        ), python


def _change_bn_mean(src: Path, dst: Path) -> str:
    """A copy of ``src`` with the running mean of its first BatchNorm shifted: returns the
    initializer's name."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(src))
    bn = next(n for n in proto.graph.node if n.op_type == "BatchNormalization")
    init = next(i for i in proto.graph.initializer if i.name == bn.input[3])
    mean = numpy_helper.to_array(init).copy()
    mean += np.float32(0.3)
    init.CopyFrom(numpy_helper.from_array(mean, init.name))
    onnx.save(proto, str(dst))
    return init.name


def test_changed_bn_parameter_changes_the_hardware(imported_rtl: Path, tmp_path: Path) -> None:
    """A BN mean changed in the imported file: the build's hardware (golden, FINN python,
    RTL) no longer computes that file, and verify says so, naming the first layer."""
    folder = tmp_path / "build"
    shutil.copytree(imported_rtl, folder, symlinks=True)
    _change_bn_mean(imported_rtl / names.SOURCE, folder / names.SOURCE)
    proc = cli("verify", folder, "--stages", "source,golden,python,rtlsim", "--n", "20", "--json")
    assert proc.returncode != 0 or "mismatch" in proc.stdout
    result = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
    assert result is not None, proc.stderr
    assert result["stages"]["source"]["mismatches"] == 0  # the changed file == its own reading
    for stage in ("golden", "python", "rtlsim"):
        r = result["stages"][stage]
        assert r["mismatches"] > 0, (stage, r)
        assert "stem" in r["first_mismatch"], r
    # and the changed file builds to a different integer form
    changed = tmp_path / "changed.onnx"
    shutil.copy(folder / names.SOURCE, changed)
    old = read_qonnx(imported_rtl / names.SOURCE)[0]
    new = read_qonnx(changed)[0]
    assert not np.array_equal(old.stem.act.thresholds, new.stem.act.thresholds)


# ---- what cannot be built: one line naming the node, nothing written ---------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"relu": True}, ["Relu", "residual"]),
        ({"act_bits": 2}, ["2-bit", "binary"]),
        ({"binary_padding": "zero", "stem_width": 7, "stages": ((8, 1, 1),)}, ["Conv", "7 input"]),
    ],
    ids=["relu-on-residual", "2-bit-activations", "zero-padded-binary-conv-odd-channels"],
)
def test_unbuildable_nets_fail_naming_the_node(fields, named, brevitas_qonnx) -> None:
    with pytest.raises(ImportModelError) as e:
        read_qonnx(brevitas_qonnx(**fields))
    msg = str(e.value)
    assert msg.startswith("node ") or "residual tensor" in msg, msg
    assert "\n" not in msg
    for n in named:
        assert n in msg, msg


def test_cli_build_of_unbuildable_files(brevitas_qonnx, tmp_path: Path) -> None:
    """Through the CLI: exit 2, one ``error:`` line naming the node or file, and the build
    folder holds no integer form."""
    import onnx
    from onnx import helper

    src = brevitas_qonnx()

    def float_op(proto) -> None:  # a float Mul left on the residual before the sign
        g = proto.graph
        sign = next(
            n
            for n in g.node
            if n.op_type == "BipolarQuant"
            and n.input[0] in {o for m in g.node if m.op_type == "Quant" for o in m.output}
        )
        g.initializer.append(onnx.numpy_helper.from_array(np.array(0.5, np.float32), "half"))
        g.node.append(helper.make_node("Mul", [sign.input[0], "half"], ["halved"], name="Mul_x"))
        sign.input[0] = "halved"

    def no_scale(proto) -> None:  # the residual quantizer's scale computed, not a constant
        g = proto.graph
        q = next(
            n
            for n in g.node
            if n.op_type == "Quant" and n.input[0] != "x" and not n.input[0].startswith("slice")
        )
        g.node.append(helper.make_node("Abs", [q.input[1]], ["abs_scale"], name="Abs_scale"))
        q.input[1] = "abs_scale"

    cases = {
        "float-op": (edited_onnx(src, tmp_path / "float_op.onnx", float_op), ["Mul_x"]),
        "missing-scale": (edited_onnx(src, tmp_path / "no_scale.onnx", no_scale), ["scale"]),
    }
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    cases["not-onnx"] = (junk, ["junk.onnx", "not an ONNX model"])
    for label, (path, named) in cases.items():
        out = tmp_path / f"out_{label}"
        proc = cli("build", path, "--board", "ZCU104", "--out", out, "--until", "integer")
        assert proc.returncode == 2, (label, proc.stderr)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and proc.stderr.splitlines()[-1] == errors[0], proc.stderr
        for n in named:
            assert n in errors[0], (label, errors[0])
        assert not (out / names.INTEGER).exists(), label
        assert not (out / names.SOURCE).exists(), label


def test_several_residual_scales_are_refused(brevitas_qonnx, tmp_path: Path) -> None:
    from onnx import numpy_helper

    src = brevitas_qonnx()

    def second_scale(proto) -> None:  # the last add's quantizer on a scale of its own
        g = proto.graph
        q = [n for n in g.node if n.op_type == "Quant" and n.input[0].startswith("add")][-1]
        scale = next(i for i in g.initializer if i.name == q.input[1])
        value = numpy_helper.to_array(scale) * np.float32(2)
        g.initializer.append(numpy_helper.from_array(value, "other_scale"))
        q.input[1] = "other_scale"

    with pytest.raises(ImportModelError, match="share one scale"):
        read_qonnx(edited_onnx(src, tmp_path / "two.onnx", second_scale))


# ---- the project's own models through Brevitas: both front ends agree -------------------------

CROSS_SPECS = {
    "tiny": "tiny",
    "imagenet-stem-odd": '{"stem":"imagenet","widths":[8,16],"blocks":[1,2],"strides":[1,2],'
    '"stem_width":8,"input_size":27}',
    "stride-1-width-change-4bit": '{"widths":[8,12],"blocks":[1,1],"strides":[1,1],'
    '"stem_width":8,"input_size":9,"residual_bits":4,"residual_frac_bits":2}',
    "zero-pad-odd-11": '{"widths":[8,6],"blocks":[2,1],"strides":[1,2],"stem_width":8,'
    '"input_size":11,"binary_padding":"zero"}',
}


def _layers(net):
    yield "stem", net.stem
    for i, b in enumerate(net.blocks):
        yield f"blocks.{i}.conv", b.conv
        if b.down is not None:
            yield f"blocks.{i}.down", b.down


@pytest.mark.parametrize("name", list(CROSS_SPECS))
def test_export_brevitas_gives_the_direct_integer_form(name: str, tmp_path: Path) -> None:
    """``bireal-fpga export-brevitas`` of a checkpoint, read back: every weight, threshold
    and bias equals the checkpoint's own integer form, and so does every layer output."""
    import torch

    from bireal_fpga.integer.derive import integer_form
    from bireal_fpga.models.bireal import BiRealNet
    from bireal_fpga.models.calibration import calibrated_random_model
    from bireal_fpga.spec import load_spec
    from bireal_fpga.train.checkpoint import save_checkpoint

    torch.manual_seed(4)
    model = calibrated_random_model(BiRealNet(load_spec(CROSS_SPECS[name])), seed=4)
    ckpt = save_checkpoint(tmp_path / "model.pt", model) or tmp_path / "model.pt"
    out = tmp_path / "brevitas.onnx"
    assert_ok(cli("export-brevitas", ckpt, "--out", out))
    direct = integer_form(model)
    imported, smap, _ = read_qonnx(out)
    for (key, a), (_, b) in zip(_layers(direct), _layers(imported), strict=True):
        assert np.array_equal(a.weight, b.weight), key
        assert np.array_equal(a.act.thresholds, b.act.thresholds), key
        assert (a.stride, a.pad, a.binary, a.pool, a.binary_pad) == (
            b.stride,
            b.pad,
            b.binary,
            b.pool,
            b.binary_pad,
        ), key
    assert np.array_equal(direct.head_weight, imported.head_weight)
    assert np.array_equal(direct.head_bias, imported.head_bias)
    assert (direct.residual_min, direct.residual_max) == (
        imported.residual_min,
        imported.residual_max,
    )
    assert imported.maxpool == direct.maxpool
    images = np.random.default_rng(8).integers(0, 256, (16, *direct.input_shape), dtype=np.uint8)
    tally = Tally()
    tally.add(integer_layers(direct, images), SourceModel(out, smap).trace(images), 0)
    assert tally.mismatches == 0, tally.first_mismatch


def test_export_brevitas_of_a_real_mode_model_fails(tmp_path: Path) -> None:
    from bireal_fpga.models.bireal import BiRealNet
    from bireal_fpga.spec import preset
    from bireal_fpga.train.checkpoint import save_checkpoint

    ckpt = tmp_path / "real.pt"
    save_checkpoint(ckpt, BiRealNet(preset("tiny")).set_mode("real"))
    proc = cli("export-brevitas", ckpt, "--out", tmp_path / "x.onnx")
    assert proc.returncode == 2 and "real" in proc.stderr and "real.pt" in proc.stderr
    assert not (tmp_path / "x.onnx").exists()
