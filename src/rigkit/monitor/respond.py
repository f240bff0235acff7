"""Tiered thermal response: lower power limits, stop workloads, shut the machine down.

Three tiers, each with its own conditions (a GPU temperature relative to its slowdown or shutdown
temperature, held for a duration of sample time and at least two consecutive samples):

* **Tier 1** (per GPU, default: >= slowdown - 3 C for 30 s): lower that GPU's power limit to
  ``max(min_power_limit_w, 70% of the default limit)``. The original limit is restored once the GPU
  has stayed below slowdown - 8 C for 5 minutes.
* **Tier 2** (default: any GPU >= slowdown for 60 s, or >= shutdown - 5 C for 10 s): stop the
  configured systemd units and docker containers. They are not restarted automatically.
* **Tier 3** (default: any GPU >= shutdown - 2 C for 10 s, or tier 2 acted 120 s ago and the
  hottest GPU is hotter than it was then): shut the machine down (``systemctl poweroff``).

Safety: dry-run unless ``enforce=True`` (each decision is still returned as an ``action`` event
with ``dry_run=True`` and a "would ..." message); nothing acts on stale data (``fresh=False`` or a
sample time that did not advance) or on a GPU whose temperature is missing; every action happens
once per episode, not once per sample. Enforced actions run off the sampling loop on the threads of
an :class:`~rigkit.monitor.actions.ActionRunner` (one per tier and target), so a hung NVML call or
command holds neither the loop nor the next tier; :meth:`Responder.collect` returns how they ended.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rigkit.errors import MonitorError
from rigkit.monitor.actions import ActionRunner, Actuator, Outcome, SystemActuator
from rigkit.monitor.alerts import gpu_temp_limits
from rigkit.monitor.config import ConditionSettings, ResponseSettings, load_config
from rigkit.monitor.sample import Event, GpuSample, Sample, Severity

if TYPE_CHECKING:
    from rigkit.build import Build

log = logging.getLogger(__name__)

Reference = Literal["slowdown", "shutdown"]


@dataclass(frozen=True)
class TierCondition:
    """GPU temperature >= (slowdown or shutdown temperature + ``offset_c``) for ``for_s`` seconds."""

    relative_to: Reference
    offset_c: float
    for_s: float

    def describe(self, ref: float) -> str:
        sign = "+" if self.offset_c >= 0 else "-"
        return (
            f"temperature >= {ref + self.offset_c:g} C ({self.relative_to} {ref:g} {sign} "
            f"{abs(self.offset_c):g}) for {self.for_s:g} s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"relative_to": self.relative_to, "offset_c": self.offset_c, "for_s": self.for_s}


@dataclass(frozen=True)
class ResponsePolicy:
    """What each tier watches and does. ``slowdown_temp_c``/``shutdown_temp_c`` are the references
    used when a sample does not carry the GPU's own thresholds (NVML does on real hardware)."""

    slowdown_temp_c: float = 88.0
    shutdown_temp_c: float = 93.0
    tier1_enabled: bool = True
    tier1: TierCondition = TierCondition("slowdown", -3.0, 30.0)
    tier1_power_fraction: float = 0.7
    tier1_restore: TierCondition = TierCondition("slowdown", -8.0, 300.0)  # below, for
    tier2_enabled: bool = True
    tier2: tuple[TierCondition, ...] = (
        TierCondition("slowdown", 0.0, 60.0),
        TierCondition("shutdown", -5.0, 10.0),
    )
    tier2_units: tuple[str, ...] = ()
    tier2_containers: tuple[str, ...] = ()
    tier3_enabled: bool = True
    tier3: tuple[TierCondition, ...] = (TierCondition("shutdown", -2.0, 10.0),)
    tier3_rising_s: float = 120.0

    def __post_init__(self) -> None:
        if not 0.1 <= self.tier1_power_fraction <= 1.0:
            raise MonitorError(
                f"response: tier1 power_fraction must be between 0.1 and 1.0, "
                f"got {self.tier1_power_fraction}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "slowdown_temp_c": self.slowdown_temp_c,
            "shutdown_temp_c": self.shutdown_temp_c,
            "tier1": {
                "enabled": self.tier1_enabled,
                **self.tier1.to_dict(),
                "power_fraction": self.tier1_power_fraction,
                "restore_below": self.tier1_restore.to_dict(),
            },
            "tier2": {
                "enabled": self.tier2_enabled,
                "conditions": [c.to_dict() for c in self.tier2],
                "units": list(self.tier2_units),
                "containers": list(self.tier2_containers),
            },
            "tier3": {
                "enabled": self.tier3_enabled,
                "conditions": [c.to_dict() for c in self.tier3],
                "rising_for_s": self.tier3_rising_s,
            },
        }


