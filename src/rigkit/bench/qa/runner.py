"""Runs the acceptance checks and gathers their results into a :class:`QaReport`."""

from __future__ import annotations

import logging
import math
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from rigkit import __version__
from rigkit.bench.qa.checks import gpu_compute, host, inventory, network, pcie, soak, storage
from rigkit.bench.qa.result import STATUSES, CheckResult, QaContext, QaInputError, Status
from rigkit.errors import BenchError, MonitorError

log = logging.getLogger(__name__)

CheckFn = Callable[[QaContext], list[CheckResult]]

#: Check families in the order they run; ``--checks`` picks among these names.
CHECKS: Mapping[str, CheckFn] = {
    "inventory": inventory.run,
    "host": host.run,
    "pcie": pcie.run,
    "gpu-compute": gpu_compute.run,
    "storage": storage.run,
    "network": network.run,
    "soak": soak.run,
}


def parse_checks(text: str | None) -> list[str]:
    """``"inventory,pcie"`` -> the families in run order; ``None`` -> all of them. Unknown names,
    or a value that names none (``""``, ``","``: a run that checks nothing would pass), are a
    BenchError."""
    if text is None:
        return list(CHECKS)
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    if not wanted:
        raise BenchError(
            f"--checks {text!r} names no check", hint="choose from " + ", ".join(CHECKS)
        )
    unknown = [t for t in wanted if t not in CHECKS]
    if unknown:
        raise BenchError(
            f"unknown check(s): {', '.join(unknown)}", hint="choose from " + ", ".join(CHECKS)
        )
    return [name for name in CHECKS if name in wanted]


@dataclass(frozen=True)
class QaReport:
    """A QA run: where and when, against which spec, every check result, and the verdict."""

    results: tuple[CheckResult, ...]
    machine: Mapping[str, str] = field(default_factory=dict)
    spec_name: str | None = None
    spec_path: str | None = None
    started_at: str = ""
    seconds: float = 0.0
    checks: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[Status, int]:
        out: dict[Status, int] = dict.fromkeys(STATUSES, 0)
        for r in self.results:
            out[r.status] += 1
        return out

    @property
    def verdict(self) -> Status:
        """fail if any check failed, else warn if any warned, else pass (skips do not count)."""
        counts = self.counts
        if counts["fail"]:
            return "fail"
        if counts["warn"]:
            return "warn"
        return "pass"

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "counts": dict(self.counts),
            "machine": dict(self.machine),
            "spec": {"name": self.spec_name, "path": self.spec_path},
            "started_at": self.started_at,
            "seconds": round(self.seconds, 2),
            "checks": list(self.checks),
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> QaReport:
        raw = data.get("results")
        if not isinstance(raw, list):
            raise ValueError("no 'results' list")
        raw_spec = data.get("spec")
        spec: Mapping[str, object] = raw_spec if isinstance(raw_spec, Mapping) else {}
        machine = data.get("machine")
        checks = data.get("checks")
        seconds = data.get("seconds")
        return cls(
            results=tuple(CheckResult.from_dict(r) for r in raw if isinstance(r, Mapping)),
            machine={str(k): str(v) for k, v in machine.items()}
            if isinstance(machine, Mapping)
            else {},
            spec_name=str(spec["name"]) if spec.get("name") is not None else None,
            spec_path=str(spec["path"]) if spec.get("path") is not None else None,
            started_at=str(data.get("started_at", "")),
            seconds=float(seconds) if isinstance(seconds, int | float) else 0.0,
            checks=tuple(str(c) for c in checks) if isinstance(checks, list) else (),
        )


def machine_info() -> dict[str, str]:
    uname = platform.uname()
    return {
        "hostname": uname.node,
        "kernel": f"{uname.system} {uname.release}",
        "arch": uname.machine,
        "python": platform.python_version(),
        "rigkit": __version__,
    }


def validate(ctx: QaContext, names: Sequence[str]) -> None:
    """Input problems found before anything runs (exit status 2 in the CLI)."""
    if "storage" in names and ctx.storage_path is not None and not ctx.storage_path.exists():
        raise BenchError(f"storage path {ctx.storage_path} does not exist")
    if ctx.storage_mb <= 0:
        raise BenchError(f"--storage-mb must be positive, got {ctx.storage_mb}")
    if not 0 <= ctx.soak_seconds < math.inf:  # NaN and infinity too: a soak must end
        raise BenchError(f"--soak-seconds must be 0 or more, got {ctx.soak_seconds:g}")
    if "soak" in names and ctx.soak_replay is not None:
        if ctx.soak_seconds > 0:  # one soak: run one now, or judge a recorded one
            raise BenchError(
                "give --soak-seconds or --soak-replay, not both",
                hint="--soak-replay judges a recorded soak; --soak-seconds runs a new one",
            )
        if ctx.soak_replay.is_dir():
            raise BenchError(f"soak replay file {ctx.soak_replay} is a directory")
        if not ctx.soak_replay.is_file():
            raise BenchError(f"soak replay file {ctx.soak_replay} does not exist")


def run_family(name: str, ctx: QaContext) -> list[CheckResult]:
    """One family; an unexpected error inside it fails that family, not the whole run."""
    fn = CHECKS[name]
    try:
        return fn(ctx)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, MonitorError) as err:
        log.warning("check %s could not run: %r", name, err)
        return [CheckResult(name, name, "fail", f"the check could not run: {err}")]
    except QaInputError:
        raise  # unusable input (a path, a replay file): exit status 2
    except BenchError as err:
        log.warning("check %s could not run: %s", name, err)
        return [CheckResult(name, name, "fail", f"the check could not run: {err}")]


def run_qa(
    ctx: QaContext,
    checks: Sequence[str] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> QaReport:
    """Run the chosen check families (all by default) in order."""
    names = list(CHECKS) if checks is None else list(checks)
    for n in names:
        if n not in CHECKS:
            raise BenchError(f"unknown check {n!r}", hint="choose from " + ", ".join(CHECKS))
    validate(ctx, names)
    started = datetime.now(UTC).replace(microsecond=0).isoformat()
    t0 = time.monotonic()
    results: list[CheckResult] = []
    for name in names:
        for r in run_family(name, ctx):
            results.append(r)
            if on_result is not None:
                on_result(r)
    build = ctx.build
    return QaReport(
        results=tuple(results),
        machine=machine_info(),
        spec_name=build.name if build is not None else None,
        spec_path=build.spec_path if build is not None else None,
        started_at=started,
        seconds=time.monotonic() - t0,
        checks=tuple(names),
    )


def with_results(report: QaReport, results: Sequence[CheckResult]) -> QaReport:
    return replace(report, results=tuple(results))
