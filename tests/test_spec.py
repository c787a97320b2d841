"""Specs, presets and the paper's architecture sizes."""

from __future__ import annotations

import json

import pytest
import torch

from bireal_fpga.errors import SpecError
from bireal_fpga.models.bireal import BiRealBlock, BiRealNet
from bireal_fpga.models.summary import summarize
from bireal_fpga.quant.layers import BinaryConv2d
from bireal_fpga.spec import PRESETS, BiRealSpec, load_spec, preset


def test_bireal18_imagenet_size_matches_paper() -> None:
    """Bi-Real-18 (ImageNet): 11,689,512 trainable parameters (conv/FC weights, BN gamma and
    beta, FC bias; BN running statistics excluded) -- the paper's "about 11.7 M", the same
    count as ResNet-18 since both have 16 3x3 convs, 3 downsample 1x1 convs, stem and FC."""
    s = summarize(preset("bireal18"))
    assert s["params"] == 11_689_512
    assert s["binary_macs"] == 1_676_279_808  # the paper's 1.68e9 binary operations
    assert s["binary_params"] == sum(
        c * 9 * w
        for c, w in [(64, 64)] * 4
        + [(64, 128)]
        + [(128, 128)] * 3
        + [(128, 256)]
        + [(256, 256)] * 3
        + [(256, 512)]
        + [(512, 512)] * 3
    )


def test_bireal18_cifar_binary_macs() -> None:
    assert summarize(preset("bireal18-cifar"))["binary_macs"] == 547_356_672


@pytest.mark.parametrize("name", list(PRESETS), ids=list(PRESETS))
def test_summary_params_equal_model_parameters(name: str) -> None:
    spec = preset(name)
    model = BiRealNet(spec)
    assert summarize(spec)["params"] == sum(p.numel() for p in model.parameters())
    binary = [m for m in model.modules() if isinstance(m, BinaryConv2d)]
    assert len(binary) == sum(spec.blocks)
    assert summarize(spec)["binary_params"] == sum(m.weight.numel() for m in binary)


@pytest.mark.parametrize(
    ("name", "blocks", "downsamples"),
    [("bireal18", 16, 3), ("bireal34", 32, 3)],
    ids=["bireal18", "bireal34"],
)
def test_imagenet_architecture(name: str, blocks: int, downsamples: int) -> None:
    model = BiRealNet(preset(name))
    bl = [m for m in model.modules() if isinstance(m, BiRealBlock)]
    assert len(bl) == blocks
    assert sum(b.downsample is not None for b in bl) == downsamples
    assert model.stem.conv.kernel_size == (7, 7) and model.stem.maxpool
    out = model(torch.rand(1, 3, 224, 224))
    assert out.shape == (1, 1000)


def test_json_and_yaml_round_trip(tmp_path) -> None:
    spec = preset("tiny").replace(widths=(5, 7), input_size=15)
    for suffix in (".json", ".yaml"):
        path = tmp_path / f"s{suffix}"
        spec.save(path)
        assert load_spec(str(path)) == spec.replace(name=spec.name)
    inline = load_spec(json.dumps({"widths": [3], "blocks": [1], "strides": [2]}))
    assert inline.widths == (3,) and inline.name == "custom"
    over = load_spec("tiny", ["widths=[4, 6]", "num_classes=3"])
    assert over.widths == (4, 6) and over.num_classes == 3


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["widths=[8, 0]"], "widths[1]"),
        (["strides=[1, 3]"], "strides[1]"),
        (["residual_bits=-2"], "residual_bits"),
        (["int_bits=9"], "int_bits"),
        (["stem=resnet"], "stem"),
        (["widht=3"], "unknown spec field 'widht'"),
        (["blocks=[1]"], "same length"),
        (["input_size=0"], "input_size"),
    ],
    ids=["width0", "stride3", "negbits", "intbits", "stem", "unknown", "lengths", "small"],
)
def test_bad_spec_names_the_field(overrides: list[str], needle: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec("tiny", overrides)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_preset_and_missing_file(tmp_path) -> None:
    with pytest.raises(SpecError, match="unknown preset|neither a preset"):
        load_spec("bireal19")
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("widths: [1, 2\n")
    with pytest.raises(SpecError, match="cannot be parsed"):
        load_spec(str(bad))


def test_spec_is_frozen() -> None:
    spec = BiRealSpec()
    with pytest.raises(AttributeError):
        spec.widths = (1,)  # type: ignore[misc]
