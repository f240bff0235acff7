"""The certification report: Markdown and a self-contained HTML page (inline CSS, no assets).

Both show the machine, the spec, each check with its status, reason, measured, expected and
predicted figures and the measured/predicted ratio, the baseline comparison when there is one, and
the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment

from rigkit.bench.qa.baseline import BaselineComparison
from rigkit.bench.qa.result import CheckResult, Value
from rigkit.bench.qa.runner import QaReport

_MD = """\
# rigkit QA certification: {{ title }}

**Verdict: {{ verdict | upper }}**{% if comparison and comparison.degraded %} (degraded since the baseline){% endif %}

| | |
|---|---|
| Machine | {{ machine.hostname }} ({{ machine.kernel }}, {{ machine.arch }}) |
| Spec | {{ spec }} |
| Started | {{ report.started_at }} ({{ "%.1f" | format(report.seconds) }} s) |
| rigkit | {{ machine.rigkit }} |
| Results | {{ counts.pass }} pass, {{ counts.warn }} warn, {{ counts.fail }} fail, {{ counts.skip }} skip |

## Checks

| Status | Check | Measured | Expected / predicted | Ratio | Reason |
|---|---|---|---|---|---|
{% for r in results -%}
| {{ r.status | upper }} | {{ r.name }} | {{ fmt(r.measured) | md }} | {{ fmt_expected(r) | md }} | {{ ratio(r) }} | {{ r.reason | md }} |
{% endfor %}
{%- if comparison %}
## Baseline comparison

Baseline of {{ comparison.baseline_started_at }} ({{ comparison.baseline_path }}); {{ comparison.compared }} checks compared; a drop of more than {{ "%.0f" | format(comparison.threshold * 100) }}% is flagged.

{% if comparison.degradations -%}
{% for d in comparison.degradations -%}
- **{{ d.kind }}**: {{ d.message }}
{% endfor -%}
{% else -%}
No degradation.
{% endif -%}
{% endif %}
"""

_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rigkit QA certification: {{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.status { font-weight: bold; text-transform: uppercase; }
.pass { color: #17622a; } .fail { color: #b00020; } .warn { color: #9a6700; } .skip { color: #666; }
.verdict { font-size: 1.2rem; padding: 0.5rem 1rem; display: inline-block; border: 2px solid; }
dl.kv { margin: 0; } dl.kv dt { display: inline; color: #555; } dl.kv dd { display: inline; margin: 0 0.6rem 0 0.2rem; }
</style>
</head>
<body>
<h1>rigkit QA certification: {{ title }}</h1>
<p class="verdict {{ verdict }}">Verdict: {{ verdict | upper }}{% if comparison and comparison.degraded %} (degraded since the baseline){% endif %}</p>
<table>
<tr><th>Machine</th><td>{{ machine.hostname }} ({{ machine.kernel }}, {{ machine.arch }})</td></tr>
<tr><th>Spec</th><td>{{ spec }}</td></tr>
<tr><th>Started</th><td>{{ report.started_at }} ({{ "%.1f" | format(report.seconds) }} s)</td></tr>
<tr><th>rigkit</th><td>{{ machine.rigkit }}</td></tr>
<tr><th>Results</th><td>{{ counts.pass }} pass, {{ counts.warn }} warn, {{ counts.fail }} fail, {{ counts.skip }} skip</td></tr>
</table>
<h2>Checks</h2>
<table>
<tr><th>Status</th><th>Check</th><th>Measured</th><th>Expected / predicted</th><th>Ratio</th><th>Reason</th></tr>
{% for r in results %}
<tr>
<td class="status {{ r.status }}">{{ r.status }}</td>
<td>{{ r.name }}<br><small>{{ r.category }}</small></td>
<td><dl class="kv">{% for k, v in r.measured.items() %}<dt>{{ k }}</dt><dd>{{ v | val }}</dd> {% endfor %}</dl></td>
<td><dl class="kv">{% for k, v in r.expected.items() %}<dt>{{ k }}</dt><dd>{{ v | val }}</dd> {% endfor %}{% for k, v in r.predicted.items() %}<dt>predicted {{ k }}</dt><dd>{{ v | val }}</dd> {% endfor %}</dl></td>
<td>{{ ratio(r) }}</td>
<td>{{ r.reason }}</td>
</tr>
{% endfor %}
</table>
{% if comparison %}
<h2>Baseline comparison</h2>
<p>Baseline of {{ comparison.baseline_started_at }} ({{ comparison.baseline_path }}); {{ comparison.compared }} checks compared; a drop of more than {{ "%.0f" | format(comparison.threshold * 100) }}% is flagged.</p>
{% if comparison.degradations %}
<ul>{% for d in comparison.degradations %}<li class="fail"><b>{{ d.kind }}</b>: {{ d.message }}</li>{% endfor %}</ul>
{% else %}<p class="pass">No degradation.</p>{% endif %}
{% endif %}
</body>
</html>
"""


