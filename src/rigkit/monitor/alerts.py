"""Alert rules for the monitor: thresholds with a duration and hysteresis, XID events, predicates.

A rule reads one value per sample and per subject (a GPU, a disk or the host) and keeps a small
state machine:

* **Level rules** (temperatures, throttle bits, fan, PCIe link, disks, CPU, lost GPU) raise only
  after the condition has held continuously for ``for_s`` seconds of *sample time* AND for at least
  two consecutive samples, so a one-sample glitch never fires a rule, even with ``for_s = 0``.
  They resolve only when the value crosses ``clear_threshold`` (hysteresis: raise at >= 83 C,
  clear below 80 C) for ``clear_for_s`` seconds.
* **XID rules** treat an XID as an event, not a level: a critical XID raises at once, and the alert
  resolves after ``quiet_s`` seconds without another matching XID on that GPU (never kept forever).
  Application XIDs (13, 31, 43, 63, 92) are log-only: an ``info`` event, never an active alert.
* A missing value (``None``) never satisfies a threshold and never resolves an active alert by
  itself; an alert raised before the data went missing stays active. Missing data is its own rule
  (``gpu_data_missing``, ``gpu_lost``).

Durations are measured in sample time ``t``, so a replay at ``--speed 0`` behaves exactly as the
same replay in real time.
"""

from __future__ import annotations

import difflib
import logging
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rigkit.errors import MonitorError
from rigkit.monitor.config import ConfigFile, RuleSettings, default_rules_file, load_config
from rigkit.monitor.sample import (
    DISK_METRICS,
    GPU_METRICS,
    HOST_METRICS,
    THROTTLE_REASONS,
    DiskSample,
    Event,
    GpuSample,
    Sample,
    Severity,
)
from rigkit.nvml.codes import APPLICATION_XIDS, CRITICAL_XIDS

if TYPE_CHECKING:
    from rigkit.build import Build

log = logging.getLogger(__name__)

