"""The monitor agent: sample, store, evaluate rules, decide responses, notify, export.

One loop iteration (:meth:`Agent.step`)::

    sample = source.read()
    fresh  = age of the sample (now - sample.wall_time) <= stale_after_s
    store.write_sample(sample)                   # committed before anything acts on it
    events  = engine.evaluate(sample)            # alerts raised / resolved
    actions = responder.decide(sample, fresh)    # tiered thermal response (dry-run by default);
    actions += responder.collect(sample.t)       # enforced actions run on threads of their own:
                                                 # how the ones that ended since went
    store.write_events(events + actions)         # every decision is logged to the store
    notifier.submit(e) for alert events; notifier.flush()
    cache.update(sample, engine.active())        # what /metrics serves

Rules, responder and notifier are optional: without them the agent only records and exports.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rigkit.errors import MonitorError
from rigkit.monitor.config import NotifySettings
from rigkit.monitor.sample import Event, Sample
from rigkit.monitor.sources.base import Source, SourceExhausted
from rigkit.monitor.store import Store

if TYPE_CHECKING:
    from rigkit.build import Build
    from rigkit.monitor.exporter import ExporterCache

log = logging.getLogger("rigkit.monitor.agent")

COMPACT_EVERY_S = 3600.0


class Engine(Protocol):
    def evaluate(self, sample: Sample) -> list[Event]: ...

    def active(self) -> list[Event]: ...


class Decider(Protocol):
    """The thermal responder: decides on the loop, acts off it (see monitor/respond.py)."""

    def decide(self, sample: Sample, fresh: bool) -> list[Event]: ...

    def collect(self, t: float | None = None, wait_s: float = 0.0) -> list[Event]:
        """Outcomes of actions that ended since the last call (stamped ``t``)."""
        ...


class Notifier(Protocol):
    def submit(self, event: Event) -> None: ...

    def flush(self, now: float | None = None) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RunSummary:
    """What a run did."""

    samples: int
    raised: int
    resolved: int
    actions: int
    stale_samples: int
    store_errors: int
    first_t: float | None
    last_t: float | None
    wall_s: float
    cpu_s: float
    stopped_by: str  # "end of source", "duration", "count", "stop"

    @property
    def cpu_per_sample_ms(self) -> float:
        return 1000.0 * self.cpu_s / self.samples if self.samples else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["cpu_per_sample_ms"] = self.cpu_per_sample_ms
        return d


class Agent:
    """Runs the monitor loop over an injected source, store and (optional) rules/response/notify."""

    def __init__(
        self,
        source: Source,
        store: Store,
        *,
        engine: Engine | None = None,
        responder: Decider | None = None,
        notifier: Notifier | None = None,
        cache: ExporterCache | None = None,
        interval_s: float = 1.0,
        stale_after_s: float | None = None,
        compact_every_s: float = COMPACT_EVERY_S,
        outcome_wait_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if interval_s <= 0:
            raise MonitorError(f"--interval must be more than 0 seconds, got {interval_s}")
        self.source = source
        self.store = store
        self.engine = engine
        self.responder = responder
        self.notifier = notifier
        self.cache = cache
        self.interval_s = interval_s
        self.stale_after_s = (
            stale_after_s if stale_after_s is not None else max(3 * interval_s, 5.0)
        )
        self.compact_every_s = compact_every_s
        self.outcome_wait_s = outcome_wait_s
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        # A replay paces itself (its speed factor); a live source is read every interval.
        self._paced = bool(getattr(source, "paced", False))
        self._last_compact_t: float | None = None
        self._last_t: float | None = None
        self.counts = {
            "samples": 0,
            "raised": 0,
            "resolved": 0,
            "actions": 0,
            "stale": 0,
            "store_errors": 0,
        }

    def is_fresh(self, sample: Sample) -> bool:
        """The sample is recent (age <= stale_after_s) and its time moved forward."""
        age = self._wall() - sample.wall_time
        advanced = self._last_t is None or sample.t > self._last_t
        return age <= self.stale_after_s and advanced

    def step(self) -> tuple[Sample, list[Event]]:
        """Read and process one sample; returns it with the events and actions it produced."""
        sample = self.source.read()
        fresh = self.is_fresh(sample)
        self._last_t = sample.t if self._last_t is None else max(self._last_t, sample.t)
        try:
            self.store.write_sample(sample)
        except MonitorError as err:  # keep watching even when the disk is full or failing
            self.counts["store_errors"] += 1
            log.error("t=%.3f sample not stored: %s", sample.t, err)
        self.counts["samples"] += 1
        if not fresh:
            self.counts["stale"] += 1
            log.warning(
                "sample t=%.3f is stale (%.1f s old): no response action taken",
                sample.t,
                self._wall() - sample.wall_time,
            )
        for g in sample.gpus:
            if g.lost:
                log.debug("t=%.3f GPU %d lost (no answer / fell off the bus)", sample.t, g.index)
        events = self.engine.evaluate(sample) if self.engine is not None else []
        actions = []
        if self.responder is not None:
            actions = self.responder.decide(sample, fresh) + self.responder.collect(sample.t)
        out = [*events, *actions]
        if out:
            try:
                self.store.write_events(out, wall_time=self._wall())
            except MonitorError as err:
                self.counts["store_errors"] += 1
                log.error("t=%.3f %d events not stored: %s", sample.t, len(out), err)
        for e in events:
            self.counts[e.kind] = self.counts.get(e.kind, 0) + 1
            log_fn = log.warning if e.kind == "raised" and e.severity != "info" else log.info
            log_fn(
                "t=%.3f %s %s [%s] gpu=%s: %s", e.t, e.kind, e.rule, e.severity, e.gpu, e.message
            )
        for a in actions:  # the responder logs each decision (INFO; WARNING when enforced)
            if a.detail.get("status") in (None, "started"):  # a decision, not an outcome
                self.counts["actions"] += 1
            log.debug(
                "t=%.3f action tier=%s %s%s: %s",
                a.t,
                a.tier,
                a.rule,
                " (dry run)" if a.dry_run else "",
                a.message,
            )
        self._notify(events, actions)
        if self.cache is not None:
            self.cache.update(sample, self.engine.active() if self.engine is not None else ())
        self._maybe_compact(sample.t)
        return sample, out

    def _notify(self, events: Sequence[Event], actions: Sequence[Event]) -> None:
        if self.notifier is None:
            return
        try:
            for e in (*events, *actions):
                if (
                    e.kind in ("raised", "resolved") and e.severity != "info"
                ) or e.kind == "action":
                    self.notifier.submit(e)
            self.notifier.flush()
        except Exception:  # process boundary: a notification fault must not stop monitoring
            log.exception("notification failed; messages stay in the outbox for the next try")

    def _maybe_compact(self, t: float) -> None:
        if self._last_compact_t is None:
            self._last_compact_t = t
            return
        if t - self._last_compact_t >= self.compact_every_s:
            # retention counts back from now at the latest: a sample time that jumped ahead (a
            # clock set wrong) must not age everything stored out of the history
            result = self.store.compact(min(t, self._wall()))
            self._last_compact_t = t
            log.info("store compacted at t=%.0f: %s", t, result.to_dict())

    def run(
        self,
        *,
        duration_s: float | None = None,
        count: int | None = None,
        stop: threading.Event | None = None,
    ) -> RunSummary:
        """Loop until the source ends, ``duration_s`` of sample time has passed, ``count``
        samples were taken, or ``stop`` is set."""
        wall0, cpu0 = self._clock(), time.process_time()
        first_t: float | None = None
        last_t: float | None = None
        stopped_by = "stop"
        next_due = self._clock()
        n = 0
        while stop is None or not stop.is_set():
            if count is not None and n >= count:
                stopped_by = "count"
                break
            try:
                sample, _ = self.step()
            except SourceExhausted:
                stopped_by = "end of source"
                break
            n += 1
            first_t = sample.t if first_t is None else first_t
            last_t = sample.t
            if duration_s is not None and last_t - first_t >= duration_s:
                stopped_by = "duration"
                break
            if not self._paced:
                next_due += self.interval_s
                delay = next_due - self._clock()
                if delay > 0:
                    if stop is not None:
                        stop.wait(delay)
                    else:
                        self._sleep(delay)
                else:
                    next_due = self._clock()
        self._last_outcomes(last_t)
        c = self.counts
        return RunSummary(
            samples=n,
            raised=c.get("raised", 0),
            resolved=c.get("resolved", 0),
            actions=c["actions"],
            stale_samples=c["stale"],
            store_errors=c["store_errors"],
            first_t=first_t,
            last_t=last_t,
            wall_s=self._clock() - wall0,
            cpu_s=time.process_time() - cpu0,
            stopped_by=stopped_by,
        )

    def _last_outcomes(self, t: float | None) -> None:
        """Store the outcomes of enforced actions still running, waiting up to
        ``outcome_wait_s`` for them (nothing to wait for in a dry run)."""
        if self.responder is None:
            return
        outcomes = self.responder.collect(t, wait_s=self.outcome_wait_s)
        if outcomes:
            try:
                self.store.write_events(outcomes, wall_time=self._wall())
            except MonitorError as err:
                self.counts["store_errors"] += 1
                log.error("%d action outcomes not stored: %s", len(outcomes), err)
            self._notify([], outcomes)

    def close(self) -> None:
        """Close the notifier and the source (the store belongs to the caller)."""
        if self.notifier is not None:
            self.notifier.close()
        self.source.close()


# -- wiring for the CLI ------------------------------------------------------------------------


def load_build(spec: str | Path) -> Build:
    """Load and resolve a build spec (rigkit.spec)."""
    from rigkit.spec import load_build as load_spec_build

    return load_spec_build(spec)


def make_engine(rules_path: str | Path | None, build: Build | None) -> Engine:
    """The alert engine with the default rules for ``build`` and the overrides in ``rules_path``."""
    from rigkit.monitor import alerts

    return alerts.AlertEngine(alerts.load_rules(rules_path, build))


def make_responder(rules_path: str | Path | None, build: Build | None, *, enforce: bool) -> Decider:
    """The tiered thermal responder (dry-run unless ``enforce``)."""
    from rigkit.monitor import respond

    policy = respond.load_policy(rules_path, build)
    return respond.Responder(policy, enforce=enforce)


def make_notifier(
    db_path: str | Path, targets: Sequence[str], settings: NotifySettings | None = None
) -> Notifier | None:
    """The durable notifier for ``targets`` and the ``notify:`` settings (None when there are no
    targets in either)."""
    settings = settings or NotifySettings()
    every = [*targets, *(t for t in settings.targets if t not in targets)]
    if not every:
        return None
    from rigkit.monitor import notify

    options: dict[str, Any] = {
        k: getattr(settings, k)
        for k in ("timeout_s", "rate_limit", "dedup_window_s", "min_severity")
        if getattr(settings, k) is not None
    }
    notifier: Notifier = notify.Notifier(db_path, every, **options)
    return notifier


class NewDbGuard:
    """Which files of a database exist before a run opens it, so that a run that fails before its
    first sample can remove what it created. A database that was there before is never removed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.existed = self.path.exists() or self.path.is_symlink()
        # SQLite in WAL mode keeps two files beside the database
        self._files = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        self._absent = [f for f in self._files if not (f.exists() or f.is_symlink())]
        self._new_dirs: list[Path] = []  # deepest first: what the store's mkdir will create
        d = self.path.parent
        while not d.exists() and d != d.parent:
            self._new_dirs.append(d)
            d = d.parent

    def open_store(self) -> Store:
        """``Store(path)``; an error is a MonitorError and leaves nothing behind."""
        if self.path.is_dir():
            raise MonitorError(f"cannot open monitor database {self.path}: it is a directory")
        try:
            return Store(self.path)
        except OSError as err:  # the directory cannot be made (a file in the way, no permission)
            self.remove_created()
            raise MonitorError(
                f"cannot create monitor database {self.path}: {err.strerror or err}"
            ) from err
        except MonitorError:
            self.remove_created()
            raise

    def remove_created(self) -> list[Path]:
        """Remove the files (and directories) this run created; nothing when the database existed
        before. Returns what was removed."""
        if self.existed:
            return []
        removed: list[Path] = []
        for f in self._absent:
            try:
                f.unlink()
            except (FileNotFoundError, NotADirectoryError):  # never created: nothing to remove
                continue
            except OSError as err:
                log.warning("cannot remove %s: %s", f, err.strerror)
                continue
            removed.append(f)
        for d in self._new_dirs:
            with contextlib.suppress(OSError):  # not empty (someone else's files): keep it
                d.rmdir()
                removed.append(d)
        return removed
