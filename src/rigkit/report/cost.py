"""The plan's cost-against-renting section (:class:`rigkit.cost.CostComparison`) as rows of
strings, rich tables and Markdown; the HTML report lays out the same rows. :mod:`rigkit.cost`
computes the comparison; this module only words it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rigkit.report.words import plural

if TYPE_CHECKING:
    from rigkit.cost import CostComparison, RentalComparison


def horizon_text(years: float) -> str:
    """3.0 -> '3 years', 1.0 -> '1 year', 1.5 -> '18 months'."""
    if years == int(years):
        return plural(int(years), "year")
    return plural(round(years * 12), "month")


def hours_text(hours: float | None, hours_per_day: float) -> str:
    """'8,883 h (370 days at 24 h/day)' or 'never' (renting costs no more than the electricity)."""
    if hours is None:
        return "never"
    out = f"{hours:,.0f} h"
    if hours_per_day > 0:
        out += f" ({hours / hours_per_day:,.0f} days at {hours_per_day:g} h/day)"
    return out


def _usd(x: float) -> str:
    return f"-${-x:,.0f}" if x < 0 else f"${x:,.0f}"


def head(c: CostComparison) -> tuple[str, ...]:
    h = horizon_text(c.ownership.horizon_years)
    return (
        "Renting",
        "Compared as",
        "$/h (price date)",
        "Break-even",
        f"Net of resale after {h}",
        f"Rent {h}",
        f"Own {h}",
        "Owning saves",
    )


def price_text(r: RentalComparison) -> str:
    """'$2.76/h (4 x $0.69, as of 2024, old)'."""
    parts = []
    for p in r.rental.pieces:
        each = f"{p.count} x ${p.instance_usd_per_hour:g}" if p.count > 1 else ""
        when = f"as of {p.price_as_of}" + (", old" if p.stale else "")
        parts.append(", ".join(x for x in (each, when) if x))
    return f"${r.rental.usd_per_hour:,.2f}/h ({'; '.join(parts)})"


def rental_rows(c: CostComparison) -> list[tuple[str, ...]]:
    """One row per rental under :func:`head`."""
    hpd = c.ownership.hours_per_day
    return [
        (
            r.rental.label,
            r.rental.why(),
            price_text(r),
            hours_text(r.break_even_h, hpd),
            hours_text(r.break_even_net_h, hpd),
            _usd(r.rent_usd),
            _usd(r.own_usd),
            _usd(r.saving_usd),
        )
        for r in c.rentals
    ]


def ownership_line(c: CostComparison) -> str:
    """'Owning for 3 years: hardware $20,352 - resale $9,054 + electricity $7,399 = $18,698'."""
    o = c.ownership
    return (
        f"Owning for {horizon_text(o.horizon_years)}: hardware {_usd(o.hardware_usd)} - resale "
        f"{_usd(o.resale_usd)} + electricity {_usd(o.electricity_usd)} "
        f"({_usd(o.electricity_usd_month)}/month) = {_usd(o.tco_usd)}; renting is priced for "
        f"the same {o.use_hours:,.0f} hours of use ({o.hours_per_day:g} h/day)."
    )


def notes(c: CostComparison) -> list[str]:
    """How to read the section: old prices, where the resale figures come from."""
    out = []
    old = sorted(
        {(p.price_as_of, p.age_days) for r in c.rentals for p in r.rental.pieces if p.stale}
    )
    if old:
        dates = ", ".join(f"{d} (at least {days // 30} months)" for d, days in old)
        out.append(
            f"Old prices: {dates} before {c.today.isoformat()}; cloud prices change (AWS cut "
            "P4/P5 prices in June 2025): check a current quote."
        )
    kinds = {x.category: x.kind for x in c.ownership.lines if x.cost_usd > 0}
    market = sorted(k for k, v in kinds.items() if v == "market")
    assumed = sorted(k for k, v in kinds.items() if v == "assumption")
    if market or assumed:
        out.append(
            "Resale: "
            + "; ".join(
                s
                for s in (
                    f"{', '.join(market)} from used-market prices" if market else "",
                    f"{', '.join(assumed)} rigkit's assumptions" if assumed else "",
                )
                if s
            )
            + " (sources in --json)."
        )
    out.append(
        "Break-even: hours of use after which owning costs less than renting (hardware over the "
        "rent less the electricity per hour at sustained wall power)."
    )
    return out


def cost_rich(c: CostComparison, narrow: bool = False) -> list[Any]:
    """The section as rich renderables: the table, then the ownership line and notes."""
    from rich.table import Table
    from rich.text import Text

    cols = head(c)
    keep = (0, 2, 3, 7) if narrow else tuple(range(len(cols)))
    t = Table(
        title=f"Cost against renting ({horizon_text(c.ownership.horizon_years)})",
        title_justify="left",
        show_lines=True,
    )
    for i in keep:
        t.add_column(cols[i], justify="right" if i >= 5 else "left")
    for row in rental_rows(c):
        t.add_row(*(row[i] for i in keep))
    return [t, Text(ownership_line(c)), *(Text(n, style="dim") for n in notes(c))]


def cost_markdown(c: CostComparison) -> str:
    from rigkit.report.markdown import md_table

    parts = [
        f"## Cost against renting ({horizon_text(c.ownership.horizon_years)})",
        "",
        md_table(head(c), rental_rows(c)),
        "",
        ownership_line(c),
        "",
    ]
    parts += [f"- {n}" for n in notes(c)]
    return "\n".join(parts) + "\n"
