"""Soak test: load the GPUs for a while and watch them with the monitor's rules.

Passes when there is no hardware XID, no hardware slowdown, the SM clock is steady (coefficient of
variation after the warm-up) and temperatures level off (slope over the last quarter). The same
analysis runs on a recorded replay file (the monitor's JSON Lines format), so a soak recorded on one
machine can be judged anywhere, and the logic is tested on recordings.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from rigkit.bench.qa.gpu import (
    GpuLoad,
    GpuProbe,
    GpuReading,
    GpuUnavailable,
    load_torch,
    open_probe,
)
from rigkit.bench.qa.result import CheckResult, QaContext, QaInputError, Status, Value
from rigkit.errors import MonitorError
from rigkit.nvml.codes import APPLICATION_XIDS, CRITICAL_XIDS, HW_SLOWDOWN_REASONS, reason_names

if TYPE_CHECKING:
    from rigkit.monitor.sample import GpuSample, Sample

log = logging.getLogger(__name__)

CATEGORY = "soak"

WARMUP_FRACTION = 0.2  # the first part of the run, while clocks and temperatures settle
CLOCK_CV_WARN = 0.05  # SM clock std/mean above this: unsteady (power or thermal limiting)
CLOCK_CV_FAIL = 0.10
TEMP_SLOPE_WARN_C_PER_MIN = 1.0  # still rising this fast in the last quarter: no plateau yet
TEMP_HEADROOM_WARN_C = 5.0  # peak within this of the slowdown temperature
MIN_SAMPLES = 8
FALLBACK_SLOWDOWN_C = 88.0  # when neither the sample nor the catalog knows the GPU's limit


# --- statistics ------------------------------------------------------------------------------


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Population standard deviation / mean; None for fewer than two values or a zero mean."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    if mean == 0:
        return None
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return math.sqrt(var) / mean


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t seconds, value) in value per minute; None when undefined."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in points) / den * 60.0


# --- analysis ---------------------------------------------------------------------------------


def _series(samples: Sequence[Sample]) -> dict[int, list[tuple[float, GpuSample]]]:
    out: dict[int, list[tuple[float, GpuSample]]] = {}
    for s in samples:
        for g in s.gpus:
            out.setdefault(g.index, []).append((s.t, g))
    return out


def _slowdown_c(ctx: QaContext, index: int, seen: Sequence[GpuSample]) -> float:
    for g in seen:
        if g.slowdown_temp_c is not None:
            return float(g.slowdown_temp_c)
    if ctx.build is not None and index < len(ctx.build.gpus):
        limit = ctx.build.gpus[index].gpu.slowdown_temp_c
        if limit is not None:
            return float(limit)
    return FALLBACK_SLOWDOWN_C


def analyse(samples: Sequence[Sample], ctx: QaContext, source: str) -> list[CheckResult]:
    """Judge a soak recording: XIDs, hardware slowdown, clock stability, temperature plateau,
    and the monitor's alert rules."""
    series = _series(samples)
    if not series:
        return [CheckResult("soak", CATEGORY, "skip", f"{source}: no GPU samples")]
    t0, t1 = samples[0].t, samples[-1].t
    span = t1 - t0
    base: dict[str, Value] = {"source": source, "samples": len(samples), "seconds": round(span, 1)}
    return [
        _xids(series, base),
        _hw_slowdown(series, base),
        _clocks(series, base, t0, span),
        _temperatures(series, base, t0, span, ctx),
        _alerts(samples, ctx, base),
    ]


def _xids(series: dict[int, list[tuple[float, GpuSample]]], base: dict[str, Value]) -> CheckResult:
    hw: list[str] = []
    other: list[str] = []
    app: list[str] = []
    lost: list[int] = []
    for index, points in sorted(series.items()):
        for t, g in points:
            for x in g.xid:
                kind = hw if x in CRITICAL_XIDS else app if x in APPLICATION_XIDS else other
                kind.append(f"GPU {index}: XID {x} at t={t:g}")
            if g.lost and index not in lost:
                lost.append(index)
    measured = dict(
        base,
        hardware_xids=len(hw),
        other_xids=len(other),
        application_xids=len(app),
        gpus_lost=len(lost),
    )
    if hw or lost:
        parts = hw[:5] + [f"GPU {i} fell off the bus / stopped answering" for i in lost]
        return CheckResult("soak-xid", CATEGORY, "fail", "; ".join(parts), measured)
    if other:
        return CheckResult(
            "soak-xid",
            CATEGORY,
            "warn",
            "XIDs to look up in the kernel log (not known as hardware faults): "
            + "; ".join(other[:5]),
            measured,
        )
    if app:
        return CheckResult(
            "soak-xid",
            CATEGORY,
            "warn",
            "application XIDs only (the load program, not the hardware): " + "; ".join(app[:5]),
            measured,
        )
    return CheckResult("soak-xid", CATEGORY, "pass", "no XID during the soak", measured)


