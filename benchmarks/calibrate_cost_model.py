"""Measure the RTL cost model against Yosys, fit its constants, and check its FIFO depths.

Usage (from the repository root, in the project's environment)::

    PY=.venv/bin/python; CAL=benchmarks/calibrate_cost_model.py
    $PY $CAL measure BUILD [BUILD ...] --data DIR   # a build folder's layers -> DIR/<name>.json
    $PY $CAL variants BUILD --spec "MVAU_hls_12,4,576,ultra;..." --data DIR
    $PY $CAL modules [--family xcup] --data DIR    # popcounts, LUT / block ROMs, converters, FIFOs
    $PY $CAL table DIR/*.json                       # cost model vs Yosys per design and layer type
    $PY $CAL fit DIR/*.json                         # least-squares fit of the CostConstants
    $PY $CAL fifo BUILD [BUILD ...]                 # predicted vs sized FIFO depths

``measure`` takes build folders (``bireal-fpga build ... --no-synth`` is enough: ``rtl.onnx``
and ``rtl/``); each layer of the stitched design is synthesized by Yosys on its own (the
family from the build's ``report.json``; results cached by content, layers equal up to their
name and memory contents once, as ``bireal_fpga.synth.report.synth_design`` does), and the
node's attributes, what the generator derives from its initializers
(``cost_model.derived_attrs``), the neighbouring layers and the cell counts are written as one
JSON row per layer. ``variants`` adds PE / SIMD / weight-memory variants of a build's MVAUs.
``table`` and ``fit`` read such rows: ``fit`` solves, per layer type, the non-negative least
squares of the constants that enter that type's cost linearly (:data:`FIT`) and prints them
with the table before and after; the constants in ``CostConstants`` are copied from it by
hand, with the designs they were fitted on in its docstring. ``fifo`` compares the
FIFO depths ``cost_model.inserted_layers`` predicts on a build's ``folded.onnx`` with those
FIFO sizing gave its ``rtl.onnx`` (the ``fifo_rows_*`` constants are such rows, per class).

Slow (one Yosys run per new layer: minutes per MVAU); results are cached in
``~/.cache/bireal-fpga/yosys``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bireal_fpga.arch.ops import generic_op
from bireal_fpga.synth import cost_model as cm
from bireal_fpga.synth.yosys_estimate import (
    LayerReport,
    LayerSources,
    YosysError,
    estimate_reports,
    synthesize_layer,
)

Row = dict[str, Any]
KEYS = ("LUT", "FF", "BRAM36", "URAM", "DSP")
SKIP_ATTRS = ("code_gen", "ip", "gen_top", "exec", "rtlsim", "res_")
POPCOUNT_SIMD = (8, 16, 32, 64, 128, 256, 512, 1024)

# per layer type: the CostConstants fields its cost depends on linearly, fitted together (the
# others are measured on their own: pc_* by `modules`, or set from the RTL: acc_lut_per_bit 1,
# one LUT per accumulator bit with its carry; mvau_cmp_lut_per_bit 1, a comparator per bit)
FIT: dict[str, tuple[str, ...]] = {
    "MVAU": (
        "mvau_pc_factor",
        "mvau_lut",
        "mvau_pe_lut",
        "xbuf_lut_per_bit",
        "load_lut",
        "add_lut_per_bit",
        "add_lut_per_bit_xc7",
        "affine_lut_per_bit",
        "rom_lut_block_mvau",
    ),
    "StreamingFIFO": (
        "fifo_lut",
        "fifo_srl_lut",
        "fifo_srl_lut_per_log",
        "fifo_ram_lut",
        "fifo_ram_lut_per_log",
        "fifo_ram_lut_per_bit",
    ),
    "StreamingDataWidthConverter": ("dwc_lut_per_slot", "dwc_lut_per_log", "dwc_lut"),
    "ConvolutionInputGenerator": ("swg_buf_lut", "swg_buf_lut_per_pbit", "swg_lut_per_bit"),
    "Thresholding": ("uni_lut_per_bit", "thresholding_lut", "cmp_lut_per_bit"),
    "FMPadding": ("fmpad_lut",),
}
# types whose fit weighs each layer by 1 / sqrt(its LUTs) (relative errors count: the MVAUs
# range from 100 to 23,000 LUTs and the small ones would not count at all); the others by LUTs
RELATIVE = ("MVAU",)


def _clean(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def layer_attrs(model: Any, node: Any) -> dict[str, Any]:
    """What the cost model reads of a node: its FINN attributes and the derived ones."""
    a = cm.node_attrs(node)
    a.update(cm.derived_attrs(model, node))
    return {k: _clean(v) for k, v in a.items() if not k.startswith(SKIP_ATTRS)}


# ---- measure: a build folder's layers ----------------------------------------------------------


def build_family(folder: Path) -> str:
    from bireal_fpga.boards import load_board

    report = json.loads((folder / "report.json").read_text())
    return load_board(report["board"]["name"]).family


def measure_build(folder: Path, family: str, jobs: int = 2) -> list[Row]:
    """One row per layer of the build's stitched design: attributes, neighbours, Yosys."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.hwlayers.finn_env import finn_ready
    from bireal_fpga.rtl.stitch import load_design
    from bireal_fpga.synth.report import cache_dir, design_layers, signature

    finn_ready()
    model = ModelWrapper(str(folder / "rtl.onnx"))
    producer = {t: n for n in model.graph.node for t in n.output}
    consumers: dict[str, list[Any]] = defaultdict(list)
    for n in model.graph.node:
        for t in n.input:
            consumers[t].append(n)
    design = load_design(folder / "rtl")
    layers = design_layers(design)
    groups: dict[str, list[LayerSources]] = defaultdict(list)
    for layer in layers:
        groups[signature(design.rtl_dir, layer)].append(layer)
    reps = [g[0] for g in groups.values()]

    def one(layer: LayerSources) -> LayerReport | str:
        try:
            return synthesize_layer(design.rtl_dir, layer, family, cache_dir=cache_dir())
        except YosysError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = dict(zip([r.top for r in reps], pool.map(one, reps), strict=True))
    result = {m.top: done[g[0].top] for g in groups.values() for m in g}
    rows = []
    for n in model.graph.node:
        rep = result.get(n.name)
        if isinstance(rep, str):
            print(f"skipped: {rep}", file=sys.stderr)
        p = producer.get(n.input[0])
        c = consumers.get(n.output[0], [])
        inst = getCustomOp(n)
        row: Row = {
            "name": n.name,
            "op": n.op_type,
            "family": family,
            "attrs": layer_attrs(model, n),
            "producer": p.name if p is not None else None,
            "producer_op": p.op_type if p is not None else None,
            "consumers": [x.name for x in c],
            "consumer_ops": [x.op_type for x in c],
            "folded_out": _clean(list(inst.get_folded_output_shape())),
            "yosys": None
            if rep is None or isinstance(rep, str)
            else {"res": rep.resources.as_dict(), "cells": rep.cells},
        }
        rows.append(row)
    return rows


