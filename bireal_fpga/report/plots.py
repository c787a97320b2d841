"""The report's plots as PNG bytes: horizontal bars per layer (one panel per quantity, layers
sharing the vertical axis) and grouped bars per resource.

matplotlib is imported inside the functions (``import bireal_fpga.report`` stays light) and
drawn through its Agg canvas directly, so the global backend is never touched. The output is
deterministic: fixed size per number of rows, fixed dpi and style, no ``Software`` metadata.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
"""Pixels per inch of every plot."""

PALETTE = (
    *("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"),
    *("#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7"),
    *("#dbdb8d", "#9edae5"),
)
"""Bar colours by kind, in order of first appearance (red is kept for highlights)."""

HIGHLIGHT = "#d62728"
"""Edge colour of highlighted bars (the bottleneck) and colour of the first reference line."""

LINE_COLOURS = (HIGHLIGHT, "#000000", "#555555")

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "text.parse_math": False,  # a layer name with '$' is text, not TeX
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.axisbelow": True,
}
"""The style every plot is drawn with (independent of the user's matplotlibrc)."""


@dataclass(frozen=True)
class Line:
    """A reference line across a panel at ``value`` (e.g. the bottleneck, a measured value)."""

    value: float
    label: str


@dataclass(frozen=True)
class Panel:
    """One quantity per row: its title, a value per row (``None``: no bar) and its lines."""

    title: str
    values: Sequence[float | None]
    lines: Sequence[Line] = field(default_factory=tuple)
    log: bool = False
    xlabel: str = ""


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


class Palette:
    """Colours by kind, handed out in order of first request: one palette per page keeps a
    layer type the same colour in every plot."""

    def __init__(self) -> None:
        self.assigned: dict[str, str] = {}

    def __call__(self, kinds: Sequence[str]) -> dict[str, str]:
        """The colour of each kind in ``kinds``, in order of first appearance there."""
        out: dict[str, str] = {}
        for kind in kinds:
            if kind not in self.assigned:
                self.assigned[kind] = PALETTE[len(self.assigned) % len(PALETTE)]
            out.setdefault(kind, self.assigned[kind])
        return out


def _plain(value: float, _pos: object = None) -> str:
    """A tick label without TeX: ``8``, ``0.5``."""
    return f"{value:g}"


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def layer_bars(
    title: str,
    rows: Sequence[str],
    kinds: Sequence[str],
    panels: Sequence[Panel],
    *,
    highlight: Sequence[int] = (),
    label_width_in: float = 2.6,
    palette: Palette | None = None,
) -> bytes:
    """Horizontal bars, one row per name in ``rows`` (top to bottom as given), one panel per
    quantity; bars coloured by ``kinds`` (from ``palette``; a legend names them), rows
    ``highlight`` outlined in red. Returns the PNG."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, NullFormatter

    n = len(rows)
    if len(kinds) != n or any(len(p.values) != n for p in panels) or not panels:
        raise ValueError("layer_bars: every panel needs one value per row")
    colours = (palette or Palette())(kinds)
    legend_rows = math.ceil((len(colours) + sum(len(p.lines) for p in panels)) / 4)
    height = 1.3 + 0.17 * max(n, 3) + 0.16 * legend_rows
    width = label_width_in + max(2.4 * len(panels), 4.0)
    with _style():
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        ys = list(range(n))
        face = [colours[k] for k in kinds]
        edge = [HIGHLIGHT if i in set(highlight) else "none" for i in ys]
        handles: list[Any] = [Patch(color=c, label=k) for k, c in colours.items()]
        if len(colours) < 2:
            handles = []
        for ax, panel in zip(axes, panels, strict=True):
            vals = [_finite(v) for v in panel.values]
            if panel.log:
                vals = [v if v is not None and v > 0 else None for v in vals]
            drawn = [v if v is not None else 0.0 for v in vals]
            ax.barh(ys, drawn, color=face, edgecolor=edge, linewidth=1.2, height=0.75)
            for j, line in enumerate(panel.lines):
                if math.isfinite(line.value) and (not panel.log or line.value > 0):
                    handles.append(
                        ax.axvline(
                            line.value,
                            color=LINE_COLOURS[j % len(LINE_COLOURS)],
                            linestyle=("--", ":", "-.")[j % 3],
                            linewidth=1.2,
                            label=line.label,
                        )
                    )
            positive = [v for v in vals if v is not None]
            if panel.log and positive:
                ax.set_xscale("log", base=2)
                ax.set_xlim(left=min(positive) / 2)  # a bar of the smallest value stays visible
                ax.xaxis.set_major_formatter(FuncFormatter(_plain))
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(panel.title)
            if panel.xlabel:
                ax.set_xlabel(panel.xlabel)
            ax.grid(axis="y", visible=False)
        axes[0].set_yticks(ys, labels=list(rows))
        axes[0].set_ylim(n - 0.5, -0.5)  # the first row on top
        fig.suptitle(title, fontsize=10, fontweight="bold")
        if handles:
            fig.legend(
                handles=handles,
                loc="outside lower center",
                ncols=min(4, len(handles)),
                frameon=False,
            )
        return _png(fig)


def grouped_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    ylabel: str = "",
    limit: Line | None = None,
) -> bytes:
    """Vertical bars, one group per category, one bar per series (``None``: no bar), each
    labelled with its value; an optional horizontal ``limit`` line. Returns the PNG."""
    from matplotlib.figure import Figure

    if any(len(values) != len(categories) for _, values in series) or not series:
        raise ValueError("grouped_bars: every series needs one value per category")
    width = 0.8 / len(series)
    with _style():
        fig = Figure(figsize=(2.0 + 1.3 * len(categories), 3.6), dpi=DPI, layout="constrained")
        ax = fig.subplots()
        top = 0.0
        for i, (name, values) in enumerate(series):
            xs = [c + (i - (len(series) - 1) / 2) * width for c in range(len(categories))]
            vals = [_finite(v) for v in values]
            drawn = [v if v is not None else 0.0 for v in vals]
            bars = ax.bar(xs, drawn, width=width * 0.95, label=name, color=PALETTE[i])
            ax.bar_label(bars, labels=["" if v is None else f"{v:.1f}" for v in vals], fontsize=6)
            top = max([top, *drawn])
        if limit is not None:
            ax.axhline(limit.value, color=HIGHLIGHT, linestyle="--", label=limit.label)
            top = max(top, limit.value)
        ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
        ax.set_xticks(range(len(categories)), labels=list(categories))
        ax.grid(axis="x", visible=False)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10, fontweight="bold")
        ax.legend(loc="upper left", framealpha=0.85)
        return _png(fig)
