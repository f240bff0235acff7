"""`rigkit monitor export-config`: Prometheus alert rules, their unit tests, a scrape config and a
Grafana dashboard, all derived from the same alert rules the agent evaluates.

Files written to ``--out``:

* ``rigkit-alerts.yml``: one Prometheus alerting rule per agent rule (same thresholds, same ``for``
  with a floor of one scrape interval so that one scraped sample never fires an alert; the same
  hysteresis: a firing alert stays firing until the value crosses the clear threshold, through
  the ``ALERTS`` series, and ``keep_firing_for`` holds it for ``clear_for``; XID rules use the
  counter ``rigkit_gpu_xid_total`` and resolve after the same quiet period; the PCIe rule compares
  with the build's slot map when the agent runs with ``--spec``; a GPU that vanishes is lost while
  the agent still samples), plus two rules only Prometheus can evaluate: the agent stopped
  sampling, and the exporter is down.
* ``rigkit-alerts.test.yml``: ``promtool test rules`` cases: for every alert, a sustained bad value
  that fires, a good value that does not, and a one-sample spike that must NOT fire; for every
  rule with hysteresis, a value between the thresholds that keeps a firing alert firing.
* ``prometheus-scrape.yml``: a complete Prometheus configuration: the targets of
  ``rigkit-targets*.yml`` (file_sd, with a ``machine`` label), the alert rules, Alertmanager.
* ``rigkit-targets.yml``: the exporters to scrape: this machine's (the agent's default address)
  or the ``--target`` list (a fleet); example hosts only commented out, so none is scraped.
* ``alertmanager.yml``: routes every alert to e-mail; the mail settings are marked placeholders.

The three Prometheus files are packaged Jinja templates (``monitor/data/*.yml.j2``) filled by
:func:`prometheus_files`, every value quoted as a YAML string.
* ``grafana-dashboard.json``: a dashboard with ``datasource``, ``machine`` and ``gpu`` variables.

Every series name comes from :mod:`rigkit.monitor.exporter` (its tables and ``*_SERIES``
constants), and a test checks each name used here against the exporter's real /metrics output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rigkit.monitor.exporter import (
    AGE_SERIES,
    ALERT_SERIES,
    DISK_METRICS_PROM,
    ECC_SERIES,
    EXPECTED_SERIES,
    GPU_METRICS_PROM,
    HOST_METRICS_PROM,
    LOST_SERIES,
    PCIE_EXPECTED_GEN_SERIES,
    PCIE_EXPECTED_WIDTH_SERIES,
    REMAP_SERIES,
    SAMPLES_SERIES,
    THROTTLE_SERIES,
    XID_SERIES,
)

if TYPE_CHECKING:
    from rigkit.monitor.alerts import AlertRule

JOB = "rigkit"
SCRAPE_INTERVAL_S = 15
EVAL_INTERVAL_S = 15
STALE_AFTER_S = 60
LOST_LOOKBACK = "1h"
NAME_LABEL = "NVIDIA GeForce RTX 4090"  # label value used in the generated unit tests only


def alert_name(rule_name: str) -> str:
    """``gpu_temp_high`` -> ``RigkitGpuTempHigh``."""
    return "Rigkit" + "".join(p[:1].upper() + p[1:] for p in rule_name.split("_") if p)


def _num(v: float) -> str:
    """A PromQL/YAML number without float noise (0.95, not 0.9500000000000001)."""
    text = f"{v:.10g}"
    return text


def _dur(seconds: float) -> str:
    if float(seconds).is_integer():
        s = int(seconds)
        if s and s % 3600 == 0:
            return f"{s // 3600}h"
        if s and s % 60 == 0:
            return f"{s // 60}m"
        return f"{s}s"
    return f"{round(seconds * 1000)}ms"


# --- rule translation -------------------------------------------------------------------------


@dataclass(frozen=True)
class PromRule:
    """One Prometheus alert derived from an agent rule."""

    rule: AlertRule
    alert: str
    expr: str
    for_s: float
    keep_firing_s: float = 0.0


def _metric(expr: str) -> tuple[str, float]:
    scope, name = expr.split(".", 1)
    table = {"gpu": GPU_METRICS_PROM, "host": HOST_METRICS_PROM, "disk": DISK_METRICS_PROM}[scope]
    extra = {
        "gpu.ecc_uncorrected": (ECC_SERIES, 1.0),
        "gpu.remapped_rows_pending": (REMAP_SERIES, 1.0),
    }
    if expr in extra:
        return extra[expr]
    metric, _help, scale = table[name]
    return metric, scale


def _xid_selector(rule: AlertRule) -> str:
    if rule.codes:
        return 'xid=~"' + "|".join(str(c) for c in rule.codes) + '"'
    if rule.exclude_codes:
        return 'xid!~"' + "|".join(str(c) for c in rule.exclude_codes) + '"'
    return ""


def to_prometheus(rule: AlertRule, min_for_s: float = SCRAPE_INTERVAL_S) -> PromRule | None:
    """The Prometheus form of ``rule``; None for log-only (info) rules."""
    if rule.log_only or not rule.enabled:
        return None
    name = alert_name(rule.name)
    level_for = max(rule.for_s, min_for_s)
    on = f"on(instance, job, gpu) {_metric('gpu.util_pct')[0]}"
    expr = rule.expr
    if expr == "gpu.xid":
        sel = "{" + _xid_selector(rule) + "}"
        q = _dur(rule.quiet_s)
        x = f"{XID_SERIES}{sel}"
        promql = f"increase({x}[{q}]) > 0 or ({x} unless {x} offset {q})"
        return PromRule(rule, name, promql, 0.0)
    if expr == "gpu.lost":
        return PromRule(rule, name, _lost_promql(), level_for)
    if expr == "gpu.data_missing":
        temp = _metric("gpu.temperature_c")[0]
        promql = f"{LOST_SERIES} == 0 unless on(instance, job, gpu) {temp}"
        return PromRule(rule, name, promql, level_for)
    if expr.startswith("gpu.throttle."):
        reason = expr[len("gpu.throttle.") :]
        promql = f'{THROTTLE_SERIES}{{reason="{reason}"}} == 1'
        return PromRule(rule, name, promql, level_for)
    if expr == "gpu.fan_stopped_under_load":
        fan, scale = _metric("gpu.fan_pct")
        util_scale = _metric("gpu.util_pct")[1]
        thr = _num(float(rule.threshold or 0.0) * scale)
        load = _num(rule.min_util_pct * util_scale)
        promql = f"{fan} <= {thr} and {on} >= {load}"
        return PromRule(rule, name, promql, level_for)
    if expr == "gpu.pcie_degraded_under_load":
        gen, width = _metric("gpu.pcie_gen")[0], _metric("gpu.pcie_width")[0]
        mgen, mwidth = _metric("gpu.pcie_max_gen")[0], _metric("gpu.pcie_max_width")[0]
        load = _num(rule.min_util_pct * _metric("gpu.util_pct")[1])
        by = "on(instance, job, gpu) group_left()"  # keeps the GPU series' own labels
        # the build's slot map where the agent exports it (--spec), else NVML's maximum
        spec = (
            f"{gen} < {by} {PCIE_EXPECTED_GEN_SERIES}"
            f" or {width} < {by} {PCIE_EXPECTED_WIDTH_SERIES}"
        )
        nvml = (
            f"({gen} < {mgen} or {width} < {mwidth})"
            f" unless on(instance, job, gpu) {PCIE_EXPECTED_GEN_SERIES}"
        )
        promql = f"(({spec}) or ({nvml})) and {on} >= {load}"
        return PromRule(rule, name, promql, level_for)
    if rule.threshold is None:  # pragma: no cover - AlertRule validates this
        return None
    bad = _compare(rule, rule.threshold, rule.effective_threshold(None))
    keep = float(rule.clear_for_s)
    if not has_hysteresis(rule):
        return PromRule(rule, name, bad, level_for, keep)
    # Hysteresis as the agent does it: a firing alert stays firing while the value is still on
    # the bad side of the clear threshold (ALERTS holds the alert's own labels, plus these four).
    assert rule.clear_threshold is not None
    stay = _compare(rule, rule.clear_threshold, rule.effective_clear(None))
    firing = f'ALERTS{{alertname="{name}", alertstate="firing"}}'
    promql = f"({bad}) or (({stay}) and ignoring(alertname, alertstate, severity, rule) {firing})"
    return PromRule(rule, name, promql, level_for, keep)


def has_hysteresis(rule: AlertRule) -> bool:
    """A threshold rule whose clear threshold differs from its threshold (on the safe side)."""
    return (
        rule.threshold is not None
        and rule.clear_threshold is not None
        and rule.clear_threshold != rule.threshold
        and rule.op in (">=", ">", "<=", "<")
    )


def _compare(rule: AlertRule, offset_or_value: float, fallback: float | None) -> str:
    """``metric op value``; for a rule relative to the slowdown/shutdown temperature, the offset
    from the GPU's own threshold, or ``fallback`` where the GPU does not report one."""
    metric, scale = _metric(rule.expr)
    if rule.relative_to is None:
        return f"{metric} {rule.op} {_num(offset_or_value * scale)}"
    ref = _metric(f"gpu.{rule.relative_to}")[0]
    off = offset_or_value * scale
    shifted = ref if off == 0 else f"({ref} {'+' if off > 0 else '-'} {_num(abs(off))})"
    promql = f"{metric} {rule.op} {shifted}"
    if fallback is not None:
        promql = f"({promql}) or ({metric} {rule.op} {_num(fallback * scale)} unless {ref})"
    return promql