def mvau_variants(folder: Path, family: str, spec: str, jobs: int = 1) -> list[Row]:
    """``spec``: ``node,PE,SIMD,ram_style;...``: copies of the build's MVAU nodes so folded
    (``ultra`` with run-time weights), generated and synthesized on their own."""
    from onnx import NodeProto
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.hwlayers.finn_env import finn_ready
    from bireal_fpga.rtl.layers import generate_layer
    from bireal_fpga.synth.report import cache_dir
    from bireal_fpga.synth.yosys_estimate import layer_sources

    finn_ready()
    model = ModelWrapper(str(folder / "rtl.onnx"))
    work = Path("/tmp/bireal_calibrate/variants") / folder.name
    work.mkdir(parents=True, exist_ok=True)
    nodes, layers = [], []
    for item in spec.split(";"):
        name, pe, simd, style = item.split(",")
        v = NodeProto()
        v.CopyFrom(model.get_node_from_name(name))
        v.name = f"{name}_p{pe}s{simd}{style[0]}"
        inst = getCustomOp(v)
        inst.set_nodeattr("PE", int(pe))
        inst.set_nodeattr("SIMD", int(simd))
        inst.set_nodeattr("ram_style", style)
        inst.set_nodeattr("runtime_writeable_weights", int(style == "ultra"))
        layer = generate_layer(model, v)
        layer.write(work)
        nodes.append(v)
        layers.append(layer_sources(layer, work))

    def one(layer: LayerSources) -> LayerReport | str:
        try:
            return synthesize_layer(work, layer, family, cache_dir=cache_dir())
        except YosysError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        reps = list(pool.map(one, layers))
    rows = []
    for v, rep in zip(nodes, reps, strict=True):
        if isinstance(rep, str):
            print(f"skipped: {rep}", file=sys.stderr)
            continue
        rows.append(
            {
                "name": v.name,
                "op": v.op_type,
                "family": family,
                "attrs": layer_attrs(model, v),
                "yosys": {"res": rep.resources.as_dict(), "cells": rep.cells},
            }
        )
    return rows


