"""Renderers: pure functions from a :class:`~warmup_monitor.report.Report` to text, HTML or JSON."""

from __future__ import annotations

from .html import render_html
from .jsonout import SCHEMA_VERSION, load_schema, render_json, report_to_dict
from .terminal import render_text

__all__ = [
    "SCHEMA_VERSION",
    "load_schema",
    "render_html",
    "render_json",
    "render_text",
    "report_to_dict",
]