def _lost_promql() -> str:
    """Lost: the agent reports the GPU lost; or the GPU stopped appearing in the samples while the
    agent still samples (the freshness gauge), judged against the build's GPU list when the agent
    runs with --spec (lost until it answers again or leaves the spec), else against the GPUs seen
    in the last hour (without a spec, a GPU removed on purpose alerts for up to that hour)."""
    fresh = f"on(instance, job) ({AGE_SERIES} < {STALE_AFTER_S})"
    by_gpu = "on(instance, job, gpu)"
    in_spec = f"({EXPECTED_SERIES} unless {by_gpu} {LOST_SERIES}) and {fresh}"
    seen = (
        f"((last_over_time({LOST_SERIES}[{LOST_LOOKBACK}]) unless {LOST_SERIES})"
        f" unless on(instance, job) {EXPECTED_SERIES}) and {fresh}"
    )
    return f"{LOST_SERIES} == 1 or ({in_spec}) or ({seen})"


def _subject_template(rule: AlertRule) -> str:
    if rule.scope == "gpu":
        return "{{ $labels.machine }} GPU {{ $labels.gpu }}"
    if rule.scope == "disk":
        return "{{ $labels.machine }} disk {{ $labels.disk }}"
    return "{{ $labels.machine }}"


#: The alert's value in an annotation (Go's %.4g, the same text as Python's f"{v:.4g}").
VALUE = '{{ printf "%.4g" $value }}'

_UNITS = {"_celsius": " C", "_watts": " W", "_hertz": " Hz", "_bytes": " bytes"}
_REF_NAME = {"slowdown_temp_c": "slowdown", "shutdown_temp_c": "shutdown"}


def _unit(metric: str) -> str:
    return next((u for suffix, u in _UNITS.items() if metric.endswith(suffix)), "")