# ---- modules: standalone library modules -------------------------------------------------------


def popcount_source(n: int) -> str:
    return (
        f"module popcount_{n} (input logic clk, input logic [{n - 1}:0] a, b,\n"
        f"    output logic [{n.bit_length() - 1}:0] y);\n"
        f"    logic [{n - 1}:0] ra, rb;\n"
        "    always_ff @(posedge clk) begin ra <= a; rb <= b; y <= $countones(~(ra ^ rb)); end\n"
        "endmodule\n"
    )


def fit_popcount(points: dict[int, int]) -> tuple[float, float, float]:
    """Least squares of LUT = a S + b log2 S + c over S > 8, relative error weighted."""
    s = np.array(sorted(v for v in points if v > 8), dtype=float)
    y = np.array([points[int(v)] for v in s], dtype=float)
    a = np.stack([s, np.log2(s), np.ones_like(s)], axis=1) / y[:, None]
    coef, *_ = np.linalg.lstsq(a, np.ones_like(s), rcond=None)
    return float(coef[0]), float(coef[1]), float(coef[2])


def _wrapper(work: Path, name: str, module: str, params: str, ports: str, conns: str) -> str:
    (work / f"{name}.sv").write_text(
        f"module {name} ({ports});\n  {module} #({params}) u ({conns});\nendmodule\n"
    )
    return name


def module_layers(work: Path) -> list[tuple[str, LayerSources, dict[str, Any]]]:
    """(kind, layer, parameters) of every standalone module measured by ``modules``."""
    from bireal_fpga.rtl.layers.width_converter import ring_size
    from bireal_fpga.rtl.render import library_file

    work.mkdir(parents=True, exist_ok=True)
    out: list[tuple[str, LayerSources, dict[str, Any]]] = []
    for n in POPCOUNT_SIMD:
        (work / f"popcount_{n}.sv").write_text(popcount_source(n))
        out.append(
            ("popcount", LayerSources(f"popcount_{n}", (Path(f"popcount_{n}.sv"),)), {"S": n})
        )

    def rom(width: int, depth: int, style: int, seed: int = 1) -> None:
        name = f"rom_w{width}_d{depth}_st{style}_s{seed}"
        rng = random.Random(seed)
        digits = (width + 3) // 4
        (work / f"{name}.mem").write_text(
            "".join(f"{rng.getrandbits(width):0{digits}x}\n" for _ in range(depth))
        )
        aw = max(1, (depth - 1).bit_length())
        ports = (
            f"input logic clk, input logic en, input logic [{aw - 1}:0] addr, "
            f"output logic [{width - 1}:0] data"
        )
        params = f'.WIDTH({width}), .DEPTH({depth}), .STYLE({style}), .FILE("{name}.mem")'
        _wrapper(work, name, "bireal_mvau_rom", params, ports, ".*")
        src = (Path(f"{name}.sv"), library_file("bireal_mvau_rom.sv"))
        kind = "lut_rom" if style == 0 else "block_rom"
        out.append(
            (kind, LayerSources(name, src, (Path(f"{name}.mem"),)), {"W": width, "D": depth})
        )

    for d in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
        rom(64, d, 0)
    for w, d in ((576, 256), (1024, 256), (2304, 256), (232, 128)):
        rom(w, d, 0)
    for w in (9, 18, 23, 24, 25, 36, 72):
        for d in (512, 1024, 2048, 4096, 8192, 16384):
            rom(w, d, 1)
    stream = (
        "input logic clk, rst_n, input logic [{iw}:0] in_data, input logic in_valid, "
        "output logic in_ready, output logic [{ow}:0] out_data, output logic out_valid, "
        "input logic out_ready"
    )
    for iw, ow in ((8, 64), (64, 8), (64, 576), (576, 64), (8, 1152), (1152, 8), (40, 1280),
                   (24, 40), (40, 24), (128, 32), (576, 1152), (1152, 576)):  # fmt: skip
        cap, comb = ring_size(iw, ow)
        name = f"dwc_{iw}_{ow}"
        params = f".IW({iw}), .OW({ow}), .CAP({cap}), .COMB_READY(1'b{int(comb)})"
        _wrapper(work, name, "bireal_dwc", params, stream.format(iw=iw - 1, ow=ow - 1), ".*")
        src = (Path(f"{name}.sv"), library_file("bireal_dwc.sv"))
        out.append(("dwc", LayerSources(name, src), {"inWidth": iw, "outWidth": ow}))
    for w in (8, 64, 576):
        for d, style in [(2, "srl"), (5, "srl"), (16, "srl"), (33, "srl"), (34, "distributed"),
                         (128, "distributed"), (256, "distributed"), (600, "block"),
                         (4096, "block")]:  # fmt: skip
            name = f"fifo_{w}_{d}_{style}"
            params = f'.WIDTH({w}), .DEPTH({d}), .RAM_STYLE("{style}")'
            _wrapper(work, name, "bireal_fifo", params, stream.format(iw=w - 1, ow=w - 1), ".*")
            src = (Path(f"{name}.sv"), library_file("bireal_fifo.sv"))
            out.append(("fifo", LayerSources(name, src), {"W": w, "D": d, "style": style}))
    return out


