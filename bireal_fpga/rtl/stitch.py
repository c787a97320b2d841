"""The stitched accelerator: every node's RTL connected into one top module.

Input: a folded FINN graph in which every edge already is a ``StreamingFIFO`` and every width
mismatch a ``StreamingDataWidthConverter`` (FINN's ``InsertDWC`` and ``InsertFIFO``; see
``prepare_rtl_graph``). Output: an RTL folder holding the layer modules (``hw/rtl`` copies),
one wrapper per node, their memory images, the top module and ``manifest.json``.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from tqdm import tqdm

from bireal_fpga import names
from bireal_fpga.arch.images import write_hex
from bireal_fpga.arch.ops import generic_op
from bireal_fpga.arch.streams import StreamFormat
from bireal_fpga.errors import BiRealError
from bireal_fpga.hwlayers.finn_env import finn_ready
from bireal_fpga.rtl.layers import generate_layer
from bireal_fpga.rtl.layers.base import WEIGHT_BUS_BITS, WEIGHT_PORT, RtlLayer, StreamPort
from bireal_fpga.rtl.monitor import Monitor
from bireal_fpga.rtl.render import library_file, render

TOP_NAME = "bireal_accel"
WEIGHTS_FILE = "weights.hex"
WEIGHTS_BIN = "weights.bin"


class StitchError(BiRealError):
    """The graph cannot be stitched (an edge whose two ends disagree, a fan-out, ...)."""


@dataclass(frozen=True)
class Edge:
    tensor: str
    sig: str
    width: int
    producer: str
    consumer: str


@dataclass(frozen=True)
class Conn:
    port: str
    sig: str


@dataclass(frozen=True)
class Instance:
    module: str
    conns: tuple[Conn, ...]
    wgt_base: int | None = None  # first beat of its run-time weights on the weight bus


@dataclass(frozen=True)
class TopParams:
    name: str
    source: str
    in_width: int
    in_raw_width: int
    in_elems: int
    in_bits: int
    out_width: int
    out_raw_width: int
    out_elems: int
    out_bits: int
    in_sig: str
    out_sig: str
    edges: tuple[Edge, ...]
    layers: tuple[Instance, ...]
    wgt_beats: int = 0  # beats of one load of the weight bus (0: no run-time weights)


@dataclass(frozen=True)
class Design:
    """A stitched design on disk (``rtl/``), as recorded in its ``manifest.json``."""

    top: str
    rtl_dir: Path
    input: StreamPort
    output: StreamPort
    fifos: tuple[Monitor, ...]  # one per StreamingFIFO node
    source_names: tuple[str, ...]
    data_names: tuple[str, ...]
    layer_cycles: tuple[tuple[str, str, int], ...]  # (node, op type, cycles per frame)
    layer_files: tuple[tuple[str, tuple[str, ...]], ...] = ()  # node -> its .sv + data files
    # the network's layer outputs (stem, blocks.<i>, scores) as streams the testbench can
    # record: port = the top's signal carrying them
    taps: tuple[StreamPort, ...] = ()
    # run-time weights: (node, first beat, beats) on the weight bus, whose beats are in
    # WEIGHTS_FILE (hex, one 64-bit beat per line) and WEIGHTS_BIN (little-endian uint64)
    weight_layers: tuple[tuple[str, int, int], ...] = ()

    @property
    def weight_beats(self) -> int:
        return sum(n for _, _, n in self.weight_layers)

    def weight_words(self) -> list[int]:
        """The weight bus beats of one load (empty without run-time weights)."""
        if not self.weight_layers:
            return []
        return [int(w, 16) for w in (self.rtl_dir / WEIGHTS_FILE).read_text().split()]

    @property
    def sources(self) -> list[Path]:
        return [self.rtl_dir / n for n in self.source_names]

    @property
    def data_files(self) -> list[Path]:
        return [self.rtl_dir / n for n in self.data_names]

    @property
    def cycles(self) -> int:
        """Estimated initiation interval: the slowest layer's cycles per frame."""
        return max(c for _, _, c in self.layer_cycles)

    @property
    def bottleneck(self) -> str:
        """The slowest layer (of equals, a compute layer rather than a FIFO or converter)."""
        plumbing = ("StreamingFIFO", "StreamingDataWidthConverter")
        return max(self.layer_cycles, key=lambda t: (t[2], not t[1].startswith(plumbing)))[0]

    def manifest(self) -> dict[str, Any]:
        def port(p: StreamPort) -> dict[str, Any]:
            return {
                "port": p.port,
                "tensor": p.tensor,
                "axi_width": p.fmt.axi_width,
                **asdict(p.fmt),
                "words": p.words,
                "folded_shape": list(p.folded_shape),
            }

        return {
            "top": self.top,
            "input": port(self.input),
            "output": port(self.output),
            "sources": list(self.source_names),
            "data_files": list(self.data_names),
            "fifos": [asdict(m) for m in self.fifos],
            "layers": [
                {"node": n, "op_type": o, "cycles": c, "files": list(files)}
                for (n, o, c), (_, files) in zip(self.layer_cycles, self.layer_files, strict=True)
            ],
            "taps": [port(t) for t in self.taps],
            "weights": {
                "port": WEIGHT_PORT,
                "bits": WEIGHT_BUS_BITS,
                "beats": self.weight_beats,
                "file": WEIGHTS_FILE if self.weight_layers else None,
                "binary": WEIGHTS_BIN if self.weight_layers else None,
                "layers": [
                    {"node": n, "first_beat": b, "beats": c} for n, b, c in self.weight_layers
                ],
            },
            "estimated_cycles": self.cycles,
            "bottleneck": self.bottleneck,
        }


