"""The rule reference (docs/rules.md), generated from the registry by scripts/gen_rules_doc.py."""

from __future__ import annotations

from rigkit.design.registry import CATEGORIES, all_rules

HEADER = """# Design rules

Generated from the rule registry by `scripts/gen_rules_doc.py`; do not edit by hand.
`rigkit rules` prints the same list; `rigkit plan SPEC` runs every rule on a build.

Each rule has a stable code (codes are never reused), a category and a default severity. A rule may
report a lower severity when it finds nothing wrong (an `info` finding with its numbers) or a higher
one for the worst cases; the message always carries the numbers and the fix says what to change.
"""


def rules_markdown() -> str:
    rules = all_rules()
    lines = [HEADER, "| Code | Category | Severity | Rule |", "|---|---|---|---|"]
    lines += [
        f"| [{r.code}](#{r.code.lower()}) | {r.category} | {r.severity.value} | {r.name} |"
        for r in rules
    ]
    lines.append("")
    for cat in CATEGORIES:
        in_cat = [r for r in rules if r.category == cat]
        if not in_cat:
            continue
        lines += [f"## {cat}", ""]
        for r in in_cat:
            lines += [f"### {r.code}", "", f"**{r.name}** ({r.severity.value})", "", r.doc, ""]
    return "\n".join(lines).rstrip() + "\n"