def module_model(kind: str, p: dict[str, Any], family: str, c: cm.CostConstants) -> Any:
    """The cost model's price of a standalone module (None: not priced on its own)."""
    if kind == "popcount":
        return cm.Resources(LUT=round(cm.popcount_luts(p["S"], c)))
    if kind == "lut_rom":
        return cm.mem_cost(p["W"], p["D"], "distributed", family, c)
    if kind == "block_rom":
        return cm.mem_cost(p["W"], p["D"], "block", family, c)
    if kind == "dwc":
        return cm.dwc_cost(p, family, c)
    if kind == "fifo":
        attrs = {"depth": p["D"], "folded_shape": [1, p["W"]], "dataType": "BINARY"}
        return cm.fifo_cost(dict(attrs, ram_style=p["style"]), family, c)
    return None


def measure_modules(work: Path, family: str, jobs: int) -> list[Row]:
    from bireal_fpga.synth.report import cache_dir

    items = module_layers(work)
    reps = estimate_reports(
        work, [x[1] for x in items], family, jobs=jobs, cache_dir=cache_dir(), progress=True
    )
    return [
        {
            "name": layer.top,
            "kind": kind,
            "params": p,
            "family": family,
            "yosys": {"res": reps[layer.top].resources.as_dict(), "cells": reps[layer.top].cells},
        }
        for kind, layer, p in items
    ]


# ---- table, fit, fifo ------------------------------------------------------------------------


def load_rows(paths: list[Path]) -> list[tuple[str, Row]]:
    out = []
    for p in paths:
        for r in json.loads(Path(p).read_text()):
            if r.get("yosys") and "op" in r:
                out.append((Path(p).stem, r))
    return out


def model_of(r: Row, c: cm.CostConstants) -> cm.Resources:
    return cm.layer_cost(r["op"], r["attrs"], r["family"], c)


def type_table(rows: list[tuple[str, Row]], c: cm.CostConstants) -> str:
    """Cost model / Yosys per design and layer type, and per design in total."""
    agg: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for design, r in rows:
        m, y = model_of(r, c).as_dict(), r["yosys"]["res"]
        for op in (generic_op(r["op"]), "TOTAL"):
            a = agg[(design, op)]
            a["n"] += 1
            for k in KEYS:
                a["m" + k] += m[k]
                a["y" + k] += y[k]

    def err(a: dict[str, float], k: str) -> str:
        y = a["y" + k]
        return f"{(a['m' + k] - y) / y * 100:+6.1f}%" if y else "     - "

    lines = [
        f"{'design':22} {'layer type':28} {'n':>4}  {'LUT model/yosys':>17} (err)    FF err"
        "   BRAM36 model/yosys  URAM  DSP"
    ]
    order = sorted(agg.items(), key=lambda kv: (kv[0][0], kv[0][1] == "TOTAL", -kv[1]["yLUT"]))
    for (design, op), a in order:
        lines.append(
            f"{design:22} {op:28} {int(a['n']):4d}  {a['mLUT']:8.0f}/{a['yLUT']:<8.0f}"
            f"({err(a, 'LUT')})  {err(a, 'FF')}  {a['mBRAM36']:7.1f}/{a['yBRAM36']:<7.1f}"
            f"  {a['mURAM']:.0f}/{a['yURAM']:.0f}  {a['mDSP']:.0f}/{a['yDSP']:.0f}"
        )
    return "\n".join(lines)


