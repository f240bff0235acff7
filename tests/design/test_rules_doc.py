"""docs/rules.md is generated from the registry and must be current."""

from __future__ import annotations

from pathlib import Path

from rigkit.design.docs import rules_markdown
from rigkit.design.registry import all_rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_rules_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == rules_markdown(), (
        "docs/rules.md is out of date: run python scripts/gen_rules_doc.py"
    )


def test_rules_doc_lists_every_code() -> None:
    text = rules_markdown()
    for r in all_rules():
        assert f"### {r.code}" in text
