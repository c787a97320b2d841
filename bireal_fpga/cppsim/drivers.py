"""The project's own cppsim drivers: C++ mains around finn-hlslib's function of a layer.

finn-plus 1.6.1 generates no usable cppsim code for some nodes of the cppsim graph
(:mod:`.specialize`): ``ConvolutionInputGenerator`` and ``FMPadding`` it has only as RTL, and its
``DuplicateStreams_hls`` / ``Pool_hls`` code needs a newer finn-hlslib than the pinned snapshot
(``dup.hpp``; an ``hls::vector`` ``Pool_batch``), its ``LabelSelect_hls`` code names
``Out_T::sign_flag``, which the C-simulation ``ap_int`` of hls4ml lacks. For these, a template
under ``hw/templates/cppsim`` renders a ``main`` that only

1. reads each ``input_<i>.npy`` (the node's folded input shape, as :func:`.node.run_own` writes
   it; relative to the working folder) into an ``hls::stream`` with finn-plus's
   ``npy2apintstream``,
2. calls the finn-hlslib function of the layer (no arithmetic of the layer is ours),
3. checks that the function read every input word and wrote the expected number of words,
4. writes each ``output_<o>.npy`` with ``apintstream2npy``, in FINN's *normal* element order
   (:func:`.node.run_own` reshapes it to the normal output shape).

The drivers, by generic op type (:data:`OWN`):

``ConvolutionInputGenerator``
    ``slidingwindow.h``: square windows, dilation 1 only. ``k == 1``, ``stride > 1``:
    ``ConvolutionInputGenerator_2D_kernel1``; ``k % stride == 0``: ``ConvolutionInputGenerator``;
    otherwise ``ConvolutionInputGenerator_kernel_stride``; ``_dws`` variants of the last two
    where ``depthwise``. ``parallel_window`` / ``M`` only change the RTL's word width, not the
    element order, so the driver uses ``SIMD``-wide words throughout. Layout: finn-hlslib's
    non-depthwise output order (pixel, ky, kx, channel fold) is FINN's im2col order; the depthwise
    one is (pixel, channel fold, ky, kx), which the driver transposes per pixel (blocks of
    ``IFMChannels/SIMD x k*k`` words, ``bireal::transpose_blocks``) to im2col order, the order
    of FINN's python execution (and of :func:`.node.run_own`'s output).
``FMPadding``
    ``streamtools.h`` ``FMPadding_nonsquare_Batch``: FINN's ``Padding`` is ``[top, left,
    bottom, right]``, finn-hlslib's template order ``left, right, top, bottom``; ``ImgDim`` is
    ``[H, W]``.
``DuplicateStreams``
    ``streamtools.h`` ``DuplicateStreams_Batch`` (two outputs only).
``Pool``
    ``maxpool.h`` ``Pool_batch`` with ``pool.hpp``'s ``MaxPoolFunction`` (``MaxPool``),
    ``AccPoolFunction`` (``AccPool``, accumulating in the output datatype) or
    ``QuantAvgPoolFunction`` (``QuantAvgPool``, the shift FINN's python execution computes from
    the input and output widths). FINN's ``AvgPool`` (a float mean) has no exact integer
    equivalent. Layout: the node's input is in im2col order (pixel, kernel position, channel
    fold), as FINN's python execution reads it; ``Pool_batch`` reads the depthwise order (pixel,
    channel fold, kernel position): the driver transposes per output pixel before the call.
``LabelSelect``
    ``maxpool.h`` ``LabelSelect_Batch``, its output type a subclass of the output datatype's
    ``ap_uint`` declaring ``sign_flag``. Ties: the lower label ranks higher, as in ONNX ``TopK``
    (FINN's python execution); for ``K > 1`` the two differ only where fewer than ``K`` inputs
    exceed the input datatype's minimum (finn-hlslib then repeats label 0).

The other nodes of the cppsim graph run finn-plus's generated code (:mod:`.node`);
:func:`hlslib_function` names the finn-hlslib function of any node.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from bireal_fpga.arch.ops import generic_op
from bireal_fpga.rtl.render import render

OWN: dict[str, str] = {
    "ConvolutionInputGenerator": "slidingwindow.h ConvolutionInputGenerator[_kernel_stride][_dws]"
    " / _2D_kernel1; depthwise windows transposed to im2col order",
    "FMPadding": "streamtools.h FMPadding_nonsquare_Batch",
    "DuplicateStreams": "streamtools.h DuplicateStreams_Batch (finn-plus's needs dup.hpp)",
    "Pool": "maxpool.h Pool_batch with pool.hpp's Max/Acc/QuantAvg PoolFunction; im2col input"
    " transposed to the depthwise order",
    "LabelSelect": "maxpool.h LabelSelect_Batch with an output type declaring sign_flag",
}
"""Generic op type -> what the project's driver calls."""

