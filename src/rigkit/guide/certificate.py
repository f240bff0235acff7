"""The build certificate: the checklist as recorded, the serial numbers, the readings against the
plan, and the verdict of the latest `rigkit qa` run, joined into one page (HTML and JSON).

A build is certified when every item is checked, every serial and reading is written down, no
reading is outside the plan's range, and the qa verdict is pass or warn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rigkit.errors import RigkitError
from rigkit.guide.tracker import BuildStatus, ItemState

CERT_HTML = "certificate.html"
CERT_JSON = "certificate.json"


@dataclass(frozen=True)
class QaSummary:
    """What the certificate quotes of a `rigkit qa` result (qa-results.json)."""

    path: str
    verdict: str  # pass, warn, fail
    counts: dict[str, int]
    started_at: str
    spec_name: str | None
    failed: tuple[tuple[str, str], ...]  # (check, reason) of failed and warned checks

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "verdict": self.verdict,
            "counts": dict(self.counts),
            "started_at": self.started_at,
            "spec_name": self.spec_name,
            "problems": [{"check": c, "reason": r} for c, r in self.failed],
        }


def read_qa(path: Path) -> QaSummary:
    """Read a `rigkit qa --json` / qa-results.json file; unusable input is a RigkitError."""
    from rigkit.bench.qa.runner import QaReport

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RigkitError(f"--qa {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RigkitError(f"--qa {path}: cannot read: {err}") from None
    except json.JSONDecodeError as err:
        raise RigkitError(f"--qa {path}:{err.lineno}: not JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise RigkitError(f"--qa {path}: not a rigkit qa result (a JSON object with 'results')")
    try:
        report = QaReport.from_dict(data)
    except (KeyError, ValueError, TypeError) as err:
        raise RigkitError(f"--qa {path}: not a rigkit qa result: {err}") from None
    problems = tuple((r.name, r.reason) for r in report.results if r.status in ("fail", "warn"))
    return QaSummary(
        str(path),
        report.verdict,
        {k: int(v) for k, v in report.counts.items()},
        report.started_at,
        report.spec_name,
        problems,
    )


@dataclass(frozen=True)
class Certificate:
    status: BuildStatus
    qa: QaSummary | None
    issued_at: str

    @property
    def reasons(self) -> list[str]:
        """Why the build is not certified (empty when it is)."""
        s = self.status
        out: list[str] = []
        if s.open_items:
            out.append(f"{len(s.open_items)} of {s.total} checklist items not done")
        for st in s.flagged:
            out.append(f"{st.item.id}: {st.check.reason if st.check else ''}")
        for st in s.incomplete:
            out.append(f"{st.item.id}: no {', no '.join(st.missing)}")
        if self.qa is None:
            out.append("no rigkit qa result (give --qa qa/qa-results.json)")
        elif self.qa.verdict == "fail":
            out.append(f"rigkit qa verdict: fail ({self.qa.counts.get('fail', 0)} failed)")
        return out

    @property
    def certified(self) -> bool:
        return not self.reasons

    def serials(self) -> list[ItemState]:
        return [x for x in self.status.items if x.item.serial]

    def readings(self) -> list[ItemState]:
        return [x for x in self.status.items if x.item.reading]

    def to_dict(self) -> dict[str, Any]:
        return {
            "certified": self.certified,
            "reasons": self.reasons,
            "issued_at": self.issued_at,
            "qa": self.qa.to_dict() if self.qa else None,
            "serials": {
                x.item.serial: x.check.serial if x.check else None
                for x in self.serials()
                if x.item.serial
            },
            "build": self.status.to_dict(),
        }


def make_certificate(status: BuildStatus, qa: QaSummary | None) -> Certificate:
    return Certificate(status, qa, datetime.now(UTC).isoformat(timespec="seconds"))


def certificate_html(cert: Certificate) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rigkit.guide", "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"], default=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return str(env.get_template("certificate.html.j2").render(cert=cert, s=cert.status))


def write_certificate(cert: Certificate, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / CERT_HTML
    html.write_text(certificate_html(cert), encoding="utf-8")
    js = out_dir / CERT_JSON
    js.write_text(json.dumps(cert.to_dict(), indent=2) + "\n", encoding="utf-8")
    return [html, js]
