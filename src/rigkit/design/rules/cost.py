"""Cost: total, electricity, break-even against renting the same capacity (rigkit.cost)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

from rigkit.cost.rental import like_for_like, named
from rigkit.design.model import (
    break_even_hours,
    electricity_usd_per_hour,
    electricity_usd_per_month,
    power_budget,
)
from rigkit.design.registry import Finding, Severity, finding, rule

if TYPE_CHECKING:
    from rigkit.build import Build
    from rigkit.catalog.loader import Catalog

log = logging.getLogger(__name__)


@rule("CST001", "Total cost and electricity", "cost", Severity.INFO)
def total_cost(build: Build) -> Iterator[Finding]:
    """Total hardware cost from catalog prices plus extra_cost_usd, and the electricity bill at the
    site's tariff, hours per day and utilisation (idle power the rest of the day). The energy is
    what the outlet supplies: with a UPS, its input (the machine's wall power over the UPS's
    efficiency), so the UPS's losses are on the bill.

    Parts without a price are listed so the total is not mistaken for complete.
    """
    lines = build.cost_lines()
    total = build.total_cost_usd
    missing = [c.item for c in lines if c.unit_usd is None]
    budget = power_budget(build)
    month = electricity_usd_per_month(build, budget.wall_w)
    drawn = f"{budget.circuit_w:.0f} W"
    if budget.ups_efficiency is not None:
        drawn += f" with {budget.ups_loss_w:.0f} W of UPS losses"
    s = build.site
    msg = (
        f"hardware ${total:,.0f}; electricity ~${month:,.0f}/month ({drawn} x "
        f"{s.hours_per_day:g} h/day x {s.utilization:.0%} use at ${s.electricity_usd_per_kwh:g}/kWh)"
    )
    if missing:
        msg += f"; no price for {', '.join(missing)}"
    yield finding(
        "CST001",
        msg,
        "add prices (extra_cost_usd) for parts outside the catalog" if missing else "none needed",
        severity=Severity.WARNING if missing else Severity.INFO,
        total_usd=round(total, 2),
        electricity_usd_month=round(month, 2),
        energy_w=round(budget.circuit_w, 1),
        unpriced=missing,
    )


@rule("CST002", "Break-even against renting", "cost", Severity.WARNING)
def break_even(build: Build, catalog: Catalog) -> Iterator[Finding]:
    """Break-even hours = total cost / (rent $/h - own electricity $/h at sustained wall power,
    with a UPS at its input), against renting the same capacity: the same card per GPU where the
    catalog offers it, the nearest instance by GPU memory and bandwidth otherwise
    (:mod:`rigkit.cost.rental`). The instance the spec names (``compare_cloud``) is flagged when it
    is not like for like: its GPU memory or bandwidth outside 0.5-2x the build's.

    Why: comparing 96 GB of GeForce memory with an 8x A100 (320 GB) instance flatters the build.
    Fix: compare with renting the same capacity; the rule names it. `rigkit plan` shows the
    whole comparison (price dates, resale, the 3-year total cost of ownership).
    """
    cloud = build.cloud
    vram = sum(g.gpu.vram_gb for g in build.gpus)
    total = build.total_cost_usd
    own_h = electricity_usd_per_hour(build, power_budget(build).wall_w)
    today = date.today()  # only the prices' ages depend on it, and the finding does not use them
    same = like_for_like(build, list(catalog.cloud.values()), catalog.gpus, today)
    same_hours = break_even_hours(total, same.usd_per_hour, own_h) if same is not None else None
    same_txt = ""
    if same is not None:
        dates = ", ".join(sorted({p.price_as_of for p in same.pieces}))
        what = "the same cards" if same.basis == "same card" else "the nearest capacity"
        same_txt = (
            f"; renting {what}, {same.label} (${same.usd_per_hour:,.2f}/h, prices as of "
            f"{dates}), breaks even after "
            + (f"{same_hours:,.0f} h" if same_hours is not None else "never")
        )
    same_data: dict[str, Any] = {
        "comparable": None if same is None else same.instance_ids[0],
        "comparable_basis": None if same is None else same.basis,
        "comparable_usd_h": None if same is None else round(same.usd_per_hour, 4),
        "comparable_break_even_h": None if same_hours is None else round(same_hours, 1),
    }
    if cloud is None:
        if same is not None:
            yield finding(
                "CST002",
                f"no cloud instance named for comparison{same_txt}",
                f"name one in the spec (compare_cloud: {same.instance_ids[0]})",
                severity=Severity.INFO,
                **same_data,
            )
        return
    hours = break_even_hours(total, cloud.price_per_hour_usd, own_h)
    spec_rental = named(build, cloud, catalog.gpus, today)
    cv = None if spec_rental is None else spec_rental.vram_gb
    data: dict[str, Any] = {
        "total_usd": round(total, 2),
        "cloud": cloud.id,
        "cloud_usd_h": cloud.price_per_hour_usd,
        "cloud_price_as_of": cloud.price_as_of,
        "own_usd_h": round(own_h, 4),
        "break_even_h": None if hours is None else round(hours, 1),
        "cloud_vram_gb": cv,
        "build_vram_gb": vram,
        **same_data,
    }
    head = (
        f"${total:,.0f} / (${cloud.price_per_hour_usd:g}/h {cloud.name}, price as of "
        f"{cloud.price_as_of} - ${own_h:.2f}/h electricity) = "
        + (f"{hours:,.0f} h ({hours / 24:.0f} days of 24/7 use)" if hours is not None else "never")
    )
    if spec_rental is not None and not spec_rental.like_for_like:
        yield finding(
            "CST002",
            f"{head}, but {cloud.name} has {spec_rental.vram_ratio:.1f}x the GPU memory "
            f"({cv:g} GB vs {vram:g} GB) and {spec_rental.bandwidth_ratio:.1f}x the memory "
            f"bandwidth: not like for like{same_txt}",
            "compare with renting the same capacity"
            + (f" (compare_cloud: {same.instance_ids[0]})" if same is not None else ""),
            **data,
        )
    else:
        yield finding("CST002", head + same_txt, "none needed", severity=Severity.INFO, **data)
