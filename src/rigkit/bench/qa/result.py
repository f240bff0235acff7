"""Typed results of the acceptance checks, and the context every check reads its sources from.

A check never reaches for the machine directly: it reads `/sys`, `/proc` and `/dev` under the roots
in :class:`QaContext`, runs programs through its ``run`` callable and finds them with its ``which``
callable, so tests run the same code on recordings and fakes.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rigkit.errors import BenchError

if TYPE_CHECKING:
    from rigkit.bench.qa.gpu import GpuProbe
    from rigkit.build import Build

Status = Literal["pass", "fail", "skip", "warn"]


class QaInputError(BenchError):
    """The user's input (a path, a replay file) cannot be used: exit status 2, not a failed check."""


STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")

Value = float | int | str | bool | None


@dataclass(frozen=True)
class CommandResult:
    """What a program printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str = ""


CommandRunner = Callable[[Sequence[str], float], CommandResult]
"""``run(argv, timeout_s) -> CommandResult``; raises ``FileNotFoundError`` when argv[0] is absent."""


def subprocess_runner(argv: Sequence[str], timeout_s: float) -> CommandResult:
    """Run a program without a shell; a timeout becomes return code 124 with a message."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"{argv[0]} did not finish within {timeout_s:g} s")
    return CommandResult(proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class CheckResult:
    """One acceptance check.

    ``measured`` holds what the machine showed, ``expected`` what the spec asks for, ``predicted``
    rigkit's own figure for the measurement (catalog peak, spec sum), and ``ratio`` is
    measured/predicted for the main figure (``ratio_key`` names it). ``throughput`` lists the
    measured keys where higher is better; a baseline comparison flags drops in them.
    """

    name: str
    category: str
    status: Status
    reason: str
    measured: Mapping[str, Value] = field(default_factory=dict)
    expected: Mapping[str, Value] = field(default_factory=dict)
    predicted: Mapping[str, Value] = field(default_factory=dict)
    ratio: float | None = None
    ratio_key: str | None = None
    throughput: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "category": self.category,
            "status": self.status,
            "reason": self.reason,
            "measured": dict(self.measured),
            "expected": dict(self.expected),
            "predicted": dict(self.predicted),
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "ratio_key": self.ratio_key,
            "throughput": list(self.throughput),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CheckResult:
        """Read back what :meth:`to_dict` wrote (baselines, saved reports)."""
        status = str(data.get("status", "skip"))
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        ratio = data.get("ratio")
        ratio_key = data.get("ratio_key")
        throughput = data.get("throughput") or []
        return cls(
            name=str(data["name"]),
            category=str(data.get("category", "")),
            status=status,
            reason=str(data.get("reason", "")),
            measured=_values(data.get("measured")),
            expected=_values(data.get("expected")),
            predicted=_values(data.get("predicted")),
            ratio=float(ratio) if isinstance(ratio, int | float) else None,
            ratio_key=str(ratio_key) if ratio_key is not None else None,
            throughput=tuple(str(k) for k in throughput) if isinstance(throughput, list) else (),
        )


def _values(raw: object) -> dict[str, Value]:
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, Value] = {}
    for key, value in raw.items():
        if value is None or isinstance(value, float | int | str | bool):
            out[str(key)] = value
        else:
            out[str(key)] = str(value)
    return out


def ratio_of(measured: float | None, predicted: float | None) -> float | None:
    """measured / predicted, or None when either is unknown or the prediction is not positive."""
    if measured is None or predicted is None or predicted <= 0:
        return None
    return measured / predicted


def grade(ratio: float | None, fail_below: float, warn_below: float) -> Status:
    """pass / warn / fail from a ratio and two thresholds; no ratio (nothing to compare) passes."""
    if ratio is None:
        return "pass"
    if ratio < fail_below:
        return "fail"
    if ratio < warn_below:
        return "warn"
    return "pass"


def _default_which(name: str) -> str | None:
    return shutil.which(name)


@dataclass(frozen=True)
class QaContext:
    """Everything a check may read. Production uses the defaults; tests pass fakes."""

    build: Build | None = None
    sys_root: Path = Path("/sys")
    proc_root: Path = Path("/proc")
    run: CommandRunner = subprocess_runner
    which: Callable[[str], str | None] = _default_which
    gpu_probe: GpuProbe | None = None  # None: open NVML when a check needs it
    storage_path: Path | None = None  # None: the system temp directory
    storage_mb: int = 1024  # size of the test file / how much of a device to read
    iperf_server: str | None = None
    iperf_seconds: int = 10
    soak_seconds: float = 0.0  # 0: no live soak
    soak_replay: Path | None = None
    soak_record: Path | None = None  # write the live soak's samples here (replay format)
    load_seconds: float = 5.0  # how long the PCIe check loads the GPUs (when it can)

    @property
    def storage_target(self) -> Path:
        return self.storage_path if self.storage_path is not None else Path(tempfile.gettempdir())
