"""rigkit: plan, estimate, benchmark and monitor multi-GPU workstations for local LLM inference."""

from __future__ import annotations

from rigkit.errors import (
    BenchError,
    CatalogError,
    EstimateError,
    MonitorError,
    RigkitError,
    SpecError,
    UnknownIdError,
)

__version__ = "0.1.0"

__all__ = [
    "BenchError",
    "CatalogError",
    "EstimateError",
    "MonitorError",
    "RigkitError",
    "SpecError",
    "UnknownIdError",
    "__version__",
]