def _limit(rule: AlertRule, value: float, fallback: float | None, scale: float, unit: str) -> str:
    """``83 C`` or, relative to the GPU's own reference, ``slowdown - 5 C (83 C where ...)``."""
    if rule.relative_to is None:
        return f"{_num(value * scale)}{unit}"
    ref = _REF_NAME[rule.relative_to]
    sign = "+" if value >= 0 else "-"
    shifted = ref if value == 0 else f"{ref} {sign} {_num(abs(value * scale))}{unit}"
    if fallback is None:
        return shifted
    return f"{shifted} ({_num(fallback * scale)}{unit} where the GPU reports no {ref} temperature)"


def _value_text(p: PromRule) -> str | None:
    """What the description says about the value and the threshold, for the rules whose
    alert value is the measured value (threshold rules and the stopped fan)."""
    rule = p.rule
    if rule.expr == "gpu.fan_stopped_under_load":
        fan, scale = _metric("gpu.fan_pct")
        util, util_scale = _metric("gpu.util_pct")
        thr = _num(float(rule.threshold or 0.0) * scale)
        load = _num(rule.min_util_pct * util_scale)
        return f"{fan} {VALUE}, alert at <= {thr} while {util} >= {load}"
    if rule.threshold is None or rule.is_event or rule.expr.startswith("gpu.throttle."):
        return None
    if rule.expr in ("gpu.lost", "gpu.data_missing", "gpu.pcie_degraded_under_load"):
        return None
    metric, scale = _metric(rule.expr)
    unit = _unit(metric)
    limit = _limit(rule, rule.threshold, rule.effective_threshold(None), scale, unit)
    text = f"{metric} {VALUE}{unit}, alert at {rule.op} {limit}"
    if has_hysteresis(rule) and rule.clear_threshold is not None:
        neg = {">=": "<", ">": "<=", "<=": ">", "<": ">="}[rule.op]
        clear = _limit(rule, rule.clear_threshold, rule.effective_clear(None), scale, unit)
        text += f", clears at {neg} {clear}"
    return text


def _annotations(p: PromRule) -> dict[str, str]:
    what = _value_text(p) or p.rule.expr
    if p.rule.is_event:
        what = "XID {{ $labels.xid }}"
    return {
        "summary": p.rule.summary,
        "description": f"{_subject_template(p.rule)}: {what}; rigkit rule {p.rule.name}",
    }


def _meta_rules() -> list[dict[str, Any]]:
    return [
        {
            "alert": "RigkitSamplesStale",
            "expr": f"{AGE_SERIES} > {STALE_AFTER_S}",
            "for": "1m",
            "labels": {"severity": "critical", "rule": "samples_stale"},
            "annotations": {
                "summary": "the rigkit agent stopped producing samples",
                "description": f"{{{{ $labels.machine }}}}: latest sample {VALUE} s old,"
                f" alert at > {STALE_AFTER_S} s; rigkit rule samples_stale",
            },
        },
        {
            "alert": "RigkitExporterDown",
            "expr": f'up{{job="{JOB}"}} == 0',
            "for": "2m",
            "labels": {"severity": "critical", "rule": "exporter_down"},
            "annotations": {
                "summary": "the rigkit exporter does not answer scrapes",
                "description": "{{ $labels.machine }}: {{ $labels.instance }}/metrics unreachable"
                " for 2 minutes; rigkit rule exporter_down",
            },
        },
    ]


def prometheus_rules(rules: Sequence[AlertRule]) -> dict[str, Any]:
    """The ``rigkit-alerts.yml`` document."""
    out: list[dict[str, Any]] = []
    for r in rules:
        p = to_prometheus(r)
        if p is None:
            continue
        doc: dict[str, Any] = {"alert": p.alert, "expr": p.expr, "for": _dur(p.for_s)}
        if p.keep_firing_s > 0:
            doc["keep_firing_for"] = _dur(p.keep_firing_s)
        doc["labels"] = {"severity": r.severity, "rule": r.name}
        doc["annotations"] = _annotations(p)
        out.append(doc)
    out += _meta_rules()
    return {"groups": [{"name": "rigkit", "interval": f"{EVAL_INTERVAL_S}s", "rules": out}]}


# --- promtool unit tests ----------------------------------------------------------------------


def _labels(i: int, rule: AlertRule) -> dict[str, str]:
    lab = {"instance": f"ws{i}:9842", "job": JOB, "machine": f"ws{i}"}
    if rule.scope == "gpu":
        lab.update(gpu="0", name=NAME_LABEL)
    return lab


def _machine(labels: dict[str, str]) -> dict[str, str]:
    """The target's labels only (series with no gpu or disk label)."""
    return {k: v for k, v in labels.items() if k in ("instance", "job", "machine")}


def _sel(metric: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


N = 40  # meta tests: samples after the first (41 samples, 10 minutes at 15 s)
SPIKE_AT = 11  # the spike is sample 11 (t = 165 s)


def _bad_good(rule: AlertRule, scale: float) -> tuple[float, float]:
    """A value that satisfies the rule (at the boundary where the op allows) and one that does not."""
    thr = float(rule.threshold or 0.0)
    if rule.relative_to is not None:
        thr = float(rule.effective_threshold(None) or 0.0)
    bad = {">=": thr, ">": thr + 1, "<=": thr, "<": thr - 1, "==": thr, "!=": thr + 1}[rule.op]
    good = {">=": thr - 5, ">": thr - 5, "<=": thr + 5, "<": thr + 5, "==": thr + 5, "!=": thr}[
        rule.op
    ]
    return bad * scale, good * scale


@dataclass
class _Case:
    series: list[dict[str, str]] = field(default_factory=list)
    firing: list[dict[str, str]] = field(default_factory=list)  # label sets expected to fire
    eval_time: str = "10m"
    also: list[tuple[str, list[dict[str, str]]]] = field(default_factory=list)  # (time, firing)
    # at the spike sample's own evaluation: the sustained ones that already fire, never the spike
    at_spike: list[dict[str, str]] | None = None
    #: the alert's value for each firing label set, where the description shows it
    values: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)

    def value(self, labels: dict[str, str]) -> float | None:
        return self.values.get(tuple(sorted(labels.items())))

    def add(self, metric: str, labels: dict[str, str], values: str) -> None:
        self.series.append({"series": _sel(metric, labels), "values": values})


