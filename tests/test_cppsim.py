"""cppsim: FINN's nodes as finn-hlslib C++, compiled with g++ (no Vitis), node by node.

Every node kind of the cppsim graph (``specialize_for_cppsim`` of a folded graph) runs in C++:
finn-plus's generated code (MVAU, Thresholding, width converters, ElementwiseAdd,
GlobalAccPool) or the project's own driver around finn-hlslib's function (``cppsim.drivers``:
sliding windows, padding, DuplicateStreams, Pool, LabelSelect). Each is compiled with the
project's g++ command (cached by content) and its outputs equal FINN's python execution of the
same node exactly, on random inputs of the node's datatypes (two frames, and a third of a narrow
range, for ties): one test per kind on the tiny net's graph, and one per spec shape of
``test_integer_exact.SPECS`` (and tiny in top-1 mode) over one node of each distinct variant
(kind and the attributes that select its code path). Skipped, with the reason, only where
finn-hlslib is not found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bireal_fpga import tools
from bireal_fpga.tools import FINN_HLSLIB_COMMIT, ToolNotFound

KINDS = [
    "FMPadding_rtl",
    "ConvolutionInputGenerator_rtl",
    "MVAU_hls-xnor",
    "MVAU_hls-int",
    "MVAU_hls-noact",
    "DuplicateStreams_hls",
    "Thresholding_hls",
    "StreamingDataWidthConverter_hls",
    "ElementwiseAdd_hls",
    "Pool_hls",
    "GlobalAccPool_hls",
]
"""The node kinds of the tiny net's cppsim graph (``-xnor``: ``binaryXnorMode``; ``-noact``:
the classifier, ``noActivation``)."""

SPEC_CASES = [
    ("odd-sizes", False),
    ("imagenet-stem", False),
    ("one-block-width-change-stride1", False),
    ("grey-28", False),
    ("narrow-bits", False),
    ("zero-pad-odd-11", False),  # XNOR MVAU without thresholds, border-correction add
    ("tiny", True),
]
"""Every spec shape of ``test_integer_exact.SPECS`` but tiny (the tiny net's graph has the tests per
kind), and tiny in top-1 mode (LabelSelect)."""


@pytest.fixture(scope="module")
def toolchain():
    try:
        tools.find_finn_hlslib()
    except ToolNotFound as e:
        print(f"cppsim tests skipped: {e}")
        pytest.skip(str(e))
    from bireal_fpga.cppsim.compile import toolchain

    return toolchain()


def _cppsim_graph(folded):
    from bireal_fpga.cppsim.specialize import specialize_for_cppsim

    return specialize_for_cppsim(folded)


@pytest.fixture
def tiny_cppsim(tiny_folded):
    return _cppsim_graph(tiny_folded)


def _kind(node) -> str:
    if node.op_type != "MVAU_hls":
        return str(node.op_type)
    from qonnx.custom_op.registry import getCustomOp

    inst = getCustomOp(node)
    if inst.get_nodeattr("binaryXnorMode"):
        return "MVAU_hls-xnor"
    return "MVAU_hls-noact" if inst.get_nodeattr("noActivation") else "MVAU_hls-int"


def _variant(node) -> tuple:
    """The node's kind and the attributes that select its C++ code path (function, folding
    and reordering cases); one node of each is checked."""
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.arch.ops import generic_op

    inst = getCustomOp(node)
    a = inst.get_nodeattr
    op = generic_op(node.op_type)
    # where the arithmetic is the node's, its datatypes (accumulator, threshold widths) too
    dts = (inst.get_input_datatype(0).name, inst.get_output_datatype(0).name)
    if op == "ConvolutionInputGenerator":
        k, s = tuple(a("ConvKernelDim")), tuple(a("Stride"))
        return (op, k, s, a("depthwise"), a("SIMD") == a("IFMChannels"), a("parallel_window"))
    if op == "FMPadding":
        return (op, tuple(a("Padding")), a("SIMD") == a("NumChannels"))
    if op == "Pool":
        return (op, a("Function"), tuple(a("KernelSize")), a("PE") == a("Channels"), *dts)
    if op == "MVAU":
        w = inst.get_input_datatype(1).name
        return (_kind(node), a("SIMD") == a("MW"), a("PE") == a("MH"), w, *dts)
    if op == "Thresholding":
        return (op, a("numSteps") == 1, a("PE") == a("NumChannels"), *dts)
    if op == "StreamingDataWidthConverter":
        i, o = a("inWidth"), a("outWidth")
        return (op, i < o, max(i, o) % min(i, o) == 0)
    if op == "ElementwiseAdd":
        return (op, a("rhs_style"), a("PE") == a("lhs_shape")[-1])
    if op == "GlobalAccPool":
        return (op, a("PE") == a("NumChannels"), *dts)
    if op == "DuplicateStreams":
        return (op, a("PE") == a("NumChannels"))
    if op == "LabelSelect":
        return (op, a("K"), a("PE") == a("Labels"))
    return (op,)


def test_tiny_graph_hls_kinds(tiny_cppsim) -> None:
    """The kinds below are all the tiny net's cppsim graph has (a new kind must get its test)."""
    assert {_kind(n) for n in tiny_cppsim.graph.node} == set(KINDS)