SOURCE = "driver.cpp"
"""The driver's file name in its folder."""

INLINE = "(none: finn-plus's own loop)"
""":func:`hlslib_function` of a node whose finn-plus code calls no finn-hlslib function."""

AP_INT_DEFAULT_MAX_W = 1024


def is_own(node: Any) -> bool:
    """Whether ``node`` runs the project's driver (else finn-plus's generated code)."""
    return generic_op(str(node.op_type)) in OWN


def _error(node: Any, why: str) -> Exception:
    from bireal_fpga.cppsim.node import CppsimError

    return CppsimError(f"{node.name} ({node.op_type}): no cppsim driver: {why}")


# ---- typed template parameters --------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    """One npy file <-> stream of the driver: ``words`` words of ``elems`` elements."""

    stream: str  # the C++ stream: in0, out1
    npy: str  # input_0.npy / output_1.npy, relative to the working folder
    elem: str  # the element's C-simulation type: ap_int<8>
    elem_bits: int
    elems: int  # elements per word
    words: int  # words of one execution (all frames)

    @property
    def word(self) -> str:
        return f"ap_uint<{self.elems * self.elem_bits}>"

    @property
    def shape(self) -> str:
        """The npy shape written: one row per word (the node's folded order)."""
        return f"{{{self.words}, {self.elems}}}"


@dataclass(frozen=True)
class Driver:
    """What every driver's template (``cppsim/driver.cpp.j2``) needs."""

    node: str
    op_type: str
    function: str  # the finn-hlslib function called
    summary: str  # one line: the call's parameters in words
    includes: tuple[str, ...]  # finn-hlslib headers besides bnn-library.h
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]

    @property
    def ap_int_max_w(self) -> int:
        widths = [p.elems * p.elem_bits for p in (*self.inputs, *self.outputs)]
        return max([AP_INT_DEFAULT_MAX_W, *widths])


@dataclass(frozen=True)
class SlidingWindowParams:
    """``cppsim/sliding_window.cpp.j2``."""

    template_args: str
    reps: int  # frames
    resource: str  # ", ap_resource_dflt()" where the function takes one
    reorder: bool  # depthwise: transpose each pixel's words to im2col order
    word: str
    pixels: int  # output pixels of all frames
    cf: int  # channel folds (IFMChannels / SIMD)
    k2: int  # kernel positions


@dataclass(frozen=True)
class FMPaddingParams:
    """``cppsim/fmpadding.cpp.j2``."""

    in_y: int
    in_x: int
    out_y: int
    out_x: int
    top: int
    left: int
    bottom: int
    right: int
    channels: int
    simd: int
    elem: str
    reps: int


@dataclass(frozen=True)
class DuplicateStreamsParams:
    """``cppsim/duplicate_streams.cpp.j2``."""

    width: int  # bits a word
    words_per_frame: int
    reps: int


@dataclass(frozen=True)
class PoolParams:
    """``cppsim/pool.cpp.j2``."""

    channels: int
    pe: int
    k2: int
    cf: int
    pixels: int  # output pixels of all frames (Pool_batch's reps)
    in_elem: str
    out_elem: str
    function_type: str  # the pool.hpp function class
    word: str


@dataclass(frozen=True)
class LabelSelectParams:
    """``cppsim/label_select.cpp.j2``."""

    labels: int
    pe: int
    k: int
    in_elem: str
    out_base: str  # ap_uint<8>
    out_base_name: str  # ap_uint
    sign_flag: str  # "true" / "false"
    reps: int