def _hw_slowdown(
    series: dict[int, list[tuple[float, GpuSample]]], base: dict[str, Value]
) -> CheckResult:
    measured = dict(base)
    bad = []
    known = False
    for index, points in sorted(series.items()):
        flagged = 0
        for _, g in points:
            if g.throttle_reasons is None:
                continue
            known = True
            if any(r in HW_SLOWDOWN_REASONS for r in g.throttle_reasons):
                flagged += 1
        measured[f"gpu{index}_slowdown_samples"] = flagged
        if flagged:
            bad.append(f"GPU {index} in hardware slowdown in {flagged} of {len(points)} samples")
    if not known:
        return CheckResult(
            "soak-hw-slowdown", CATEGORY, "skip", "the recording has no clock-event reasons"
        )
    if bad:
        return CheckResult(
            "soak-hw-slowdown",
            CATEGORY,
            "fail",
            "; ".join(bad) + " (heat, or the PSU's power-brake signal on a transient)",
            measured,
        )
    return CheckResult("soak-hw-slowdown", CATEGORY, "pass", "no hardware slowdown", measured)


def _steady(
    points: list[tuple[float, GpuSample]], t0: float, span: float
) -> list[tuple[float, GpuSample]]:
    start = t0 + WARMUP_FRACTION * span
    return [(t, g) for t, g in points if t >= start]


def _clocks(
    series: dict[int, list[tuple[float, GpuSample]]], base: dict[str, Value], t0: float, span: float
) -> CheckResult:
    measured = dict(base)
    worst: Status = "pass"
    notes = []
    judged = 0
    for index, points in sorted(series.items()):
        clocks = [float(g.sm_clock_mhz) for _, g in _steady(points, t0, span) if g.sm_clock_mhz]
        if len(clocks) < MIN_SAMPLES:
            continue
        judged += 1
        cv = coefficient_of_variation(clocks)
        mean = sum(clocks) / len(clocks)
        measured[f"gpu{index}_sm_clock_mean_mhz"] = round(mean, 1)
        measured[f"gpu{index}_sm_clock_cv"] = None if cv is None else round(cv, 4)
        if cv is None:
            continue
        status: Status = "pass"
        if cv > CLOCK_CV_FAIL:
            status = "fail"
        elif cv > CLOCK_CV_WARN:
            status = "warn"
        if status != "pass":
            notes.append(f"GPU {index} SM clock varies {cv:.1%} around {mean:.0f} MHz")
        worst = _worse(worst, status)
    if judged == 0:
        return CheckResult(
            "soak-clocks",
            CATEGORY,
            "skip",
            f"fewer than {MIN_SAMPLES} clock readings after warm-up",
        )
    reason = (
        "; ".join(notes) if notes else f"SM clocks steady (variation within {CLOCK_CV_WARN:.0%})"
    )
    return CheckResult("soak-clocks", CATEGORY, worst, reason, measured, {"max_cv": CLOCK_CV_WARN})


def _temperatures(
    series: dict[int, list[tuple[float, GpuSample]]],
    base: dict[str, Value],
    t0: float,
    span: float,
    ctx: QaContext,
) -> CheckResult:
    measured = dict(base)
    expected: dict[str, Value] = {"max_slope_c_per_min": TEMP_SLOPE_WARN_C_PER_MIN}
    worst: Status = "pass"
    notes = []
    judged = 0
    last_quarter = t0 + 0.75 * span
    for index, points in sorted(series.items()):
        temps = [(t, float(g.temperature_c)) for t, g in points if g.temperature_c is not None]
        tail = [(t, v) for t, v in temps if t >= last_quarter]
        if len(tail) < 2 or len(temps) < MIN_SAMPLES:
            continue
        judged += 1
        peak = max(v for _, v in temps)
        slope = slope_per_minute(tail)
        limit = _slowdown_c(ctx, index, [g for _, g in points])
        measured[f"gpu{index}_peak_c"] = peak
        measured[f"gpu{index}_end_slope_c_per_min"] = None if slope is None else round(slope, 3)
        expected[f"gpu{index}_slowdown_c"] = limit
        if peak >= limit:
            worst = _worse(worst, "fail")
            notes.append(f"GPU {index} reached {peak:g} C, its slowdown point is {limit:g} C")
        elif peak >= limit - TEMP_HEADROOM_WARN_C:
            worst = _worse(worst, "warn")
            notes.append(f"GPU {index} peaked at {peak:g} C, within {limit - peak:g} C of slowdown")
        if slope is not None and slope > TEMP_SLOPE_WARN_C_PER_MIN:
            worst = _worse(worst, "warn")
            notes.append(
                f"GPU {index} still rising {slope:.1f} C/min at the end: no plateau yet, "
                "soak longer"
            )
    if judged == 0:
        return CheckResult(
            "soak-temperature", CATEGORY, "skip", "too few temperature readings to judge"
        )
    reason = "; ".join(notes) if notes else "temperatures levelled off below the slowdown point"
    return CheckResult("soak-temperature", CATEGORY, worst, reason, measured, expected)