def fit_constants(
    rows: list[tuple[str, Row]], c0: cm.CostConstants, ops: dict[str, tuple[str, ...]] = FIT
) -> cm.CostConstants:
    """Per layer type, the non-negative least squares of the LUT errors (weighted by
    1 / sqrt(LUTs) for :data:`RELATIVE` types) in the constants that enter its cost
    linearly."""
    from scipy.optimize import nnls

    c = c0
    for op, names in ops.items():
        sel = [r for _, r in rows if generic_op(r["op"]) == op]
        if not sel:
            continue
        zero = dataclasses.replace(c, **dict.fromkeys(names, 0.0))
        base = np.array([model_of(r, zero).LUT for r in sel], dtype=float)
        unit = 1000.0  # columns by a large step: the cost functions round to whole LUTs
        cols = [
            (np.array([model_of(r, dataclasses.replace(zero, **{n: unit})).LUT for r in sel])
             - base) / unit
            for n in names
        ]  # fmt: skip
        luts = np.array([r["yosys"]["res"]["LUT"] for r in sel], dtype=float)
        w = 1 / np.sqrt(np.maximum(luts, 100)) if op in RELATIVE else np.ones_like(luts)
        theta, _ = nnls(np.stack(cols, axis=1) * w[:, None], (luts - base) * w)
        c = dataclasses.replace(
            c, **{n: round(float(t), 4) for n, t in zip(names, theta, strict=True)}
        )
    return c


def sized_fifo_depths(rtl: Any) -> dict[str, int]:
    """The sized depth of every FIFO of an RTL graph, by the name ``inserted_layers`` gives
    the FIFO on the same edge of the folded graph (``<producer>-><consumer>``,
    ``<producer>->dwc-><consumer>`` on the producer's side of a converter, ``input->...``,
    ``...->output``)."""
    from qonnx.custom_op.registry import getCustomOp

    nodes = list(rtl.graph.node)
    prod = {t: n for n in nodes for t in n.output}
    cons: dict[str, list[Any]] = defaultdict(list)
    for n in nodes:
        for t in n.input:
            cons[t].append(n)

    def is_dwc(n: Any) -> bool:
        return generic_op(n.op_type) == "StreamingDataWidthConverter"

    out = {}
    for f in nodes:
        if generic_op(f.op_type) != "StreamingFIFO":
            continue
        p, q = prod.get(f.input[0]), (cons.get(f.output[0]) or [None])[0]
        depth = int(getCustomOp(f).get_nodeattr("depth"))
        if p is None:
            out[f"input->{q.name}"] = depth
        elif q is None:
            out[f"{p.name}->output"] = depth
        elif is_dwc(q):
            after = cons[cons[q.output[0]][0].output[0]][0]
            out[f"{p.name}->dwc->{after.name}"] = depth
        else:
            if is_dwc(p):
                p = prod[prod[p.input[0]].input[0]]
            out[f"{p.name}->{q.name}"] = depth
    return out


def fifo_report(builds: list[Path], c: cm.CostConstants) -> str:
    """Per build and FIFO class: the depths predicted on ``folded.onnx`` against the depths
    FIFO sizing gave ``rtl.onnx``, and the FIFOs' cost both ways."""
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.hwlayers.finn_env import finn_ready

    finn_ready()
    lines = []
    for b in builds:
        family = build_family(b)
        sized = sized_fifo_depths(ModelWrapper(str(b / "rtl.onnx")))
        by: dict[str, list[tuple[int, int, float, float]]] = defaultdict(list)
        for x in cm.inserted_layers(ModelWrapper(str(b / "folded.onnx")), c):
            if x.op_type != "StreamingFIFO":
                continue
            real = sized[x.name.split("@", 1)[1]]
            pred = int(x.attrs["depth"])
            cost_pred = cm.fifo_cost(x.attrs, family, c).LUT
            cost_real = cm.fifo_cost(dict(x.attrs, depth=real), family, c).LUT
            by[x.attrs["fifo_class"]].append((pred, real, cost_pred, cost_real))
        for fclass, pts in sorted(by.items()):
            predicted = np.array([p[0] for p in pts], dtype=float)
            depths = np.array([p[1] for p in pts], dtype=float)
            rel = np.abs(predicted - depths) / depths
            lut_p, lut_r = sum(p[2] for p in pts), sum(p[3] for p in pts)
            lines.append(
                f"{b.name:28} {fclass:9} n={len(pts):4d}  sized {depths.min():.0f}.."
                f"{depths.max():.0f}"
                f"  depth error median {np.median(rel) * 100:3.0f} % max {rel.max() * 100:4.0f} %"
                f"  LUT predicted {lut_p:7.0f} / at the sized depths {lut_r:7.0f}"
                f" ({(lut_p - lut_r) / max(lut_r, 1) * 100:+.0f} %)"
            )
    return "\n".join(lines)


