"""QA baselines: store a run's results, and compare a later run with them to flag degradation.

A measurement where higher is better (a check's ``throughput`` keys: GB/s, TFLOPS, MB/s, Gb/s)
is flagged when it drops by more than the threshold (default 10%); a check that passed (or warned)
and now fails is flagged too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rigkit.bench.qa.runner import QaReport
from rigkit.errors import BenchError

DEFAULT_THRESHOLD = 0.10


def data_dir() -> Path:
    """The user's data directory for rigkit ($XDG_DATA_HOME/rigkit, else ~/.local/share/rigkit)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rigkit"


def default_baseline_path(spec_name: str | None) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", (spec_name or "machine").lower()).strip("-") or "machine"
    return data_dir() / "qa" / f"baseline-{slug}.json"


def save_baseline(report: QaReport, path: Path) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        raise BenchError(f"cannot save baseline {path}: {err.strerror or err}") from err
    return path


def load_baseline(path: Path) -> QaReport:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise BenchError(f"cannot read baseline {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise BenchError(f"baseline {path} is not a text file (not UTF-8)") from err
    except json.JSONDecodeError as err:
        raise BenchError(
            f"baseline {path} is not valid JSON ({err.msg}, line {err.lineno})"
        ) from err
    if not isinstance(data, Mapping):
        raise BenchError(f"baseline {path} is not a rigkit qa result")
    try:
        return QaReport.from_dict(data)
    except (KeyError, ValueError, TypeError) as err:
        raise BenchError(f"baseline {path} is not a rigkit qa result: {err}") from err


@dataclass(frozen=True)
class Degradation:
    check: str
    kind: Literal["throughput-drop", "now-failing"]
    message: str
    key: str | None = None
    baseline: float | None = None
    current: float | None = None
    change: float | None = None  # (current - baseline) / baseline

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "kind": self.kind,
            "message": self.message,
            "key": self.key,
            "baseline": self.baseline,
            "current": self.current,
            "change": None if self.change is None else round(self.change, 4),
        }


@dataclass(frozen=True)
class BaselineComparison:
    baseline_path: str
    baseline_started_at: str
    threshold: float
    compared: int  # checks present in both runs
    degradations: tuple[Degradation, ...]

    @property
    def degraded(self) -> bool:
        return bool(self.degradations)

    def to_dict(self) -> dict[str, object]:
        return {
            "baseline_path": self.baseline_path,
            "baseline_started_at": self.baseline_started_at,
            "threshold": self.threshold,
            "compared": self.compared,
            "degraded": self.degraded,
            "degradations": [d.to_dict() for d in self.degradations],
        }


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def compare(
    current: QaReport,
    baseline: QaReport,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_path: str = "",
) -> BaselineComparison:
    """Flag throughput drops larger than ``threshold`` and checks that went from pass to fail."""
    if not 0 < threshold < 1:
        raise BenchError(f"degradation threshold must be between 0 and 1, got {threshold:g}")
    before = {r.name: r for r in baseline.results}
    found: list[Degradation] = []
    compared = 0
    for now in current.results:
        old = before.get(now.name)
        if old is None:
            continue
        compared += 1
        if old.status in ("pass", "warn") and now.status == "fail":
            found.append(
                Degradation(
                    now.name,
                    "now-failing",
                    f"{now.name} {old.status}ed at the baseline and fails now: {now.reason}",
                )
            )
        for key in dict.fromkeys((*now.throughput, *old.throughput)):
            b = _number(old.measured.get(key))
            c = _number(now.measured.get(key))
            if b is None or c is None or b <= 0:
                continue
            change = (c - b) / b
            if change < -threshold:
                found.append(
                    Degradation(
                        now.name,
                        "throughput-drop",
                        f"{now.name} {key}: {c:g} now, {b:g} at the baseline ({change:+.1%}, "
                        f"more than the {threshold:.0%} allowed)",
                        key,
                        b,
                        c,
                        change,
                    )
                )
    return BaselineComparison(
        baseline_path=baseline_path,
        baseline_started_at=baseline.started_at,
        threshold=threshold,
        compared=compared,
        degradations=tuple(found),
    )
