"""Rich terminal rendering of a plan: the build at a glance and the findings by severity.

Narrow terminals (under 100 columns) get a two-column findings table (the fix under the finding)
and a compact capacity table (model named once per group, short engine and bound names, no
prompt-speed or concurrency columns), so nothing is cut to "llam…".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rigkit.design.registry import Severity
from rigkit.estimate.capacity import Capacity
from rigkit.estimate.result import RUNS_STYLE, fmt_sig, runs
from rigkit.report import tables
from rigkit.report.capacity import BOUND_SHORT, PLAUSIBLE
from rigkit.report.words import plural

if TYPE_CHECKING:
    from rigkit.design.plan import PlanResult

STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
VERDICT_STYLE = {"holds": "green", "does not hold": "yellow", "inflated": "yellow"}

#: below this many columns the findings and capacity tables take their compact form
NARROW_COLUMNS = 100

_num = fmt_sig  # three significant digits, thousands separated: 59.4, 136, 10,200


def _ctx(n: int) -> str:
    """Context length in tokens: 8192 -> 8k, 131072 -> 128k, 11264 -> 11k."""
    return f"{n // 1024}k" if n >= 1024 else str(n)


def _too_wide(console: Console, renderable: Any) -> bool:
    """Whether ``renderable`` needs more columns than the terminal has (it would be cropped)."""
    from rich.measure import Measurement

    wide = console.options.update_width(10_000)
    return Measurement.get(console, wide, renderable).maximum > console.width


def compact_capacity(cap: Capacity) -> Table:
    """The capacity table for a narrow terminal."""
    t = Table(
        title=f"Capacity: {cap.gpus}x {cap.gpu}, 8k context (more columns when wider)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    t.add_column("model", no_wrap=True)
    t.add_column("format", no_wrap=True)
    t.add_column("engine", no_wrap=True)
    t.add_column("runs", no_wrap=True)
    t.add_column("GB/GPU", justify="right", no_wrap=True)
    t.add_column("tok/s", justify="right", no_wrap=True)
    t.add_column("ctx", justify="right", no_wrap=True)
    t.add_column("bound", no_wrap=True)
    last = None
    for r in cap.rows:
        verdict = runs(r.fits, r.offload, r.runnable)
        engine = r.engine + (" TP" if r.split == "tensor" else "")
        t.add_row(
            r.model if r.model != last else "",
            r.quant,
            engine,
            Text(verdict, style=RUNS_STYLE[verdict]),
            _num(r.memory_gb_per_gpu),
            _num(r.decode_tokens_per_s),
            _ctx(r.max_context) if r.runnable else "-",
            BOUND_SHORT.get(r.bound, r.bound),
            end_section=False,
        )
        last = r.model
    return t


def compact_expectations(cap: Capacity) -> Table:
    """The estimator's check of the spec's performance claims, two columns wide."""
    t = Table(title="Performance claims", title_justify="left", show_lines=True)
    t.add_column("Claim", ratio=1)
    t.add_column("Why", ratio=2)
    for x in cap.expectations:
        verdict, _, style = PLAUSIBLE[x.plausible]
        cell = Text(x.claim + "\n")
        cell.append(verdict, style=style)
        if x.estimate is not None:
            cell.append(f"\nestimate {_num(x.estimate)} {x.unit}")
        t.add_row(cell, x.reason)
    return t


def claims_table(result: PlanResult, narrow: bool) -> Table:
    t = Table(
        title=f"Stated figures: {tables.claims_line(result)}",
        title_justify="left",
        show_lines=True,
    )
    t.add_column("Claim")
    if not narrow:
        t.add_column("Stated", no_wrap=True)
    t.add_column("The plan works out")
    t.add_column("Verdict")
    for claim, stated, plan, verdict, note in tables.claim_rows(result):
        v = Text(verdict, style=VERDICT_STYLE.get(verdict, "yellow"))
        if note:
            v.append(f": {note}", style="dim" if verdict == "holds" else "default")
        if narrow:
            t.add_row(f"{claim}\n[dim]stated: {stated}[/dim]", plan, v)
        else:
            t.add_row(claim, stated, plan, v)
    return t


def render_text(
    result: PlanResult,
    console: Console,
    *,
    verbose: bool = False,
    capacity: list[Any] | None = None,
) -> None:
    """Print the plan. Information findings are listed only with ``verbose``."""
    b = result.build
    narrow = console.width < NARROW_COLUMNS
    glance = Table(title=f"Plan: {b.name}", show_header=False, title_justify="left")
    glance.add_column(style="bold", no_wrap=not narrow)
    glance.add_column()
    for label, value in tables.glance_rows(result):
        glance.add_row(label, value)
    console.print(glance)
    psus = Table(title="PSUs", title_justify="left")
    heads = ("PSU", "Feeds", "Load", "Peak", "Eff.", "Wall")
    keep = (0, 1, 2, 5) if narrow else tuple(range(len(heads)))  # narrow: no peak, efficiency
    for i in keep:
        psus.add_column(heads[i], no_wrap=heads[i] in ("Peak", "Eff.", "Wall"))
    for row in tables.psu_rows(result):
        psus.add_row(*(row[i] for i in keep))
    console.print(psus)
    if result.claims:
        console.print(claims_table(result, narrow))
    for sev, fs in tables.grouped(result):
        if sev is Severity.INFO and not verbose:
            console.print(
                Text(f"{plural(len(fs), 'note')} (show them with --verbose)", style="dim")
            )
            continue
        t = Table(
            title=f"{tables.SEVERITY_TITLES[sev]} ({len(fs)})",
            title_justify="left",
            title_style=STYLES[sev],
            show_lines=True,
        )
        t.add_column("Rule", style=STYLES[sev], no_wrap=True)
        t.add_column("Finding")
        if not narrow:
            t.add_column("Fix")
        for f in fs:
            fix = "" if f.fix == "none needed" else f.fix
            if narrow:
                cell = Text(f.message)
                if fix:
                    cell.append(f"\nFix: {fix}", style="italic")
                t.add_row(f.rule, cell)
            else:
                t.add_row(f.rule, f.message, fix)
        console.print(t)
    if result.cost is not None and result.cost.rentals:
        from rigkit.report.cost import cost_rich

        for renderable in cost_rich(result.cost, narrow):
            console.print(renderable)
    renderables = list(capacity or [])
    if (
        result.capacity is not None
        and renderables
        and (narrow or _too_wide(console, renderables[0]))
    ):
        # the estimator's wide table first, then its claims table: swap both for narrow ones
        renderables[0] = compact_capacity(result.capacity)
        if len(renderables) > 1 and result.capacity.expectations:
            renderables[1] = compact_expectations(result.capacity)
    for renderable in renderables:
        console.print(renderable)
    c = result.counts()
    console.print(
        Text(tables.status_line(result), style="bold red" if c["error"] else "bold green")
    )
