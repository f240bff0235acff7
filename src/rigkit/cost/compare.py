"""Owning against renting: break-even hours and the total cost over a horizon, for each rental.

    break-even hours     = hardware / (rent $/h - own electricity $/h)
    net of resale        = (hardware - resale after the horizon) / (rent $/h - own electricity $/h)
    owning, horizon      = hardware - resale + electricity at the site's usage
    renting, horizon     = rent $/h x hours in use (the site's hours per day, every day)

Own electricity per hour is at sustained wall power with the UPS's losses (as rule CST002 has
always counted it); the horizon's electricity follows the site's utilisation and idle power.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from rigkit.cost.rental import STALE_AFTER_DAYS, Rental, like_for_like, named
from rigkit.cost.tco import DEFAULT_HORIZON_YEARS, Ownership, ownership
from rigkit.design.model import break_even_hours

if TYPE_CHECKING:
    from rigkit.build import Build
    from rigkit.catalog.loader import Catalog


@dataclass(frozen=True)
class RentalComparison:
    """One rental against owning the build."""

    rental: Rental
    break_even_h: float | None  # None: renting is not dearer per hour than the electricity
    break_even_net_h: float | None  # net of the resale value after the horizon
    rent_usd: float  # renting the horizon's hours of use
    own_usd: float  # the build's total cost of ownership over the horizon

    @property
    def saving_usd(self) -> float:
        """What owning saves over the horizon (negative: renting is cheaper)."""
        return self.rent_usd - self.own_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.rental.to_dict(),
            "break_even_h": None if self.break_even_h is None else round(self.break_even_h, 1),
            "break_even_net_h": None
            if self.break_even_net_h is None
            else round(self.break_even_net_h, 1),
            "rent_usd": round(self.rent_usd, 2),
            "own_usd": round(self.own_usd, 2),
            "saving_usd": round(self.saving_usd, 2),
        }


@dataclass(frozen=True)
class CostComparison:
    """The build owned over ``ownership.horizon_years`` against each way to rent it."""

    today: date  # the day price ages are counted to
    ownership: Ownership
    rentals: tuple[RentalComparison, ...]  # like for like first, then the spec's instance

    @property
    def like_for_like(self) -> RentalComparison | None:
        return next((r for r in self.rentals if r.rental.basis != "named"), None)

    @property
    def named(self) -> RentalComparison | None:
        return next((r for r in self.rentals if r.rental.basis == "named"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.today.isoformat(),
            "stale_after_days": STALE_AFTER_DAYS,
            "ownership": self.ownership.to_dict(),
            "rentals": [r.to_dict() for r in self.rentals],
        }


def compare_rental(own: Ownership, rental: Rental) -> RentalComparison:
    """Owning (``own``) against ``rental`` over the same horizon."""
    rent_h = rental.usd_per_hour
    return RentalComparison(
        rental=rental,
        break_even_h=break_even_hours(own.hardware_usd, rent_h, own.own_usd_per_use_hour),
        break_even_net_h=break_even_hours(own.depreciation_usd, rent_h, own.own_usd_per_use_hour),
        rent_usd=rent_h * own.use_hours,
        own_usd=own.tco_usd,
    )


def compare_costs(
    build: Build,
    catalog: Catalog,
    *,
    horizon_years: float = DEFAULT_HORIZON_YEARS,
    today: date | None = None,
) -> CostComparison:
    """Own ``build`` for ``horizon_years`` against renting the same capacity and the spec's named
    instance. ``today`` (default: the current date) is when price ages are counted to."""
    day = date.today() if today is None else today
    own = ownership(build, horizon_years)
    rentals: list[Rental] = []
    cloud = list(catalog.cloud.values())
    lfl = like_for_like(build, cloud, catalog.gpus, day)
    if lfl is not None:
        rentals.append(lfl)
    if build.cloud is not None:
        n = named(build, build.cloud, catalog.gpus, day)
        if n is not None and (lfl is None or n.instance_ids != lfl.instance_ids):
            rentals.append(n)
    return CostComparison(
        today=day, ownership=own, rentals=tuple(compare_rental(own, r) for r in rentals)
    )
