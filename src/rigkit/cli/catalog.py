"""CLI command `rigkit catalog` (placeholder until the capability lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    del app
