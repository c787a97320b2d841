"""``report.html``: the build report for people (bireal_fpga.report).

The report comes from a real build (the session's ``tiny_rtl``: the tiny preset for PYNQ-Z2
through RTL simulation, no Yosys) plus synthetic additions: Yosys's per-layer resources,
Vivado done and skipped, later checks, a build that stopped after folding, hostile names.
Each full render draws seven plots (a few seconds), so the renders are shared per module.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bireal_fpga import names
from bireal_fpga.errors import BiRealError
from bireal_fpga.report import ReportError, render_html, write_html_report

PER_LAYER_PLOTS = ("folding", "cycles", "resources_estimates", "resources_yosys")

VIVADO_DONE: dict[str, Any] = {
    "status": "done",
    "version": "2024.2",
    "utilization": {"LUT": 12345, "FF": 23456, "BRAM36": 7.5, "URAM": 0, "DSP": 147},
    "timing": {"wns_ns": 0.123, "tns_ns": 0.0, "whs_ns": 0.045, "clock_mhz": 100.0, "met": True},
    "bitstream": "/builds/tiny/bitstream/bireal_accel.bit",
    "project": "/builds/tiny/vivado_work/bireal_accel.xpr",
}
VIVADO_SKIPPED: dict[str, Any] = {
    "status": "skipped",
    "reason": "vivado is not on PATH",
    "project": "/builds/tiny/vivado/build.tcl",
}


# ---- reports ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base(tiny_rtl: Path) -> dict[str, Any]:
    """The real report of the ``tiny_rtl`` build."""
    return json.loads((tiny_rtl / names.REPORT).read_text())


def with_yosys(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with a fake Yosys section: one row per folded layer and sized FIFO."""
    out = copy.deepcopy(report)
    layers = [n for n in out["folding"] if n != "Defaults"] + list(out["fifo_sizing"]["depths"])
    per = {
        n: {"LUT": 10 + 7 * i, "FF": 3 * i, "BRAM36": i % 3 * 0.5, "URAM": 0, "DSP": i % 2}
        for i, n in enumerate(layers)
    }
    total = {k: sum(row[k] for row in per.values()) for k in ("LUT", "FF", "BRAM36", "URAM", "DSP")}
    out["rtl"]["resources"] = {
        "tool": "yosys synth_xilinx (pre place-and-route)",
        "layers_synthesized": len(per),
        "layers_sharing_a_result": 0,
        "family": "xc7",
        "total": total,
        "per_layer": per,
        "utilization": {},
    }
    out["rtl"]["fits"] = True
    return out


@pytest.fixture(scope="module")
def full(base: dict[str, Any]) -> dict[str, Any]:
    """Everything: Yosys, Vivado done, later checks (a driver run, the shell with a mismatch)."""
    out = with_yosys(base)
    out["vivado"] = copy.deepcopy(VIVADO_DONE)
    out["checks"] = {"driver on board": {"n": 4, "mismatches": 0, "first_mismatch": None}}
    out["shell"] = {
        "check": {"n": 8, "mismatches": 1, "first_mismatch": {"image": 3, "layer": "head"}},
        "registers": {"ap_start": 0},
    }
    return out


@pytest.fixture(scope="module")
def full_render(full: dict[str, Any]) -> tuple[str, dict[str, list[str]]]:
    return render_html(full)


@pytest.fixture(scope="module")
def skipped_render(base: dict[str, Any]) -> tuple[str, dict[str, list[str]]]:
    """The real report (no Yosys) with Vivado skipped."""
    out = copy.deepcopy(base)
    out["vivado"] = copy.deepcopy(VIVADO_SKIPPED)
    return render_html(out)


