"""JSON output and the report directory (report.md + self-contained report.html)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rigkit.report import tables
from rigkit.report.capacity import capacity_html, capacity_markdown
from rigkit.report.markdown import render_markdown
from rigkit.report.templating import environment

if TYPE_CHECKING:
    from rigkit.design.plan import PlanResult

log = logging.getLogger(__name__)


def render_json(result: PlanResult) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=False)


def capacity_md(result: PlanResult) -> str | None:
    """The capacity section in Markdown (None when the plan has none)."""
    return None if result.capacity is None else capacity_markdown(result.capacity)


def figures_png(result: PlanResult) -> dict[str, bytes]:
    """The report's figures as PNG bytes (imports matplotlib)."""
    from rigkit.report import figures

    s = result.summary
    out = {
        "pcie": figures.pcie_png(s, result.build.cpu.pcie_lanes),
        "slots": figures.slots_png(result),
        "power": figures.power_png(s, {g.index: g.power_limit_w for g in result.build.gpus}),
        "cost": figures.cost_png(s),
    }
    if result.capacity is not None:
        out["roofline"] = figures.roofline_png(result.build, result.capacity)
    return out


def render_html(result: PlanResult, figure_uris: dict[str, str] | None = None) -> str:
    """Self-contained HTML: figures embedded as base64 PNG data URIs."""
    from markupsafe import Markup

    cap = result.capacity
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            build=result.build,
            status=tables.status_line(result),
            counts=result.counts(),
            glance=tables.glance_rows(result),
            groups=[(s.value, tables.SEVERITY_TITLES[s], fs) for s, fs in tables.grouped(result)],
            power_rows=tables.power_rows(result),
            psu_rows=tables.psu_rows(result),
            pcie_rows=tables.pcie_rows(result),
            volume_rows=tables.volume_rows(result),
            cost_rows=tables.cost_rows(result),
            rental=rental_view(result),
            claim_rows=tables.claim_rows(result),
            claims_line=tables.claims_line(result) if result.claims else "",
            verdict_styles=tables.VERDICT_STYLES,
            figures=figure_uris or {},
            capacity_html=Markup(capacity_html(cap)) if cap is not None else None,
        )
    )


def rental_view(result: PlanResult) -> dict[str, Any] | None:
    """The cost-against-renting section's strings for the HTML template (None: nothing to rent)."""
    c = result.cost
    if c is None or not c.rentals:
        return None
    from rigkit.report import cost

    return {
        "title": f"Cost against renting ({cost.horizon_text(c.ownership.horizon_years)})",
        "head": cost.head(c),
        "rows": cost.rental_rows(c),
        "ownership": cost.ownership_line(c),
        "notes": cost.notes(c),
    }


FIGURE_TITLES = {
    "pcie": "PCIe lane allocation",
    "slots": "Slot map",
    "power": "Power budget",
    "cost": "Cost breakdown",
    "roofline": "Roofline",
}


REPORT_MD = "report.md"
REPORT_HTML = "report.html"


def report_file_names() -> list[str]:
    """Every file :func:`write_report` may write into its directory."""
    return [REPORT_MD, REPORT_HTML, *(f"{name}.png" for name in FIGURE_TITLES)]


def write_report(result: PlanResult, out_dir: Path) -> list[Path]:
    """Write report.md (figures as PNG files beside it) and self-contained report.html."""
    from rigkit.report.figures import data_uri

    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = figures_png(result)
    written: list[Path] = []
    md_figs: dict[str, str] = {}
    for name, png in pngs.items():
        path = out_dir / f"{name}.png"
        path.write_bytes(png)
        written.append(path)
        md_figs[FIGURE_TITLES.get(name, name)] = path.name
    md = out_dir / REPORT_MD
    md.write_text(
        render_markdown(result, md_figs, capacity_md(result)),
        encoding="utf-8",
    )
    html = out_dir / REPORT_HTML
    html.write_text(
        render_html(result, {k: data_uri(v) for k, v in pngs.items()}), encoding="utf-8"
    )
    return [md, html, *written]