Op = Literal[">", ">=", "<", "<=", "==", "!="]
RelativeTo = Literal["slowdown_temp_c", "shutdown_temp_c"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


#: Used only when neither NVML (the sample) nor the catalog gives the GPU's slowdown temperature.
#: A conservative default, not a published figure: RTX 4090-class cards slow down near 88-90 C.
FALLBACK_SLOWDOWN_TEMP_C = 88.0
#: Same for the shutdown temperature (fallback: slowdown + 5 C).
FALLBACK_SHUTDOWN_TEMP_C = 93.0

_PREDICATES = (
    "gpu.lost",
    "gpu.xid",
    "gpu.fan_stopped_under_load",
    "gpu.pcie_degraded_under_load",
    "gpu.data_missing",
)
_GPU_EXTRA = ("ecc_uncorrected", "remapped_rows_pending")


def valid_exprs() -> list[str]:
    """Every expression a rule may use."""
    out = [f"gpu.{m}" for m in (*GPU_METRICS, *_GPU_EXTRA)]
    out += [f"gpu.throttle.{r}" for r in THROTTLE_REASONS]
    out += list(_PREDICATES)
    out += [f"host.{m}" for m in HOST_METRICS]
    out += [f"disk.{m}" for m in DISK_METRICS]
    return out


@dataclass(frozen=True)
class AlertRule:
    """One alert rule. ``expr`` names what it reads (see :func:`valid_exprs`):

    ``gpu.<field>``, ``host.<field>``, ``disk.<field>``: a numeric field compared with ``op`` and
    ``threshold``; ``gpu.throttle.<reason>``: 1 while the clock-event reason is set;
    ``gpu.xid``: an XID in ``codes`` (or, with empty ``codes``, any XID not in ``exclude_codes``);
    ``gpu.lost``: the GPU fell off the bus or vanished from the sample;
    ``gpu.fan_stopped_under_load``: fan at or below ``threshold`` % while utilisation is at least
    ``min_util_pct``; ``gpu.pcie_degraded_under_load``: link generation or width below the expected
    one (from the build, else NVML's maximum) while utilisation is at least ``min_util_pct``;
    ``gpu.data_missing``: the GPU answers but reports no temperature.

    With ``relative_to`` set, ``threshold`` and ``clear_threshold`` are offsets from the GPU's
    slowdown or shutdown temperature (the sample's value, else ``ref_default``).
    """

    name: str
    expr: str
    threshold: float | None = None
    op: Op = ">="
    for_s: float = 0.0
    clear_threshold: float | None = None
    severity: Severity = "warning"
    per_gpu: bool = False  # derived from expr (gpu.*): one alert per GPU
    summary: str = ""
    clear_for_s: float = 0.0
    relative_to: RelativeTo | None = None
    ref_default: float | None = None
    codes: tuple[int, ...] = ()
    exclude_codes: tuple[int, ...] = ()
    quiet_s: float = 600.0
    min_util_pct: float = 50.0
    expected_pcie: tuple[tuple[int, int, int], ...] = ()  # (gpu index, gen, width)
    enabled: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_gpu", self.expr.startswith("gpu."))
        if self.expr not in valid_exprs():
            near = difflib.get_close_matches(self.expr, valid_exprs(), n=1, cutoff=0.6)
            raise MonitorError(
                f"alert rule {self.name!r}: unknown expr {self.expr!r}",
                hint=f"did you mean {near[0]!r}?"
                if near
                else "see docs/alerts.md for the list of expressions",
            )
        if self.op not in _OPS:
            raise MonitorError(f"alert rule {self.name!r}: unknown op {self.op!r}")
        if self.for_s < 0 or self.clear_for_s < 0 or self.quiet_s <= 0:
            raise MonitorError(f"alert rule {self.name!r}: durations must be >= 0")
        if self.needs_threshold and self.threshold is None:
            raise MonitorError(f"alert rule {self.name!r}: {self.expr} needs a threshold")

    @property
    def scope(self) -> Literal["gpu", "host", "disk"]:
        head = self.expr.split(".", 1)[0]
        if head == "gpu":
            return "gpu"
        if head == "disk":
            return "disk"
        return "host"

    @property
    def is_event(self) -> bool:
        """XID rules: an event raises at once and resolves after a quiet period."""
        return self.expr == "gpu.xid"

    @property
    def needs_threshold(self) -> bool:
        return not (
            self.expr in ("gpu.lost", "gpu.xid", "gpu.pcie_degraded_under_load", "gpu.data_missing")
            or self.expr.startswith("gpu.throttle.")
        )

    @property
    def log_only(self) -> bool:
        """Info-severity rules log an event but never hold an active alert."""
        return self.severity == "info"

    def effective_threshold(self, ref: float | None) -> float | None:
        """The absolute threshold for a GPU whose reference temperature is ``ref``."""
        return _shift(self.threshold, self.relative_to, ref, self.ref_default)

    def effective_clear(self, ref: float | None) -> float | None:
        clear = self.clear_threshold if self.clear_threshold is not None else self.threshold
        return _shift(clear, self.relative_to, ref, self.ref_default)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "expr": self.expr,
            "severity": self.severity,
            "for_s": self.for_s,
            "summary": self.summary,
            "enabled": self.enabled,
        }
        if self.needs_threshold:
            d.update(op=self.op, threshold=self.threshold, clear_threshold=self.clear_threshold)
        if self.relative_to:
            d.update(relative_to=self.relative_to, ref_default=self.ref_default)
        if self.is_event:
            d.update(codes=list(self.codes), exclude_codes=list(self.exclude_codes))
            d["quiet_s"] = self.quiet_s
        if self.expr.endswith("_under_load"):
            d["min_util_pct"] = self.min_util_pct
        if self.expected_pcie:
            d["expected_pcie"] = [
                {"gpu": i, "gen": g, "width": w} for i, g, w in self.expected_pcie
            ]
        return d


def _shift(
    value: float | None, relative_to: str | None, ref: float | None, ref_default: float | None
) -> float | None:
    if value is None or relative_to is None:
        return value
    base = ref if ref is not None else ref_default
    return None if base is None else base + value


# --- defaults ---------------------------------------------------------------------------------