def _inputs(model, node, rng: np.random.Generator, narrow: bool) -> dict[str, np.ndarray]:
    """Random values of the node's own input datatypes (the tensors the width converters add
    carry none), for its dynamic inputs; ``narrow``: within -2..2 (ties)."""
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.rtlsim.node_check import random_tensor

    inst = getCustomOp(node)
    out = {}
    for i, t in enumerate(node.input):
        if model.get_initializer(t) is not None:
            continue
        dt, shape = inst.get_input_datatype(i), model.get_tensor_shape(t)
        if narrow:
            lo, hi = max(int(dt.min()), -2), min(int(dt.max()), 2)
            out[t] = rng.integers(lo, hi + 1, size=shape).astype(np.float32)
        else:
            out[t] = random_tensor(rng, dt, shape)
    return out


def _check_nodes(model, nodes: list[Any], work: Path, toolchain) -> list[str]:
    """Prepare (compile, in parallel) and run ``nodes`` on three frames each; the mismatches,
    one line each (node, kind, frame, first differing index)."""
    from qonnx.core.onnx_exec import execute_onnx

    from bireal_fpga.cppsim.node import prepare_nodes, run_node
    from bireal_fpga.rtlsim.node_check import single_node_model

    prepared = prepare_nodes(model, nodes, work, tc=toolchain)
    rng = np.random.default_rng(13)
    failures = []
    for node, p in zip(nodes, prepared, strict=True):
        single = single_node_model(model, node)
        for frame in range(3):
            inputs = _inputs(model, node, rng, narrow=frame == 2)
            expected = execute_onnx(single, dict(inputs))
            got = run_node(model, node, inputs, p.src_dir)
            for t in node.output:
                want, have = np.asarray(expected[t]), got[t]
                if have.shape != want.shape:
                    failures.append(f"{node.name} ({_kind(node)}) {t}: shape {have.shape}")
                elif not np.array_equal(have, want):
                    i = tuple(int(x) for x in np.argwhere(have != want)[0])
                    failures.append(
                        f"{node.name} ({_kind(node)}) output {t}, frame {frame}: first "
                        f"difference at {i}: cppsim {have[i]} != python {want[i]}"
                    )
    return failures