def default_policy(build: Build | None = None) -> ResponsePolicy:
    """The default policy with the reference temperatures of the build's GPUs (catalog)."""
    slowdown, shutdown = gpu_temp_limits(build)
    return ResponsePolicy(slowdown_temp_c=slowdown, shutdown_temp_c=shutdown)


# --- settings file (response:) -----------------------------------------------------------------


def _cond(c: ConditionSettings | None, default: TierCondition) -> TierCondition:
    if c is None:
        return default
    return TierCondition(
        c.relative_to if c.relative_to is not None else default.relative_to,
        c.offset_c if c.offset_c is not None else default.offset_c,
        c.for_s if c.for_s is not None else default.for_s,
    )


def _conds(
    cs: list[ConditionSettings] | None, base: tuple[TierCondition, ...]
) -> tuple[TierCondition, ...]:
    """Each condition given; a setting left out of one takes the first default condition's."""
    return base if cs is None else tuple(_cond(c, base[0]) for c in cs)


def apply_response(settings: ResponseSettings, base: ResponsePolicy) -> ResponsePolicy:
    """``base`` with the ``response:`` settings of a file applied."""
    changes: dict[str, Any] = {}
    if settings.slowdown_temp_c is not None:
        changes["slowdown_temp_c"] = settings.slowdown_temp_c
    if settings.shutdown_temp_c is not None:
        changes["shutdown_temp_c"] = settings.shutdown_temp_c
    if (t1 := settings.tier1) is not None:
        if t1.enabled is not None:
            changes["tier1_enabled"] = t1.enabled
        changes["tier1"] = _cond(t1, base.tier1)
        if t1.power_fraction is not None:
            changes["tier1_power_fraction"] = t1.power_fraction
        changes["tier1_restore"] = _cond(t1.restore_below, base.tier1_restore)
    if (t2 := settings.tier2) is not None:
        if t2.enabled is not None:
            changes["tier2_enabled"] = t2.enabled
        changes["tier2"] = _conds(t2.conditions, base.tier2)
        if t2.units is not None:
            changes["tier2_units"] = tuple(t2.units)
        if t2.containers is not None:
            changes["tier2_containers"] = tuple(t2.containers)
    if (t3 := settings.tier3) is not None:
        if t3.enabled is not None:
            changes["tier3_enabled"] = t3.enabled
        changes["tier3"] = _conds(t3.conditions, base.tier3)
        if t3.rising_for_s is not None:
            changes["tier3_rising_s"] = t3.rising_for_s
    return replace(base, **changes)


def load_policy(path: str | Path | None, build: Build | None = None) -> ResponsePolicy:
    """The default policy for ``build`` with the ``response:`` section of ``path`` applied."""
    base = default_policy(build)
    if path is None:
        return base
    return apply_response(load_config(path).config.response, base)


# --- the responder ----------------------------------------------------------------------------


@dataclass
class _Hold:
    since: float | None = None
    count: int = 0

    def update(self, t: float, holds: bool, for_s: float) -> bool:
        """True once ``holds`` has been true for ``for_s`` s and at least 2 samples."""
        if not holds:
            self.since, self.count = None, 0
            return False
        if self.since is None:
            self.since = t
        self.count += 1
        return self.count >= 2 and t - self.since >= for_s

    def reset(self) -> None:
        self.since, self.count = None, 0


def _w(v: float) -> str:
    return f"{v:g} W" if float(v).is_integer() else f"{v:.1f} W"