def gpu_temp_limits(build: Build | None) -> tuple[float, float]:
    """(slowdown, shutdown) in C: the lowest of the build's GPUs, else the fallbacks."""
    slowdowns: list[float] = []
    shutdowns: list[float] = []
    if build is not None:
        for placed in build.gpus:
            if placed.gpu.slowdown_temp_c is not None:
                slowdowns.append(float(placed.gpu.slowdown_temp_c))
            if placed.gpu.shutdown_temp_c is not None:
                shutdowns.append(float(placed.gpu.shutdown_temp_c))
    slowdown = min(slowdowns) if slowdowns else FALLBACK_SLOWDOWN_TEMP_C
    shutdown = min(shutdowns) if shutdowns else max(FALLBACK_SHUTDOWN_TEMP_C, slowdown + 5.0)
    return slowdown, shutdown


def expected_pcie(build: Build | None) -> tuple[tuple[int, int, int], ...]:
    """(gpu index, gen, width) each GPU should train to: the lower of the GPU and its slot."""
    if build is None:
        return ()
    out: list[tuple[int, int, int]] = []
    for placed in build.gpus:
        gen = placed.gpu.pcie_gen
        width = placed.gpu.pcie_lanes
        if placed.slot is not None:
            gen = min(gen, placed.slot.gen)
            width = min(width, placed.slot.electrical_lanes)
        out.append((placed.index, int(gen), int(width)))
    return tuple(out)


def _has_fans(build: Build | None) -> bool:
    """False when every GPU of the build is passively cooled (no fan reading to check)."""
    if build is None or not build.gpus:
        return True
    return any(p.gpu.cooling in ("open-air", "blower") for p in build.gpus)


#: XID classes a rule's ``codes``/``exclude_codes`` may name instead of numbers.
XID_CLASSES: dict[str, tuple[int, ...]] = {
    "critical": CRITICAL_XIDS,
    "application": APPLICATION_XIDS,
}


def _xid_codes(items: Iterable[int | str]) -> tuple[int, ...]:
    out: list[int] = []
    for item in items:
        for code in XID_CLASSES[item] if isinstance(item, str) else (item,):
            if code not in out:
                out.append(code)
    return tuple(out)


def _rule_fields(settings: RuleSettings) -> dict[str, Any]:
    """AlertRule keyword arguments for the settings given in a file."""
    changes = settings.changes()
    for key in ("codes", "exclude_codes"):
        if key in changes:
            changes[key] = _xid_codes(changes[key] or ())
    return changes


def _with_build(rule: AlertRule, build: Build | None) -> AlertRule:
    """Fill in what comes from the machine: reference temperatures and the PCIe slot map."""
    if rule.relative_to is not None and rule.ref_default is None:
        slowdown, shutdown = gpu_temp_limits(build)
        ref = slowdown if rule.relative_to == "slowdown_temp_c" else shutdown
        rule = replace(rule, ref_default=ref)
    if rule.expr == "gpu.pcie_degraded_under_load" and not rule.expected_pcie:
        rule = replace(rule, expected_pcie=expected_pcie(build))
    return rule


def default_rules(build: Build | None = None) -> list[AlertRule]:
    """The packaged default rules (monitor/data/default-rules.yaml) for ``build``."""
    defaults = default_rules_file()
    rules = apply_overrides([], defaults.config.rules, defaults, build)
    if not _has_fans(build):
        rules = [r for r in rules if r.expr != "gpu.fan_stopped_under_load"]
    return rules


def apply_overrides(
    rules: list[AlertRule],
    overrides: Mapping[str, RuleSettings | None],
    file: ConfigFile,
    build: Build | None = None,
) -> list[AlertRule]:
    """Change, disable or add rules (``rules:`` of ``file``). Disabled rules are dropped."""
    by_name = {r.name: r for r in rules}
    order = [r.name for r in rules]
    for name, settings in overrides.items():
        changes = _rule_fields(settings) if settings is not None else {}
        try:
            if name in by_name:
                if "relative_to" in changes and "ref_default" not in changes:
                    changes["ref_default"] = None  # the new reference's, from the build
                by_name[name] = _with_build(replace(by_name[name], **changes), build)
            else:
                if "expr" not in changes:
                    raise MonitorError(
                        "no default rule has this name, and a new rule needs 'expr'",
                        hint=f"default rules: {', '.join(order)}" if order else None,
                    )
                changes.setdefault("summary", name)
                by_name[name] = _with_build(AlertRule(name=name, **changes), build)
                order.append(name)
        except MonitorError as err:
            loc: tuple[str, ...] = ("rules", name)
            if "unknown expr" in err.message:
                loc = (*loc, "expr")
            message = err.message.removeprefix(f"alert rule {name!r}: ")
            raise file.error(loc, message, err.hint) from None
    return [by_name[n] for n in order if by_name[n].enabled]


