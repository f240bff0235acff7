"""Rich terminal rendering of a plan: the build at a glance and the findings by severity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rigkit.design.registry import Severity
from rigkit.report import tables

if TYPE_CHECKING:
    from rigkit.design.plan import PlanResult

STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render_text(
    result: PlanResult,
    console: Console,
    *,
    verbose: bool = False,
    capacity: list[Any] | None = None,
) -> None:
    """Print the plan. Information findings are listed only with ``verbose``."""
    b = result.build
    glance = Table(title=f"Plan: {b.name}", show_header=False, title_justify="left")
    glance.add_column(style="bold")
    glance.add_column()
    for label, value in tables.glance_rows(result):
        glance.add_row(label, value)
    console.print(glance)
    psus = Table(title="PSUs", title_justify="left")
    for h in ("PSU", "Feeds", "Load", "Peak", "Eff.", "Wall"):
        psus.add_column(h)
    for row in tables.psu_rows(result):
        psus.add_row(*row)
    console.print(psus)
    for sev, fs in tables.grouped(result):
        if sev is Severity.INFO and not verbose:
            console.print(Text(f"{len(fs)} notes (show them with --verbose)", style="dim"))
            continue
        t = Table(
            title=f"{tables.SEVERITY_TITLES[sev]} ({len(fs)})",
            title_justify="left",
            title_style=STYLES[sev],
            show_lines=True,
        )
        t.add_column("Rule", style=STYLES[sev], no_wrap=True)
        t.add_column("Finding")
        t.add_column("Fix")
        for f in fs:
            t.add_row(f.rule, f.message, "" if f.fix == "none needed" else f.fix)
        console.print(t)
    for renderable in capacity or []:
        console.print(renderable)
    c = result.counts()
    console.print(
        Text(tables.status_line(result), style="bold red" if c["error"] else "bold green")
    )
