"""Rendering of the SystemVerilog / C++ / Tcl templates under ``hw/templates``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

HW_DIR = Path(__file__).resolve().parents[2] / "hw"
RTL_DIR = HW_DIR / "rtl"
TEMPLATES_DIR = HW_DIR / "templates"


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
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
    path = RTL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"hw/rtl/{name} is missing from this installation")
    return path
