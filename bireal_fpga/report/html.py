"""``report.html``: a build's ``report.json`` for people, one self-contained file.

The page holds its CSS inline and its plots as base64 PNG data URIs: it opens offline in any
browser, loads nothing and runs no script. Every string taken from the report is escaped.
Sections a build did not reach (a build stopped after folding has no RTL) say so instead of
failing; fields the page does not know are listed generically at the end. The same report
renders to the same bytes.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bireal_fpga import names
from bireal_fpga.errors import BiRealError
from bireal_fpga.report import plots

RESOURCES = ("LUT", "FF", "BRAM36", "URAM", "DSP")
"""The resources a board is measured in, in the order they are shown."""

FOLD_ATTRS = ("PE", "SIMD", "ram_style", "runtime_writeable_weights", "resType", "mem_mode")
"""Folding attributes shown first (others follow in alphabetical order)."""

KNOWN = frozenset(
    {
        *("version", "code", "source", "board", "config", "stages", "trained", "spec"),
        *("golden_check", "hw_layers", "outside_partition", "specialized_layers", "folding"),
        *("estimates", "fifo_sizing", "rtl", "complete", "missing_stages", "skipped"),
        *("vivado", "checks", "shell", "fit_loop"),
    }
)
"""Top-level report fields with a section of their own; others go to "Other fields"."""

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0 auto;max-width:1250px;padding:1em 2em 3em;color:#222;background:#fff;line-height:1.4}
h1{font-size:1.55em;margin-bottom:.2em}
h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.4em;font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.22em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.hot td{background:#fff0f0}
table.kv>tbody>tr>th{font-weight:600;white-space:nowrap}
.ok{color:#11651e;font-weight:600}.bad{color:#b00020;font-weight:600}
.warn{color:#8a5a00;font-weight:600}
.badge{display:inline-block;padding:.1em .6em;border-radius:.8em;font-size:.9em}
.badge.ok{background:#e3f6e6}.badge.bad{background:#fde7ea}.badge.warn{background:#fff3d6}
.absent{color:#666;font-style:italic}
.sub{color:#555;margin-top:0}
img.plot{max-width:100%;height:auto;display:block;margin:.8em 0;border:1px solid #eee}
nav ol{columns:3;padding-left:1.4em;margin:.4em 0}
code{font-size:.92em}
details{margin:.5em 0}summary{cursor:pointer;color:#333}
""".strip()


class ReportError(BiRealError):
    """A build folder without a readable ``report.json``."""


# ---- small helpers ----------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object) -> float | None:
    """``value`` as a float if it is a number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _fmt(value: object) -> str:
    """A report value as escaped text: numbers with thousands separators, ``None`` as a dash."""
    if value is None:
        return "&mdash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return _esc(value)
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    return _esc(value)


def _share(part: object, whole: object) -> str:
    """``part`` as a percentage of ``whole`` (a dash when either is not a positive number)."""
    p, w = _num(part), _num(whole)
    if p is None or w is None or w <= 0:
        return "&mdash;"
    return f"{100 * p / w:.1f}&nbsp;%"


def _pct(part: object, whole: object) -> str:
    """`` (12.5 %)`` after a value, or nothing."""
    share = _share(part, whole)
    return "" if share == "&mdash;" else f" ({share})"


def _verdict(ok: object, yes: str = "fits", no: str = "does not fit", unknown: str = "") -> str:
    if ok is True:
        return f'<span class="badge ok">{_esc(yes)}</span>'
    if ok is False:
        return f'<span class="badge bad">{_esc(no)}</span>'
    return f'<span class="badge warn">{_esc(unknown)}</span>' if unknown else "&mdash;"


def _cell(value: object) -> str:
    cls = ' class="num"' if _num(value) is not None else ""
    return f"<td{cls}>{_value(value)}</td>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], hot: Iterable[int] = ()) -> str:
    """A table; ``header`` is plain text, ``rows`` hold ready ``<td>`` cells."""
    hot_rows = set(hot)
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    hot_attr = ' class="hot"'
    body = "".join(
        f"<tr{hot_attr if i in hot_rows else ''}>{''.join(row)}</tr>" for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column table of (escaped label, ready HTML value)."""
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def _value(value: object, depth: int = 0) -> str:
    """Any JSON value as HTML: mappings as nested tables, lists of mappings as tables, long
    lists folded away."""
    if isinstance(value, Mapping):
        if not value:
            return "<em>empty</em>"
        if depth >= 4:
            return f"<code>{_esc(json.dumps(value, sort_keys=True, default=str))}</code>"
        return _kv((_esc(k), _value(v, depth + 1)) for k, v in value.items())
    if isinstance(value, list | tuple):
        if not value:
            return "<em>none</em>"
        if all(isinstance(v, Mapping) for v in value) and depth < 4:
            cols: list[str] = []
            for v in value:
                cols += [str(k) for k in v if str(k) not in cols]
            rows = [[_cell(_map(v).get(c)) for c in cols] for v in value]
            inner = _table(cols, rows)
        else:
            inner = ", ".join(_value(v, depth + 1) for v in value)
        if len(value) > 20:
            return f"<details><summary>{len(value)} items</summary>{inner}</details>"
        return inner
    return _fmt(value)