def _alerts(samples: Sequence[Sample], ctx: QaContext, base: dict[str, Value]) -> CheckResult:
    from rigkit.monitor.alerts import AlertEngine, default_rules

    engine = AlertEngine(default_rules(ctx.build))
    raised = []
    for s in samples:
        raised += [e for e in engine.evaluate(s) if e.kind == "raised"]
    crit = sorted(
        {
            f"{e.rule} (GPU {e.gpu})" if e.gpu is not None else e.rule
            for e in raised
            if e.severity == "critical"
        }
    )
    warn = sorted(
        {
            f"{e.rule} (GPU {e.gpu})" if e.gpu is not None else e.rule
            for e in raised
            if e.severity == "warning"
        }
    )
    measured = dict(base, critical_alerts=len(crit), warning_alerts=len(warn))
    if crit:
        return CheckResult(
            "soak-alerts", CATEGORY, "fail", "critical alerts: " + ", ".join(crit), measured
        )
    if warn:
        return CheckResult(
            "soak-alerts", CATEGORY, "warn", "warnings: " + ", ".join(warn), measured
        )
    return CheckResult(
        "soak-alerts", CATEGORY, "pass", "no alert from the monitor's default rules", measured
    )


def _worse(a: Status, b: Status) -> Status:
    order = {"pass": 0, "skip": 0, "warn": 1, "fail": 2}
    return a if order[a] >= order[b] else b


# --- sources ----------------------------------------------------------------------------------


def load_replay(path: Path) -> list[Sample]:
    """Samples of a replay file; a bad file is a BenchError naming the line."""
    from rigkit.monitor.sources.replay import iter_replay

    try:
        return [s for _, s in iter_replay(path)]
    except MonitorError as err:
        raise QaInputError(f"soak replay: {err}") from err


def to_sample(t: float, readings: Sequence[GpuReading], xids: Sequence[tuple[int, int]]) -> Sample:
    """A monitor Sample from probe readings (throttle bits become the monitor's reason names)."""
    from rigkit.monitor.sample import GpuSample, Sample

    gpus = []
    for r in readings:
        xid = tuple(x for i, x in xids if i == r.index)
        if r.lost:
            gpus.append(GpuSample.lost_gpu(r.index, xid=xid))
            continue
        reasons = None
        if r.clocks_event_reasons is not None:
            reasons = reason_names(r.clocks_event_reasons)
        gpus.append(
            GpuSample(
                index=r.index,
                temperature_c=r.temp_c,
                sm_clock_mhz=r.sm_clock_mhz,
                power_w=r.power_w,
                pcie_gen=r.pcie_gen,
                pcie_width=r.pcie_width,
                util_pct=r.util_pct,
                fan_pct=r.fan_pct,
                throttle_reasons=reasons,
                xid=xid,
            )
        )
    return Sample(t=t, gpus=tuple(gpus), source="qa-soak")


def record(probe: GpuProbe, seconds: float, interval_s: float = 1.0) -> list[Sample]:
    """Sample the GPUs every ``interval_s`` for ``seconds`` (XID events are waited for in between)."""
    samples = []
    start = time.monotonic()
    tick = 0
    while True:
        now = time.monotonic()
        samples.append(to_sample(now - start, probe.readings(), []))
        if now - start >= seconds:
            break
        tick += 1
        due = start + min(tick * interval_s, seconds)
        xids = probe.xids(max(0, int((due - time.monotonic()) * 1000)))
        if xids:
            samples.append(to_sample(time.monotonic() - start, probe.readings(), xids))
        left = due - time.monotonic()
        if left > 0:  # the probe returned early (no event support, or an event)
            time.sleep(left)
    return samples


def write_replay(samples: Sequence[Sample], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("# rigkit qa soak recording\n")
        for s in samples:
            fh.write(json.dumps(s.to_dict(), separators=(",", ":")) + "\n")


def run(ctx: QaContext) -> list[CheckResult]:
    if ctx.soak_replay is not None:
        samples = load_replay(ctx.soak_replay)
        return analyse(samples, ctx, f"replay {ctx.soak_replay.name}")
    if ctx.soak_seconds <= 0:
        return [
            CheckResult(
                "soak", CATEGORY, "skip", "not requested (--soak-seconds N or --soak-replay FILE)"
            )
        ]
    try:
        probe = open_probe(ctx.gpu_probe)
    except GpuUnavailable as err:
        return [CheckResult("soak", CATEGORY, "skip", f"no GPU to soak: {err}")]
    torch, why = load_torch()
    try:
        with GpuLoad(torch) if torch is not None else nullcontext():
            samples = record(probe, ctx.soak_seconds)
    finally:
        if ctx.gpu_probe is None:
            probe.close()
    if ctx.soak_record is not None:
        write_replay(samples, ctx.soak_record)
    results = analyse(samples, ctx, f"live, {ctx.soak_seconds:g} s")
    if torch is None:
        results.insert(
            0,
            CheckResult(
                "soak-load",
                CATEGORY,
                "warn",
                f"GPUs watched without load ({why}): install PyTorch for a loaded soak",
            ),
        )
    return results
