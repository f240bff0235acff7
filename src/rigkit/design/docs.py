"""The rule reference (docs/rules.md), generated from the registry by scripts/gen_rules_doc.py."""

from __future__ import annotations

from rigkit.design.claims import CHECKS, FIGURE_DOCS
from rigkit.design.registry import CATEGORIES, all_rules

HEADER = """# Design rules

Generated from the rule registry by `scripts/gen_rules_doc.py`; do not edit by hand.
`rigkit rules` prints the same list; `rigkit plan SPEC` runs every rule on a build.

Each rule has a stable code (codes are never reused), a category and a default severity. A rule may
report a lower severity when it finds nothing wrong (an `info` finding with its numbers) or a higher
one for the worst cases; the message always carries the numbers and the fix says what to change.
"""


CLAIMS_HEADER = """## Stated figures (`claims:`)

A spec may list headline figures stated for the build, e.g. in its design document. `rigkit plan`
works each out and reports it as holds, does not hold, inflated or does not add up (a claim holds
within 5%; `max` makes a range). They are not rules: they add a "Stated figures" section to the
report and do not change the exit status.

```yaml
claims:
  - {claim: "2640 TFLOPS Tensor", figure: tensor_tflops, value: 2640, source: "design summary"}
  - {claim: "UPS 8-10 min", figure: ups_runtime_min, value: 8, max: 10}
  - {claim: "load 200GB in ~7 s", figure: load_time_s, value: 7, size_gb: 200}
  - {claim: "Total $17,972", figure: total_cost_usd, value: 17972, items: [3899, 7200, 3200]}
```
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
    lines += [CLAIMS_HEADER, "| Figure | Unit | Checked against |", "|---|---|---|"]
    lines += [f"| `{fig}` | {unit} | {FIGURE_DOCS[fig]} |" for fig, (unit, _) in CHECKS.items()]
    return "\n".join(lines).rstrip() + "\n"
