"""Cost: total, electricity, break-even against a cloud instance of comparable capability."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

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
    from rigkit.catalog.parts import CloudInstance, Gpu

log = logging.getLogger(__name__)

#: an instance with more than this multiple of the build's VRAM is not a like-for-like comparison
COMPARABLE_VRAM_RATIO = 2.0


def instance_vram_gb(inst: CloudInstance, gpus: Mapping[str, Gpu]) -> float | None:
    gpu = gpus.get(inst.gpu_id)
    return None if gpu is None else gpu.vram_gb * inst.gpu_count


def comparable_instance(
    vram_gb: float, instances: list[CloudInstance], gpus: Mapping[str, Gpu]
) -> CloudInstance | None:
    """The cheapest instance with at least ``vram_gb`` and at most 2x that much GPU memory."""
    fits = []
    for inst in instances:
        v = instance_vram_gb(inst, gpus)
        if v is not None and vram_gb <= v <= vram_gb * COMPARABLE_VRAM_RATIO:
            fits.append(inst)
    return min(fits, key=lambda i: i.price_per_hour_usd, default=None)


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


@rule("CST002", "Break-even against the cloud", "cost", Severity.WARNING)
def break_even(build: Build, catalog: Catalog) -> Iterator[Finding]:
    """Break-even hours = total cost / (cloud $/h - own electricity $/h at sustained wall power,
    with a UPS at its input), against an instance of COMPARABLE capability (GPU memory within 1-2x
    of the build's).

    Why: comparing 96 GB of GeForce memory with an 8x A100 (320 GB) instance flatters the build.
    Fix: compare with a comparable instance; the rule names the cheapest one in the catalog.
    """
    cloud = build.cloud
    vram = sum(g.gpu.vram_gb for g in build.gpus)
    total = build.total_cost_usd
    own_h = electricity_usd_per_hour(build, power_budget(build).wall_w)
    gpus = catalog.gpus
    best = comparable_instance(vram, list(catalog.cloud.values()), gpus)
    best_hours = (
        break_even_hours(total, best.price_per_hour_usd, own_h) if best is not None else None
    )
    best_txt = ""
    if best is not None:
        bv = instance_vram_gb(best, gpus)
        best_txt = (
            f"; the cheapest comparable instance in the catalog, {best.name} ({bv:g} GB, "
            f"${best.price_per_hour_usd:g}/h), breaks even after "
            + (f"{best_hours:,.0f} h" if best_hours is not None else "never")
        )
    if cloud is None:
        if best is not None:
            yield finding(
                "CST002",
                f"no cloud instance named for comparison{best_txt}",
                f"name one in the spec (cloud: {best.id})",
                severity=Severity.INFO,
                comparable=best.id,
                comparable_break_even_h=None if best_hours is None else round(best_hours, 1),
            )
        return
    hours = break_even_hours(total, cloud.price_per_hour_usd, own_h)
    cv = instance_vram_gb(cloud, gpus)
    data: dict[str, Any] = {
        "total_usd": round(total, 2),
        "cloud": cloud.id,
        "cloud_usd_h": cloud.price_per_hour_usd,
        "own_usd_h": round(own_h, 4),
        "break_even_h": None if hours is None else round(hours, 1),
        "cloud_vram_gb": cv,
        "build_vram_gb": vram,
        "comparable": None if best is None else best.id,
        "comparable_break_even_h": None if best_hours is None else round(best_hours, 1),
    }
    head = (
        f"${total:,.0f} / (${cloud.price_per_hour_usd:g}/h {cloud.name} - ${own_h:.2f}/h "
        f"electricity) = "
        + (f"{hours:,.0f} h ({hours / 24:.0f} days of 24/7 use)" if hours is not None else "never")
    )
    if cv is not None and cv > vram * COMPARABLE_VRAM_RATIO:
        yield finding(
            "CST002",
            f"{head}, but {cloud.name} has {cv:g} GB of GPU memory vs the build's {vram:g} GB: not "
            f"a comparable instance{best_txt}",
            "compare with an instance of similar GPU memory and speed"
            + (f" ({best.id})" if best is not None else ""),
            **data,
        )
    else:
        yield finding("CST002", head + best_txt, "none needed", severity=Severity.INFO, **data)
