"""The plan's capacity section (:class:`rigkit.estimate.capacity.Capacity`) as Markdown, an HTML
fragment (``templates/capacity.html.j2``) and rich tables. The estimator computes the section;
this module only lays it out. The roofline figure is :func:`rigkit.report.figures.roofline_png`.
"""

from __future__ import annotations

from typing import Any

from rigkit.estimate.capacity import (
    CAPACITY_CTX,
    GEN,
    PROMPT,
    Capacity,
    CapacityRow,
    ExpectationCheck,
)
from rigkit.estimate.result import RUNS_STYLE, fmt_sig, runs
from rigkit.report.templating import environment

HEAD = (
    "model",
    "format",
    "engine",
    "runs",
    "GB/GPU",
    "decode tok/s",
    "prompt tok/s",
    "max ctx",
    "8k seqs",
    "bound",
)

#: what bounds decode, in a terminal's width (JSON, Markdown and HTML keep the full names)
BOUND_SHORT = {
    "memory-bandwidth": "VRAM bw",
    "compute": "compute",
    "interconnect": "GPU link",
    "cpu-ram": "RAM bw",
}

#: an expectation check's verdict -> (text, HTML class, rich style)
PLAUSIBLE = {
    True: ("plausible", "plausible", "green"),
    False: ("NOT plausible", "implausible", "red"),
    None: ("unknown", "unknown", "yellow"),
}

_fmt = fmt_sig


def verdict(r: CapacityRow) -> str:
    """fits / offload / waves / no for a row."""
    return runs(r.fits, r.offload, r.runnable)


def cells(r: CapacityRow) -> tuple[str, ...]:
    """A row's cells under :data:`HEAD`."""
    eng = r.engine + (f" ({r.split})" if r.split not in ("none", "layer") else "")
    return (
        r.model,
        r.quant,
        eng,
        verdict(r),
        _fmt(r.memory_gb_per_gpu),
        _fmt(r.decode_tokens_per_s),
        _fmt(r.prefill_tokens_per_s),
        f"{r.max_context:,}" if r.runnable else "-",
        str(r.max_concurrent_8k) if r.runnable else "-",
        r.bound,
    )


def expectation_cells(x: ExpectationCheck) -> tuple[str, str, str, str]:
    """claim, verdict, estimate, why."""
    return (
        x.claim,
        PLAUSIBLE[x.plausible][0],
        (f"{_fmt(x.estimate)} {x.unit}" if x.estimate is not None else "-"),
        x.reason,
    )


def title(cap: Capacity) -> str:
    return (
        f"Capacity: {cap.gpus}x {cap.gpu} ({_fmt(cap.vram_gb_total)} GB VRAM), "
        f"{_fmt(cap.ram_gb)} GB RAM"
    )


def capacity_markdown(cap: Capacity) -> str:
    """Markdown section: the table, then the expectation checks."""
    out = [f"## {title(cap)}", ""]
    out += [f"- {a}" for a in cap.assumptions] + [""]
    out.append("| " + " | ".join(HEAD) + " |")
    out.append("|" + "---|" * len(HEAD))
    for r in cap.rows:
        out.append("| " + " | ".join(cells(r)) + " |")
    if cap.expectations:
        out += [
            "",
            "### Performance claims",
            "",
            "| claim | verdict | estimate | why |",
            "|---|---|---|---|",
        ]
        for x in cap.expectations:
            out.append(
                "| " + " | ".join(c.replace("|", "\\|") for c in expectation_cells(x)) + " |"
            )
    return "\n".join(out) + "\n"


def capacity_html(cap: Capacity) -> str:
    """HTML fragment (a section with two tables); the template escapes every value."""
    return (
        environment()
        .get_template("capacity.html.j2")
        .render(
            title=title(cap),
            assumptions=cap.assumptions,
            head=HEAD,
            rows=[(verdict(r), cells(r)) for r in cap.rows],
            claims=[(PLAUSIBLE[x.plausible][1], expectation_cells(x)) for x in cap.expectations],
        )
    )


def capacity_rich(cap: Capacity) -> list[Any]:
    """rich renderables: the capacity table and the claims table."""
    from rich import box
    from rich.table import Table

    t = Table(
        title=f"Capacity: {cap.gpus}x {cap.gpu}, {CAPACITY_CTX:,}-token context, prompt {PROMPT}, gen {GEN}",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for h in HEAD:
        # ids and figures never wrap or crop: headings break at spaces instead
        t.add_column(
            h.replace(" ", "\n") if h not in ("model", "format", "engine") else h,
            justify="right" if h not in ("model", "format", "engine", "runs", "bound") else "left",
            no_wrap=True,
        )
    for r in cap.rows:
        row = list(cells(r))
        row[2] = row[2].replace(" (tensor)", " TP")  # as in the compact table
        row[-1] = BOUND_SHORT.get(row[-1], row[-1])
        t.add_row(*row, style=RUNS_STYLE[verdict(r)])
    out: list[Any] = [t]
    if cap.expectations:
        c = Table(title="Performance claims")
        for h in ("claim", "verdict", "estimate", "why"):
            c.add_column(h)
        for x in cap.expectations:
            c.add_row(*expectation_cells(x), style=PLAUSIBLE[x.plausible][2])
        out.append(c)
    return out
