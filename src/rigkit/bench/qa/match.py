"""Matching what the machine reports ("NVIDIA GeForce RTX 4090") with catalog entries (rtx-4090)."""

from __future__ import annotations

import re

_STOP = frozenset({"nvidia", "geforce", "amd", "intel", "ryzen", "core", "processor", "cpu", "gpu"})


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def reported_matches(reported: str, part_id: str, part_name: str | None = None) -> bool:
    """True when every distinctive token of the catalog id (or the whole catalog name) appears
    in the reported name: ``rtx-4090`` matches "NVIDIA GeForce RTX 4090", ``threadripper-pro-7975wx``
    matches "AMD Ryzen Threadripper PRO 7975WX 32-Cores"."""
    squashed = _squash(reported)
    if part_name and _squash(part_name) and _squash(part_name) in squashed:
        return True
    tokens = [t for t in re.split(r"[-_.\s]+", part_id.lower()) if t and t not in _STOP]
    return bool(tokens) and all(_squash(t) in squashed for t in tokens)
