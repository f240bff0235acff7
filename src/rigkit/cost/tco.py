"""Owning the build over a horizon: depreciation (resale value), electricity, total cost.

The hardware cost is :meth:`rigkit.build.Build.cost_lines` (the one cost computation); the
electricity is :func:`rigkit.design.model.electricity_usd_per_month` at the site's tariff, hours
and utilisation (with the UPS's losses). Resale follows ``data/resale.yaml``: value after ``t``
years = price x ``retained_per_year`` ^ ``t``, per cost category.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rigkit.design.model import (
    DAYS_PER_MONTH,
    electricity_usd_per_hour,
    electricity_usd_per_month,
    power_budget,
)
from rigkit.errors import CatalogError

if TYPE_CHECKING:
    from rigkit.build import Build

DATA = Path(__file__).resolve().parent / "data" / "resale.yaml"
DAYS_PER_YEAR = 365.25
#: the horizon of the plan's cost comparison unless one is given (the issue's "3-year TCO")
DEFAULT_HORIZON_YEARS = 3.0


class Resale(BaseModel):
    """How one cost category keeps its value (one entry of ``resale.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str
    retained_per_year: float = Field(ge=0, le=1)
    kind: Literal["market", "assumption"]
    source: str = Field(min_length=3)


@functools.cache
def resale_table() -> Mapping[str, Resale]:
    """The packaged resale curves by category (read once)."""
    from rigkit.catalog.yamlcache import load_yaml

    raw = load_yaml(DATA.read_text(encoding="utf-8"))
    try:
        entries = [Resale.model_validate(e) for e in raw]
    except ValidationError as err:  # packaged data: a defect, reported like a catalog error
        raise CatalogError(f"{DATA.name}: {err.errors()[0]['msg']}") from None
    return {e.category: e for e in entries}


@dataclass(frozen=True)
class ResaleLine:
    """One cost category: what it cost and what it sells for after the horizon."""

    category: str
    cost_usd: float
    retained_per_year: float
    resale_usd: float
    kind: str  # market | assumption
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "cost_usd": round(self.cost_usd, 2),
            "retained_per_year": self.retained_per_year,
            "resale_usd": round(self.resale_usd, 2),
            "kind": self.kind,
            "source": self.source,
        }


@dataclass(frozen=True)
class YearRow:
    """The end of one year of ownership (the refresh view)."""

    year: float
    value_usd: float  # what the hardware would sell for
    electricity_usd: float  # paid so far
    own_usd: float  # hardware - value + electricity so far

    def to_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "value_usd": round(self.value_usd, 2),
            "electricity_usd": round(self.electricity_usd, 2),
            "own_usd": round(self.own_usd, 2),
        }


@dataclass(frozen=True)
class Ownership:
    """Owning the build for ``horizon_years`` at the site's usage, term by term."""

    horizon_years: float
    hardware_usd: float
    lines: tuple[ResaleLine, ...]
    electricity_usd_month: float  # at the site's hours, utilisation and idle power
    own_usd_per_use_hour: float  # electricity per hour at sustained wall power (break-even)
    use_hours: float  # hours in use over the horizon: hours_per_day x 365.25 x years
    hours_per_day: float
    years: tuple[YearRow, ...]

    @property
    def resale_usd(self) -> float:
        return sum(x.resale_usd for x in self.lines)

    @property
    def depreciation_usd(self) -> float:
        return self.hardware_usd - self.resale_usd

    @property
    def electricity_usd(self) -> float:
        return self.electricity_usd_month / DAYS_PER_MONTH * DAYS_PER_YEAR * self.horizon_years

    @property
    def tco_usd(self) -> float:
        """Total cost of ownership: what the hardware loses plus the electricity it uses."""
        return self.depreciation_usd + self.electricity_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon_years": self.horizon_years,
            "hardware_usd": round(self.hardware_usd, 2),
            "resale_usd": round(self.resale_usd, 2),
            "depreciation_usd": round(self.depreciation_usd, 2),
            "electricity_usd_month": round(self.electricity_usd_month, 2),
            "electricity_usd": round(self.electricity_usd, 2),
            "tco_usd": round(self.tco_usd, 2),
            "own_usd_per_use_hour": round(self.own_usd_per_use_hour, 4),
            "use_hours": round(self.use_hours, 1),
            "hours_per_day": self.hours_per_day,
            "resale": [x.to_dict() for x in self.lines],
            "years": [y.to_dict() for y in self.years],
        }


def category_costs(build: Build) -> dict[str, float]:
    """USD per cost category of the build (unpriced parts count 0)."""
    return build.cost_breakdown()


def resale_value(costs: Mapping[str, float], years: float) -> list[ResaleLine]:
    """Each category's resale value after ``years`` (a category the table lacks: no resale)."""
    table = resale_table()
    out = []
    for cat, usd in costs.items():
        r = table.get(cat) or table["other"]
        out.append(
            ResaleLine(
                category=cat,
                cost_usd=usd,
                retained_per_year=r.retained_per_year,
                resale_usd=usd * r.retained_per_year**years,
                kind=r.kind,
                source=r.source,
            )
        )
    return out


def use_hours(build: Build, years: float) -> float:
    """Hours the build is in use over ``years``: the site's hours per day, every day."""
    return min(max(build.site.hours_per_day, 0.0), 24.0) * DAYS_PER_YEAR * years


def ownership(build: Build, horizon_years: float = DEFAULT_HORIZON_YEARS) -> Ownership:
    """Owning ``build`` for ``horizon_years``: depreciation, electricity, the year-by-year view."""
    if horizon_years <= 0:
        raise ValueError("the horizon must be positive")
    costs = category_costs(build)
    hardware = sum(costs.values())
    wall_w = power_budget(build).wall_w
    month = electricity_usd_per_month(build, wall_w)
    rows = []
    whole = int(horizon_years)
    marks = [float(y) for y in range(1, whole + 1)]
    if horizon_years > whole:
        marks.append(horizon_years)
    for y in marks:
        value = sum(x.resale_usd for x in resale_value(costs, y))
        elec = month / DAYS_PER_MONTH * DAYS_PER_YEAR * y
        rows.append(YearRow(y, value, elec, hardware - value + elec))
    return Ownership(
        horizon_years=horizon_years,
        hardware_usd=hardware,
        lines=tuple(resale_value(costs, horizon_years)),
        electricity_usd_month=month,
        own_usd_per_use_hour=electricity_usd_per_hour(build, wall_w),
        use_hours=use_hours(build, horizon_years),
        hours_per_day=min(max(build.site.hours_per_day, 0.0), 24.0),
        years=tuple(rows),
    )
