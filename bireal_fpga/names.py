"""Every name that more than one stage relies on: the build folder's artefacts and the keys of
the network's layer outputs (the "trace" that stages are compared by).

This module imports nothing, so every layer of the package can use it. The golden model is the
one exception on purpose: it spells the keys itself and imports nothing of the project (a bug
here would otherwise agree with itself).
"""

from __future__ import annotations

from collections.abc import Iterable

# ---- the build folder (bireal_fpga.flow owns it; one file or folder per artefact) -------------
MODEL = "model.pt"  # the float model: a checkpoint (spec inside)
SOURCE = "source.onnx"  # an imported model (Brevitas QONNX) exactly as the user gave it
SOURCE_MAP = "source_map.json"  # where its layers are in it, and their scales
INTEGER = "integer.npz"  # its integer inference form
QONNX = "qonnx.onnx"  # QONNX export, FINN's streamlined dialect
HW = "hw.onnx"  # generic FINN HW layers (FINN's python execution runs on it)
SPECIALIZED = "specialized.onnx"  # one dataflow partition, layers specialized for the part
FOLDED = "folded.onnx"  # PE / SIMD / memories chosen
FOLDING_CONFIG = "folding_config.json"  # the folding in FINN's format (edit, pass back)
RTL_GRAPH = "rtl.onnx"  # width converters and FIFOs inserted, FIFO depths sized
RTL = "rtl"  # every layer's SystemVerilog, memory images, the top, manifest.json
RTL_MANIFEST = "manifest.json"  # in rtl/: what the design is (ports, files, FIFOs, weights)
SIM = "sim"  # the compiled Verilator model of the stitched top
SYNTH = "synth.json"  # Yosys resource estimates per layer and in total
SHELL = "shell"  # the Verilog-2001 shell (AXI DMA streams, AXI-Lite control), shell.json
SHELL_MANIFEST = "shell.json"  # in shell/: ports, stream widths, register map, build id
SHELL_SIM = "shell_sim"  # the compiled Verilator model of shell + accelerator (a DMA's view)
VIVADO = "vivado"  # the Vivado project as generated TCL, with its sources (no tool run)
VIVADO_WORK = "vivado_work"  # where Vivado runs (kept after a failure for its logs)
BITSTREAM = "bitstream"  # <base>.bit, <base>.hwh, Vivado's reports, manifest.json
BITSTREAM_MANIFEST = "manifest.json"  # in bitstream/ and bitstreams/<BOARD>/
REPORT_HTML = "report.html"  # report.json for people: tables and plots, readable offline
FIT = "fit.json"  # the fit loop: the cost model's correction after Yosys overturned a verdict
REPORT = "report.json"  # what the build did and measured
CONFIG = "build_config.json"  # the BuildConfig the build ran with
FLOW_DIR = ".flow"  # per-step records (input hashes, output hashes), staging, lock
ARTEFACTS: tuple[str, ...] = (
    *(
        MODEL,
        SOURCE,
        SOURCE_MAP,
        INTEGER,
        QONNX,
        HW,
        SPECIALIZED,
        FOLDED,
        FOLDING_CONFIG,
        RTL_GRAPH,
        RTL,
        SIM,
    ),
    *(SYNTH, SHELL, SHELL_SIM, VIVADO, BITSTREAM, FIT, REPORT, REPORT_HTML, CONFIG),
)

# ---- layer outputs ----------------------------------------------------------------------------
STEM = "stem"  # after the stem (and its max pool), before the first block
BLOCK_PREFIX = "blocks."
HEAD = "head"  # the class scores
TOP1 = "top1"  # the best class index (a --top1 build's output)
SCORES_TENSOR = "scores"  # the graph tensor that carries HEAD


def block(index: int) -> str:
    """The key of block ``index``'s output (after its residual add)."""
    return f"{BLOCK_PREFIX}{index}"


def layer_keys(num_blocks: int) -> list[str]:
    """Every layer output of a net with ``num_blocks`` blocks, in network order."""
    return [STEM] + [block(i) for i in range(num_blocks)] + [HEAD]


def is_layer_tensor(tensor: str) -> bool:
    """Whether a graph tensor of the exported model carries a layer output."""
    return tensor in (STEM, SCORES_TENSOR) or tensor.startswith(BLOCK_PREFIX)


def trace_key(tensor: str) -> str:
    """The trace key of a layer-output tensor (``scores`` -> ``head``)."""
    return HEAD if tensor == SCORES_TENSOR else tensor


def network_order(keys: Iterable[str]) -> list[str]:
    """``keys`` sorted as the network computes them (stem, blocks by index, head, top1)."""

    def rank(key: str) -> tuple[int, int]:
        if key == STEM:
            return (0, 0)
        if key.startswith(BLOCK_PREFIX) and key[len(BLOCK_PREFIX) :].isdigit():
            return (1, int(key[len(BLOCK_PREFIX) :]))
        if key == HEAD:
            return (2, 0)
        if key == TOP1:
            return (3, 0)
        return (4, 0)

    return sorted(keys, key=lambda k: (rank(k), k))