# ---- per node kind ----------------------------------------------------------------------------


def _elem(node: Any, dt: DataType) -> str:
    if not dt.is_integer() or dt == DataType["BIPOLAR"]:
        raise _error(node, f"datatype {dt.name} (integer streams only)")
    return str(dt.get_hls_datatype_str())


def _in_port(inst: Any, node: Any, i: int, elems: int) -> Port:
    dt = inst.get_input_datatype(i)
    folded = tuple(int(x) for x in inst.get_folded_input_shape(i))
    if folded[-1] != elems:
        raise _error(node, f"folded input {i} shape {folded}: words of {elems} expected")
    return Port(
        f"in{i}", f"input_{i}.npy", _elem(node, dt), dt.bitwidth(), elems, prod(folded[:-1])
    )


def _out_port(inst: Any, node: Any, o: int, elems: int, dt: DataType | None = None) -> Port:
    dt = dt or inst.get_output_datatype(o)
    total = prod(int(x) for x in inst.get_normal_output_shape(o))
    if total % elems:
        raise _error(node, f"output {o}: {total} elements are no whole words of {elems}")
    return Port(f"out{o}", f"output_{o}.npy", _elem(node, dt), dt.bitwidth(), elems, total // elems)


def _square(node: Any, name: str, v: Any) -> int:
    vals = [int(x) for x in v]
    if len(set(vals)) != 1:
        raise _error(node, f"{name} {vals} is not square (no finn-hlslib non-square driver here)")
    return vals[0]


def _sliding_window(model: ModelWrapper, node: Any, inst: Any) -> tuple[Driver, object]:
    if inst.get_nodeattr("is1D"):
        raise _error(node, "1D sliding windows")
    if inst.get_nodeattr("dynamic_mode"):
        raise _error(node, "dynamic_mode")
    if any(int(x) != 1 for x in inst.get_nodeattr("Dilation")):
        raise _error(node, f"Dilation {list(inst.get_nodeattr('Dilation'))} (dilation 1 only)")
    k = _square(node, "ConvKernelDim", inst.get_nodeattr("ConvKernelDim"))
    ifm = _square(node, "IFMDim", inst.get_nodeattr("IFMDim"))
    ofm = _square(node, "OFMDim", inst.get_nodeattr("OFMDim"))
    s = _square(node, "Stride", inst.get_nodeattr("Stride"))
    ch = int(inst.get_nodeattr("IFMChannels"))
    simd = int(inst.get_nodeattr("SIMD"))
    dw = bool(inst.get_nodeattr("depthwise"))
    if ch % simd:
        raise _error(node, f"SIMD {simd} does not divide IFMChannels {ch}")
    dt = inst.get_input_datatype(0)
    bits = dt.bitwidth()
    reps = int(inst.get_normal_input_shape(0)[0])
    if k == 1 and s > 1:
        function = "ConvolutionInputGenerator_2D_kernel1"
        args = f"{ch}, {bits}, {ifm}, {simd}, {s}"
        resource = ""
        dw = False  # one kernel position: both orders agree
    else:
        function = "ConvolutionInputGenerator"
        if k % s:
            function += "_kernel_stride"
        if dw:
            function += "_dws"
        args = f"{k}, {ch}, {bits}, {ifm}, {ofm}, {simd}, {s}"
        resource = ", ap_resource_dflt()"
    inp = _in_port(inst, node, 0, simd)
    out = _out_port(inst, node, 0, simd)
    pixels = reps * ofm * ofm
    if out.words != pixels * k * k * (ch // simd):
        raise _error(node, f"OFMDim {ofm} does not match its output shape")
    d = Driver(
        node.name,
        node.op_type,
        function,
        f"{k}x{k} windows, stride {s}, of {ifm}x{ifm} pixels x {ch} channels ({simd} a word)"
        f"{', depthwise' if dw else ''} -> {ofm}x{ofm}",
        (),
        (inp,),
        (out,),
    )
    p = SlidingWindowParams(args, reps, resource, dw, inp.word, pixels, ch // simd, k * k)
    return d, p


def _fmpadding(model: ModelWrapper, node: Any, inst: Any) -> tuple[Driver, object]:
    h, w = (int(x) for x in inst.get_nodeattr("ImgDim"))
    top, left, bottom, right = (int(x) for x in inst.get_nodeattr("Padding"))
    ch = int(inst.get_nodeattr("NumChannels"))
    simd = int(inst.get_nodeattr("SIMD"))
    if ch % simd:
        raise _error(node, f"SIMD {simd} does not divide NumChannels {ch}")
    reps = int(inst.get_normal_input_shape(0)[0])
    inp = _in_port(inst, node, 0, simd)
    out = _out_port(inst, node, 0, simd)
    oy, ox = h + top + bottom, w + left + right
    d = Driver(
        node.name,
        node.op_type,
        "FMPadding_nonsquare_Batch",
        f"zero padding of {h}x{w} pixels x {ch} channels ({simd} a word) to {oy}x{ox}",
        (),
        (inp,),
        (out,),
    )
    p = FMPaddingParams(h, w, oy, ox, top, left, bottom, right, ch, simd, inp.elem, reps)
    return d, p


def _duplicate_streams(model: ModelWrapper, node: Any, inst: Any) -> tuple[Driver, object]:
    n_out = int(inst.get_nodeattr("NumOutputStreams"))
    if n_out != 2 or len(node.output) != 2:
        raise _error(node, f"{n_out} outputs (DuplicateStreams_Batch has two)")
    pe = int(inst.get_nodeattr("PE"))
    inp = _in_port(inst, node, 0, pe)
    outs = tuple(_out_port(inst, node, o, pe) for o in range(2))
    reps = int(inst.get_normal_input_shape(0)[0])
    d = Driver(
        node.name,
        node.op_type,
        "DuplicateStreams_Batch",
        f"two copies of {inp.words} words of {pe} elements",
        (),
        (inp,),
        outs,
    )
    p = DuplicateStreamsParams(pe * inp.elem_bits, inp.words // reps, reps)
    return d, p


def _pool(model: ModelWrapper, node: Any, inst: Any) -> tuple[Driver, object]:
    fn = str(inst.get_nodeattr("Function"))
    ch = int(inst.get_nodeattr("Channels"))
    pe = int(inst.get_nodeattr("PE"))
    k2 = prod(int(x) for x in inst.get_nodeattr("KernelSize"))
    idt, odt = inst.get_input_datatype(0), inst.get_output_datatype(0)
    in_elem, out_elem = _elem(node, idt), _elem(node, odt)
    if fn == "MaxPool":
        if odt != idt:
            raise _error(node, f"MaxPool from {idt.name} to {odt.name}")
        function_type = f"MaxPoolFunction<{out_elem}, {k2}>"
    elif fn == "AccPool":
        function_type = f"AccPoolFunction<{out_elem}, {k2}>"
    elif fn == "QuantAvgPool":
        # FINN's python execution: sum, then >> (bits of k2 * (2**ibits - 1)) - obits
        ibits, obits = idt.bitwidth(), odt.bitwidth()
        shift = max(0, (k2 * (2**ibits - 1)).bit_length() - obits)
        acc_bits = ibits + (k2 - 1).bit_length() + (1 if idt.signed() else 0)
        acc = f"ap_{'' if idt.signed() else 'u'}int<{acc_bits}>"
        function_type = f"QuantAvgPoolFunction<{acc}, {out_elem}, {shift}>"
    else:
        raise _error(node, f"Function {fn} (MaxPool, AccPool, QuantAvgPool only)")
    if ch % pe:
        raise _error(node, f"PE {pe} does not divide Channels {ch}")
    inp = _in_port(inst, node, 0, pe)
    out = _out_port(inst, node, 0, pe)
    pixels = out.words // (ch // pe)
    d = Driver(
        node.name,
        node.op_type,
        "Pool_batch",
        f"{fn} over {k2} kernel positions, {ch} channels ({pe} a word), {pixels} pixels",
        ("pool.hpp",),
        (inp,),
        (out,),
    )
    p = PoolParams(ch, pe, k2, ch // pe, pixels, in_elem, out_elem, function_type, inp.word)
    return d, p


def _label_select(model: ModelWrapper, node: Any, inst: Any) -> tuple[Driver, object]:
    labels = int(inst.get_nodeattr("Labels"))
    pe = int(inst.get_nodeattr("PE"))
    k = int(inst.get_nodeattr("K"))
    if labels % pe:
        raise _error(node, f"PE {pe} does not divide Labels {labels}")
    inp = _in_port(inst, node, 0, pe)
    out = _out_port(inst, node, 0, 1)
    odt = inst.get_output_datatype(0)
    base_name = "ap_int" if odt.signed() else "ap_uint"
    reps = int(inst.get_normal_input_shape(0)[0])
    d = Driver(
        node.name,
        node.op_type,
        "LabelSelect_Batch",
        f"top {k} of {labels} labels ({pe} a word)",
        (),
        (inp,),
        (out,),
    )
    p = LabelSelectParams(
        labels,
        pe,
        k,
        inp.elem,
        f"{base_name}<{odt.bitwidth()}>",
        base_name,
        "true" if odt.signed() else "false",
        reps,
    )
    return d, p


_Builder = Callable[[ModelWrapper, Any, Any], tuple[Driver, object]]

BUILDERS: dict[str, tuple[str, _Builder]] = {
    "ConvolutionInputGenerator": ("cppsim/sliding_window.cpp.j2", _sliding_window),
    "FMPadding": ("cppsim/fmpadding.cpp.j2", _fmpadding),
    "DuplicateStreams": ("cppsim/duplicate_streams.cpp.j2", _duplicate_streams),
    "Pool": ("cppsim/pool.cpp.j2", _pool),
    "LabelSelect": ("cppsim/label_select.cpp.j2", _label_select),
}
assert BUILDERS.keys() == OWN.keys()


def _driver(model: ModelWrapper, node: Any) -> tuple[str, Driver, object]:
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.hwlayers.finn_env import finn_ready

    op = generic_op(str(node.op_type))
    if op not in BUILDERS:
        raise _error(node, "not a kind with the project's driver")
    finn_ready()
    template, build = BUILDERS[op]
    d, p = build(model, node, getCustomOp(node))
    return template, d, p


def render_own(model: ModelWrapper, node: Any) -> str:
    """The driver's C++ source for ``node`` (deterministic: no paths, no time)."""
    template, d, p = _driver(model, node)
    return render(template, d=d, p=p)


def generate_own(model: ModelWrapper, node: Any, work_dir: Path) -> Path:
    """``work_dir/<node name>`` made afresh with the driver's source (:data:`SOURCE`); the
    folder (compiled by :func:`.compile.compile_node_sources`, run in it by
    :func:`.node.run_own`)."""
    source = render_own(model, node)
    d = (work_dir / node.name).resolve()
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / SOURCE).write_text(source)
    return d


_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:<[^;]*?>)?\s*\(", re.S)
_NOT_CALLS = {"for", "if", "while", "switch", "return"}


def hlslib_function(model: ModelWrapper, node: Any) -> str:
    """The finn-hlslib function the cppsim C++ of ``node`` calls: the driver's for
    :data:`OWN` kinds, else the first call of finn-plus's generated compute part
    (``docompute``), e.g. ``Matrix_Vector_Activate_Stream_Batch``; :data:`INLINE` where that
    calls none (``ElementwiseAdd_hls``: finn-plus's own loop over ``Slice``)."""
    if is_own(node):
        return _driver(model, node)[1].function
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.hwlayers.finn_env import finn_ready

    finn_ready()
    inst = getCustomOp(node)
    inst.code_gen_dict = {}
    try:
        inst.docompute()
    except Exception as e:  # noqa: BLE001 - finn-plus raises plain Exceptions
        raise _error(node, f"finn-plus generates no compute code: {e}") from e
    for stmt in inst.code_gen_dict.get("$DOCOMPUTE$", []):
        m = _CALL.match(stmt)
        if m and m.group(1) not in _NOT_CALLS:
            return m.group(1)
    return INLINE