def _val(v: Value) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _fmt(values: dict[str, Value]) -> str:
    return ", ".join(f"{k}={_val(v)}" for k, v in values.items()) or "-"


def _fmt_expected(r: CheckResult) -> str:
    parts = [f"{k}={_val(v)}" for k, v in r.expected.items()]
    parts += [f"predicted {k}={_val(v)}" for k, v in r.predicted.items() if v is not None]
    return ", ".join(parts) or "-"


def ratio_text(r: CheckResult) -> str:
    """The measured/predicted ratio to two places, or "-"."""
    if r.ratio is None:
        return "-"
    return f"{r.ratio:.2f}" if r.ratio >= 0.1 else f"{r.ratio:.3f}"


def brief(values: Mapping[str, Value], key: str | None) -> str:
    """The main figure (``key``) of a result, else its first two values; for narrow tables."""
    if key is not None and key in values:
        return f"{key}={_val(values[key])}"
    items = [(k, v) for k, v in values.items() if k not in ("source", "seconds", "samples")]
    return ", ".join(f"{k}={_val(v)}" for k, v in items[:2]) or "-"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _context(report: QaReport, comparison: BaselineComparison | None) -> dict[str, object]:
    spec = report.spec_name or "none (no --spec: measured only)"
    if report.spec_path:
        spec += f" ({report.spec_path})"
    verdict = report.verdict
    if comparison is not None and comparison.degraded:
        verdict = "fail"
    return {
        "title": report.spec_name or report.machine.get("hostname", "machine"),
        "verdict": verdict,
        "report": report,
        "machine": report.machine,
        "spec": spec,
        "counts": report.counts,
        "results": report.results,
        "comparison": comparison,
        "fmt": lambda m: _fmt(dict(m)),
        "fmt_expected": _fmt_expected,
        "ratio": ratio_text,
    }


def render_markdown(report: QaReport, comparison: BaselineComparison | None = None) -> str:
    env = Environment(autoescape=False, keep_trailing_newline=True)
    env.filters["md"] = _md
    return env.from_string(_MD).render(_context(report, comparison))


def render_html(report: QaReport, comparison: BaselineComparison | None = None) -> str:
    env = Environment(autoescape=True)
    env.filters["val"] = _val
    return env.from_string(_HTML).render(_context(report, comparison))


#: the files :func:`write_reports` writes, by kind
REPORT_FILES = {"markdown": "qa-report.md", "html": "qa-report.html", "json": "qa-results.json"}


def write_reports(
    report: QaReport, out_dir: Path, comparison: BaselineComparison | None = None
) -> dict[str, Path]:
    """qa-report.md, qa-report.html and qa-results.json under ``out_dir``."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / name for kind, name in REPORT_FILES.items()}
    paths["markdown"].write_text(render_markdown(report, comparison), encoding="utf-8")
    paths["html"].write_text(render_html(report, comparison), encoding="utf-8")
    data = report.to_dict()
    if comparison is not None:
        data["baseline"] = comparison.to_dict()
    paths["json"].write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return paths