# ---- the command line --------------------------------------------------------------------------


def _write(rows: list[Row], data: Path, name: str, merge: bool = False) -> None:
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"{name}.json"
    if merge and path.is_file():
        old = {r["name"]: r for r in json.loads(path.read_text())}
        old.update({r["name"]: r for r in rows})
        rows = list(old.values())
    path.write_text(json.dumps(rows) + "\n")
    print(f"{len(rows)} rows -> {path}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="Yosys and the cost model's inputs per layer of builds")
    m.add_argument("builds", nargs="+", type=Path)
    m.add_argument("--data", type=Path, required=True)
    m.add_argument("--jobs", type=int, default=2)
    v = sub.add_parser("variants", help="PE / SIMD / memory variants of a build's MVAUs")
    v.add_argument("build", type=Path)
    v.add_argument("--spec", required=True, help="node,PE,SIMD,ram_style;...")
    v.add_argument("--data", type=Path, required=True)
    v.add_argument("--jobs", type=int, default=1)
    mo = sub.add_parser("modules", help="standalone library modules")
    mo.add_argument("--family", default="xcup")
    mo.add_argument("--data", type=Path, required=True)
    mo.add_argument("--work", type=Path, default=Path("/tmp/bireal_calibrate/modules"))
    mo.add_argument("--jobs", type=int, default=2)
    for name in ("table", "fit"):
        p = sub.add_parser(name)
        p.add_argument("rows", nargs="+", type=Path)
    f = sub.add_parser("fifo", help="predicted vs sized FIFO depths of build folders")
    f.add_argument("builds", nargs="+", type=Path)
    args = ap.parse_args(argv)

    c = cm.CALIBRATED
    if args.cmd == "measure":
        for b in args.builds:
            _write(measure_build(b, build_family(b), args.jobs), args.data, b.name)
    elif args.cmd == "variants":
        rows = mvau_variants(args.build, build_family(args.build), args.spec, args.jobs)
        _write(rows, args.data, f"variants_{args.build.name}", merge=True)
    elif args.cmd == "modules":
        rows = measure_modules(args.work / args.family, args.family, args.jobs)
        _write(rows, args.data, f"modules_{args.family}")
        pts = {r["params"]["S"]: r["yosys"]["res"]["LUT"] for r in rows if r["kind"] == "popcount"}
        print("popcount fit: LUT = {:.4f} S + {:.4f} log2 S + {:.3f}".format(*fit_popcount(pts)))
        for r in rows:
            mod = module_model(r["kind"], r["params"], args.family, c)
            y = r["yosys"]["res"]
            print(f"  {r['name']:28} yosys LUT {y['LUT']:6d} FF {y['FF']:5d} BRAM36 "
                  f"{y['BRAM36']:5.1f}   model LUT {mod.LUT:6d} FF {mod.FF:5d} BRAM36 "
                  f"{mod.BRAM36:5.1f}")  # fmt: skip
    elif args.cmd == "fifo":
        print(fifo_report(args.builds, c))
    else:
        rows_ = load_rows(args.rows)
        if args.cmd == "table":
            print(type_table(rows_, c))
        else:
            fitted = fit_constants(rows_, c)
            for op, names in FIT.items():
                print(op + ": " + ", ".join(f"{n} = {getattr(fitted, n)}" for n in names))
            print("before:\n" + type_table(rows_, c))
            print("after:\n" + type_table(rows_, fitted))


if __name__ == "__main__":
    main()
