"""Reports of a build for people: ``report.html``, tables and plots of ``report.json`` in one
self-contained file (CSS inline, plots as PNG data URIs), readable offline.

This package imports only :mod:`bireal_fpga.names`, :mod:`bireal_fpga.errors` and the
standard library; matplotlib is imported when a plot is drawn.
"""

from __future__ import annotations

from bireal_fpga.report.html import ReportError, render_html, write_html_report

__all__ = ["ReportError", "render_html", "write_html_report"]
