"""Play back a recorded JSON Lines file (the replay format, see docs/monitor.md).

Lines that are empty or start with ``#`` are skipped (a ``#`` first line labels a file, e.g. as
synthetic). ``speed`` scales time: 1.0 plays in real time, 10.0 ten times faster, 0 as fast as
possible. Samples keep the file's ``t``; ``wall_time`` is the time the sample was read, so a replay
is always "fresh".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import IO

from rigkit.errors import MonitorError
from rigkit.monitor.sample import Sample
from rigkit.monitor.sources.base import SourceExhausted

PACKAGED_SUFFIX = ".jsonl"
#: A sample time further ahead of this machine's clock is refused (clocks differ by seconds).
MAX_FUTURE_S = 86400.0


def packaged_replays() -> list[str]:
    """Names of the replay files shipped with rigkit (``replay:<name>`` resolves them)."""
    root = resources.files("rigkit.monitor") / "data"
    return sorted(
        p.name[: -len(PACKAGED_SUFFIX)] for p in root.iterdir() if p.name.endswith(PACKAGED_SUFFIX)
    )


def resolve_replay(name_or_path: str) -> Path:
    """A file path, or the name of a packaged replay (``idle-4x4090``)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    root = resources.files("rigkit.monitor") / "data"
    for candidate in (name_or_path, name_or_path + PACKAGED_SUFFIX):
        entry = root / candidate
        if entry.is_file():
            return Path(str(entry))
    raise MonitorError(
        f"replay file not found: {name_or_path}",
        hint="give a path to a .jsonl file or one of: " + ", ".join(packaged_replays()),
    )


def iter_replay(path: Path) -> Iterator[tuple[int, Sample]]:
    """(line number, sample) for each sample line; bad lines raise MonitorError naming file:line."""
    for lineno, sample, _age in _iter_lines(path):
        yield lineno, sample


def _iter_lines(path: Path) -> Generator[tuple[int, Sample, float], None, None]:
    """(line number, sample, age_s) for each sample line."""
    try:
        fh: IO[bytes] = path.open("rb")
    except OSError as err:
        raise MonitorError(f"cannot read replay file {path}: {err.strerror}") from err
    with fh:
        # bytes, decoded line by line: a line that is not UTF-8 is reported with its number, after
        # every sample before it has been handed on
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise MonitorError(
                    f"{path}:{lineno}: not UTF-8 text (byte {err.start + 1} of the line)",
                    hint="a replay file is JSON Lines in UTF-8",
                ) from err
            parsed = _parse(line, path, lineno)
            if parsed is not None:
                yield lineno, *parsed


def parse_line(line: str, path: Path | str, lineno: int) -> Sample | None:
    """One replay line -> Sample; None for blank and ``#`` comment lines."""
    parsed = _parse(line, path, lineno)
    return None if parsed is None else parsed[0]


def _parse(line: str, path: Path | str, lineno: int) -> tuple[Sample, float] | None:
    """One replay line -> (Sample, age_s). ``age_s`` (optional, default 0) is how old the reading
    already was when it was collected: a replay of a stuck collector (a hung driver call answered
    from an old reading) sets it, and the agent treats such samples as stale."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise MonitorError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
    except RecursionError as err:
        raise MonitorError(
            f"{path}:{lineno}: nested too deeply to be a sample",
            hint="one flat JSON object per line (t, gpus, host)",
        ) from err
    except ValueError as err:  # an integer of more than 4,300 digits
        raise MonitorError(f"{path}:{lineno}: not a usable number ({err})") from err
    age = obj.get("age_s", 0) if isinstance(obj, dict) else 0
    if isinstance(age, bool) or not isinstance(age, int | float) or not age >= 0:
        raise MonitorError(f"{path}:{lineno}: age_s must be a number of seconds >= 0, got {age!r}")
    try:
        sample = Sample.from_dict(obj, source=f"replay:{Path(path).name}")
    except MonitorError as err:
        raise MonitorError(f"{path}:{lineno}: {err.message}", hint=err.hint) from err
    if sample.t > time.time() + MAX_FUTURE_S:
        when = datetime.fromtimestamp(sample.t, UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise MonitorError(
            f"{path}:{lineno}: t {sample.t:.0f} is {when}, in the future",
            hint="sample times are Unix seconds (or seconds from 0 for a synthetic replay);"
            " a future sample would age everything stored out of the history",
        )
    return sample, float(age)


class ReplaySource:
    """A :class:`~rigkit.monitor.sources.base.Source` reading a replay file."""

    def __init__(
        self,
        path: str | Path,
        *,
        speed: float = 1.0,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speed < 0:
            raise MonitorError(f"replay speed must be 0 (as fast as possible) or more, got {speed}")
        self.path = resolve_replay(str(path))
        self.name = f"replay:{self.path.name}"
        self.paced = True  # the agent does not sleep between reads: the replay keeps its own time
        self.speed = speed
        self.loop = loop
        self._clock = clock
        self._sleep = sleep
        # Read up to the first sample now, so that a file that cannot be read, is not UTF-8 text,
        # has a bad first line or holds no sample at all is reported before anything else (a
        # database, an output file) is opened. A bad line further on is reported when reached.
        self._it = _iter_lines(self.path)
        self._pending: tuple[Sample, float] | None = self._first()
        self._t0_file: float | None = None
        self._t0_clock = 0.0
        self._offset = 0.0  # added to t when looping so time keeps increasing
        self._last_t: float | None = None
        self._closed = False

    def _first(self) -> tuple[Sample, float]:
        try:
            return next(self._it)[1:]
        except StopIteration:
            raise MonitorError(
                f"replay file {self.path} has no samples",
                hint="one JSON object per line; blank lines and lines starting with # are skipped",
            ) from None

    def _next(self) -> tuple[Sample, float]:
        if self._pending is not None:
            first, self._pending = self._pending, None
            return first
        try:
            return next(self._it)[1:]
        except StopIteration:
            if not self.loop or self._last_t is None:
                raise SourceExhausted(str(self.path)) from None
            self._offset = self._last_t + 1.0
            self._it = _iter_lines(self.path)
            try:
                first = next(self._it)[1:]
            except StopIteration:
                raise SourceExhausted(str(self.path)) from None
            self._offset -= first[0].t
            return first

    def read(self) -> Sample:
        if self._closed:
            raise SourceExhausted(str(self.path))
        raw, age = self._next()
        t = raw.t + self._offset
        if self.speed > 0:
            if self._t0_file is None:
                self._t0_file = t
                self._t0_clock = self._clock()
            due = self._t0_clock + (t - self._t0_file) / self.speed
            delay = due - self._clock()
            if delay > 0:
                self._sleep(delay)
        self._last_t = t
        return Sample(
            t=t, gpus=raw.gpus, host=raw.host, source=self.name, wall_time=time.time() - age
        )

    def close(self) -> None:
        self._closed = True
        self._pending = None
        self._it.close()  # closes the file
