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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bireal_fpga.rtl.layers.base import RtlLayer, input_port, output_port, param_error
from bireal_fpga.rtl.layers.fmpadding import ints, mask_literal
from bireal_fpga.rtl.render import render

IMPL_BUF, IMPL_LB, IMPL_PICK = 0, 1, 2
IMPL_NAMES = {IMPL_BUF: "circular buffer", IMPL_LB: "parallel window", IMPL_PICK: "1x1 pick"}
STYLES = {"distributed": 0, "block": 1, "ultra": 2}
# by default memories up to this size, or this shallow (a block RAM would be 3/4 empty), go
# to LUTRAM
LUTRAM_MAX_BITS = 4096
LUTRAM_MAX_DEPTH = 128


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


def bram18(depth: int, width: int) -> int:
    """18 Kbit block RAMs for a depth x width memory (FINN's aspect-ratio table)."""
    for max_depth, bits in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)):
        if depth <= max_depth:
            return math.ceil(width / bits)
    return math.ceil(depth / 16384) * width


def mem_style(requested: str, depth: int, width: int) -> str:
    """``block``/``ultra`` as the node asks; otherwise (FINN's default ``distributed`` and
    ``auto``) LUTRAM for small memories and block RAM for the others."""
    if requested in ("block", "ultra"):
        return requested
    small = depth <= LUTRAM_MAX_DEPTH or depth * width <= LUTRAM_MAX_BITS
    return "distributed" if small else "block"


def mem_cost(style: str, depth: int, width: int) -> int:
    if style == "block":
        return bram18(depth, width)
    if style == "ultra":
        return math.ceil(depth / 4096) * math.ceil(width / 72)
    return math.ceil(depth / 64) * width


def mem_resources(style: str, depth: int, width: int) -> tuple[tuple[str, int], ...]:
    key = {"block": "bram18", "ultra": "uram", "distributed": "lutram_bits"}[style]
    value = depth * width if style == "distributed" else mem_cost(style, depth, width)
    return (("buffer_bits", depth * width), (key, value))


def choose_depth(g: Geometry, width: int, requested: str) -> tuple[int, str]:
    """The circular buffer's depth and memory style."""
    lean = g.span + g.row_extra
    full = lean + g.frame_loss(lean)
    style = mem_style(requested, lean, width)
    if mem_style(requested, full, width) == style and mem_cost(style, full, width) <= mem_cost(
        style, lean, width
    ):
        return full, style
    return lean, style


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
    if g.w == 1 and g.h > 1:
        # a one-pixel-wide image: the same word order read as one row
        g = Geometry(g.w, g.h, g.kw, g.kh, g.sw, g.sh, g.cf)
    requested = str(inst.get_nodeattr("ram_style"))
    width = inp.fmt.width
    if kh * kw == 1:
        impl, depth, style, cycles = IMPL_PICK, 2, "distributed", g.in_words
        resources: tuple[tuple[str, int], ...] = (("buffer_bits", 0),)
    elif parallel:
        depth = g.w
        style = mem_style(requested, depth, (g.kh - 1) * width)
        impl, cycles = IMPL_LB, g.in_words
        resources = mem_resources(style, depth, (g.kh - 1) * width) if g.kh > 1 else ()
    else:
        depth, style = choose_depth(g, width, requested)
        impl, cycles = IMPL_BUF, g.buf_cycles(depth)
        resources = mem_resources(style, depth, width)
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
        style=STYLES[style],
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