def load_design(rtl_dir: Path) -> Design:
    """The design described by ``rtl_dir/manifest.json``."""
    path = Path(rtl_dir) / names.RTL_MANIFEST
    try:
        m = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StitchError(f"'{path}' is not a stitched design manifest ({exc})") from None

    def port(d: dict[str, Any]) -> StreamPort:
        fmt = StreamFormat(int(d["elem_bits"]), bool(d["signed"]), int(d["elems"]))
        return StreamPort(d["port"], d["tensor"], fmt, int(d["words"]), tuple(d["folded_shape"]))

    return Design(
        m["top"],
        Path(rtl_dir),
        port(m["input"]),
        port(m["output"]),
        tuple(Monitor(**f) for f in m["fifos"]),
        tuple(m["sources"]),
        tuple(m["data_files"]),
        tuple((d["node"], d["op_type"], int(d["cycles"])) for d in m["layers"]),
        tuple((d["node"], tuple(d["files"])) for d in m["layers"]),
        tuple(port(t) for t in m.get("taps", [])),
        tuple(
            (d["node"], int(d["first_beat"]), int(d["beats"]))
            for d in m.get("weights", {}).get("layers", [])
        ),
    )


def _sig(index: int) -> str:
    return f"t{index}"


def stitch(
    model: ModelWrapper,
    rtl_dir: Path,
    *,
    name: str = TOP_NAME,
    source: str = names.RTL_GRAPH,
    progress: bool = False,
) -> Design:
    """Generate every node's RTL and the top module into ``rtl_dir`` (created); ``source``:
    the graph's file name, for the top's header."""
    finn_ready()
    rtl_dir.mkdir(parents=True, exist_ok=True)
    nodes = list(model.graph.node)
    layers: list[RtlLayer] = []
    for node in tqdm(nodes, desc="rtl", disable=not progress, leave=False):
        layer = generate_layer(model, node)
        layer.write(rtl_dir)
        layers.append(layer)
    for lib in sorted({n for layer in layers for n in layer.library}):
        shutil.copyfile(library_file(lib), rtl_dir / lib)

    g_in = model.graph.input[0].name
    g_out = model.graph.output[0].name
    producers: dict[str, tuple[RtlLayer, StreamPort]] = {}
    consumers: dict[str, tuple[RtlLayer, StreamPort]] = {}
    for layer in layers:
        for p in layer.outputs:
            producers[p.tensor] = (layer, p)
        for p in layer.inputs:
            if p.tensor in consumers:
                raise StitchError(
                    f"tensor '{p.tensor}' feeds two nodes ({consumers[p.tensor][0].node}, "
                    f"{layer.node}): fan-out needs a DuplicateStreams node"
                )
            consumers[p.tensor] = (layer, p)
    if g_in not in consumers or g_out not in producers:
        raise StitchError(f"graph input '{g_in}' or output '{g_out}' is not a stream")

    sigs: dict[str, str] = {}
    edges: list[Edge] = []
    order = [g_in] + [p.tensor for layer in layers for p in layer.outputs]
    for tensor in order:
        prod = producers.get(tensor)
        cons = consumers.get(tensor)
        if cons is None and tensor != g_out:
            raise StitchError(
                f"tensor '{tensor}' of node '{prod[0].node if prod else '?'}' "
                "is produced but never consumed"
            )
        if prod is not None and cons is not None and prod[1].fmt.width != cons[1].fmt.width:
            raise StitchError(
                f"tensor '{tensor}': {prod[0].node} writes {prod[1].fmt.width}-bit words, "
                f"{cons[0].node} reads {cons[1].fmt.width}-bit words (a width converter is "
                "missing)"
            )
        port = (prod or cons)[1]  # type: ignore[index]
        sig = _sig(len(edges))
        sigs[tensor] = sig
        edges.append(
            Edge(
                tensor,
                sig,
                port.fmt.width,
                prod[0].node if prod else "in0_V",
                cons[0].node if cons else "out0_V",
            )
        )

    weight_layers: list[tuple[str, int, int]] = []
    beats: list[int] = []
    for layer in layers:
        if layer.load is not None:
            weight_layers.append((layer.node, len(beats), len(layer.load.beats)))
            beats.extend(layer.load.beats)
    bases = {node: first for node, first, _ in weight_layers}
    instances = tuple(
        Instance(
            layer.module,
            tuple(Conn(p.port, sigs[p.tensor]) for p in (*layer.inputs, *layer.outputs)),
            bases.get(layer.node),
        )
        for layer in layers
    )
    if beats:
        write_hex(rtl_dir / WEIGHTS_FILE, beats, WEIGHT_BUS_BITS)
        np.array(beats, dtype=np.uint64).astype("<u8").tofile(rtl_dir / WEIGHTS_BIN)
    inp = consumers[g_in][1]
    out = producers[g_out][1]
    top = TopParams(
        name=name,
        source=source,
        in_width=inp.fmt.axi_width,
        in_raw_width=inp.fmt.width,
        in_elems=inp.fmt.elems,
        in_bits=inp.fmt.elem_bits,
        out_width=out.fmt.axi_width,
        out_raw_width=out.fmt.width,
        out_elems=out.fmt.elems,
        out_bits=out.fmt.elem_bits,
        in_sig=sigs[g_in],
        out_sig=sigs[g_out],
        edges=tuple(edges),
        layers=instances,
        wgt_beats=len(beats),
    )
    (rtl_dir / f"{name}.sv").write_text(render("top.sv.j2", top=top))

    fifos = []
    for node in nodes:
        if generic_op(node.op_type) != "StreamingFIFO":
            continue
        a, b = sigs[node.input[0]], sigs[node.output[0]]
        pre = f"{name}__DOT__"
        fifos.append(
            Monitor(
                node.name,
                f"{pre}{a}_tvalid",
                f"{pre}{a}_tready",
                f"{pre}{b}_tvalid",
                f"{pre}{b}_tready",
                _stream_label(node, producers, consumers),
            )
        )
    libs = sorted({n for layer in layers for n in layer.library})
    taps = tuple(
        StreamPort(
            sigs[t], t, producers[t][1].fmt, producers[t][1].words, producers[t][1].folded_shape
        )
        for t in sigs
        if t in producers and names.is_layer_tensor(t)
    )
    design = Design(
        top=name,
        rtl_dir=rtl_dir,
        input=inp,
        output=out,
        fifos=tuple(fifos),
        source_names=tuple(libs + [f"{layer.module}.sv" for layer in layers] + [f"{name}.sv"]),
        data_names=tuple(
            fname for layer in layers for fname, _ in layer.files if not fname.endswith(".sv")
        ),
        layer_cycles=tuple((layer.node, layer.op_type, layer.cycles) for layer in layers),
        layer_files=tuple(
            (layer.node, (*layer.library, *(fname for fname, _ in layer.files))) for layer in layers
        ),
        taps=taps,
        weight_layers=tuple(weight_layers),
    )
    (rtl_dir / names.RTL_MANIFEST).write_text(json.dumps(design.manifest(), indent=2) + "\n")
    return design


def _stream_label(node: Any, producers: dict[str, Any], consumers: dict[str, Any]) -> str:
    """``tensor: producer -> consumer`` around a FIFO node (FIFOs carry the tensor through)."""
    tensor = node.input[0]
    src = producers[tensor][0].node if tensor in producers else "in0_V"
    dst = consumers[node.output[0]][0].node if node.output[0] in consumers else "out0_V"
    return f"{tensor}: {src} -> {dst}"


def set_fifo_depths(model: ModelWrapper, depths: dict[str, int]) -> ModelWrapper:
    """A copy of ``model`` whose StreamingFIFO nodes have the given depths."""
    model = copy.deepcopy(model)
    for node in model.graph.node:
        if node.name in depths:
            getCustomOp(node).set_nodeattr("depth", int(depths[node.name]))
    return model


def fifo_nodes(model: ModelWrapper) -> list[Any]:
    return [n for n in model.graph.node if generic_op(n.op_type) == "StreamingFIFO"]
