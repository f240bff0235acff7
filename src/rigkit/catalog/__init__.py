"""The parts catalog: every GPU, CPU, board, PSU, ... a spec can name, with sources.

``load_catalog()`` returns the packaged catalog (loaded once, validated); ``cat.get(kind, id)``
looks an entry up and raises :class:`~rigkit.errors.UnknownIdError` with the closest ids.
"""

from __future__ import annotations

from rigkit.catalog.loader import KINDS, Catalog, closest_ids, load_catalog, load_catalog_from

__all__ = ["KINDS", "Catalog", "closest_ids", "load_catalog", "load_catalog_from"]