class Responder:
    """Decides tiered actions sample by sample; acts only with ``enforce=True``.

    Decisions are made in :meth:`decide` (on the sampling loop, cheap); enforced actions are carried
    out by an :class:`~rigkit.monitor.actions.ActionRunner` on threads of their own, one lane per
    tier (per GPU for tier 1), so a hung action neither holds the loop nor the next tier.
    :meth:`collect` hands back how the actions ended."""

    def __init__(
        self,
        policy: ResponsePolicy | None = None,
        enforce: bool = False,
        actuator: Actuator | None = None,
        runner: ActionRunner | None = None,
    ) -> None:
        self.policy = policy or ResponsePolicy()
        self.enforce = enforce
        self.actuator: Actuator | None = actuator
        if enforce and actuator is None:
            self.actuator = SystemActuator()
        self.runner = runner or ActionRunner()
        # action key -> (the decision event, its verbs, what it acts on)
        self._started: dict[int, tuple[Event, tuple[str, str], str]] = {}
        self._keys = itertools.count()
        self._holds: dict[tuple[str, int], _Hold] = {}
        # gpu -> (original limit, target) set by tier 1; original None: it was already low
        self._lowered: dict[int, tuple[float | None, float]] = {}
        self._tier2_at: tuple[float, float] | None = None  # (t, hottest temperature then)
        self._tier3_done = False
        self._last_t: float | None = None
        self._stale = False

    @property
    def lowered(self) -> dict[int, tuple[float | None, float]]:
        """GPUs whose power limit tier 1 lowered: index -> (original limit, lowered limit)."""
        return dict(self._lowered)

    def _hold(self, key: str, gpu: int) -> _Hold:
        return self._holds.setdefault((key, gpu), _Hold())

    def _refs(self, g: GpuSample) -> dict[str, float]:
        return {
            "slowdown": float(g.slowdown_temp_c or self.policy.slowdown_temp_c),
            "shutdown": float(g.shutdown_temp_c or self.policy.shutdown_temp_c),
        }

    def decide(self, sample: Sample, fresh: bool) -> list[Event]:
        """The actions for this sample (``kind="action"``); empty when nothing changes."""
        t = sample.t
        advancing = self._last_t is None or t > self._last_t
        if not fresh or not advancing:
            pending = any(h.count > 0 for k, h in self._holds.items() if k[0] != "cool")
            latched = bool(self._lowered) or self._tier2_at is not None
            for h in self._holds.values():
                h.reset()
            if not self._stale:
                self._stale = True
                why = "stale data" if not fresh else "sample time did not advance"
                log.warning("thermal response paused: %s (t=%s)", why, t)
                if not (pending or latched):
                    return []
                return [
                    self._event(
                        t, None, None, "info", f"response paused: {why}; no action on it", {}
                    )
                ]
            return []
        if self._stale:
            log.info("thermal response resumed: fresh data at t=%s", t)
        self._stale = False
        self._last_t = t
        p = self.policy
        events: list[Event] = []
        temps: dict[int, float] = {}
        t2_hit: list[str] = []
        t3_hit: list[str] = []
        all_cool = True
        for g in sample.gpus:
            if g.lost or g.temperature_c is None:
                for (_, gi), h in self._holds.items():
                    if gi == g.index:
                        h.reset()
                all_cool = False
                continue
            temp = float(g.temperature_c)
            temps[g.index] = temp
            refs = self._refs(g)
            r = p.tier1_restore
            cool = self._hold("cool", g.index).update(
                t, temp < refs[r.relative_to] + r.offset_c, r.for_s
            )
            all_cool = all_cool and cool
            if p.tier1_enabled:
                events += self._tier1(t, g, temp, refs, cool)
            for i, c in enumerate(p.tier2):
                ref = refs[c.relative_to]
                held = self._hold(f"t2.{i}", g.index).update(t, temp >= ref + c.offset_c, c.for_s)
                if held:
                    t2_hit.append(f"GPU {g.index} {c.describe(ref)}")
            for i, c in enumerate(p.tier3):
                ref = refs[c.relative_to]
                held = self._hold(f"t3.{i}", g.index).update(t, temp >= ref + c.offset_c, c.for_s)
                if held:
                    t3_hit.append(f"GPU {g.index} {c.describe(ref)}")
        hottest = max(temps.values()) if temps else None
        if p.tier2_enabled and t2_hit and self._tier2_at is None and hottest is not None:
            events += self._tier2(t, hottest, t2_hit)
        elif self._tier2_at is not None and all_cool and temps:
            self._tier2_at = None
            events.append(
                self._event(
                    t,
                    2,
                    None,
                    "info",
                    "tier 2 condition cleared; stopped workloads stay stopped until "
                    "restarted by hand",
                    {},
                )
            )
        if (
            p.tier3_enabled
            and not t3_hit
            and self._tier2_at is not None
            and hottest is not None
            and t - self._tier2_at[0] >= p.tier3_rising_s
            and hottest > self._tier2_at[1]
        ):
            t3_hit.append(
                f"tier 2 acted {t - self._tier2_at[0]:g} s ago and the hottest GPU rose "
                f"{self._tier2_at[1]:g} -> {hottest:g} C"
            )
        if p.tier3_enabled and t3_hit and not self._tier3_done:
            events += self._tier3(t, t3_hit)
        for e in events:
            # every decision is logged: INFO for dry runs and notes, WARNING for acting for real
            level = logging.WARNING if e.dry_run is False and e.tier is not None else logging.INFO
            log.log(
                level,
                "t=%s tier %s %s: %s",
                e.t,
                e.tier if e.tier is not None else "-",
                "note" if e.tier is None else "dry run" if e.dry_run else "enforced",
                e.message,
            )
        return events

    # tiers

    def _tier1(
        self, t: float, g: GpuSample, temp: float, refs: dict[str, float], cool: bool
    ) -> list[Event]:
        p = self.policy
        c = p.tier1
        ref = refs[c.relative_to]
        held = self._hold("t1", g.index).update(t, temp >= ref + c.offset_c, c.for_s)
        if g.index not in self._lowered:
            if not held:
                return []
            current = g.power_limit_w
            if current is None:
                return []  # no data: cannot decide a target, never act blind
            base = g.default_power_limit_w if g.default_power_limit_w is not None else current
            target = float(round(p.tier1_power_fraction * float(base), 1))
            if g.min_power_limit_w is not None:
                target = max(target, float(g.min_power_limit_w))
            why = f"GPU {g.index} {c.describe(ref)}"
            detail = {"temperature_c": temp, "condition": why, "from_w": current, "to_w": target}
            if target >= current:
                self._lowered[g.index] = (None, float(current))
                msg = (
                    f"GPU {g.index} power limit already {_w(current)} <= target {_w(target)}; "
                    f"not changed ({why})"
                )
                return [self._event(t, 1, g.index, "warning", msg, detail)]
            self._lowered[g.index] = (float(current), target)
            return [
                self._act(
                    t,
                    1,
                    g.index,
                    "warning",
                    f"GPU {g.index} power limit {_w(current)} -> {_w(target)} ({why})",
                    ("lower", "lowered"),
                    lambda a: a.set_power_limit(g.index, target),
                    detail,
                )
            ]
        # lowered: restore once cool for long enough
        if not cool:
            return []
        r = p.tier1_restore
        original, lowered = self._lowered.pop(g.index)
        self._hold("t1", g.index).reset()
        if original is None:
            return []
        why = f"GPU {g.index} below {refs[r.relative_to] + r.offset_c:g} C for {r.for_s:g} s"
        detail = {"temperature_c": temp, "condition": why, "from_w": lowered, "to_w": original}
        return [
            self._act(
                t,
                1,
                g.index,
                "info",
                f"GPU {g.index} power limit {_w(lowered)} -> {_w(original)} ({why})",
                ("restore", "restored"),
                lambda a: a.set_power_limit(g.index, original),
                detail,
            )
        ]

    def _tier2(self, t: float, hottest: float, why: list[str]) -> list[Event]:
        p = self.policy
        self._tier2_at = (t, hottest)
        detail: dict[str, Any] = {"condition": "; ".join(why), "hottest_c": hottest}
        if not p.tier2_units and not p.tier2_containers:
            return [
                self._event(
                    t,
                    2,
                    None,
                    "critical",
                    f"tier 2 reached ({why[0]}) but no workloads are configured to stop "
                    "(response.tier2.units / containers)",
                    detail,
                )
            ]
        out: list[Event] = []
        for unit in p.tier2_units:
            out.append(
                self._act(
                    t,
                    2,
                    None,
                    "critical",
                    f"systemd unit {unit} ({why[0]})",
                    ("stop", "stopped"),
                    lambda a, u=unit: a.stop_unit(u),
                    {**detail, "unit": unit},
                )
            )
        for name in p.tier2_containers:
            out.append(
                self._act(
                    t,
                    2,
                    None,
                    "critical",
                    f"docker container {name} ({why[0]})",
                    ("stop", "stopped"),
                    lambda a, n=name: a.stop_container(n),
                    {**detail, "container": name},
                )
            )
        return out

    def _tier3(self, t: float, why: list[str]) -> list[Event]:
        self._tier3_done = True
        return [
            self._act(
                t,
                3,
                None,
                "critical",
                f"the machine ({why[0]})",
                ("shut down", "shut down"),
                lambda a: a.shutdown(),
                {"condition": "; ".join(why)},
            )
        ]

    # events

    def _act(
        self,
        t: float,
        tier: int,
        gpu: int | None,
        severity: Severity,
        what: str,
        verbs: tuple[str, str],
        do: Any,
        detail: dict[str, Any],
    ) -> Event:
        if not self.enforce or self.actuator is None:
            return self._event(t, tier, gpu, severity, f"would {verbs[0]} {what}", detail)
        actuator = self.actuator
        decision = self._event(
            t, tier, gpu, severity, f"acting: {verbs[0]} {what}", {**detail, "status": "started"}
        )
        key = next(self._keys)
        self._started[key] = (decision, verbs, what)
        # one lane per tier and target: a hung action holds nothing but its own target
        target = f"gpu{gpu}" if gpu is not None else detail.get("unit") or detail.get("container")
        lane = f"tier{tier}" if target is None else f"tier{tier}-{target}"
        self.runner.submit(lane, key, lambda: do(actuator))
        return decision

    def collect(self, t: float | None = None, wait_s: float = 0.0) -> list[Event]:
        """Outcome events of enforced actions that ended (or became overdue) since the last call,
        stamped with sample time ``t`` (default: the decision's). ``wait_s``: wait up to that long
        for running actions first (end of a run)."""
        return [self._outcome(o, t) for o in self.runner.outcomes(wait_s)]

    def _outcome(self, o: Outcome, t: float | None) -> Event:
        decision, verbs, what = self._started[o.key] if o.overdue else self._started.pop(o.key)
        stamp = decision.t if t is None else t
        detail = {**decision.detail, "seconds": round(o.seconds, 3)}
        if o.overdue:
            msg = (
                f"not finished after {round(o.seconds, 1):g} s: {verbs[0]} {what}; "
                "later tiers do not wait for it"
            )
            log.error("tier %s action %s", decision.tier, msg)
            status: dict[str, Any] = {"status": "overdue"}
            return replace(
                decision, t=stamp, severity="critical", message=msg, detail={**detail, **status}
            )
        if o.error is not None:
            log.error("tier %s action failed: %s", decision.tier, o.error)
            return replace(
                decision,
                t=stamp,
                severity="critical",
                message=f"failed to {verbs[0]} {what}: {o.error}",
                detail={**detail, "status": "failed", "error": o.error},
            )
        msg = f"{verbs[1]} {what}"
        log.warning("t=%s tier %s enforced: %s", stamp, decision.tier, msg)
        return replace(decision, t=stamp, message=msg, detail={**detail, "status": "done"})

    def close(self, wait_s: float = 0.0) -> list[Event]:
        """The outcomes still to come, waiting up to ``wait_s`` for running actions."""
        return self.collect(wait_s=wait_s)

    def _event(
        self,
        t: float,
        tier: int | None,
        gpu: int | None,
        severity: Severity,
        message: str,
        detail: dict[str, Any],
    ) -> Event:
        value = detail.get("temperature_c", detail.get("hottest_c"))
        return Event(
            t=t,
            kind="action",
            rule=f"response_tier{tier}" if tier is not None else "response",
            severity=severity,
            gpu=gpu,
            message=message,
            value=None if value is None else float(value),
            tier=tier,
            dry_run=not self.enforce,
            detail=detail,
        )
