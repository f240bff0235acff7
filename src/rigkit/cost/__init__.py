"""The cost of a build against renting the same capacity.

- :mod:`rigkit.cost.rental`: renting what the build has (the same card per GPU, else the nearest
  instance by GPU memory and bandwidth) and the instance the spec names; prices with their dates.
- :mod:`rigkit.cost.tco`: owning it over a horizon (depreciation from ``data/resale.yaml``,
  electricity at the site's tariff and usage).
- :mod:`rigkit.cost.compare`: break-even hours and the total cost of ownership against each rental.

The hardware cost itself is :meth:`rigkit.build.Build.cost_lines` (the one cost computation).
"""

from rigkit.cost.compare import CostComparison, RentalComparison, compare_costs
from rigkit.cost.rental import STALE_AFTER_DAYS, Rental, RentedPiece
from rigkit.cost.tco import DEFAULT_HORIZON_YEARS, Ownership, ownership

__all__ = [
    "DEFAULT_HORIZON_YEARS",
    "STALE_AFTER_DAYS",
    "CostComparison",
    "Ownership",
    "Rental",
    "RentalComparison",
    "RentedPiece",
    "compare_costs",
    "ownership",
]
