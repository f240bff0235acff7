"""Alert rules driven by the scenario replays in tests/fixtures/replay (see make_replays.py).

The replays carry no slowdown temperature, so the GPU temperature rules use the fallback
slowdown of 88 C: warning at 88 - 5 = 83 C (clear below 88 - 8 = 80 C), critical at 88 C.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rigkit.errors import MonitorError
from rigkit.monitor.alerts import (
    APPLICATION_XIDS,
    CRITICAL_XIDS,
    AlertEngine,
    AlertRule,
    default_rules,
    expected_pcie,
    load_rules,
)
from rigkit.monitor.config import duration_s
from rigkit.monitor.sample import Event, GpuSample, HostSample, Sample

REPLAYS = Path(__file__).resolve().parents[1] / "fixtures" / "replay"


def replay(name: str) -> list[Sample]:
    with (REPLAYS / name).open(encoding="utf-8") as f:
        return [Sample.from_dict(json.loads(line)) for line in f if line.strip()]


def run(name: str, rules: list[AlertRule] | None = None) -> tuple[list[Event], AlertEngine]:
    engine = AlertEngine(default_rules(None) if rules is None else rules)
    events: list[Event] = []
    for s in replay(name):
        events += engine.evaluate(s)
    return events, engine


def timeline(events: list[Event]) -> list[tuple[float, str, str, int | None]]:
    return [(e.t, e.kind, e.rule, e.gpu) for e in events]


def test_slow_thermal_runaway_raises_warning_then_critical() -> None:
    events, engine = run("runaway.jsonl")
    # GPU 2: 70 + 0.1 t C. >= 83 C from t = 130 s; for 60 s -> raised at 130 + 60 = 190 s.
    # >= 88 C from t = 180 s; for 30 s -> raised at 180 + 30 = 210 s. It never cools: no resolve.
    assert timeline(events) == [
        (190.0, "raised", "gpu_temp_high", 2),
        (210.0, "raised", "gpu_temp_critical", 2),
    ]
    assert events[0].value == 89.0  # 70 + 190 / 10
    assert events[0].detail["threshold"] == 83.0  # 88 - 5
    assert sorted(e.rule for e in engine.active()) == ["gpu_temp_critical", "gpu_temp_high"]


def test_hysteresis_resolves_only_below_clear_threshold() -> None:
    events, engine = run("recovery.jsonl")
    # GPU 1 at 86 C from t = 10 s (5 s samples): raised at 10 + 60 = 70 s.
    # 75 C from t = 105 s: below the 80 C clear threshold at once -> resolved at 105 s.
    assert timeline(events) == [
        (70.0, "raised", "gpu_temp_high", 1),
        (105.0, "resolved", "gpu_temp_high", 1),
    ]
    assert engine.active() == []


def test_between_thresholds_neither_raises_nor_clears() -> None:
    rule = default_rules(None)[0]  # gpu_temp_high: raise >= 83, clear < 80
    engine = AlertEngine([rule])
    temps = [84, 84, 84, 81, 81, 81, 79]  # 10 s apart
    events = []
    for i, temp in enumerate(temps):
        s = Sample(t=i * 60.0, gpus=(GpuSample(index=0, temperature_c=temp),))
        events += engine.evaluate(s)
    # 84 C at t = 0 and 60 s: held 60 s over 2 samples -> raised at 60 s. 81 C is inside the
    # 80-83 C band: still active. 79 C < 80 C at t = 6 * 60 = 360 s -> resolved.
    assert timeline(events) == [
        (60.0, "raised", "gpu_temp_high", 0),
        (360.0, "resolved", "gpu_temp_high", 0),
    ]


def test_one_sample_spike_fires_nothing() -> None:
    # t = 50: 97 C, fan 0% at 99% load, gen1 x4, hw slowdown/thermal/power-brake bits, margin
    # -9 C, CPU 99 C, memory 99%, disk 85 C and 2% free, GPU 1 lost: each for ONE sample.
    events, engine = run("spike.jsonl")
    assert events == []
    assert engine.active() == []


def test_two_samples_are_needed_even_with_for_zero() -> None:
    rule = AlertRule(name="hot", expr="gpu.temperature_c", threshold=90, for_s=0, per_gpu=True)
    engine = AlertEngine([rule])
    hot = Sample(t=0.0, gpus=(GpuSample(index=0, temperature_c=95),))
    assert engine.evaluate(hot) == []  # 1 sample: pending
    events = engine.evaluate(Sample(t=1.0, gpus=(GpuSample(index=0, temperature_c=95),)))
    assert timeline(events) == [(1.0, "raised", "hot", 0)]  # 2nd consecutive sample


def test_gpu_that_disappears_raises_lost_until_back() -> None:
    events, engine = run("gpu_lost.jsonl")
    # GPU 3 lost at t = 30 and 31 -> raised at 31 s (2 samples, for 0 s); missing from the list
    # from t = 60 s keeps it lost; back at t = 90 s -> resolved at 90 s.
    assert timeline(events) == [(31.0, "raised", "gpu_lost", 3), (90.0, "resolved", "gpu_lost", 3)]
    assert engine.active() == []


def test_missing_data_never_resolves_an_alert() -> None:
    rule = default_rules(None)[0]
    engine = AlertEngine([rule])
    for t in (0.0, 60.0):
        engine.evaluate(Sample(t=t, gpus=(GpuSample(index=0, temperature_c=85),)))
    assert [e.rule for e in engine.active()] == ["gpu_temp_high"]
    # GPU stops reporting a temperature, then vanishes: the alert stays active.
    assert engine.evaluate(Sample(t=70.0, gpus=(GpuSample(index=0),))) == []
    assert engine.evaluate(Sample(t=80.0, gpus=())) == []
    assert [e.rule for e in engine.active()] == ["gpu_temp_high"]
    events = engine.evaluate(Sample(t=90.0, gpus=(GpuSample(index=0, temperature_c=70),)))
    assert timeline(events) == [(90.0, "resolved", "gpu_temp_high", 0)]  # 70 < 80


def test_xid_79_raises_at_once_and_resolves_after_quiet_period() -> None:
    events, engine = run("xid79.jsonl")
    # XID 79 at t = 20 s raises on that sample; no XID after -> resolved at 20 + 600 = 620 s.
    assert timeline(events) == [
        (20.0, "raised", "gpu_xid_critical", 1),
        (620.0, "resolved", "gpu_xid_critical", 1),
    ]
    assert events[0].severity == "critical"
    assert events[0].detail["xid"] == [79]
    assert engine.active() == []


def test_repeated_xid_extends_the_quiet_period() -> None:
    engine = AlertEngine([r for r in default_rules(None) if r.expr == "gpu.xid"])
    out = []
    for t, codes in [(0, (48,)), (300, (48,)), (800, ()), (900, ())]:
        out += engine.evaluate(Sample(t=float(t), gpus=(GpuSample(index=0, xid=codes),)))
    # second 48 at 300 s: no new event; quiet from 300 s -> resolved at first sample >= 900 s.
    assert timeline(out) == [
        (0.0, "raised", "gpu_xid_critical", 0),
        (900.0, "resolved", "gpu_xid_critical", 0),
    ]


def test_application_xids_never_alert() -> None:
    events, engine = run("xid13.jsonl")
    # XID 13 at 5 s, 31 + 43 at 6 s, 63 + 92 at 7 s: logged as info, never active.
    assert [(e.t, e.severity, e.detail["xid"]) for e in events] == [
        (5.0, "info", [13]),
        (6.0, "info", [31, 43]),
        (7.0, "info", [63, 92]),
    ]
    assert all(e.kind == "raised" and e.rule == "gpu_xid_application" for e in events)
    assert engine.active() == []
    assert set(APPLICATION_XIDS).isdisjoint(CRITICAL_XIDS)


def test_throttle_bits_hw_slowdown_thermal_and_power_brake() -> None:
    events, _ = run("throttle.jsonl")
    # GPU 1 power brake t = 10..20: for 5 s -> raised 15 s; cleared at 21 s -> resolved 21 s.
    # Its hw_slowdown bit lasts 10 s < 15 s: never raised.
    # GPU 0 hw_slowdown and GPU 2 hw_thermal_slowdown t = 10..40: for 15 s -> raised 25 s,
    # resolved at 41 s.
    assert timeline(events) == [
        (15.0, "raised", "gpu_hw_power_brake", 1),
        (21.0, "resolved", "gpu_hw_power_brake", 1),
        (25.0, "raised", "gpu_hw_slowdown", 0),
        (25.0, "raised", "gpu_hw_thermal_slowdown", 2),
        (41.0, "resolved", "gpu_hw_slowdown", 0),
        (41.0, "resolved", "gpu_hw_thermal_slowdown", 2),
    ]


def test_fan_stopped_under_load_but_not_at_idle() -> None:
    events, _ = run("fan_stopped.jsonl")
    # GPU 1: fan 0% at 99% load from 10 s, for 30 s -> raised 40 s; 62% at 60 s -> resolved.
    # GPU 0: fan 0% at 0% load (zero-RPM idle) -> nothing.
    assert timeline(events) == [
        (40.0, "raised", "gpu_fan_stopped", 1),
        (60.0, "resolved", "gpu_fan_stopped", 1),
    ]


def test_pcie_link_degraded_under_load_only() -> None:
    events, _ = run("pcie_degraded.jsonl")
    # GPU 1 at gen1 x4, 99% load, expected gen4 x16 (NVML max): from 0 s, for 60 s -> 60 s.
    # GPU 0 at gen1 x16 while idle: links train down at idle -> nothing.
    assert timeline(events) == [(60.0, "raised", "gpu_pcie_degraded", 1)]
    assert events[0].message == "GPU 1 PCIe link gen1 x4 under load, expected gen4 x16"


def test_pcie_expectation_from_build_overrides_nvml_max() -> None:
    # A build that puts GPU 0 in a gen4 x8 slot: gen4 x8 is what it should train to.
    rule = AlertRule(
        name="pcie",
        expr="gpu.pcie_degraded_under_load",
        expected_pcie=((0, 4, 8),),
        for_s=0,
        per_gpu=True,
    )
    engine = AlertEngine([rule])
    g = GpuSample(index=0, util_pct=90, pcie_gen=4, pcie_width=8, pcie_max_gen=4, pcie_max_width=16)
    assert engine.evaluate(Sample(t=0.0, gpus=(g,))) == []
    assert engine.evaluate(Sample(t=1.0, gpus=(g,))) == []  # x8 == expected x8: fine
    assert expected_pcie(None) == ()


def test_host_cpu_and_nvme_rules() -> None:
    events, engine = run("host_health.jsonl")
    # nvme1n1 85% worn from 0 s, for 0 s -> 2nd sample, 1 s. 8% free < 10% for 60 s -> 60 s.
    # CPU 92 C >= 90 C from 10 s, for 60 s -> 70 s. nvme0n1 72 C >= 70 C from 20 s, for 120 s
    # -> 140 s. nvme1n1 critical_warning 4 from 150 s, for 0 s -> 151 s.
    assert [(e.t, e.rule, e.detail.get("disk")) for e in events] == [
        (1.0, "disk_wear_high", "nvme1n1"),
        (60.0, "disk_free_low", "nvme1n1"),
        (70.0, "host_cpu_temp_high", None),
        (140.0, "disk_temp_high", "nvme0n1"),
        (151.0, "disk_critical_warning", "nvme1n1"),
    ]
    assert len(engine.active()) == 5


def test_gpu_health_rules() -> None:
    events, _ = run("gpu_health.jsonl")
    # 5 s samples. GPU 0: ECC and remap pending from 20 s (for 0 s) -> 25 s; XID 61 at 30 s
    # (neither critical nor application) -> warning at 30 s; margin 4 C < 5 C from 10 s, for 60 s
    # -> 70 s. GPU 1: no temperature from 10 s, for 60 s -> 70 s. Memory 96% from 0 s, for
    # 300 s -> 300 s.
    assert [(e.t, e.rule, e.gpu, e.severity) for e in events] == [
        (25.0, "gpu_ecc_uncorrected", 0, "critical"),
        (25.0, "gpu_remapped_rows_pending", 0, "warning"),
        (30.0, "gpu_xid_other", 0, "warning"),
        (70.0, "gpu_thermal_margin_low", 0, "warning"),
        (70.0, "gpu_data_missing", 1, "warning"),
        (300.0, "host_mem_high", None, "warning"),
    ]


def test_stale_sample_time_never_completes_a_duration() -> None:
    events, _ = run("stale.jsonl")
    # After t = 10 s the time stops advancing while the values read 95 C: 0 s elapsed < 30 s.
    assert events == []


def test_repeated_sample_time_is_not_a_second_sample() -> None:
    engine = AlertEngine(default_rules(None))
    lost = Sample(t=5.0, gpus=(GpuSample.lost_gpu(0),))
    # the same t three times: one sample as far as "two consecutive samples" goes
    assert [e for _ in range(3) for e in engine.evaluate(lost)] == []
    events = engine.evaluate(Sample(t=6.0, gpus=(GpuSample.lost_gpu(0),)))
    assert timeline(events) == [(6.0, "raised", "gpu_lost", 0)]


def test_sample_slowdown_temperature_wins_over_fallback() -> None:
    engine = AlertEngine(default_rules(None))
    out = []
    for t in (0.0, 60.0):
        g = GpuSample(index=0, temperature_c=80, slowdown_temp_c=84)
        out += engine.evaluate(Sample(t=t, gpus=(g,)))
    # NVML says slowdown at 84 C: warning at 84 - 5 = 79 C, so 80 C for 60 s raises.
    assert timeline(out) == [(60.0, "raised", "gpu_temp_high", 0)]
    assert out[0].detail["threshold"] == 79.0


def test_every_default_rule_is_exercised_by_a_replay() -> None:
    fired: set[str] = set()
    for path in sorted(REPLAYS.glob("*.jsonl")):
        events, _ = run(path.name)
        fired |= {e.rule for e in events}
    assert {r.name for r in default_rules(None)} <= fired


def test_overrides_change_disable_and_add(tmp_path: Path) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text(
        "rules:\n"
        "  gpu_temp_high: {threshold: -10, for: 2m, severity: critical}\n"
        "  gpu_fan_stopped: {enabled: false}\n"
        "  gpu_power_high:\n"
        "    expr: gpu.power_w\n"
        "    op: '>='\n"
        "    threshold: 440\n"
        "    clear_threshold: 420\n"
        "    for: 30s\n"
        "response: {}\n",
        encoding="utf-8",
    )
    rules = {r.name: r for r in load_rules(f, None)}
    assert "gpu_fan_stopped" not in rules
    high = rules["gpu_temp_high"]
    assert (high.threshold, high.for_s, high.severity) == (-10.0, 120.0, "critical")
    assert high.effective_threshold(None) == 78.0  # 88 - 10
    new = rules["gpu_power_high"]
    assert (new.expr, new.threshold, new.clear_threshold, new.for_s, new.per_gpu) == (
        "gpu.power_w",
        440.0,
        420.0,
        30.0,
        True,
    )
    assert len(rules) == len(default_rules(None)) - 1 + 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  gpu_temp_high: {tresh: 3}\n",
            ":2: rules.gpu_temp_high.tresh: unknown setting 'tresh' (hint: did you mean 'threshold'?)",
        ),
        (
            "rules:\n  nosuch: {threshold: 3}\n",
            ":2: rules.nosuch: no default rule has this name, and a new rule needs 'expr'",
        ),
        (
            "rules:\n  x:\n    threshold: 1\n    expr: gpu.temprature_c\n",
            ":4: rules.x.expr: unknown expr 'gpu.temprature_c'"
            " (hint: did you mean 'gpu.temperature_c'?)",
        ),
        (
            "# c\nrules:\n  gpu_temp_high:\n    for: soon\n",
            ":4: rules.gpu_temp_high.for: expected a duration like 30s, 5m or 1h (0 to 366d),"
            " got 'soon'",
        ),
        (
            "rules:\n  gpu_temp_high: {threshold: '3'}\n",
            ":2: rules.gpu_temp_high.threshold: input should be a valid number, got '3'",
        ),
        ("rulez: {}\n", ":1: rulez: unknown section 'rulez' (hint: did you mean 'rules'?)"),
        (  # one problem, though pydantic tries both members of the union
            "rules:\n  x: {expr: gpu.xid, codes: [bogus]}\n",
            ":2: rules.x.codes[0]: input should be a valid integer or 'critical' or"
            " 'application', got 'bogus'",
        ),
        ("rules:\n  gpu_temp_high: 3\n", ":2: rules.gpu_temp_high: expected a mapping of settings"),
        ("rules: [\n", ":2: not valid YAML"),
        ("- a\n", ":1: expected a mapping with rules:, response: and/or notify: sections"),
    ],
)
def test_bad_override_files_name_file_line_and_setting(
    tmp_path: Path, text: str, expected: str
) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(MonitorError) as err:
        load_rules(f, None)
    assert str(err.value).startswith(f"{f}{expected}")
    assert "\n" not in str(err.value)


def test_several_problems_are_counted_with_their_lines(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(
        "rules:\n  gpu_temp_high:\n    for: soon\n  disk_free_low:\n    threshold: x\n"
        "    severity: loud\n",
        encoding="utf-8",
    )
    with pytest.raises(MonitorError) as err:
        load_rules(f, None)
    # the first problem in full, the other two by line
    assert str(err.value) == (
        f"{f}:3: rules.gpu_temp_high.for: expected a duration like 30s, 5m or 1h (0 to 366d),"
        " got 'soon' [2 more problems (lines 5, 6)]"
    )


def test_xid_classes_may_be_named_in_code_lists(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(
        "rules:\n  gpu_xid_watch: {expr: gpu.xid, codes: [critical, 13], severity: warning}\n",
        encoding="utf-8",
    )
    rule = {r.name: r for r in load_rules(f, None)}["gpu_xid_watch"]
    assert rule.codes == (*CRITICAL_XIDS, 13)  # 48, 62, ..., 120 then 13


def test_default_rules_come_from_the_packaged_yaml() -> None:
    from rigkit.monitor.config import default_rules_file

    names = list(default_rules_file().config.rules)
    assert [r.name for r in default_rules(None)] == names  # same rules, same order
    assert len(names) == 21
    temp = default_rules(None)[0]
    # gpu_temp_high: -5 C relative to slowdown; no build -> the 88 C fallback as reference
    assert (temp.name, temp.threshold, temp.ref_default, temp.for_s) == (
        "gpu_temp_high",
        -5.0,
        88.0,
        60.0,
    )
    xid = {r.name: r for r in default_rules(None)}
    assert xid["gpu_xid_critical"].codes == CRITICAL_XIDS
    assert xid["gpu_xid_other"].exclude_codes == CRITICAL_XIDS + APPLICATION_XIDS
    assert xid["gpu_xid_critical"].quiet_s == 600.0  # 10m


def test_durations() -> None:
    assert duration_s("90s") == 90.0
    assert duration_s("5m") == 300.0  # 5 * 60
    assert duration_s("1.5h") == 5400.0  # 1.5 * 3600
    assert duration_s(12) == 12.0
    for bad in (-1, "soon", True, float("inf"), "400d"):  # 400 d is past the 366 d cap
        with pytest.raises(ValueError, match="expected a duration"):
            duration_s(bad)


def test_host_missing_neither_raises_nor_resolves() -> None:
    rule = next(r for r in default_rules(None) if r.name == "host_cpu_temp_high")
    engine = AlertEngine([rule])
    for t in (0.0, 60.0):
        engine.evaluate(Sample(t=t, host=HostSample(cpu_temp_c=93)))
    assert len(engine.active()) == 1  # 93 >= 90 for 60 s
    assert engine.evaluate(Sample(t=120.0, host=None)) == []
    assert len(engine.active()) == 1


def test_duplicate_rule_names_are_refused() -> None:
    r = default_rules(None)[0]
    with pytest.raises(MonitorError, match="duplicate"):
        AlertEngine([r, r])


def test_docs_list_every_default_rule() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text(encoding="utf-8")
    missing = [r.name for r in default_rules(None) if f"`{r.name}`" not in doc]
    assert missing == []


def _reference_build() -> Any:
    from rigkit.monitor.agent import load_build

    return load_build(Path(__file__).resolve().parents[2] / "examples" / "reference-4x4090.yaml")


def test_defaults_from_the_reference_build() -> None:
    build = _reference_build()
    # RTX 4090: PCIe 4.0 x16 card in PCIe 5.0 x16 slots -> each GPU should train to gen4 x16.
    assert expected_pcie(build) == ((0, 4, 16), (1, 4, 16), (2, 4, 16), (3, 4, 16))
    names = [r.name for r in default_rules(build)]
    assert "gpu_fan_stopped" in names  # open-air cards have fans to check


def test_catalog_temperatures_and_slots_shape_the_defaults() -> None:
    build = _reference_build()
    gpu = build.gpus[0].gpu.model_copy(update={"slowdown_temp_c": 84.0, "cooling": "passive"})
    slot = build.gpus[1].slot.model_copy(update={"gen": 3, "electrical_lanes": 8})
    gpus = tuple(replace(p, gpu=gpu, slot=slot if p.index == 1 else p.slot) for p in build.gpus)
    rules = {r.name: r for r in default_rules(replace(build, gpus=gpus))}
    # slowdown 84 C from the catalog: warning at 84 - 5 = 79 C, critical at 84 C
    assert rules["gpu_temp_high"].effective_threshold(None) == 79.0
    assert rules["gpu_temp_critical"].effective_threshold(None) == 84.0
    # every GPU passively cooled: no fan rule
    assert "gpu_fan_stopped" not in rules
    # GPU 1 in a gen3 x8 slot: min(gen4, gen3) = 3, min(16, 8) = 8
    assert rules["gpu_pcie_degraded"].expected_pcie[1] == (1, 3, 8)
