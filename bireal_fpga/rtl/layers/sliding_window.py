"""ConvolutionInputGenerator -> ``hw/rtl/bireal_swg.sv`` (sliding window generator).

Output order: FINN's python (im2col) order, per output pixel (kernel row, kernel column,
channel), folded into SIMD-wide words, or one whole window per word with ``parallel_window=1``.
For ``depthwise=1`` this is the same order: FINN's own RTL/HLS kernels interleave channel folds
outside the kernel positions there, which differs from its python execution whenever
SIMD < IFMChannels; ``bireal_pool`` consumes the python order, so every stream equals FINN's
python tensor.

Implementations (see ``bireal_swg.sv``):

- 1x1 kernels: a filter keeping the pixels on the stride grid (no buffer);
- ``parallel_window=1``: line buffers + a window register, one window per input pixel;
- otherwise a circular buffer of ``depth`` SIMD words read one word per cycle. The minimum is
  FINN's ``((KH-1)*W + KW)*CF`` (``Geometry.span``); ``(SH-1)*W*CF + 2`` more keep the output
  at one word per cycle across output rows; ``Geometry.frame_loss`` more also preload the next
  frame's first windows during the last output row, which removes the per-frame refill wait
  (taken where it costs no more memory than without). ``Geometry.buf_cycles`` is the
  resulting cycles per frame, equal to the simulated steady state.

The buffer's depth and memory style (:func:`plan_buffer`) are what the cost model prices too.
The style is :func:`bireal_fpga.arch.memory.memory_style`'s for the node's ``ram_style``,
except that ``distributed``, FINN's default for this node and so no choice, means ``auto``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.arch import memory
from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.layers.fmpadding import ints, mask_literal
from bireal_fpga.rtl.render import render

IMPL_BUF, IMPL_LB, IMPL_PICK = 0, 1, 2
IMPL_NAMES = {IMPL_BUF: "circular buffer", IMPL_LB: "parallel window", IMPL_PICK: "1x1 pick"}


@dataclass(frozen=True)
class Geometry:
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    cf: int

    @property
    def oh(self) -> int:
        return (self.h - self.kh) // self.sh + 1

    @property
    def ow(self) -> int:
        return (self.w - self.kw) // self.sw + 1

    @property
    def in_words(self) -> int:
        return self.h * self.w * self.cf

    @property
    def out_words(self) -> int:
        return self.oh * self.ow * self.kh * self.kw * self.cf

    @property
    def span(self) -> int:
        """Words from a window's first to its last word (FINN's minimum buffer)."""
        return ((self.kh - 1) * self.w + self.kw) * self.cf

    @property
    def row_extra(self) -> int:
        """Buffer words beyond ``span`` for one output word per cycle inside a frame."""
        return (self.sh - 1) * self.w * self.cf + 2

    @property
    def last_window(self) -> int:
        """First word of the frame's last window."""
        return ((self.oh - 1) * self.sh * self.w + (self.ow - 1) * self.sw) * self.cf

    def frame_loss(self, depth: int) -> int:
        """Cycles the reader waits per frame for the next frame's first windows."""
        slack = self.in_words - self.last_window - 2 * self.kh * self.kw * self.cf + 2
        return max(0, slack - (depth - self.span))

    def buf_cycles(self, depth: int) -> int:
        """Cycles per frame of the circular-buffer generator (matches its simulation)."""
        return max(self.in_words, self.out_words + self.frame_loss(depth))

    def masks(self) -> tuple[str, str]:
        """Pixels completing a window (its bottom-right corner) on the stride grid."""

        def mask(n: int, k: int, s: int, o: int) -> str:
            return mask_literal(
                [i >= k - 1 and (i - k + 1) % s == 0 and (i - k + 1) // s < o for i in range(n)]
            )

        return mask(self.w, self.kw, self.sw, self.ow), mask(self.h, self.kh, self.sh, self.oh)


def geometry(h: int, w: int, kh: int, kw: int, sh: int, sw: int, cf: int) -> Geometry:
    """The generator's geometry of an image: a one-pixel-wide image is read as one row (the
    same word order)."""
    if w == 1 and h > 1:
        return Geometry(w, h, kw, kh, sw, sh, cf)
    return Geometry(h, w, kh, kw, sh, sw, cf)


def requested_style(ram_style: str) -> str:
    """The memory request of the node's ``ram_style``: FINN's default ``distributed`` is
    taken as ``auto``; ``block`` and ``ultra`` as asked."""
    return memory.AUTO if ram_style == memory.DISTRIBUTED else ram_style


def choose_depth(g: Geometry, width: int, requested: str) -> tuple[int, str]:
    """The circular buffer's depth and memory style: the lean depth, or the full one (which
    removes the per-frame refill wait) where that needs no more memory of the same style."""
    lean = g.span + g.row_extra
    full = lean + g.frame_loss(lean)
    style = memory.memory_style(lean, width, requested)
    if memory.memory_style(full, width, requested) == style and memory.memory_units(
        width, full, style
    ) <= memory.memory_units(width, lean, style):
        return full, style
    return lean, style


@dataclass(frozen=True)
class BufferPlan:
    """The sliding window's implementation and its memory (``width`` 0: none)."""

    impl: int
    depth: int  # circular buffer words, line buffer words (image width), 2 for a pick
    width: int  # bits per memory word (all kh - 1 line buffers side by side)
    style: str
    cycles: int  # per frame


def plan_buffer(g: Geometry, width: int, ram_style: str, parallel: bool) -> BufferPlan:
    """How the generator builds the window of ``width``-bit input words (see the module
    docstring); ``ram_style``: the node's attribute."""
    requested = requested_style(ram_style)
    if g.kh * g.kw == 1:
        return BufferPlan(IMPL_PICK, 2, 0, memory.DISTRIBUTED, g.in_words)
    if parallel:
        lb_width = (g.kh - 1) * width
        style = memory.memory_style(g.w, lb_width, requested)
        return BufferPlan(IMPL_LB, g.w, lb_width, style, g.in_words)
    depth, style = choose_depth(g, width, requested)
    return BufferPlan(IMPL_BUF, depth, width, style, g.buf_cycles(depth))


def mem_resources(b: BufferPlan) -> tuple[tuple[str, int], ...]:
    """The buffer memory for reports: its bits, and RAMB18s, URAMs or LUTRAM bits."""
    if b.impl == IMPL_PICK:
        return (("buffer_bits", 0),)
    if b.width == 0:
        return ()
    bits = b.depth * b.width
    if b.style == memory.BLOCK:
        return (("buffer_bits", bits), ("bram18", int(2 * memory.bram36(b.width, b.depth))))
    if b.style == memory.ULTRA:
        return (("buffer_bits", bits), ("uram", memory.uram(b.width, b.depth)))
    return (("buffer_bits", bits), ("lutram_bits", bits))


@dataclass(frozen=True)
class SwgParams:
    node: str
    impl: int
    impl_name: str
    in_width: int
    out_width: int
    h: int
    w: int
    cf: int
    kh: int
    kw: int
    sh: int
    sw: int
    oh: int
    ow: int
    xmask: str
    ymask: str
    depth: int
    style: int
    style_name: str
    pbits: int
    inc_kh: int
    inc_w: int
    inc_h: int
    inc_f: int


def generate(model: ModelWrapper, node: Any) -> RtlLayer:
    inst = getCustomOp(node)
    types = inst.get_nodeattr_types()
    kh, kw = ints(node, inst, "ConvKernelDim", 2)
    h, w = ints(node, inst, "IFMDim", 2)
    sh, sw = ints(node, inst, "Stride", 2)
    dil = ints(node, inst, "Dilation", 2)
    channels = int(inst.get_nodeattr("IFMChannels"))
    simd = int(inst.get_nodeattr("SIMD"))
    parallel = int(inst.get_nodeattr("parallel_window"))
    if dil != [1, 1]:
        raise param_error(node, "Dilation", dil, "only dilation 1 is implemented")
    if "dynamic_mode" in types and int(inst.get_nodeattr("dynamic_mode")):
        raise param_error(node, "dynamic_mode", 1, "runtime-reprogrammable windows are not built")
    if "M" in types and int(inst.get_nodeattr("M")) != 1:
        raise param_error(node, "M", inst.get_nodeattr("M"), "only M=1 is implemented")
    if simd < 1 or channels % simd:
        raise param_error(node, "SIMD", simd, f"must divide IFMChannels={channels}")
    if min(kh, kw, h, w, sh, sw) < 1 or kh > h or kw > w:
        raise param_error(
            node, "ConvKernelDim", [kh, kw], f"needs 1 <= kernel <= IFMDim={[h, w]}, stride >= 1"
        )
    g = Geometry(h, w, kh, kw, sh, sw, channels // simd)
    ofm = ints(node, inst, "OFMDim", 2)
    if ofm != [g.oh, g.ow]:
        raise param_error(node, "OFMDim", ofm, f"IFMDim, kernel and stride give {[g.oh, g.ow]}")
    if parallel and kh * kw > 1 and simd != channels:
        raise param_error(
            node,
            "parallel_window",
            1,
            f"a whole-window word needs SIMD == IFMChannels={channels} (SIMD={simd}): FINN's "
            "per-fold window layout differs from its python (im2col) order",
        )
    inp = input_port(inst, node, 0)
    out = output_port(inst, node, 0)
    ram_style = str(inst.get_nodeattr("ram_style"))
    if ram_style not in memory.REQUESTS:
        raise param_error(node, "ram_style", ram_style, f"one of {', '.join(memory.REQUESTS)}")
    g = geometry(g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.cf)
    width = inp.fmt.width
    plan = plan_buffer(g, width, ram_style, bool(parallel))
    impl, depth, style, cycles = plan.impl, plan.depth, plan.style, plan.cycles
    resources = mem_resources(plan)
    xmask, ymask = g.masks()
    p = SwgParams(
        node=node.name,
        impl=impl,
        impl_name=IMPL_NAMES[impl],
        in_width=width,
        out_width=out.fmt.width,
        h=g.h,
        w=g.w,
        cf=g.cf,
        kh=g.kh,
        kw=g.kw,
        sh=g.sh,
        sw=g.sw,
        oh=g.oh,
        ow=g.ow,
        xmask=xmask,
        ymask=ymask,
        depth=depth,
        style=memory.style_code(style),
        style_name=style,
        pbits=(g.in_words + g.span + depth).bit_length() + 1,
        inc_kh=g.w * g.cf,
        inc_w=g.sw * g.cf,
        inc_h=g.sh * g.w * g.cf,
        inc_f=(g.h - (g.oh - 1) * g.sh) * g.w * g.cf,
    )
    return RtlLayer(
        node=node.name,
        op_type=node.op_type,
        inputs=(inp,),
        outputs=(out,),
        files=((f"{node.name}.sv", render("layers/sliding_window.sv.j2", p=p)),),
        library=(
            "bireal_swg.sv",
            "bireal_swg_buf.sv",
            "bireal_swg_lb.sv",
            "bireal_swg_pick.sv",
            "bireal_swg_ram.sv",
        ),
        cycles=cycles,
        resources=resources,
    )
