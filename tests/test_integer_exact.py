"""The integer inference form is exact: PyTorch integer form == numpy golden model (bit-packed
XNOR-popcount), compared as integers on many inputs, layer by layer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bireal_fpga.errors import ExportError
from bireal_fpga.golden.model import GoldenModel
from bireal_fpga.integer.derive import BIG, integer_form, thresholds_for
from bireal_fpga.integer.forward import run_integer
from bireal_fpga.integer.params import IntegerNet
from bireal_fpga.models.bireal import BiRealNet
from bireal_fpga.models.calibration import calibrated_random_model
from bireal_fpga.spec import BiRealSpec, load_spec

SPECS = {
    "tiny": load_spec("tiny"),
    "odd-sizes": load_spec(
        "tiny", ["input_size=15", "widths=[5,7,9]", "blocks=[1,2,1]", "strides=[2,1,2]"]
    ),
    "imagenet-stem": load_spec(
        "bireal18", ["input_size=37", "widths=[8,12,16,8]", "stem_width=8", "num_classes=7"]
    ),
    "one-block-width-change-stride1": load_spec(
        "tiny", ["widths=[6,10,3]", "blocks=[1,1,1]", "strides=[1,1,2]", "stem_width=4"]
    ),
    "grey-28": load_spec("tiny-mnist"),
    "narrow-bits": load_spec(
        "tiny", ["residual_bits=6", "residual_frac_bits=2", "int_bits=4", "input_size=9"]
    ),
    # binary convs padded with 0 (the official Bi-Real code's): border-pixel corrections
    "zero-pad-odd-11": load_spec(
        "tiny", ["binary_padding=zero", "input_size=11", "widths=[8,6]", "blocks=[2,1]"]
    ),
}


def randomized_model(spec: BiRealSpec, seed: int) -> BiRealNet:
    torch.manual_seed(seed)
    return calibrated_random_model(BiRealNet(spec), seed=seed)


def images(spec: BiRealSpec, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (n, spec.input_channels, spec.input_size, spec.input_size)
    x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    x[0] = 0
    x[1] = 255
    return x


def first_difference(ref: dict, got: dict) -> str | None:
    for name, value in ref.items():
        if not np.array_equal(value.numpy(), got[name]):
            idx = np.argwhere(value.numpy() != got[name])[0]
            return f"{name} at index {tuple(int(i) for i in idx)}"
    return None


@pytest.fixture(scope="module", params=list(SPECS), ids=list(SPECS))
def case(request, tmp_path_factory):
    spec = SPECS[request.param]
    model = randomized_model(spec, seed=len(request.param))
    net = integer_form(model)
    path = tmp_path_factory.mktemp("int") / f"{request.param}.npz"
    net.save(path)
    return spec, model, net, path


def test_golden_equals_pytorch_integer_form(case) -> None:
    spec, _, net, path = case
    x = images(spec, 100, seed=1)
    ref: dict = {}
    scores = run_integer(net, x, trace=ref)
    got: dict = {}
    golden = GoldenModel(path).run(x.numpy(), trace=got)
    assert first_difference(ref, got) is None, (
        f"first differing layer: {first_difference(ref, got)}"
    )
    assert np.array_equal(scores.numpy(), golden)
    assert scores.dtype == torch.int64


def test_float_training_form_agrees_on_top1(case) -> None:
    spec, model, net, _ = case
    x = images(spec, 200, seed=2)
    with torch.no_grad():
        float_top1 = model(x.float() / 255.0).argmax(1)
    int_top1 = run_integer(net, x).argmax(1)
    disagree = int((float_top1 != int_top1).sum())
    print(f"{spec.name}: float vs integer top-1 disagree on {disagree}/200 random images")
    assert disagree <= 2


def test_integer_scores_are_the_float_logits_scaled(case) -> None:
    spec, model, net, _ = case
    x = images(spec, 50, seed=3)
    with torch.no_grad():
        logits = model(x.float() / 255.0).double()
    scaled = run_integer(net, x).double() * model.head.acc_scale().item()
    close = torch.isclose(logits, scaled, rtol=1e-4, atol=1e-5).all(dim=1)
    assert close.float().mean() >= 0.9  # rows differ only where a level sits on a boundary


def test_one_flipped_weight_bit_is_detected(case, tmp_path) -> None:
    spec, _, net, path = case
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    w = arrays["blocks.0.conv.weight"]
    w[1].reshape(-1)[w[1].size // 2] *= -1  # channel 1: channel 0 has gamma = 0
    flipped = tmp_path / "flipped.npz"
    np.savez(flipped, **arrays)
    x = images(spec, 100, seed=4)
    ref: dict = {}
    run_integer(net, x, trace=ref)
    got: dict = {}
    GoldenModel(flipped).run(x.numpy(), trace=got)
    assert first_difference(ref, got) is not None


def test_npz_round_trip(case) -> None:
    spec, _, net, path = case
    loaded = IntegerNet.load(path)
    x = images(spec, 20, seed=5)
    assert torch.equal(run_integer(loaded, x), run_integer(net, x))


@pytest.mark.parametrize("seed", range(4), ids=[f"s{i}" for i in range(4)])
def test_thresholds_equal_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = 64
    a = rng.normal(0, 0.05, c)
    a[:4] = [0.0, -0.02, 1e-9, -1e-9]
    b = rng.normal(0, 2.0, c)
    s, lo, hi = 2.0**-3, -16, 15
    t, flip = thresholds_for(a, b, s, lo, hi)
    assert np.all(np.diff(t, axis=1) >= 0)
    acc = np.arange(-2000, 2001)
    expected = np.clip(np.floor((a[:, None] * acc[None] + b[:, None]) / s + 0.5), lo, hi)
    signed = np.where(flip[:, None], -acc[None], acc[None])
    got = lo + (signed[:, :, None] >= t[:, None, :]).sum(axis=2)
    assert np.array_equal(got, expected.astype(np.int64))
    assert np.abs(t).max() <= BIG


def test_integer_weights_are_brevitas_integers() -> None:
    model = randomized_model(SPECS["tiny"], 0)
    net = integer_form(model)
    qw = model.stem.conv.quant_weight()
    assert torch.allclose(qw.int().float() * qw.scale, qw.value)
    assert np.array_equal(np.abs(net.stem.weight), np.abs(qw.int().numpy()))
    assert np.abs(net.stem.weight).max() <= 127


def test_real_mode_has_no_integer_form() -> None:
    model = BiRealNet(SPECS["tiny"]).set_mode("real")
    with pytest.raises(ExportError, match="real"):
        integer_form(model)


def test_zero_padding_counts_only_the_valid_taps() -> None:
    """A zero-padded binary conv's border accumulators are the dot products over the taps
    inside the image (checked against a direct sum), and differ from -1 padding's."""
    spec = SPECS["zero-pad-odd-11"]
    net = integer_form(randomized_model(spec, seed=9))
    layer = net.blocks[0].conv
    assert layer.binary and layer.binary_pad == 0
    x = torch.randint(-8, 8, (2, spec.stem_width, 11, 11))
    from bireal_fpga.integer.forward import _conv

    acc = _conv(x, layer).numpy()
    sign = np.where(x.numpy() >= 0, 1, -1)
    w = layer.weight.astype(np.int64)
    direct = np.zeros_like(acc)
    for i in range(11):
        for j in range(11):
            for ky in range(3):
                for kx in range(3):
                    y, z = i + ky - 1, j + kx - 1
                    if 0 <= y < 11 and 0 <= z < 11:
                        tap = np.einsum("nc,oc->no", sign[:, :, y, z], w[:, :, ky, kx])
                        direct[:, :, i, j] += tap
    assert np.array_equal(acc, direct)
    m1 = dataclasses.replace(layer, binary_pad=-1)  # the same weights padded with -1
    assert not np.array_equal(_conv(x, m1).numpy()[:, :, 0, :], acc[:, :, 0, :])
    assert np.array_equal(_conv(x, m1).numpy()[:, :, 1:-1, 1:-1], acc[:, :, 1:-1, 1:-1])


def test_zero_padding_needs_even_binary_conv_inputs() -> None:
    from bireal_fpga.errors import SpecError

    with pytest.raises(SpecError, match="block 1 has 7"):
        load_spec("tiny", ["binary_padding=zero", "widths=[7,8]"])
    with pytest.raises(SpecError, match="binary_padding"):
        load_spec("tiny", ["binary_padding=one"])