def _kind(name: str, op_type: object = None) -> str:
    """The generic layer type of a node (``MVAU_hls_0`` -> ``MVAU``), for colours and legends."""
    op = op_type if isinstance(op_type, str) and op_type else name.split("@", 1)[0]
    op = re.sub(r"_\d+$", "", op)
    return re.sub(r"_(hls|rtl)$", "", op)


def _natural(name: str) -> tuple[str, int]:
    """Sort key of ``StreamingFIFO_10`` after ``StreamingFIFO_9``."""
    m = re.fullmatch(r"(.*?)(\d+)", name)
    return (m.group(1), int(m.group(2))) if m else (name, -1)


def _img(png: bytes, alt: str, ident: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<img class="plot" id="plot-{_esc(ident)}" alt="{_esc(alt)}" '
        f'src="data:image/png;base64,{data}">'
    )


# ---- the page ---------------------------------------------------------------------------------


class _Page:
    """One rendering of a report: the sections in order, and the plots' row names."""

    def __init__(self, report: Mapping[str, Any]) -> None:
        if not isinstance(report, Mapping):
            raise ReportError(f"a report must be a JSON object, not {type(report).__name__}")
        self.r = report
        self.board = _map(report.get("board"))
        self.board_res = _map(self.board.get("resources"))
        self.rtl = _map(report.get("rtl"))
        self.est = _map(report.get("estimates"))
        self.yosys = _map(self.rtl.get("resources"))
        self.vivado = _map(report.get("vivado"))
        missing = report.get("missing_stages")
        self.missing = [str(s) for s in missing] if isinstance(missing, list) else []
        self.plots: dict[str, list[str]] = {}
        self.palette = plots.Palette()

    # ---- shared pieces ------------------------------------------------------------------------
    def absent(self, what: str, step: str | None = None) -> str:
        why = ""
        if step is not None and step in self.missing:
            why = f": step <code>{_esc(step)}</code> did not run"
        return f'<p class="absent">No {_esc(what)} in this report{why}.</p>'

    def bars(self, *args: Any, **kwargs: Any) -> bytes:
        """:func:`plots.layer_bars` with the page's palette."""
        return plots.layer_bars(*args, palette=self.palette, **kwargs)

    def plot(self, key: str, rows: Sequence[str], png: bytes, alt: str) -> str:
        self.plots[key] = list(rows)
        return _img(png, alt, key)

    def section(self, ident: str, title: str, body: str) -> str:
        return f'<section id="{ident}"><h2>{_esc(title)}</h2>{body}</section>'

    def vivado_fits(self) -> bool | None:
        util = _map(self.vivado.get("utilization"))
        checked = [
            (_num(util.get(k)), _num(self.board_res.get(k)))
            for k in RESOURCES
            if _num(util.get(k)) is not None and _num(self.board_res.get(k)) is not None
        ]
        if not checked:
            return None
        return all(u <= b for u, b in checked if u is not None and b is not None)

    # ---- sections -----------------------------------------------------------------------------
    def header(self) -> str:
        r = self.r
        title = f"{r.get('source', '?')} on {self.board.get('name', '?')}"
        if r.get("complete") is True:
            status = '<span class="badge ok">complete</span>'
        else:
            status = '<span class="badge warn">incomplete</span>'
        done = [str(s.get("name")) for s in r.get("stages") or [] if isinstance(s, Mapping)]
        lines = [f"<p>Build {status}"]
        if done:
            lines.append(f" &middot; last step run: <code>{_esc(done[-1])}</code>")
        if self.missing:
            lines.append(
                " &middot; not run: " + ", ".join(f"<code>{_esc(s)}</code>" for s in self.missing)
            )
        lines.append("</p>")
        skipped = r.get("skipped")
        if skipped:
            lines.append(f"<p><strong>Skipped:</strong></p>{_value(skipped)}")
        return (
            f"<header><h1>Bi-Real FPGA build: {_esc(title)}</h1>"
            f'<p class="sub">bireal-fpga {_esc(r.get("version", "?"))} '
            f"(code {_esc(r.get('code', '?'))})</p>{''.join(lines)}</header>"
        )

    def steps(self) -> str:
        stages = [s for s in self.r.get("stages") or [] if isinstance(s, Mapping)]
        if not stages:
            return self.absent("pipeline steps")
        rows, names_, secs, kinds = [], [], [], []
        total = 0.0
        for i, s in enumerate(stages, 1):
            name = str(s.get("name", "?"))
            seconds = _num(s.get("seconds"))
            if "skipped" in s:
                note, kind = f"skipped: {_esc(s.get('skipped'))}", "skipped"
            elif s.get("reused"):
                note, kind = "reused (inputs unchanged)", "reused"
            else:
                note, kind = "", "ran"
            rows.append(
                [
                    f'<td class="num">{i}</td>',
                    f"<td><code>{_esc(name)}</code></td>",
                    f'<td class="num">{"&mdash;" if seconds is None else f"{seconds:.2f}"}</td>',
                    f"<td>{_fmt(bool(s.get('reused')))}</td>",
                    f"<td>{note}</td>",
                ]
            )
            names_.append(name)
            secs.append(seconds)
            kinds.append(kind)
            total += seconds or 0.0
        rows.append(
            ["<td></td>", "<th>total</th>", f'<td class="num">{total:.2f}</td>'] + ["<td></td>"] * 2
        )
        body = _table(["#", "step", "seconds", "reused", "note"], rows)
        if self.missing:
            body += "<p>Not run: " + ", ".join(f"<code>{_esc(s)}</code>" for s in self.missing)
            body += "</p>"
        else:
            body += "<p>Every step ran.</p>"
        panel = plots.Panel("seconds", secs, xlabel="s")
        png = plots.layer_bars("Time per step", names_, kinds, [panel])  # its own colours
        return self.section(
            "steps", "Pipeline steps", body + self.plot("stages", names_, png, "time per step")
        )

    def design(self) -> str:
        r, rtl, est, b = self.r, self.rtl, self.est, self.board
        clock = _num(rtl.get("clock_mhz")) or _num(b.get("clock_mhz"))
        pairs: list[tuple[str, str]] = [
            ("source", _fmt(r.get("source"))),
            ("trained weights", _fmt(r.get("trained")) if "trained" in r else "&mdash;"),
        ]
        spec = _map(r.get("spec"))
        if spec:
            pairs.append(("network", self.spec_summary(spec)))
        pairs += [
            ("board", _fmt(b.get("name"))),
            ("part", f"{_fmt(b.get('part'))} (family {_fmt(b.get('family'))})"),
            ("clock", f"{_fmt(clock)} MHz"),
            ("target FPS", _fmt(_map(r.get("config")).get("target_fps", b.get("target_fps")))),
            ("cost model", _fmt(est.get("cost_model"))),
        ]
        fps = _map(rtl.get("fps"))
        interval = _map(rtl.get("interval_cycles"))
        pairs += [
            ("FPS estimated (folding)", _fmt(est.get("fps"))),
            ("FPS estimated (RTL design)", _fmt(fps.get("estimated"))),
            ("FPS measured (RTL simulation)", _fmt(fps.get("measured"))),
            (
                "interval, cycles per frame",
                f"estimated {_fmt(interval.get('estimated', est.get('max_cycles')))}, "
                f"measured {_fmt(interval.get('measured'))}",
            ),
        ]
        latency = _num(rtl.get("latency_cycles"))
        lat = _fmt(rtl.get("latency_cycles"))
        if latency is not None and clock:
            lat += f" cycles ({latency / clock:.2f} &micro;s)"
        pairs.append(("latency", lat))
        pairs.append(
            (
                "bottleneck layer",
                f"<code>{_fmt(rtl.get('bottleneck', est.get('bottleneck')))}</code>",
            )
        )
        if rtl.get("top") is not None:
            pairs.append(("top module", f"<code>{_fmt(rtl.get('top'))}</code>"))
        weights = _map(rtl.get("weights"))
        if weights:
            layers = weights.get("layers") or []
            pairs.append(
                (
                    "run-time weights",
                    "none (every weight is in the design)"
                    if not layers
                    else f"{len(layers)} layers, {_fmt(weights.get('bytes'))} bytes, "
                    f"loaded in {_fmt(weights.get('load_cycles'))} cycles",
                )
            )
        pairs += [
            ("fits (cost model)", _verdict(est.get("fits"))),
            ("fits (Yosys)", _verdict(rtl.get("fits"), unknown="not run")),
            ("fits (Vivado)", _verdict(self.vivado_fits(), unknown="not run")),
        ]
        timing = _map(self.vivado.get("timing"))
        if "met" in timing:
            pairs.append(("timing (Vivado)", _verdict(timing.get("met"), "met", "not met")))
        body = _kv(pairs)
        extra = [
            (k, r.get(k))
            for k in ("config", "hw_layers", "specialized_layers", "outside_partition")
            if k in r
        ]
        for key, value in extra:
            body += f"<details><summary>{_esc(key)}</summary>{_value(value)}</details>"
        return self.section("design", "Design", body)

    @staticmethod
    def spec_summary(spec: Mapping[str, Any]) -> str:
        if not {"widths", "blocks"} <= set(spec):
            return _value(spec)
        size, ch = spec.get("input_size"), spec.get("input_channels")
        text = (
            f"<code>{_fmt(spec.get('name'))}</code>: {_fmt(spec.get('stem'))} stem "
            f"(width {_fmt(spec.get('stem_width'))}), stage widths {_value(spec.get('widths'))}, "
            f"blocks {_value(spec.get('blocks'))}, strides {_value(spec.get('strides'))}; "
            f"input {_fmt(ch)}&times;{_fmt(size)}&times;{_fmt(size)}, "
            f"{_fmt(spec.get('num_classes'))} classes"
        )
        if "residual_bits" in spec:
            text += (
                f"; residual {_fmt(spec.get('residual_bits'))} bits "
                f"({_fmt(spec.get('residual_frac_bits'))} fractional)"
            )
        return text + f"<details><summary>spec</summary>{_value(spec)}</details>"

    def folding(self) -> str:
        folding = {
            str(k): _map(v) for k, v in _map(self.r.get("folding")).items() if k != "Defaults"
        }
        if not folding:
            return self.section("folding", "Folding", self.absent("folding", "folding"))
        per = _map(self.est.get("per_layer"))
        attrs = [a for a in FOLD_ATTRS if any(a in f for f in folding.values())]
        attrs += sorted({str(a) for f in folding.values() for a in f} - set(attrs))
        bottleneck = self.est.get("bottleneck")
        rows, hot = [], []
        for i, (node, conf) in enumerate(folding.items()):
            layer = _map(per.get(node))
            rows.append(
                [
                    f"<td><code>{_esc(node)}</code></td>",
                    f"<td>{_esc(_kind(node, layer.get('op_type')))}</td>",
                ]
                + [_cell(conf.get(a)) for a in attrs]
                + [_cell(layer.get(k)) for k in ("cycles", "LUT", "BRAM36", "DSP")]
            )
            if node == bottleneck:
                hot.append(i)
        body = "<p>FINN's folding configuration (<code>folding_config.json</code>), beside the "
        body += "cost model's cycles per frame and resources of each layer"
        body += "; the bottleneck is highlighted.</p>" if hot else ".</p>"
        body += _table(
            ["node", "type", *attrs, "cycles", "LUT (est.)", "BRAM36 (est.)", "DSP (est.)"],
            rows,
            hot,
        )
        nodes = list(folding)
        kinds = [_kind(n, _map(per.get(n)).get("op_type")) for n in nodes]
        panels = [
            plots.Panel(a, [_num(folding[n].get(a)) for n in nodes], log=True)
            for a in ("PE", "SIMD")
            if any(_num(f.get(a)) is not None for f in folding.values())
        ]
        if panels:
            png = self.bars(
                "Folding: parallelism per layer (log scale)", nodes, kinds, panels, highlight=hot
            )
            body += self.plot("folding", nodes, png, "PE and SIMD per layer")
        return self.section("folding", "Folding", body)

    def throughput(self) -> str:
        per = {str(k): _map(v) for k, v in _map(self.est.get("per_layer")).items()}
        layers = [n for n, v in per.items() if _num(v.get("cycles")) is not None]
        if not layers:
            return self.section(
                "throughput",
                "Cycles per frame",
                self.absent("per-layer cycle estimates", "folding"),
            )
        cycles = [_num(per[n].get("cycles")) or 0.0 for n in layers]
        worst = max(cycles)
        hot = [i for i, c in enumerate(cycles) if c == worst]
        measured = _num(_map(self.rtl.get("interval_cycles")).get("measured"))
        lines = [plots.Line(worst, f"bottleneck: {worst:,.0f}")]
        named = self.est.get("bottleneck")
        slowest = named if named in layers and named in [layers[i] for i in hot] else layers[hot[0]]
        text = (
            f"<p>The slowest layer sets the interval: <code>{_esc(slowest)}</code> at "
            f"{_fmt(worst)} cycles per frame"
        )
        if len(hot) > 1:
            text += f"; {len(hot)} of the {len(layers)} layers run at that rate (outlined)"
        text += "."
        if measured is not None:
            lines.append(plots.Line(measured, f"measured interval: {measured:,.1f}"))
            text += (
                f" The RTL simulation measured {_fmt(measured)} cycles per frame "
                f"({measured / worst:.3f}&times; the estimate)."
                if worst
                else ""
            )
        else:
            text += " No measured interval: the RTL was not simulated."
        text += "</p>"
        png = self.bars(
            "Cycles per frame per layer (cost model)",
            layers,
            [_kind(n, per[n].get("op_type")) for n in layers],
            [plots.Panel("cycles per frame", cycles, lines=lines)],
            highlight=hot,
            label_width_in=4.2,
        )
        body = text + self.plot("cycles", layers, png, "cycles per frame per layer")
        return self.section("throughput", "Cycles per frame", body)

    def resource_keys(self, rows: Iterable[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
        rows = list(rows)
        chosen = []
        for k in keys:
            present = any(_num(row.get(k)) is not None for row in rows)
            used = any((_num(row.get(k)) or 0) > 0 for row in rows)
            if present and (
                k in ("LUT", "BRAM36") or used or (_num(self.board_res.get(k)) or 0) > 0
            ):
                chosen.append(k)
        return chosen

    def per_layer_plot(
        self,
        key: str,
        title: str,
        per: Mapping[str, Any],
        totals: Mapping[str, Any],
        keys: Sequence[str],
    ) -> str:
        layers = [str(n) for n in per]
        rows = [_map(per[n]) for n in per]
        chosen = self.resource_keys(rows, keys)
        if not layers or not chosen:
            return ""
        panels = []
        for k in chosen:
            board = _num(self.board_res.get(k))
            total = _num(totals.get(k))
            head = k
            if total is not None:
                head += f": {total:,.0f}"
                if board:
                    head += f" of {board:,.0f} ({100 * total / board:.1f} %)"
            panels.append(plots.Panel(head, [_num(row.get(k)) for row in rows]))
        png = self.bars(
            title,
            layers,
            [_kind(n, r.get("op_type")) for n, r in zip(layers, rows, strict=True)],
            panels,
            label_width_in=4.2,
        )
        return self.plot(key, layers, png, title)

    def resources(self) -> str:
        est_total = _map(self.est.get("total"))
        uncorrected = _map(self.est.get("total_uncorrected"))
        correction = _map(self.est.get("correction"))
        final = _map(_map(self.rtl.get("cost_model")).get("total"))
        yosys_total = _map(self.yosys.get("total"))
        viv = _map(self.vivado.get("utilization"))
        columns: list[tuple[str, Mapping[str, Any]]] = [("board", self.board_res)]
        columns.append(("cost model (folding)", est_total))
        if correction and uncorrected:
            columns.append(("cost model, uncorrected", uncorrected))
        columns += [
            ("cost model (final design)", final),
            ("Yosys", yosys_total),
            ("Vivado", viv),
        ]
        columns = [c for c in columns if c[1]]
        if len(columns) <= 1:
            return self.section(
                "resources", "Resources", self.absent("resource estimates", "folding")
            )
        keys = [k for k in RESOURCES if any(k in m for _, m in columns)]
        rows = []
        for k in keys:
            row = [f"<th>{_esc(k)}</th>"]
            for name, m in columns:
                cell = _fmt(m.get(k)) if k in m else "&mdash;"
                if name != "board" and k in m:
                    cell += _pct(m.get(k), self.board_res.get(k))
                row.append(f'<td class="num">{cell}</td>')
            rows.append(row)
        verdicts = {
            "cost model (folding)": _verdict(self.est.get("fits")),
            "Yosys": _verdict(self.rtl.get("fits"), unknown="not run"),
            "Vivado": _verdict(self.vivado_fits(), unknown="not run"),
        }
        rows.append(["<th>fits</th>"] + [f"<td>{verdicts.get(n, '')}</td>" for n, _ in columns])
        body = _table(["resource", *[n for n, _ in columns]], rows)
        notes = []
        if correction:
            notes.append(
                "The fit loop corrected the cost model by "
                + ", ".join(f"{_esc(k)} &times;{_fmt(v)}" for k, v in correction.items())
                + "."
            )
        lut_error = _num(_map(self.rtl.get("cost_model")).get("lut_error"))
        if lut_error is not None:
            notes.append(f"Cost model LUT vs Yosys: {100 * lut_error:+.1f} %.")
        if self.yosys.get("tool"):
            notes.append(
                f"Yosys: {_esc(self.yosys.get('tool'))}, "
                f"{_fmt(self.yosys.get('layers_synthesized'))} layers synthesized, "
                f"{_fmt(self.yosys.get('layers_sharing_a_result'))} sharing a result."
            )
        if notes:
            body += "<p>" + " ".join(notes) + "</p>"
        # utilization plot
        cats = [k for k in keys if (_num(self.board_res.get(k)) or 0) > 0]
        series = []
        for name, m in columns[1:]:
            vals = [
                100 * v / b
                if (v := _num(m.get(k))) is not None and (b := _num(self.board_res.get(k)))
                else None
                for k in cats
            ]
            if any(v is not None for v in vals):
                series.append((name, vals))
        if cats and series:
            png = plots.grouped_bars(
                f"Utilization of {self.board.get('name', 'the board')}",
                cats,
                series,
                ylabel="% of the board",
                limit=plots.Line(100.0, "board"),
            )
            body += self.plot("utilization", cats, png, "utilization of the board")
        # per layer
        per_est = _map(self.est.get("per_layer"))
        body += "<h3>Per layer: the cost model</h3>"
        if per_est:
            body += self.per_layer_plot(
                "resources_estimates",
                "Resources per layer: cost model",
                per_est,
                est_total,
                RESOURCES,
            )
            body += self.details_table("cost model per layer", per_est)
        else:
            body += self.absent("per-layer estimates", "folding")
        body += "<h3>Per layer: Yosys</h3>"
        per_yosys = _map(self.yosys.get("per_layer"))
        if per_yosys:
            body += self.per_layer_plot(
                "resources_yosys", "Resources per layer: Yosys", per_yosys, yosys_total, RESOURCES
            )
            body += self.details_table("Yosys per layer", per_yosys)
        elif "resources" in self.rtl:
            synth = _map(self.r.get("config")).get("synth")
            why = " (the build ran with synthesis off)" if synth is False else ""
            body += f'<p class="absent">Yosys did not run{why}.</p>'
        else:
            body += self.absent("Yosys results", "synth")
        body += self.per_type()
        fit_loop = self.r.get("fit_loop")
        if fit_loop:
            body += f"<h3>Fit loop</h3>{_value(fit_loop)}"
        return self.section("resources", "Resources", body)

    def per_type(self) -> str:
        cost = _map(self.rtl.get("cost_model"))
        model, yosys = _map(cost.get("per_type")), _map(cost.get("yosys_per_type"))
        if not model:
            return ""
        types = list(model) + [t for t in yosys if t not in model]
        keys = [
            k
            for k in ("LUT", "FF", "BRAM36", "URAM", "DSP")
            if any(k in _map(v) for v in model.values())
        ]
        header = ["type"]
        for k in keys:
            header += [f"{k} model"] + ([f"{k} Yosys"] if yosys else [])
        rows = []
        for t in types:
            row = [f"<td>{_esc(t)}</td>"]
            for k in keys:
                row.append(_cell(_map(model.get(t)).get(k)))
                if yosys:
                    row.append(_cell(_map(yosys.get(t)).get(k)))
            rows.append(row)
        return "<h3>Per layer type: the final design</h3>" + _table(header, rows)

    @staticmethod
    def details_table(summary: str, per: Mapping[str, Any]) -> str:
        cols: list[str] = []
        for v in per.values():
            cols += [str(k) for k in _map(v) if str(k) not in cols]
        rows = [
            [f"<td><code>{_esc(n)}</code></td>"] + [_cell(_map(v).get(c)) for c in cols]
            for n, v in per.items()
        ]
        table = _table(["layer", *cols], rows)
        return f"<details><summary>{_esc(summary)} (table)</summary>{table}</details>"

    def fifos(self) -> str:
        sizing = _map(self.r.get("fifo_sizing"))
        if not sizing:
            return self.section("fifos", "FIFO depths", self.absent("FIFO sizing", "fifo-sizing"))
        depths = {str(k): v for k, v in _map(sizing.get("depths")).items()}
        summary = {k: v for k, v in sizing.items() if k != "depths"}
        body = _value(summary)
        if depths:
            fifo_names = sorted(depths, key=_natural)
            per_yosys = _map(self.yosys.get("per_layer"))
            cols = ["FIFO", "depth"] + (["LUT (Yosys)", "BRAM36 (Yosys)"] if per_yosys else [])
            rows = []
            for n in fifo_names:
                row = [f"<td><code>{_esc(n)}</code></td>", _cell(depths[n])]
                if per_yosys:
                    y = _map(per_yosys.get(n))
                    row += [_cell(y.get("LUT")), _cell(y.get("BRAM36"))]
                rows.append(row)
            body += _table(cols, rows)
            vals = [_num(depths[n]) for n in fifo_names]
            pos = [v for v in vals if v is not None and v > 0]
            log = bool(pos) and max(pos) > 64 * min(pos)
            png = self.bars(
                "FIFO depths" + (" (log scale)" if log else ""),
                fifo_names,
                ["StreamingFIFO"] * len(fifo_names),
                [plots.Panel("depth (words)", vals, log=log)],
            )
            body += self.plot("fifo_depths", fifo_names, png, "FIFO depths")
        return self.section("fifos", "FIFO depths", body)

    def verification(self) -> str:
        checks: list[tuple[str, Mapping[str, Any]]] = []
        if isinstance(self.r.get("golden_check"), Mapping):
            checks.append(("golden check (golden model == integer form)", self.r["golden_check"]))
        if isinstance(self.rtl.get("rtlsim"), Mapping):
            checks.append(("RTL simulation (stitched design == integer form)", self.rtl["rtlsim"]))
        for name, value in _map(self.r.get("checks")).items():
            if isinstance(value, Mapping):
                checks.append((str(name), value))
        shell_check = _map(self.r.get("shell")).get("check")
        if isinstance(shell_check, Mapping):
            checks.append(("shell", shell_check))
        if not checks:
            return self.section("verification", "Verification", self.absent("check results"))
        rows = []
        for name, c in checks:
            mism = _num(c.get("mismatches"))
            ok = None if mism is None else mism == 0
            rows.append(
                [
                    f"<td>{_esc(name)}</td>",
                    _cell(c.get("n")),
                    _cell(c.get("mismatches")),
                    f"<td>{_value(c.get('first_mismatch'))}</td>",
                    f"<td>{_verdict(ok, 'pass', 'FAIL', 'no tally')}</td>",
                ]
            )
        body = _table(["check", "images", "mismatches", "first mismatch", "verdict"], rows)
        for name, c in checks:
            rest = {k: v for k, v in c.items() if k not in ("n", "mismatches", "first_mismatch")}
            if rest:
                body += f"<details><summary>{_esc(name)}: details</summary>{_value(rest)}</details>"
        if "rtlsim" not in self.rtl:
            body += self.absent("RTL simulation result", "rtlsim")
        return self.section("verification", "Verification", body)

    def vivado_section(self) -> str:
        v = self.vivado
        if not v:
            return self.section("vivado", "Vivado", self.absent("Vivado results", "bitstream"))
        status = v.get("status")
        badge = _verdict(
            True if status == "done" else False if status == "failed" else None,
            "done",
            "failed",
            str(status or "unknown"),
        )
        pairs = [("status", badge)]
        for key in ("version", "reason", "project", "bitstream"):
            if key in v:
                value = v[key]
                shown = (
                    f"<code>{_esc(value)}</code>"
                    if key in ("project", "bitstream")
                    else _value(value)
                )
                pairs.append((_esc(key), shown))
        body = _kv(pairs)
        util = _map(v.get("utilization"))
        if util:
            rows = []
            for k in [k for k in RESOURCES if k in util] + [k for k in util if k not in RESOURCES]:
                rows.append(
                    [
                        f"<th>{_esc(k)}</th>",
                        f'<td class="num">{_fmt(util[k])}</td>',
                        f'<td class="num">{_fmt(self.board_res.get(k))}</td>',
                        f'<td class="num">{_share(util[k], self.board_res.get(k))}</td>',
                    ]
                )
            body += "<h3>Utilization (after place and route)</h3>"
            body += _table(["resource", "used", "board", "share"], rows)
            body += f"<p>{_verdict(self.vivado_fits())}</p>"
        timing = _map(v.get("timing"))
        if timing:
            labels = {
                "wns_ns": "worst negative slack (WNS), ns",
                "tns_ns": "total negative slack (TNS), ns",
                "whs_ns": "worst hold slack (WHS), ns",
                "clock_mhz": "clock, MHz",
                "met": "timing met",
            }
            pairs2 = [
                (
                    _esc(labels.get(str(k), k)),
                    _verdict(val, "met", "not met") if k == "met" else _value(val),
                )
                for k, val in timing.items()
            ]
            body += "<h3>Timing</h3>" + _kv(pairs2)
        rest = {
            k: val
            for k, val in v.items()
            if k
            not in ("status", "version", "reason", "project", "bitstream", "utilization", "timing")
        }
        if rest:
            body += f"<h3>Other</h3>{_value(rest)}"
        return self.section("vivado", "Vivado", body)

    def shell(self) -> str:
        shell = _map(self.r.get("shell"))
        if not shell:
            return ""
        rest = {k: v for k, v in shell.items() if k != "check"}
        return self.section("shell", "Shell", _value(rest) if rest else "<p>See Verification.</p>")

    def other(self) -> str:
        rest = {k: v for k, v in self.r.items() if k not in KNOWN}
        if not rest:
            return ""
        return self.section("other", "Other fields", _value(rest))

    def render(self) -> str:
        parts: list[tuple[str, Callable[[], str]]] = [
            ("Pipeline steps", self.steps),
            ("Design", self.design),
            ("Folding", self.folding),
            ("Cycles per frame", self.throughput),
            ("Resources", self.resources),
            ("FIFO depths", self.fifos),
            ("Verification", self.verification),
            ("Vivado", self.vivado_section),
            ("Shell", self.shell),
            ("Other fields", self.other),
        ]
        sections = []
        toc = []
        for title, make in parts:
            text = make()
            if text:
                sections.append(text)
                ident = re.search(r'<section id="([^"]+)"', text)
                if ident:
                    toc.append(f'<li><a href="#{ident.group(1)}">{_esc(title)}</a></li>')
        title = f"bireal-fpga: {self.r.get('source', '?')} on {self.board.get('name', '?')}"
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
            f"{self.header()}\n<nav><ol>{''.join(toc)}</ol></nav>\n"
            + "\n".join(sections)
            + "\n</body>\n</html>\n"
        )


def render_html(report: Mapping[str, Any]) -> tuple[str, dict[str, list[str]]]:
    """The HTML text of ``report`` (a build's ``report.json``) and, per plot, the row names it
    shows (layers, steps, FIFOs or resources), in order."""
    page = _Page(report)
    text = page.render()
    return text, page.plots


def write_html_report(folder: Path, report: Mapping[str, Any] | None = None) -> Path:
    """Write ``folder/report.html`` from ``report`` (default: ``folder/report.json``),
    atomically (a ``.partial`` file, then a rename); returns its path."""
    folder = Path(folder)
    if report is None:
        source = folder / names.REPORT
        try:
            report = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReportError(f"no build report '{source}'") from None
        except (OSError, ValueError) as exc:
            raise ReportError(f"cannot read build report '{source}': {exc}") from None
        if not isinstance(report, Mapping):
            raise ReportError(f"build report '{source}' is not a JSON object")
    text, _ = render_html(report)
    target = folder / names.REPORT_HTML
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)
    return target
