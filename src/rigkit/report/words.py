"""Counts in words: ``plural(1, "error")`` is "1 error", ``plural(2, "error")`` "2 errors"."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """``N WORD`` with the word in the plural unless ``n`` is 1 (``many``: an irregular plural).
    Thousands are grouped: ``plural(1200, "request")`` is "1,200 requests"."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