def load_rules(path: str | Path | None, build: Build | None = None) -> list[AlertRule]:
    """Default rules for ``build`` with the overrides of the settings file at ``path`` applied."""
    rules = default_rules(build)
    if path is None:
        return rules
    file = load_config(path)
    return apply_overrides(rules, file.config.rules, file, build)


# --- evaluation -------------------------------------------------------------------------------


@dataclass
class _State:
    since: float | None = None  # first sample time of the current run of "condition holds"
    count: int = 0  # consecutive samples the condition held
    clear_since: float | None = None
    clear_count: int = 0
    active: Event | None = None
    last_seen: float | None = None  # XID rules: time of the last matching XID
    codes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Reading:
    value: float | None
    holds: bool  # the raise condition holds
    clears: bool  # the clear condition holds
    threshold: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


_MISSING = _Reading(None, False, False)


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:g}" if float(v).is_integer() else f"{v:.1f}"


_NEGATE = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}


class AlertEngine:
    """Evaluates rules sample by sample and returns the raised/resolved events."""

    def __init__(self, rules: Iterable[AlertRule]) -> None:
        self.rules = [r for r in rules if r.enabled]
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise MonitorError(f"duplicate alert rule name(s): {', '.join(dupes)}")
        self._state: dict[tuple[str, int | str | None], _State] = {}
        self._seen_gpus: dict[int, GpuSample] = {}
        self._last_t: float | None = None

    def active(self) -> list[Event]:
        """The raised events of the alerts active now."""
        return [s.active for s in self._state.values() if s.active is not None]

    def evaluate(self, sample: Sample) -> list[Event]:
        """Advance every rule by one sample; return the events raised or resolved at ``sample.t``."""
        if self._last_t is not None and sample.t < self._last_t:
            log.warning("sample time went backwards (%s -> %s); ignored", self._last_t, sample.t)
            return []
        # A sample whose time did not advance is a repeat (a stuck collector): it counts as no
        # new evidence for level rules; XIDs in it are new events all the same.
        repeat = self._last_t is not None and sample.t == self._last_t
        self._last_t = sample.t
        present = {g.index: g for g in sample.gpus}
        gpus: dict[int, GpuSample] = dict(present)
        for index, old in self._seen_gpus.items():
            if index not in gpus:  # vanished from the sample: treat as lost
                gpus[index] = GpuSample.lost_gpu(index, name=old.name, uuid=old.uuid)
        for index, g in present.items():
            if not g.lost or index not in self._seen_gpus:
                self._seen_gpus[index] = g
        events: list[Event] = []
        for rule in self.rules:
            if repeat and not rule.is_event:
                continue
            if rule.scope == "gpu":
                for index in sorted(gpus):
                    g = gpus[index]
                    if rule.is_event:
                        events += self._event_rule(rule, sample.t, g)
                    else:
                        reading = self._read_gpu(rule, g, vanished=index not in present)
                        events += self._level(rule, sample.t, index, index, reading, f"GPU {index}")
            elif rule.scope == "disk":
                disks = {d.name: d for d in (sample.host.disks if sample.host else ())}
                known = {k[1] for k in self._state if k[0] == rule.name}
                for name in sorted(set(disks) | {str(k) for k in known if k is not None}):
                    reading = self._read_disk(rule, disks.get(name))
                    events += self._level(rule, sample.t, name, None, reading, f"disk {name}")
            else:
                value = sample.host.metric(rule.expr[5:]) if sample.host else None
                reading = self._threshold(rule, value)
                events += self._level(rule, sample.t, None, None, reading, "host")
        return events

    # readings

    def _threshold(
        self, rule: AlertRule, value: float | None, ref: float | None = None
    ) -> _Reading:
        thr = rule.effective_threshold(ref)
        clr = rule.effective_clear(ref)
        if value is None or thr is None or clr is None:
            return _Reading(None, False, False, thr)
        holds = _OPS[rule.op](float(value), thr)
        clears = _OPS[_NEGATE[rule.op]](float(value), clr)
        return _Reading(float(value), holds, clears, thr)

    def _read_gpu(self, rule: AlertRule, g: GpuSample, vanished: bool) -> _Reading:
        expr = rule.expr
        if expr == "gpu.lost":
            lost = g.lost or vanished
            return _Reading(1.0 if lost else 0.0, lost, not lost, 1.0, {"vanished": vanished})
        if expr == "gpu.data_missing":
            if g.lost:
                return _MISSING
            missing = g.temperature_c is None
            return _Reading(1.0 if missing else 0.0, missing, not missing, 1.0)
        if expr.startswith("gpu.throttle."):
            if g.throttle_reasons is None:
                return _MISSING
            on = expr[len("gpu.throttle.") :] in g.throttle_reasons
            return _Reading(1.0 if on else 0.0, on, not on, 1.0)
        if expr == "gpu.fan_stopped_under_load":
            if g.fan_pct is None or g.util_pct is None or rule.threshold is None:
                return _MISSING
            clear = rule.clear_threshold if rule.clear_threshold is not None else rule.threshold
            loaded = g.util_pct >= rule.min_util_pct
            holds = loaded and g.fan_pct <= rule.threshold
            clears = g.fan_pct > clear or not loaded
            return _Reading(
                float(g.fan_pct), holds, clears, rule.threshold, {"util_pct": g.util_pct}
            )
        if expr == "gpu.pcie_degraded_under_load":
            return self._read_pcie(rule, g)
        name = expr[4:]
        raw: object = getattr(g, name)
        value = None if raw is None else float(raw)  # type: ignore[arg-type]
        ref = None
        if rule.relative_to is not None:
            ref_raw = getattr(g, rule.relative_to)
            ref = None if ref_raw is None else float(ref_raw)
        return self._threshold(rule, value, ref)

    def _read_pcie(self, rule: AlertRule, g: GpuSample) -> _Reading:
        exp = {i: (gen, width) for i, gen, width in rule.expected_pcie}
        if g.index in exp:
            exp_gen, exp_width = exp[g.index]
        elif g.pcie_max_gen is not None and g.pcie_max_width is not None:
            exp_gen, exp_width = int(g.pcie_max_gen), int(g.pcie_max_width)
        else:
            return _MISSING
        if g.pcie_gen is None or g.pcie_width is None or g.util_pct is None:
            return _MISSING
        loaded = g.util_pct >= rule.min_util_pct
        below = g.pcie_gen < exp_gen or g.pcie_width < exp_width
        detail = {
            "pcie_gen": g.pcie_gen,
            "pcie_width": g.pcie_width,
            "expected_gen": exp_gen,
            "expected_width": exp_width,
        }
        # The link trains down at idle to save power: only a loaded GPU tells anything either way.
        return _Reading(float(g.pcie_gen), loaded and below, loaded and not below, None, detail)

    def _read_disk(self, rule: AlertRule, d: DiskSample | None) -> _Reading:
        if d is None:
            return _MISSING
        return self._threshold(rule, d.metric(rule.expr[5:]))

    # state machines

    def _level(
        self,
        rule: AlertRule,
        t: float,
        key: int | str | None,
        gpu: int | None,
        r: _Reading,
        subject: str,
    ) -> list[Event]:
        st = self._state.setdefault((rule.name, key), _State())
        if st.active is None:
            if r.holds:
                if st.since is None:
                    st.since, st.count = t, 0
                st.count += 1
                if st.count >= 2 and t - st.since >= rule.for_s:
                    msg = self._message(rule, subject, r, raised=True)
                    ev = self._event(rule, t, "raised", gpu, msg, r, key)
                    st.since, st.count = None, 0
                    if rule.log_only:
                        return [ev]
                    st.active = ev
                    st.clear_since, st.clear_count = None, 0
                    return [ev]
            else:
                st.since, st.count = None, 0
            return []
        if r.clears:
            if st.clear_since is None:
                st.clear_since, st.clear_count = t, 0
            st.clear_count += 1
            if t - st.clear_since >= rule.clear_for_s:
                msg = self._message(rule, subject, r, raised=False)
                ev = self._event(rule, t, "resolved", gpu, msg, r, key)
                st.active = None
                st.clear_since, st.clear_count = None, 0
                return [ev]
        elif r.value is not None:  # still bad (missing data neither clears nor resets)
            st.clear_since, st.clear_count = None, 0
        return []

    def _event_rule(self, rule: AlertRule, t: float, g: GpuSample) -> list[Event]:
        st = self._state.setdefault((rule.name, g.index), _State())
        if rule.codes:
            hits = [x for x in g.xid if x in rule.codes]
        else:
            hits = [x for x in g.xid if x not in rule.exclude_codes]
        events: list[Event] = []
        if hits:
            codes = ", ".join(str(x) for x in hits)
            if rule.log_only:
                msg = f"GPU {g.index} XID {codes}: {rule.summary}"
                r = _Reading(float(hits[0]), True, False, None, {"xid": hits})
                return [self._event(rule, t, "raised", g.index, msg, r, g.index)]
            st.last_seen = t
            st.codes += [x for x in hits if x not in st.codes]
            if st.active is None:
                msg = f"GPU {g.index} XID {codes}: {rule.summary}"
                r = _Reading(float(hits[0]), True, False, None, {"xid": hits})
                st.active = self._event(rule, t, "raised", g.index, msg, r, g.index)
                events.append(st.active)
            return events
        if st.active is not None and st.last_seen is not None and t - st.last_seen >= rule.quiet_s:
            seen = ", ".join(str(x) for x in st.codes)
            msg = (
                f"resolved: GPU {g.index} no further XID ({seen}) for "
                f"{_fmt(t - st.last_seen)} s: {rule.summary}"
            )
            r = _Reading(None, False, True, None, {"xid": list(st.codes)})
            events.append(self._event(rule, t, "resolved", g.index, msg, r, g.index))
            st.active, st.last_seen, st.codes = None, None, []
        return events

    def _message(self, rule: AlertRule, subject: str, r: _Reading, raised: bool) -> str:
        what = rule.expr.split(".", 1)[1]
        if rule.expr == "gpu.lost":
            return f"{subject} lost: {rule.summary}" if raised else f"resolved: {subject} back"
        if rule.expr.startswith("gpu.throttle."):
            reason = rule.expr[len("gpu.throttle.") :]
            if raised:
                return f"{subject} clock-event reason {reason} set: {rule.summary}"
            return f"resolved: {subject} clock-event reason {reason} cleared"
        if rule.expr == "gpu.pcie_degraded_under_load":
            d = r.detail
            link = f"gen{d.get('pcie_gen')} x{d.get('pcie_width')}"
            exp = f"gen{d.get('expected_gen')} x{d.get('expected_width')}"
            if raised:
                return f"{subject} PCIe link {link} under load, expected {exp}"
            return f"resolved: {subject} PCIe link {link} under load"
        if rule.expr == "gpu.fan_stopped_under_load":
            if raised:
                return f"{subject} fan {_fmt(r.value)}% at {_fmt(r.detail.get('util_pct'))}% utilisation: {rule.summary}"
            return f"resolved: {subject} fan {_fmt(r.value)}%"
        if rule.expr == "gpu.data_missing":
            return (
                f"{subject} reports no temperature" if raised else f"resolved: {subject} data back"
            )
        if raised:
            held = f" for {_fmt(rule.for_s)} s" if rule.for_s > 0 else ""
            return (
                f"{subject} {what} {_fmt(r.value)} {rule.op} {_fmt(r.threshold)}{held}: "
                f"{rule.summary}"
            )
        return f"resolved: {subject} {what} {_fmt(r.value)}"

    @staticmethod
    def _event(
        rule: AlertRule,
        t: float,
        kind: Literal["raised", "resolved"],
        gpu: int | None,
        msg: str,
        r: _Reading,
        key: int | str | None,
    ) -> Event:
        detail: dict[str, Any] = {"expr": rule.expr, **r.detail}
        if r.threshold is not None:
            detail["threshold"] = r.threshold
        if rule.scope == "disk":
            detail["disk"] = key
        return Event(
            t=t,
            kind=kind,
            rule=rule.name,
            severity=rule.severity,
            gpu=gpu,
            message=msg,
            value=r.value,
            detail=detail,
        )
