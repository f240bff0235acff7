"""Rule modules, one per area. Importing this package registers every rule."""

from rigkit.design.rules import (
    clearance,
    compat,
    cost,
    interconnect,
    memory,
    network,
    pcie,
    power,
    site,
    storage,
)

__all__ = [
    "clearance",
    "compat",
    "cost",
    "interconnect",
    "memory",
    "network",
    "pcie",
    "power",
    "site",
    "storage",
]
