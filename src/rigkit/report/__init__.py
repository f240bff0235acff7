"""Renderers for plan results: rich terminal, JSON, Markdown and self-contained HTML.

Renderers read a :class:`~rigkit.design.plan.PlanResult`; they compute nothing of their own.
matplotlib is imported only by :mod:`rigkit.report.figures`, when a report with figures is written.
"""

from __future__ import annotations

from rigkit.report.markdown import render_markdown
from rigkit.report.render import render_json, write_report
from rigkit.report.text import render_text

__all__ = ["render_json", "render_markdown", "render_text", "write_report"]