def stopped_after_folding(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` as a build that ran to ``folding`` (``--to-step folding``) would write."""
    out = copy.deepcopy(report)
    names_ = [s["name"] for s in out["stages"]]
    cut = names_.index("folding") + 1
    out["missing_stages"] = names_[cut:] + [s for s in out["missing_stages"] if s not in names_]
    out["stages"] = out["stages"][:cut]
    for key in ("fifo_sizing", "rtl", "fit_yosys", "shell", "vivado", "skipped"):
        out.pop(key, None)
    out["complete"] = False
    return out


def images(text: str) -> dict[str, Image.Image]:
    """Every plot of a page, by its key, decoded from its data URI."""
    found = re.findall(r'<img class="plot" id="plot-([^"]+)" alt="[^"]*" src="([^"]+)"', text)
    assert len(found) == text.count("<img"), "every image is a plot with a data URI"
    out: dict[str, Image.Image] = {}
    for key, src in found:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), src[:40]
        png = base64.b64decode(src[len(prefix) :], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        img = Image.open(io.BytesIO(png))
        img.load()
        out[key] = img
    return out


def section(text: str, ident: str) -> str:
    m = re.search(rf'<section id="{ident}">(.*?)</section>', text, re.S)
    assert m, f"no section {ident}"
    return m.group(1)


def assert_self_contained(text: str) -> None:
    for bad in ("http://", "https://", "<script", "<link", "url(", "<iframe", "javascript:"):
        assert bad not in text.lower(), bad
    assert all(s.startswith("data:") for s in re.findall(r'src="([^"]*)"', text))
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', text))


# ---- the full report --------------------------------------------------------------------------


def test_every_plot_is_a_png(full_render: tuple[str, dict[str, list[str]]]) -> None:
    text, plots = full_render
    imgs = images(text)
    expected = {"stages", "utilization", "fifo_depths", *PER_LAYER_PLOTS}
    assert set(imgs) == set(plots) == expected
    for key, img in imgs.items():
        assert img.format == "PNG", key
        assert img.width >= 300 and img.height >= 250, (key, img.size)
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 8, f"{key}: a blank image"


def test_per_layer_plots_show_every_layer(
    full: dict[str, Any], full_render: tuple[str, dict[str, list[str]]]
) -> None:
    _, plots = full_render
    estimated = list(full["estimates"]["per_layer"])
    assert plots["cycles"] == estimated
    assert plots["resources_estimates"] == estimated
    assert plots["folding"] == [n for n in full["folding"] if n != "Defaults"]
    assert plots["resources_yosys"] == list(full["rtl"]["resources"]["per_layer"])
    assert sorted(plots["fifo_depths"]) == sorted(full["fifo_sizing"]["depths"])
    assert plots["stages"] == [s["name"] for s in full["stages"]]
    assert plots["utilization"] == ["LUT", "FF", "BRAM36", "DSP"]  # PYNQ-Z2 has no URAM


def test_steps_and_completeness(
    full: dict[str, Any], full_render: tuple[str, dict[str, list[str]]]
) -> None:
    text, _ = full_render
    steps = section(text, "steps")
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td><td><code>([^<]+)</code>", steps)
    assert [name for _, name in rows] == [s["name"] for s in full["stages"]]
    assert f"{full['stages'][0]['seconds']:.2f}" in steps
    assert full["complete"] is False
    assert "incomplete" in text
    for missing in full["missing_stages"]:
        assert f"<code>{missing}</code>" in steps


def test_design_numbers(
    full: dict[str, Any], full_render: tuple[str, dict[str, list[str]]]
) -> None:
    text, _ = full_render
    design = section(text, "design")
    rtl = full["rtl"]
    for value in (
        full["board"]["name"],
        full["board"]["part"],
        f"{full['board']['clock_mhz']} MHz",
        f"{rtl['fps']['measured']:,.1f}",
        f"{rtl['latency_cycles']:,}",
        f"<code>{rtl['bottleneck']}</code>",
    ):
        assert value in design, value
    assert f"measured {rtl['interval_cycles']['measured']:,.0f}" in design
    assert str(full["spec"]["num_classes"]) + " classes" in design


def test_vivado_numbers_appear(full_render: tuple[str, dict[str, list[str]]]) -> None:
    text, _ = full_render
    vivado = section(text, "vivado")
    assert '<span class="badge ok">done</span>' in vivado
    assert "2024.2" in vivado
    for value in ("12,345", "23,456", "7.5", "0.123", "0.045", str(VIVADO_DONE["bitstream"])):
        assert value in vivado, value
    assert '<span class="badge ok">met</span>' in vivado
    assert "23.2&nbsp;%" in vivado  # 12345 of PYNQ-Z2's 53200 LUTs
    resources = section(text, "resources")
    assert "<th>Vivado</th>" in resources and "12,345 (23.2&nbsp;%)" in resources


def test_checks_shown_generically(full_render: tuple[str, dict[str, list[str]]]) -> None:
    text, _ = full_render
    verification = section(text, "verification")
    rows = re.findall(
        r"<tr><td>([^<]+)</td>.*?<span class=\"badge (\w+)\">(\w+)</span>", verification
    )
    verdicts = {name: verdict for name, _, verdict in rows}
    assert verdicts["driver on board"] == "pass"
    assert verdicts["shell"] == "FAIL"
    assert [v for k, v in verdicts.items() if k.startswith(("golden", "RTL"))] == ["pass"] * 2
    assert "head" in verification  # the shell's first mismatch
    assert "ap_start" in section(text, "shell")


def test_self_contained(full_render: tuple[str, dict[str, list[str]]]) -> None:
    text, _ = full_render
    assert_self_contained(text)
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def test_deterministic(full: dict[str, Any], full_render: tuple[str, dict[str, list[str]]]) -> None:
    assert render_html(copy.deepcopy(full)) == full_render


# ---- partial reports --------------------------------------------------------------------------


def test_no_yosys_and_vivado_skipped(
    base: dict[str, Any], skipped_render: tuple[str, dict[str, list[str]]]
) -> None:
    text, plots = skipped_render
    assert base["rtl"]["resources"] is None  # tiny_rtl runs without Yosys
    assert "resources_yosys" not in plots
    assert set(images(text)) == set(plots)
    assert "Yosys did not run (the build ran with synthesis off)" in section(text, "resources")
    vivado = section(text, "vivado")
    assert '<span class="badge warn">skipped</span>' in vivado
    assert VIVADO_SKIPPED["reason"] in vivado and VIVADO_SKIPPED["project"] in vivado
    assert "Utilization" not in vivado and "Timing" not in vivado
    assert_self_contained(text)


def test_stopped_after_folding(base: dict[str, Any]) -> None:
    report = stopped_after_folding(base)
    text, plots = render_html(report)
    assert set(plots) == {"stages", "folding", "cycles", "utilization", "resources_estimates"}
    assert set(images(text)) == set(plots)
    assert plots["cycles"] == list(report["estimates"]["per_layer"])
    assert "step <code>fifo-sizing</code> did not run" in section(text, "fifos")
    assert "step <code>synth</code> did not run" in section(text, "resources")
    assert "step <code>bitstream</code> did not run" in section(text, "vivado")
    assert "No measured interval" in section(text, "throughput")
    assert_self_contained(text)


def test_a_report_with_almost_nothing() -> None:
    text, plots = render_html({"source": "tiny", "stages": [], "missing_stages": ["model"]})
    assert plots == {}
    assert "No pipeline steps in this report" in text
    assert_self_contained(text)
    with pytest.raises(ReportError):
        render_html([])  # type: ignore[arg-type]


EVIL = 'MVAU<b>&"$x$'
"""A layer name with HTML and TeX in it."""


def small_report() -> dict[str, Any]:
    """A synthetic report of two layers, hostile names everywhere."""
    evil = EVIL
    return {
        "source": "<script>alert(1)</script>",
        "board": {"name": "B<1>", "resources": {"LUT": 1000, "BRAM36": 10, "DSP": 10}},
        "stages": [
            {"name": "model", "seconds": 1.0, "reused": False},
            {"name": "folding<i>", "seconds": 0.5, "reused": True},
            {"name": "synth", "skipped": "no <yosys> & no luck"},
        ],
        "complete": True,
        "missing_stages": [],
        "folding": {"Defaults": {}, evil: {"PE": 2, "SIMD": 4, "ram_style": "<auto>"}},
        "estimates": {
            "fps": 10.0,
            "bottleneck": evil,
            "fits": True,
            "total": {"LUT": 10.0, "BRAM36": 1.0, "DSP": 0.0},
            "per_layer": {
                evil: {"op_type": "MVAU_hls", "cycles": 8, "LUT": 10.0, "BRAM36": 1.0},
                "FIFO@a->b": {"op_type": "StreamingFIFO", "cycles": 2, "LUT": 1.0},
            },
        },
        "surprise": {"<key>": "<value>"},
    }


def test_strings_are_escaped() -> None:
    evil = EVIL
    report = small_report()
    text, plots = render_html(report)
    assert_self_contained(text)
    assert "<b>" not in text and "<i>" not in text and "<yosys>" not in text
    assert "MVAU&lt;b&gt;&amp;&quot;$x$" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "no &lt;yosys&gt; &amp; no luck" in text
    assert "&lt;key&gt;" in section(text, "other")
    assert plots["folding"] == [evil]
    assert plots["cycles"] == [evil, "FIFO@a->b"]
    assert plots["stages"] == ["model", "folding<i>", "synth"]
    assert set(images(text)) == set(plots)
    assert render_html(report) == (text, plots)


# ---- the file ---------------------------------------------------------------------------------


def test_write_html_report(tmp_path: Path) -> None:
    report = small_report()
    (tmp_path / names.REPORT).write_text(json.dumps(report))
    path = write_html_report(tmp_path)
    assert path == tmp_path / names.REPORT_HTML
    first = path.read_bytes()
    assert first.decode("utf-8") == render_html(report)[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names.REPORT, names.REPORT_HTML])
    assert write_html_report(tmp_path, report).read_bytes() == first  # same bytes again


def test_write_html_report_without_a_report(tmp_path: Path) -> None:
    with pytest.raises(BiRealError, match="report.json"):
        write_html_report(tmp_path)
    (tmp_path / names.REPORT).write_text("{not json")
    with pytest.raises(ReportError, match="cannot read"):
        write_html_report(tmp_path)
    assert not (tmp_path / names.REPORT_HTML).exists()


def test_import_is_light() -> None:
    code = "import sys, bireal_fpga.report; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
