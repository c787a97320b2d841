"""Residual streams wider than 8 bits (12 and 16): thresholds stored exactly, the classifier's
accumulator widened past INT32, every requantizer an exact multiply-add-shift unit (no table of
2**bits - 1 thresholds per channel), and the build exact through rtlsim."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_ok, cifar_crops, cli
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from test_integer_exact import images, randomized_model

from bireal_fpga import names
from bireal_fpga.arch.affine import accumulator_range
from bireal_fpga.execution.finn_python import run_finn_python
from bireal_fpga.export.qonnx_export import export_qonnx
from bireal_fpga.hwlayers.convert import to_hw_layers
from bireal_fpga.integer.derive import integer_form
from bireal_fpga.spec import load_spec

WIDE = {
    12: load_spec("tiny", ["residual_bits=12", "residual_frac_bits=6"]),
    16: load_spec("tiny", ["residual_bits=16", "residual_frac_bits=8"]),
}


@pytest.fixture(scope="module")
def net16():
    return integer_form(randomized_model(WIDE[16], seed=16))


def test_wide_thresholds_are_stored_exactly(net16) -> None:
    """The downsample conv of a 16-bit stream has thresholds past 2**24, where float32 would
    move them (and the hardware with them): they are stored as float64, equal to the integer
    form's; an 8-bit stream's graph keeps float32 everywhere."""
    model = export_qonnx(net16)
    down = net16.blocks[1].down
    assert down is not None
    wide = [
        model.get_initializer(n.input[1])
        for n in model.graph.node
        if n.op_type == "MultiThreshold"
        and model.get_initializer(n.input[1]).shape == down.act.thresholds.shape
        and np.abs(model.get_initializer(n.input[1])).max() > 2**24
    ]
    assert len(wide) == 1 and wide[0].dtype == np.float64
    t = wide[0]
    assert np.array_equal(np.clip(down.act.thresholds, t.min(), t.max()), t)
    narrow = export_qonnx(integer_form(randomized_model(load_spec("tiny"), seed=1)))
    kinds = {narrow.get_initializer(i.name).dtype for i in narrow.graph.initializer}
    assert kinds == {np.dtype(np.float32), np.dtype(np.int64)}  # int64: ReduceSum's axes


def test_widen_accumulators_before_and_after(net16) -> None:
    """The classifier of a 16-bit stream: FINN's conversion types it INT32, which its
    accumulator range passes; ``WidenAccumulators`` (run last by the conversion) gives it and
    its bias add the widths of their ranges. FINN python execution is the same before and
    after (every layer)."""
    from qonnx.transformation.general import GiveUniqueNodeNames

    from bireal_fpga.hwlayers.widen_accumulators import WidenAccumulators

    after = to_hw_layers(export_qonnx(net16))
    head = [
        n
        for n in after.graph.node
        if n.op_type == "MVAU" and getCustomOp(n).get_nodeattr("noActivation")
    ]
    assert len(head) == 1
    inst = getCustomOp(head[0])
    idt = inst.get_input_datatype()
    lo, hi = accumulator_range(
        after.get_initializer(head[0].input[1]), int(idt.min()), int(idt.max()), binary=False
    )
    odt = DataType[inst.get_nodeattr("outputDataType")]
    assert hi > 2**31 and odt.bitwidth() > 32 and odt.min() <= lo and hi <= odt.max()
    add = after.find_consumer(head[0].output[0])
    assert add.op_type == "ElementwiseAdd"
    assert after.get_tensor_datatype(add.output[0]).bitwidth() > odt.bitwidth() - 1
    before = ModelWrapper(copy.deepcopy(after.model))
    b_head = getCustomOp(before.get_node_from_name(head[0].name))
    for attr in ("outputDataType", "accDataType"):
        b_head.set_nodeattr(attr, "INT32")
    before.set_tensor_datatype(head[0].output[0], DataType["INT32"])
    b_add = getCustomOp(before.get_node_from_name(add.name))
    b_add.set_nodeattr("lhs_dtype", "INT32")
    b_add.set_nodeattr("out_dtype", "INT32")
    before.set_tensor_datatype(add.output[0], DataType["INT32"])
    again = before.transform(WidenAccumulators()).transform(GiveUniqueNodeNames())
    assert again.get_tensor_datatype(head[0].output[0]) == odt
    assert again.get_tensor_datatype(add.output[0]) == after.get_tensor_datatype(add.output[0])
    x = images(WIDE[16], 3, seed=4).numpy()
    t_before: dict = {}
    t_after: dict = {}
    out_before = run_finn_python(before, x, trace=t_before)
    out_after = run_finn_python(again, x, trace=t_after)
    assert np.array_equal(out_before, out_after)
    for name, value in t_before.items():
        assert np.array_equal(value, t_after[name]), name


def _spec_file(folder: Path, bits: int) -> Path:
    path = folder / f"tiny{bits}.json"
    path.write_text(json.dumps(WIDE[bits].to_dict()))
    return path


# 16 bits through the same build is test_import_brevitas.py::
# test_sixteen_bit_import_builds_and_verifies (the importer gives the same integer form, and the
# same export, HW layers and RTL follow; its net has a stride-2 downsample too), and
# Bi-Real-18-CIFAR at 16 bits is benchmarks/wide_residual.py: one 16-bit tiny build in the suite.
def test_wide_residual_builds_and_verifies(tmp_path: Path) -> None:
    """A 12-bit residual stream built through the CLI to simulated RTL for ZCU104: every
    requantizer (stem, binary convs, the downsample) is an exact affine unit, so the design
    takes about one BRAM36, and golden, rtlsim and FINN's python execution (its float32 is
    still exact at 12 bits) are exact on random and real images."""
    out = tmp_path / "build"
    src = _spec_file(tmp_path, 12)
    assert_ok(cli("build", src, "--board", "ZCU104", "--out", out, "--until", "rtl", "--no-synth"))
    report = json.loads((out / names.REPORT).read_text())
    assert report["rtl"]["fps"]["measured"] == report["rtl"]["fps"]["estimated"]
    assert report["estimates"]["total"]["BRAM36"] <= 2, report["estimates"]["total"]
    folded = ModelWrapper(str(out / names.FOLDED))
    thresholded = [
        n.name for n in folded.graph.node if n.op_type.startswith("MVAU") and len(n.input) > 2
    ]
    rtl = {p.name for p in (out / "rtl").rglob("*.mem")}
    assert thresholded and all(f"{n}_affine.mem" in rtl for n in thresholded), rtl
    assert not any(name.startswith("MVAU") and "_thr_g" in name for name in rtl)
    for extra in ([], ["real"]):
        if extra:  # skips (saying why) where ../shared/data is absent, after the random images
            extra = ["--images", str(cifar_crops(tmp_path / "real.npz", 16, 30))]
        proc = cli("verify", out, "--stages", "golden,rtlsim", "--n", "30", "--json", *extra)
        assert_ok(proc)
        result = json.loads(proc.stdout)["stages"]
        for stage in ("golden", "rtlsim"):
            assert result[stage] == {"n": 30, "mismatches": 0, "first_mismatch": None}, extra
        proc = cli("verify", out, "--stages", "python", "--n", "30", "--json", *extra)
        python = json.loads(proc.stdout)["stages"]["python"]
        assert proc.returncode == 0 and python["mismatches"] == 0, python