def _one_per_variant(model, skip: frozenset[tuple] | set[tuple] = frozenset()) -> list[Any]:
    """The first node of each variant of ``model`` not in ``skip``."""
    seen: dict[tuple, Any] = {}
    for node in model.graph.node:
        v = _variant(node)
        if v not in skip:
            seen.setdefault(v, node)
    return list(seen.values())


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_node_cppsim_equals_python(kind: str, tiny_cppsim, toolchain, tmp_path: Path) -> None:
    """One node of each variant of the kind in the tiny net's graph: C++ == FINN python."""
    nodes = [n for n in _one_per_variant(tiny_cppsim) if _kind(n) == kind]
    assert nodes, kind
    failures = _check_nodes(tiny_cppsim, nodes, tmp_path, toolchain)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("spec", "top1"), SPEC_CASES, ids=[f"{s}{'-top1' if t else ''}" for s, t in SPEC_CASES]
)
def test_spec_variants_cppsim_equal_python(
    spec: str, top1: bool, spec_hw, tiny_cppsim, toolchain, tmp_path: Path
) -> None:
    """One node of each variant of the spec's cppsim graph that the tiny net's lacks (those
    have their test per kind; compiles cost ~5 s a node), in C++ == FINN python; and every
    node has C++ (finn-plus's HLS code or the project's driver, with its finn-hlslib function)."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.cppsim import drivers

    model = _cppsim_graph(ModelWrapper(str(spec_hw(spec, top1=top1) / "folded.onnx")))
    kinds = {_kind(n) for n in model.graph.node}
    assert kinds <= {*KINDS, "LabelSelect_hls"}, kinds  # a new kind must get its test
    assert ("LabelSelect_hls" in kinds) == top1
    nodes = _one_per_variant(model, skip={_variant(n) for n in tiny_cppsim.graph.node})
    assert nodes, spec
    # no node falls back to python: each has finn-plus's HLS code or the project's driver
    for n in model.graph.node:
        assert drivers.is_own(n) or n.op_type.endswith("_hls"), n.name
        assert drivers.hlslib_function(model, n), n.name
    failures = _check_nodes(model, nodes, tmp_path, toolchain)
    assert not failures, f"{spec}: {len(failures)} mismatches:\n" + "\n".join(failures)


def test_variants_beyond_the_specs(tiny_cppsim, toolchain, tmp_path: Path) -> None:
    """Driver paths no spec graph has, on altered copies of tiny nodes: a 1x1 window of stride 2
    (``ConvolutionInputGenerator_2D_kernel1``) and QuantAvgPool (``QuantAvgPoolFunction``,
    FINN python's shift), in C++ == FINN python."""
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.cppsim.drivers import hlslib_function

    model = tiny_cppsim
    swg = model.get_node_from_name("ConvolutionInputGenerator_rtl_0")  # 3x3 s1 of 18x18 x 3
    inst = getCustomOp(swg)
    for attr, value in (("ConvKernelDim", [1, 1]), ("Stride", [2, 2]), ("OFMDim", [9, 9])):
        inst.set_nodeattr(attr, value)
    inst.set_nodeattr("parallel_window", 0)
    model.set_tensor_shape(swg.output[0], [1, 9, 9, 3])
    assert hlslib_function(model, swg) == "ConvolutionInputGenerator_2D_kernel1"
    pool = model.get_node_from_name("Pool_hls_0")  # 2x2 sums of INT8
    inst = getCustomOp(pool)
    inst.set_nodeattr("Function", "QuantAvgPool")
    inst.set_nodeattr("InputDataType", "UINT4")  # 4 x 15 in 6 bits >> 3: UINT3
    inst.set_nodeattr("OutputDataType", "UINT3")
    model.set_tensor_datatype(pool.input[0], DataType["UINT4"])
    model.set_tensor_datatype(pool.output[0], DataType["UINT3"])
    failures = _check_nodes(model, [swg, pool], tmp_path, toolchain)
    assert not failures, "\n".join(failures)


def test_hlslib_functions(tiny_cppsim) -> None:
    """The finn-hlslib function of each kind (the driver's choice, or finn-plus's call)."""
    from bireal_fpga.cppsim.drivers import INLINE, hlslib_function

    def fn(name: str) -> str:
        return hlslib_function(tiny_cppsim, tiny_cppsim.get_node_from_name(name))

    assert fn("FMPadding_rtl_0") == "FMPadding_nonsquare_Batch"
    assert fn("ConvolutionInputGenerator_rtl_0") == "ConvolutionInputGenerator"  # 3x3 s1
    assert fn("ConvolutionInputGenerator_rtl_2") == "ConvolutionInputGenerator_dws"  # 2x2 s2
    assert fn("ConvolutionInputGenerator_rtl_3") == "ConvolutionInputGenerator_kernel_stride"
    assert fn("DuplicateStreams_hls_0") == "DuplicateStreams_Batch"
    assert fn("Pool_hls_0") == "Pool_batch"
    assert fn("GlobalAccPool_hls_0") == "AccPool_Batch"
    assert fn("MVAU_hls_0") == "Matrix_Vector_Activate_Stream_Batch"
    assert fn("Thresholding_rtl_0") == "Thresholding_Batch"
    assert fn("StreamingDataWidthConverter_hls_0") == "StreamingDataWidthConverter_Batch"
    assert fn("ElementwiseAdd_hls_0") == INLINE


def test_driver_sources_deterministic_and_relative(tiny_cppsim, tmp_path: Path) -> None:
    """Same graph, same bytes, in any folder; no absolute path in a driver's source."""
    from bireal_fpga.cppsim import drivers

    for node in tiny_cppsim.graph.node:
        if not drivers.is_own(node):
            continue
        a = drivers.generate_own(tiny_cppsim, node, tmp_path / "a") / drivers.SOURCE
        b = drivers.generate_own(tiny_cppsim, node, tmp_path / "b") / drivers.SOURCE
        assert a.read_bytes() == b.read_bytes(), node.name
        text = a.read_text()
        assert str(tmp_path) not in text and '"/' not in text, node.name
        assert '"input_0.npy"' in text and '"output_0.npy"' in text, node.name


def test_unsupported_window_is_one_line_error(tiny_cppsim, tmp_path: Path) -> None:
    """An attribute combination without a finn-hlslib function: CppsimError naming the node."""
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.cppsim import drivers
    from bireal_fpga.cppsim.node import CppsimError

    node = tiny_cppsim.get_node_from_name("ConvolutionInputGenerator_rtl_0")
    getCustomOp(node).set_nodeattr("Dilation", [2, 2])
    with pytest.raises(CppsimError) as e:
        drivers.generate_own(tiny_cppsim, node, tmp_path)
    assert "\n" not in str(e.value)
    assert node.name in str(e.value) and "Dilation" in str(e.value)


def _assert_one_line_clone_hint(message: str) -> None:
    assert "\n" not in message
    for part in (
        "finn-hlslib",
        "git clone https://github.com/Xilinx/finn-hlslib",
        f"checkout {FINN_HLSLIB_COMMIT}",
        "FINN_HLSLIB",
    ):
        assert part in message, (part, message)


def test_missing_finn_hlslib_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FINN_HLSLIB set to a folder without finn-hlslib: one line naming it and the clone."""
    monkeypatch.setenv("FINN_HLSLIB", str(tmp_path))
    with pytest.raises(ToolNotFound) as e:
        tools.find_finn_hlslib()
    _assert_one_line_clone_hint(str(e.value))
    assert str(tmp_path) in str(e.value)


def test_missing_finn_hlslib_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No FINN_HLSLIB and no ../shared/finn-hlslib: the same one line, from the toolchain."""
    from bireal_fpga.cppsim.compile import toolchain

    monkeypatch.delenv("FINN_HLSLIB", raising=False)
    monkeypatch.setattr(tools, "shared_finn_hlslib", lambda: tmp_path / "shared" / "finn-hlslib")
    with pytest.raises(ToolNotFound) as e:
        toolchain()
    _assert_one_line_clone_hint(str(e.value))


def test_hls_headers_and_cnpy_found_without_importing() -> None:
    import sys

    from bireal_fpga.cppsim.compile import cnpy_dir

    assert (tools.hls_headers() / "hls_stream.h").is_file()
    assert (cnpy_dir() / "cnpy.cpp").is_file()
    assert "hls4ml" not in sys.modules
