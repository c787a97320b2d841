"""Rendering of the SystemVerilog / C++ / Tcl templates under ``hw/templates``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from bireal_fpga.hw_files import rtl_dir, templates_dir


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, **values: Any) -> str:
    """``hw/templates/<template>`` filled with ``values`` (missing values are an error)."""
    return _env().get_template(template).render(**values)


def library_file(name: str) -> Path:
    """A layer module shipped under ``hw/rtl``."""
    path = rtl_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"hw/rtl/{name} is missing from this installation")
    return path