def _case(p: PromRule) -> _Case:
    rule = p.rule
    c = _Case()
    step = SCRAPE_INTERVAL_S
    # evaluate 10 minutes in, or 5 minutes after a long `for` has elapsed
    eval_s = max(600, -(-int(p.for_s + 300) // step) * step)
    n = eval_s // step  # samples after the first
    c.eval_time = _dur(eval_s)

    def steady(v: float) -> str:
        return f"{_num(v)}x{n}"

    def spike(good: float, bad: float) -> str:
        return f"{_num(good)}x{SPIKE_AT - 1} {_num(bad)} {_num(good)}x{n - SPIKE_AT}"

    up = "up"
    subjects = [_labels(i, rule) for i in range(1, 5)]
    up_n = 4 * int(max(rule.quiet_s, 600)) // SCRAPE_INTERVAL_S
    for lab in subjects:
        c.add(
            up, {k: v for k, v in lab.items() if k in ("instance", "job", "machine")}, f"1x{up_n}"
        )
    bad_l, ok_l, spike_l, extra_l = subjects
    expr = rule.expr
    if expr == "gpu.xid":
        codes = list(rule.codes) or [61]
        other = 13 if 13 not in codes else 79
        first, later = codes[0], codes[-1]
        step = SCRAPE_INTERVAL_S
        quiet = -(-int(rule.quiet_s) // step) * step  # the quiet period, rounded up to a scrape
        # At quiet + 120 s the XIDs that appeared (150 s) or incremented (165 s) are within the
        # quiet period, the steady counter is older than it; at 2 x quiet + 300 s all is quiet.
        fire_at, quiet_at = quiet + 120, 2 * quiet + 300
        n = quiet_at // step + 10
        c.eval_time = _dur(fire_at)
        c.add(XID_SERIES, {**bad_l, "xid": str(first)}, f"_x{SPIKE_AT - 1} 1x{n}")
        c.add(XID_SERIES, {**spike_l, "xid": str(later)}, f"1x{SPIKE_AT - 1} 2x{n}")
        c.add(XID_SERIES, {**ok_l, "xid": str(first)}, f"1x{n + SPIKE_AT}")
        c.add(XID_SERIES, {**extra_l, "xid": str(other)}, f"_x{SPIKE_AT - 1} 1x{n}")
        c.firing = [{**bad_l, "xid": str(first)}, {**spike_l, "xid": str(later)}]
        c.also = [(_dur(quiet_at), [])]  # quiet for longer than the quiet period: resolved
        return c
    if expr == "gpu.lost":
        # ws1 reports the GPU lost; ws2 fine; ws3 one lost sample; ws4 (no spec) the GPU vanishes
        # after 150 s while the agent samples on; ws5 (with --spec) the same; ws6 (with --spec)
        # present and fine; ws7 (no spec) vanishes, but the agent stopped too (stale: no alert,
        # RigkitSamplesStale covers it).
        spec_l, spec_ok_l, stale_l = (_labels(i, rule) for i in (5, 6, 7))
        c.add(LOST_SERIES, bad_l, steady(1))
        c.add(LOST_SERIES, ok_l, steady(0))
        c.add(LOST_SERIES, spike_l, spike(0, 1))
        c.add(LOST_SERIES, extra_l, "0x10")  # vanishes after 150 s
        c.add(LOST_SERIES, spec_l, "0x10")
        c.add(LOST_SERIES, spec_ok_l, steady(0))
        c.add(LOST_SERIES, stale_l, "0x10")
        for lab in (spec_l, spec_ok_l):
            c.add(EXPECTED_SERIES, {k: v for k, v in lab.items() if k != "name"}, steady(1))
        for lab, age in ((extra_l, "1"), (spec_l, "1"), (spec_ok_l, "1"), (stale_l, "0+15")):
            c.add(AGE_SERIES, _machine(lab), f"{age}x{n}")
        c.firing = [bad_l, extra_l, {k: v for k, v in spec_l.items() if k != "name"}]
        c.at_spike = [bad_l]  # the vanished GPUs are pending (for 15 s) at 165 s
        return c
    if expr == "gpu.data_missing":
        temp = _metric("gpu.temperature_c")[0]
        for lab in (bad_l, ok_l, spike_l):
            c.add(LOST_SERIES, lab, steady(0))
        c.add(temp, ok_l, steady(60))
        c.add(temp, spike_l, f"60x{SPIKE_AT - 1} _ 60x{n - SPIKE_AT}")  # one missed reading
        c.firing = [bad_l]
        c.at_spike = [bad_l]
        return c
    if expr.startswith("gpu.throttle."):
        reason = expr[len("gpu.throttle.") :]
        m = THROTTLE_SERIES
        c.add(m, {**bad_l, "reason": reason}, steady(1))
        c.add(m, {**ok_l, "reason": reason}, steady(0))
        c.add(m, {**spike_l, "reason": reason}, spike(0, 1))
        c.add(m, {**extra_l, "reason": "sw_power_cap"}, steady(1))
        c.firing = [{**bad_l, "reason": reason}]
        c.at_spike = c.firing
        return c
    if expr == "gpu.fan_stopped_under_load":
        fan, util = _metric("gpu.fan_pct")[0], _metric("gpu.util_pct")[0]
        c.add(fan, bad_l, steady(0))
        c.add(util, bad_l, steady(0.99))
        c.add(fan, ok_l, steady(0.6))
        c.add(util, ok_l, steady(0.99))
        c.add(fan, spike_l, spike(0.6, 0))
        c.add(util, spike_l, steady(0.99))
        c.add(fan, extra_l, steady(0))  # idle with the fans stopped: normal
        c.add(util, extra_l, steady(0))
        c.firing = [bad_l]
        c.values[tuple(sorted(bad_l.items()))] = 0.0
        c.at_spike = c.firing
        return c
    if expr == "gpu.pcie_degraded_under_load":
        gen, width = _metric("gpu.pcie_gen")[0], _metric("gpu.pcie_width")[0]
        mgen, mwidth = _metric("gpu.pcie_max_gen")[0], _metric("gpu.pcie_max_width")[0]
        util = _metric("gpu.util_pct")[0]
        for lab, g, w, u in (
            (bad_l, "1", "4", 0.99),
            (ok_l, "4", "16", 0.99),
            (extra_l, "1", "16", 0.0),  # idle: links train down to save power
        ):
            c.add(gen, lab, f"{g}x{n}")
            c.add(width, lab, f"{w}x{n}")
            c.add(util, lab, steady(u))
        c.add(gen, spike_l, spike(4, 1))
        c.add(width, spike_l, steady(16))
        c.add(util, spike_l, steady(0.99))
        for lab in subjects:
            c.add(mgen, lab, steady(4))
            c.add(mwidth, lab, steady(16))
        # With --spec: ws5's GPU sits in an x8 (electrical) slot: gen 4 x8 is what it should
        # train to, no alert though NVML's maximum says x16; ws6's slot is x16 and it trained to
        # x8 under load: alert.
        slot8_l, slot16_l = _labels(5, rule), _labels(6, rule)
        for lab, exp_width in ((slot8_l, "8"), (slot16_l, "16")):
            c.add(gen, lab, f"4x{n}")
            c.add(width, lab, f"8x{n}")
            c.add(util, lab, steady(0.99))
            c.add(mgen, lab, steady(4))
            c.add(mwidth, lab, steady(16))
            gpu_only = {k: v for k, v in lab.items() if k != "name"}
            c.add(PCIE_EXPECTED_GEN_SERIES, gpu_only, f"4x{n}")
            c.add(PCIE_EXPECTED_WIDTH_SERIES, gpu_only, f"{exp_width}x{n}")
        c.firing = [bad_l, slot16_l]
        c.at_spike = c.firing
        return c
    metric, scale = _metric(expr)
    bad, good = _bad_good(rule, scale)
    if rule.scope == "disk":
        bad_l, ok_l, spike_l, extra_l = ({**s, "disk": "nvme0n1"} for s in subjects)
    c.add(metric, bad_l, steady(bad))
    c.add(metric, ok_l, steady(good))
    c.add(metric, spike_l, spike(good, bad))
    c.firing = [bad_l]
    c.values[tuple(sorted(bad_l.items()))] = bad
    if rule.relative_to is not None and rule.threshold is not None:
        # with NVML's own slowdown temperature (84 C) the threshold moves with it
        ref_metric = _metric(f"gpu.{rule.relative_to}")[0]
        ref = 84.0
        c.add(ref_metric, extra_l, steady(ref))
        c.add(metric, extra_l, steady(ref + rule.threshold))
        c.add(ref_metric, ok_l, steady(float(rule.ref_default or 0.0)))
        c.firing = [bad_l, extra_l]
        c.values[tuple(sorted(extra_l.items()))] = ref + rule.threshold
    c.at_spike = c.firing if p.for_s <= SPIKE_AT * SCRAPE_INTERVAL_S else []
    return c


def _render(text: str, labels: dict[str, str], value: float | None) -> str:
    """An annotation as Prometheus renders it for an alert with ``labels`` and ``value``."""
    for name, label_value in labels.items():
        text = text.replace(f"{{{{ $labels.{name} }}}}", label_value)
    if value is not None:
        text = text.replace(VALUE, f"{value:.4g}")
    return text


def _expected(p: PromRule, labels: dict[str, str], value: float | None = None) -> dict[str, Any]:
    lab = {**labels, "severity": p.rule.severity, "rule": p.rule.name}
    ann = {k: _render(v, labels, value) for k, v in _annotations(p).items()}
    return {"exp_labels": lab, "exp_annotations": ann}


def _hysteresis_test(p: PromRule) -> dict[str, Any]:
    """A promtool test: a firing alert whose value falls between the clear threshold and the
    threshold keeps firing (ws1); one whose value falls past the clear threshold resolves (ws2)."""
    rule = p.rule
    step = SCRAPE_INTERVAL_S
    metric, scale = _metric(rule.expr)
    thr = float(rule.effective_threshold(None) or 0.0)
    clr = float(rule.effective_clear(None) or 0.0)
    between = (thr + clr) / 2
    good = clr - 5 if rule.op in (">=", ">") else clr + 5
    bad = thr + (1 if rule.op == ">" else -1 if rule.op == "<" else 0)
    m = -(-int(p.for_s) // step) + 2  # bad samples: the `for` elapses on the next to last
    check_s = -(-int(m * step + p.keep_firing_s + 120) // step) * step
    length = check_s // step + 10
    stays, clears = _labels(1, rule), _labels(2, rule)
    if rule.scope == "disk":
        stays, clears = {**stays, "disk": "nvme0n1"}, {**clears, "disk": "nvme0n1"}
    series = [
        {
            "series": _sel(metric, stays),
            "values": f"{_num(bad * scale)}x{m - 1} {_num(between * scale)}x{length}",
        },
        {
            "series": _sel(metric, clears),
            "values": f"{_num(bad * scale)}x{m - 1} {_num(good * scale)}x{length}",
        },
    ]
    # the alert's value at each check: the bad value, then the value between the thresholds
    checks = [
        (_dur((m - 1) * step), [(stays, bad), (clears, bad)]),
        (_dur(check_s), [(stays, between)]),
    ]
    return {
        "name": f"{p.alert}: hysteresis, firing until past the clear threshold "
        f"{_num(clr)} (threshold {_num(thr)})",
        "interval": f"{step}s",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": t,
                "alertname": p.alert,
                "exp_alerts": [_expected(p, lab, v * scale) for lab, v in f],
            }
            for t, f in checks
        ],
    }


def promtool_tests(
    rules: Sequence[AlertRule], rule_file: str = "rigkit-alerts.yml"
) -> dict[str, Any]:
    """The ``rigkit-alerts.test.yml`` document for ``promtool test rules``."""
    tests: list[dict[str, Any]] = []
    for r in rules:
        p = to_prometheus(r)
        if p is None:
            continue
        c = _case(p)
        checks = [(c.eval_time, c.firing), *c.also]
        if c.at_spike is not None:
            checks.insert(0, (f"{SPIKE_AT * SCRAPE_INTERVAL_S}s", c.at_spike))
        tests.append(
            {
                "name": f"{p.alert}: sustained fires, normal and one-sample spike do not",
                "interval": f"{SCRAPE_INTERVAL_S}s",
                "input_series": c.series,
                "alert_rule_test": [
                    {
                        "eval_time": t,
                        "alertname": p.alert,
                        "exp_alerts": [_expected(p, lab, c.value(lab)) for lab in firing],
                    }
                    for t, firing in checks
                ],
            }
        )
        if has_hysteresis(r):
            tests.append(_hysteresis_test(p))
    tests += _meta_tests()
    return {
        "rule_files": [rule_file],
        "evaluation_interval": f"{EVAL_INTERVAL_S}s",
        "tests": tests,
    }


def _meta_tests() -> list[dict[str, Any]]:
    lab = [{"instance": f"ws{i}:9842", "job": JOB, "machine": f"ws{i}"} for i in (1, 2, 3)]

    def exp(
        rule: str, labels: dict[str, str], summary: str, desc: str, value: float | None = None
    ) -> dict[str, Any]:
        return {
            "exp_labels": {**labels, "severity": "critical", "rule": rule},
            "exp_annotations": {"summary": summary, "description": _render(desc, labels, value)},
        }

    meta = {m["alert"]: m for m in _meta_rules()}
    stale, down = meta["RigkitSamplesStale"], meta["RigkitExporterDown"]
    return [
        {
            "name": "RigkitSamplesStale: an agent that stops sampling",
            "interval": f"{SCRAPE_INTERVAL_S}s",
            "input_series": [
                # age grows 15 s per scrape from 0 (stuck) / stays ~1 s / one slow tick
                {"series": _sel(AGE_SERIES, lab[0]), "values": "0+15x40"},
                {"series": _sel(AGE_SERIES, lab[1]), "values": "1x40"},
                {
                    "series": _sel(AGE_SERIES, lab[2]),
                    "values": f"1x{SPIKE_AT - 1} 90 1x{N - SPIKE_AT}",
                },
            ],
            "alert_rule_test": [
                {
                    # the slow tick (90 s) is pending at its own evaluation, never firing
                    "eval_time": f"{SPIKE_AT * SCRAPE_INTERVAL_S}s",
                    "alertname": "RigkitSamplesStale",
                    "exp_alerts": [
                        exp(
                            "samples_stale",
                            lab[0],
                            stale["annotations"]["summary"],
                            stale["annotations"]["description"],
                            165.0,  # age 0 + 15 s per scrape, at 165 s
                        )
                    ],
                },
                {
                    "eval_time": "10m",
                    "alertname": "RigkitSamplesStale",
                    "exp_alerts": [
                        exp(
                            "samples_stale",
                            lab[0],
                            stale["annotations"]["summary"],
                            stale["annotations"]["description"],
                            600.0,  # at 10 minutes
                        )
                    ],
                },
            ],
        },
        {
            "name": "RigkitExporterDown: a workstation that stops answering",
            "interval": f"{SCRAPE_INTERVAL_S}s",
            "input_series": [
                {"series": _sel("up", lab[0]), "values": "1x10 0x30"},
                {"series": _sel("up", lab[1]), "values": "1x40"},
                {"series": _sel("up", lab[2]), "values": f"1x{SPIKE_AT - 1} 0 1x{N - SPIKE_AT}"},
            ],
            "alert_rule_test": [
                {
                    "eval_time": f"{SPIKE_AT * SCRAPE_INTERVAL_S}s",
                    "alertname": "RigkitExporterDown",
                    "exp_alerts": [],
                },
                {
                    "eval_time": "10m",
                    "alertname": "RigkitExporterDown",
                    "exp_alerts": [
                        exp(
                            "exporter_down",
                            lab[0],
                            down["annotations"]["summary"],
                            down["annotations"]["description"],
                        )
                    ],
                },
            ],
        },
    ]


# --- scrape config, targets, Alertmanager ----------------------------------------------------

#: The exporter's own default address: this machine, scraped when no --target is given.
DEFAULT_TARGET_ADDRESS = "127.0.0.1:9842"
ALERTMANAGER = "127.0.0.1:9093"
SCRAPE_TIMEOUT = "5s"
TARGETS_GLOB = "rigkit-targets*.yml"
MACHINE_REGEX = ";([^:]+)(:[0-9]+)?"

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+|\[[0-9A-Fa-f:.]+\]")
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,63}")


@dataclass(frozen=True)
class ScrapeTarget:
    """One workstation's exporter: ``HOST:PORT`` and the ``machine`` label it gets."""

    address: str
    machine: str

    @classmethod
    def parse(cls, text: str) -> ScrapeTarget:
        """``HOST:PORT`` or ``NAME=HOST:PORT`` (the machine label is the host name unless
        NAME is given); MonitorError for anything else."""
        from rigkit.errors import MonitorError

        name, sep, address = text.strip().rpartition("=")
        host, colon, port = address.rpartition(":")
        ok_port = port.isascii() and port.isdigit() and 1 <= int(port) <= 65535
        if (
            not colon
            or not ok_port
            or not _HOST.fullmatch(host)
            or (sep and not _NAME.fullmatch(name))
        ):
            raise MonitorError(
                f"--target {text!r}: expected HOST:PORT or NAME=HOST:PORT",
                hint="e.g. --target ws-4x4090.lan:9842 or --target rig1=10.0.0.21:9842",
            )
        if not sep:
            name = "localhost" if host in ("127.0.0.1", "[::1]", "localhost") else host
        return cls(address=address, machine=name)


#: Shown commented out in rigkit-targets.yml, never scraped.
EXAMPLE_TARGETS = (
    ScrapeTarget("ws-4x4090.lan:9842", "ws-4x4090"),
    ScrapeTarget("ws-2x3090.lan:9842", "ws-2x3090"),
)


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rigkit.monitor", "data"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    # every value reaches YAML as a JSON string, which YAML reads as a double-quoted scalar
    env.filters["q"] = lambda v: json.dumps(str(v), ensure_ascii=False)
    return env


def prometheus_files(
    targets: Sequence[str | ScrapeTarget] = (),
    *,
    header: str = "",
    alertmanager: str = ALERTMANAGER,
    email_to: Sequence[str] = ("ops@example.org",),
    email_from: str = "rigkit@example.org",
    smarthost: str = "mail.example.org:587",
    auth_username: str = "rigkit@example.org",
    password_file: str = "/etc/alertmanager/smtp-password",
) -> dict[str, str]:
    """The text of ``prometheus-scrape.yml``, ``rigkit-targets.yml`` and ``alertmanager.yml``
    for the exporters at ``targets`` (``HOST:PORT``, ``NAME=HOST:PORT`` or ScrapeTarget; none:
    this machine's exporter at its default address). A fleet's Prometheus is this function with
    every workstation's target; the example hosts appear only commented out."""
    parsed = [t if isinstance(t, ScrapeTarget) else ScrapeTarget.parse(t) for t in targets]
    default = not parsed
    if default:
        parsed = [ScrapeTarget.parse(DEFAULT_TARGET_ADDRESS)]
    env = _env()
    return {
        "prometheus-scrape.yml": env.get_template("prometheus-scrape.yml.j2").render(
            header=header.rstrip("\n"),
            scrape_interval=f"{SCRAPE_INTERVAL_S}s",
            eval_interval=f"{EVAL_INTERVAL_S}s",
            scrape_timeout=SCRAPE_TIMEOUT,
            rule_file="rigkit-alerts.yml",
            alertmanager=alertmanager,
            job=JOB,
            targets_glob=TARGETS_GLOB,
            machine_regex=MACHINE_REGEX,
        ),
        "rigkit-targets.yml": env.get_template("rigkit-targets.yml.j2").render(
            targets=parsed, examples=EXAMPLE_TARGETS, default_target=default
        ),
        "alertmanager.yml": env.get_template("alertmanager.yml.j2").render(
            header=header.rstrip("\n"),
            email_to=list(email_to),
            email_from=email_from,
            smarthost=smarthost,
            auth_username=auth_username,
            password_file=password_file,
        ),
    }


def scrape_config(targets: Sequence[str | ScrapeTarget] = ()) -> dict[str, Any]:
    """``prometheus-scrape.yml`` as data (what Prometheus reads)."""
    import yaml

    doc: dict[str, Any] = yaml.safe_load(prometheus_files(targets)["prometheus-scrape.yml"])
    return doc


# --- Grafana ----------------------------------------------------------------------------------


def _panel(
    pid: int,
    title: str,
    targets: list[tuple[str, str]],
    grid: tuple[int, int, int, int],
    unit: str = "short",
    kind: str = "timeseries",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    x, y, w, h = grid
    panel: dict[str, Any] = {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "expr": expr,
                "legendFormat": legend,
            }
            for i, (expr, legend) in enumerate(targets)
        ],
    }
    if extra:
        panel.update(extra)
    return panel


def _gm(field: str) -> str:
    """The exporter's series name for a GPU sample field."""
    return GPU_METRICS_PROM[field][0]


def grafana_dashboard() -> dict[str, Any]:
    """A Grafana dashboard (schema 39) over the exporter's metrics."""
    g = 'machine=~"$machine", gpu=~"$gpu"'
    m = 'machine=~"$machine"'
    leg = "{{machine}} GPU {{gpu}}"
    panels = [
        _panel(
            1,
            "GPU temperature vs slowdown",
            [
                (f"{_gm('temperature_c')}{{{g}}}", leg),
                (f"{_gm('slowdown_temp_c')}{{{g}}}", leg + " slowdown"),
            ],
            (0, 0, 12, 8),
            "celsius",
        ),
        _panel(
            2,
            "GPU power vs limit",
            [
                (f"{_gm('power_w')}{{{g}}}", leg),
                (f"{_gm('power_limit_w')}{{{g}}}", leg + " limit"),
            ],
            (12, 0, 12, 8),
            "watt",
        ),
        _panel(
            3,
            "Clocks",
            [
                (f"{_gm('sm_clock_mhz')}{{{g}}}", leg + " SM"),
                (f"{_gm('mem_clock_mhz')}{{{g}}}", leg + " memory"),
            ],
            (0, 8, 12, 8),
            "hertz",
        ),
        _panel(
            4,
            "Utilisation and fan",
            [
                (f"{_gm('util_pct')}{{{g}}}", leg + " util"),
                (f"{_gm('fan_pct')}{{{g}}}", leg + " fan"),
            ],
            (12, 8, 12, 8),
            "percentunit",
        ),
        _panel(
            5,
            "GPU memory used",
            [
                (f"{_gm('mem_used_mib')}{{{g}}}", leg),
                (f"{_gm('mem_total_mib')}{{{g}}}", leg + " total"),
            ],
            (0, 16, 12, 8),
            "bytes",
        ),
        _panel(
            6,
            "Throttle (clock-event) reasons",
            [(f"{THROTTLE_SERIES}{{{g}}} == 1", leg + " {{reason}}")],
            (12, 16, 12, 8),
            "bool",
            "state-timeline",
        ),
        _panel(
            7,
            "XIDs in the last hour",
            [(f"increase({XID_SERIES}{{{g}}}[1h])", leg + " XID {{xid}}")],
            (0, 24, 8, 8),
            "short",
            "stat",
        ),
        _panel(
            8,
            "Active alerts",
            [
                (
                    f'ALERTS{{alertstate="firing", alertname=~"Rigkit.*", {m}}}',
                    "{{alertname}} {{machine}} {{gpu}}",
                ),
                (
                    f"{ALERT_SERIES}{{{m}}}",
                    "agent: {{rule}} {{machine}} {{gpu}}",
                ),
            ],
            (8, 24, 8, 8),
            "short",
            "table",
            {"options": {"showHeader": True}},
        ),
        _panel(
            9,
            "Sample freshness",
            [(f"{AGE_SERIES}{{{m}}}", "{{machine}}")],
            (16, 24, 8, 8),
            "s",
            "stat",
            {
                "fieldConfig": {
                    "defaults": {
                        "unit": "s",
                        "thresholds": {
                            "mode": "absolute",
                            "steps": [
                                {"color": "green", "value": None},
                                {"color": "orange", "value": 5},
                                {"color": "red", "value": STALE_AFTER_S},
                            ],
                        },
                    },
                    "overrides": [],
                }
            },
        ),
        _panel(
            10,
            "PCIe link (current / max generation)",
            [
                (f"{_gm('pcie_gen')}{{{g}}}", leg + " gen"),
                (f"{_gm('pcie_width')}{{{g}}}", leg + " width"),
            ],
            (0, 32, 12, 8),
        ),
        _panel(
            11,
            "Host: CPU temperature, memory, disks",
            [
                (f"{HOST_METRICS_PROM['cpu_temp_c'][0]}{{{m}}}", "{{machine}} CPU"),
                (f"{DISK_METRICS_PROM['temp_c'][0]}{{{m}}}", "{{machine}} {{disk}}"),
            ],
            (12, 32, 12, 8),
            "celsius",
        ),
    ]
    ds = {"type": "prometheus", "uid": "${datasource}"}
    return {
        "title": "rigkit: GPU workstation health",
        "uid": "rigkit-health",
        "tags": ["rigkit", "gpu"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "machine",
                    "label": "Machine",
                    "type": "query",
                    "datasource": ds,
                    "query": {
                        "query": f"label_values({SAMPLES_SERIES}, machine)",
                        "refId": "machine",
                    },
                    "definition": f"label_values({SAMPLES_SERIES}, machine)",
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "gpu",
                    "label": "GPU",
                    "type": "query",
                    "datasource": ds,
                    "query": {
                        "query": f'label_values({LOST_SERIES}{{machine=~"$machine"}}, gpu)',
                        "refId": "gpu",
                    },
                    "definition": f'label_values({LOST_SERIES}{{machine=~"$machine"}}, gpu)',
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "current": {},
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


# --- writing + CLI ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    out_dir: str
    files: tuple[str, ...]
    alerts: int
    tests: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "files": list(self.files),
            "alerts": self.alerts,
            "tests": self.tests,
        }


_HEADER = (
    "# Generated by `rigkit monitor export-config` from rigkit's alert rules{src}.\n"
    "# Regenerate instead of editing; override rules with a YAML file (--rules).\n"
)


#: the files :func:`write_config` writes, in order
EXPORT_FILES = (
    "rigkit-alerts.yml",
    "rigkit-alerts.test.yml",
    "prometheus-scrape.yml",
    "rigkit-targets.yml",
    "alertmanager.yml",
    "grafana-dashboard.json",
)


def _replace_file(path: Path, text: str) -> None:
    """Write ``text`` to a new file beside ``path`` and rename it over ``path``: a symlink at
    ``path`` is replaced, never followed (nothing is written outside the directory), and a
    reader never sees half a file."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_config(
    out_dir: str | Path,
    rules: Sequence[AlertRule],
    source: str | None = None,
    targets: Sequence[str | ScrapeTarget] = (),
) -> ExportResult:
    """Write every file into ``out_dir`` (scraping ``targets``, see :func:`prometheus_files`);
    returns what was written."""
    import yaml

    from rigkit.errors import MonitorError

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MonitorError(f"cannot create {out}: {err.strerror or err}") from err
    header = _HEADER.format(src=f" for {source}" if source else "")
    alerts = prometheus_rules(rules)
    tests = promtool_tests(rules)
    docs: dict[str, str] = {
        "rigkit-alerts.yml": header + yaml.safe_dump(alerts, sort_keys=False, width=100),
        "rigkit-alerts.test.yml": header + yaml.safe_dump(tests, sort_keys=False, width=100),
        **prometheus_files(targets, header=header),
        "grafana-dashboard.json": json.dumps(grafana_dashboard(), indent=2) + "\n",
    }
    written = []
    for name in EXPORT_FILES:
        text = docs[name]
        path = out / name
        try:
            _replace_file(path, text)
        except OSError as err:
            raise MonitorError(f"cannot write {path}: {err.strerror or err}") from err
        written.append(str(path))
    return ExportResult(
        out_dir=str(out),
        files=tuple(written),
        alerts=len(alerts["groups"][0]["rules"]),
        tests=len(tests["tests"]),
    )
