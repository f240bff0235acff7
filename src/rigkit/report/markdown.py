"""Markdown report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rigkit.report import tables

if TYPE_CHECKING:
    from rigkit.design.plan import PlanResult


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_esc(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def render_markdown(
    result: PlanResult,
    figures: Mapping[str, str] | None = None,
    capacity_md: str | None = None,
) -> str:
    """The plan as Markdown. ``figures`` maps a title to an image path or data URI."""
    b = result.build
    parts = [f"# Plan: {b.name}", ""]
    if b.spec_path:
        parts += [f"Spec: `{b.spec_path}`", ""]
    parts += [f"**{tables.status_line(result)}**", "", "## The build at a glance", ""]
    parts += [md_table(("", ""), tables.glance_rows(result)), ""]
    if result.claims:
        parts += ["## Stated figures", "", tables.claims_line(result), ""]
        rows = [
            (claim, stated, plan, f"**{verdict}**" + (f": {note}" if note else ""))
            for claim, stated, plan, verdict, note in tables.claim_rows(result)
        ]
        parts += [md_table(("Claim", "Stated", "The plan works out", "Verdict"), rows), ""]
    parts += ["## Findings", ""]
    for sev, fs in tables.grouped(result):
        parts += [f"### {tables.SEVERITY_TITLES[sev]} ({len(fs)})", ""]
        for f in fs:
            parts.append(f"- **{f.rule}** ({f.category}): {f.message}")
            if f.fix and f.fix != "none needed":
                parts.append(f"  - Fix: {f.fix}")
        parts.append("")
    parts += ["## Power", ""]
    parts += [md_table(("Part", "Sustained W", "Peak W"), tables.power_rows(result)), ""]
    parts += [
        md_table(("PSU", "Feeds", "Load", "Peak", "Efficiency", "Wall"), tables.psu_rows(result)),
        "",
    ]
    parts += ["## PCIe allocation", ""]
    parts += [
        md_table(("Device", "Slot", "From", "Link", "GB/s"), tables.pcie_rows(result)),
        "",
    ]
    if result.summary.volumes:
        parts += ["## Storage", ""]
        parts += [
            md_table(("Volume", "Drives", "Capacity", "Read"), tables.volume_rows(result)),
            "",
        ]
    parts += ["## Cost", ""]
    parts += [md_table(("Category", "Item", "Qty", "Total"), tables.cost_rows(result)), ""]
    if result.cost is not None and result.cost.rentals:
        from rigkit.report.cost import cost_markdown

        parts += ["#" + cost_markdown(result.cost).rstrip(), ""]
    if capacity_md:
        body = capacity_md.strip()
        # the estimator's section may bring its own heading
        parts += ([] if body.startswith("## ") else ["## Capacity", ""]) + [body, ""]
    if figures:
        parts += ["## Figures", ""]
        parts += [f"![{title}]({src})\n" for title, src in figures.items()]
    return "\n".join(parts).rstrip() + "\n"
