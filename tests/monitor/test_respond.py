"""Tiered thermal response driven by the scenario replays (fallback slowdown 88 C, shutdown 93 C).

Default tiers: tier 1 >= 88 - 3 = 85 C for 30 s (power limit -> max(150 W, 0.7 x 450 W = 315 W));
tier 2 >= 88 C for 60 s or >= 93 - 5 = 88 C for 10 s; tier 3 >= 93 - 2 = 91 C for 10 s, or tier 2
acted 120 s ago and the hottest GPU is hotter than then. Restore: below 88 - 8 = 80 C for 300 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rigkit.errors import MonitorError
from rigkit.monitor.actions import RecordingActuator
from rigkit.monitor.respond import (
    Responder,
    ResponsePolicy,
    TierCondition,
    load_policy,
)
from rigkit.monitor.sample import Event, GpuSample, Sample

REPLAYS = Path(__file__).resolve().parents[1] / "fixtures" / "replay"
WORKLOADS = ResponsePolicy(tier2_units=("llama-server.service",), tier2_containers=("vllm",))


def replay(name: str) -> list[Sample]:
    with (REPLAYS / name).open(encoding="utf-8") as f:
        return [Sample.from_dict(json.loads(line)) for line in f if line.strip()]


def drive(
    name: str,
    policy: ResponsePolicy = WORKLOADS,
    enforce: bool = True,
    fresh: bool = True,
) -> tuple[list[Event], RecordingActuator]:
    """The decisions of a replay (enforced actions run on the responder's own threads: their
    outcomes are waited for and checked to match the decisions one to one)."""
    act = RecordingActuator()
    responder = Responder(policy, enforce=enforce, actuator=act)
    events: list[Event] = []
    for s in replay(name):
        events += responder.decide(s, fresh)
    outcomes = responder.collect(wait_s=5.0)
    started = [e for e in events if e.detail.get("status") == "started"]
    assert sorted(o.message for o in outcomes) == sorted(
        e.message.replace("acting: lower", "lowered")
        .replace("acting: restore", "restored")
        .replace("acting: stop", "stopped")
        .replace("acting: shut down", "shut down")
        for e in started
    )
    return events, act


def lanes(calls: list[tuple[str, object]]) -> dict[str, list[object]]:
    """Actuator calls by kind, in order (each tier acts on its own thread, so only the order
    within a kind is fixed)."""
    out: dict[str, list[object]] = {}
    for what, arg in calls:
        out.setdefault(what, []).append(arg)
    return out


def test_runaway_walks_up_all_three_tiers() -> None:
    events, act = drive("runaway.jsonl")
    # GPU 2 = 70 + t/10 C, 2 s samples. >= 85 C from t = 150 s, for 30 s -> tier 1 at 180 s.
    # >= 88 C from 180 s: the shutdown - 5 = 88 C condition holds 10 s -> tier 2 at 190 s
    # (earlier than slowdown for 60 s = 240 s). >= 91 C from 210 s, for 10 s -> tier 3 at 220 s.
    assert [(e.t, e.tier, e.gpu) for e in events] == [
        (180.0, 1, 2),
        (190.0, 2, None),
        (190.0, 2, None),
        (220.0, 3, None),
    ]
    assert events[0].message.startswith("acting: lower GPU 2 power limit 450 W -> 315 W")
    assert lanes(act.calls) == {
        "set_power_limit": [(2, 315.0)],  # 0.7 x 450 W
        "stop_unit": ["llama-server.service"],
        "stop_container": ["vllm"],
        "shutdown": [None],
    }
    assert all(e.kind == "action" and e.dry_run is False for e in events)


def test_dry_run_is_the_default_and_acts_on_nothing() -> None:
    act = RecordingActuator()
    responder = Responder(WORKLOADS, actuator=act)  # enforce defaults to False
    events = [e for s in replay("runaway.jsonl") for e in responder.decide(s, True)]
    assert [(e.t, e.tier) for e in events] == [(180.0, 1), (190.0, 2), (190.0, 2), (220.0, 3)]
    assert events[0].message.startswith("would lower GPU 2 power limit 450 W -> 315 W")
    assert events[3].message.startswith("would shut down the machine")
    assert all(e.dry_run is True for e in events)
    assert act.calls == []


def test_tier3_when_tier2_did_not_stop_the_rise() -> None:
    events, act = drive("slow_rise.jsonl")
    # GPU 0 = 87 + t/100 C (2 s samples). >= 85 C from 0 s -> tier 1 at 30 s. 88 C at 100 s,
    # for 10 s -> tier 2 at 110 s at 88.1 C. 120 s later (230 s) it reads 89.3 C > 88.1 C ->
    # tier 3 at 230 s, before the 91 C condition (t = 400 s, past the end of the file).
    assert [(e.t, e.tier) for e in events] == [(30.0, 1), (110.0, 2), (110.0, 2), (230.0, 3)]
    assert "rose 88.1 -> 89.3 C" in events[3].message
    assert lanes(act.calls)["shutdown"] == [None]


def test_tier1_restores_the_limit_after_cooling() -> None:
    events, act = drive("recovery.jsonl")
    # GPU 1 at 86 C from 10 s (5 s samples): tier 1 at 10 + 30 = 40 s. 75 C from 105 s; below
    # 80 C for 300 s -> restored at 105 + 300 = 405 s. 86 C < 88 C: tier 2 never.
    assert [(e.t, e.tier, e.gpu, e.severity) for e in events] == [
        (40.0, 1, 1, "warning"),
        (405.0, 1, 1, "info"),
    ]
    assert events[1].message.startswith("acting: restore GPU 1 power limit 315 W -> 450 W")
    # one lane per tier and GPU: lowering and restoring GPU 1 keep their order
    assert act.calls == [("set_power_limit", (1, 315.0)), ("set_power_limit", (1, 450.0))]


def test_actions_are_not_repeated_every_sample() -> None:
    events, act = drive("runaway.jsonl")
    # 151 samples, GPU 2 above every tier for the last 40 of them: still one action per tier.
    assert len(act.calls) == 4
    assert len(events) == 4


def test_one_sample_spike_triggers_no_tier() -> None:
    events, act = drive("spike.jsonl")
    assert events == []
    assert act.calls == []


def test_lost_gpu_is_never_acted_on() -> None:
    events, act = drive("gpu_lost.jsonl")
    assert events == []
    assert act.calls == []


def test_stale_data_never_acts() -> None:
    # Fresh flag False throughout on the runaway: nothing at all, not even tier 1.
    events, act = drive("runaway.jsonl", fresh=False)
    assert [e for e in events if e.tier is not None] == []
    assert act.calls == []


def test_sample_time_that_stops_advancing_is_stale() -> None:
    events, act = drive("stale.jsonl")
    # 95 C repeated at t = 10 s forty times: the time did not advance, nothing acts.
    assert events == []
    assert act.calls == []


def test_stale_pause_is_logged_when_a_condition_was_pending() -> None:
    act = RecordingActuator()
    responder = Responder(ResponsePolicy(), enforce=True, actuator=act)
    hot = GpuSample(index=0, temperature_c=86, power_limit_w=450, default_power_limit_w=450)
    assert responder.decide(Sample(t=0.0, gpus=(hot,)), True) == []  # pending tier 1
    out = responder.decide(Sample(t=20.0, gpus=(hot,)), False)
    assert [(e.rule, e.tier, e.severity) for e in out] == [("response", None, "info")]
    # The hold restarted: t = 40 and 60 s -> held 20 s < 30 s, 70 s -> 30 s -> acts at 70 s.
    for t in (40.0, 60.0):
        assert responder.decide(Sample(t=t, gpus=(hot,)), True) == []
    assert [e.tier for e in responder.decide(Sample(t=70.0, gpus=(hot,)), True)] == [1]
    responder.collect(wait_s=5.0)
    assert act.calls == [("set_power_limit", (0, 315.0))]


def test_tier1_respects_min_power_limit() -> None:
    act = RecordingActuator()
    responder = Responder(ResponsePolicy(tier1_power_fraction=0.3), enforce=True, actuator=act)
    g = GpuSample(
        index=0,
        temperature_c=86,
        power_limit_w=450,
        default_power_limit_w=450,
        min_power_limit_w=150,
    )
    for t in (0.0, 30.0):
        responder.decide(Sample(t=t, gpus=(g,)), True)
    responder.collect(wait_s=5.0)
    # 0.3 x 450 W = 135 W is below the 150 W minimum -> 150 W.
    assert act.calls == [("set_power_limit", (0, 150.0))]


def test_missing_power_limit_never_acts_blind() -> None:
    act = RecordingActuator()
    responder = Responder(ResponsePolicy(), enforce=True, actuator=act)
    g = GpuSample(index=0, temperature_c=86)  # no power limit reading
    events = [e for t in (0.0, 30.0, 60.0) for e in responder.decide(Sample(t=t, gpus=(g,)), True)]
    assert events == []
    assert act.calls == []


def test_failed_action_is_reported_not_raised() -> None:
    act = RecordingActuator(fail={"set_power_limit"})
    responder = Responder(ResponsePolicy(), enforce=True, actuator=act)
    g = GpuSample(index=0, temperature_c=86, power_limit_w=450, default_power_limit_w=450)
    events = [e for t in (0.0, 30.0) for e in responder.decide(Sample(t=t, gpus=(g,)), True)]
    assert len(events) == 1 and events[0].detail["status"] == "started"
    (outcome,) = responder.collect(wait_s=5.0)
    assert outcome.message.startswith("failed to lower GPU 0 power limit 450 W -> 315 W")
    assert outcome.severity == "critical" and outcome.t == 30.0
    assert "simulated" in outcome.detail["error"]


def test_tier2_without_workloads_says_so() -> None:
    events, act = drive("runaway.jsonl", policy=ResponsePolicy())
    tier2 = [e for e in events if e.tier == 2]
    assert len(tier2) == 1
    assert "no workloads are configured" in tier2[0].message
    assert lanes(act.calls)["shutdown"] == [None]


def test_policy_yaml(tmp_path: Path) -> None:
    f = tmp_path / "monitor.yaml"
    f.write_text(
        "response:\n"
        "  tier1: {offset_c: -6, for: 1m, power_fraction: 0.6}\n"
        "  tier2:\n"
        "    units: [llama-server.service]\n"
        "    containers: [vllm]\n"
        "    conditions: [{relative_to: slowdown, offset_c: 1, for: 2m}]\n"
        "  tier3: {enabled: false}\n",
        encoding="utf-8",
    )
    p = load_policy(f, None)
    assert p.tier1 == TierCondition("slowdown", -6.0, 60.0)
    assert p.tier1_power_fraction == 0.6
    assert p.tier2 == (TierCondition("slowdown", 1.0, 120.0),)
    assert p.tier2_units == ("llama-server.service",)
    assert p.tier2_containers == ("vllm",)
    assert p.tier3_enabled is False
    # tier 3 disabled: the runaway stops at tier 2. Tier 1 now at >= 82 C (88 - 6) for 60 s:
    # 82 C at t = 120 s -> 180 s. Tier 2 at >= 89 C for 120 s: 89 C at 190 s -> 310 s, after
    # the file ends (300 s).
    events, act = drive("runaway.jsonl", policy=p)
    assert [(e.t, e.tier) for e in events] == [(180.0, 1)]
    assert act.calls == [("set_power_limit", (2, 270.0))]  # 0.6 x 450 W


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "response: {tier1: {power_fraction: 2}}\n",
            ":1: response.tier1.power_fraction: input should be less than or equal to 1, got 2",
        ),
        ("response: {tier4: {}}\n", ":1: response.tier4: unknown setting 'tier4'"),
        (
            "response:\n  tier2: {units: llama}\n",
            ":2: response.tier2.units: input should be a valid list, got 'llama'",
        ),
        (
            "response:\n  tier3:\n    conditions:\n      - {relative_to: ambient}\n",
            ":4: response.tier3.conditions[0].relative_to: input should be 'slowdown' or"
            " 'shutdown', got 'ambient'",
        ),
        (  # a unit name that systemctl would read as an option
            "response:\n  tier2:\n    units: [ok.service, --now]\n",
            ":3: response.tier2.units[1]: expected a systemd unit or container name",
        ),
    ],
)
def test_bad_policy_files(tmp_path: Path, text: str, expected: str) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(MonitorError) as err:
        load_policy(f, None)
    assert str(err.value).startswith(f"{f}{expected}")


def _run_agent(path: Path, enforce: bool = True) -> tuple[list[Event], RecordingActuator, int]:
    from rigkit.monitor.agent import Agent
    from rigkit.monitor.sources.replay import ReplaySource
    from rigkit.monitor.store import Store

    act = RecordingActuator()
    store = Store(path.parent / "m.db")
    responder = Responder(WORKLOADS, enforce=enforce, actuator=act)
    agent = Agent(ReplaySource(path, speed=0), store, responder=responder, interval_s=1.0)
    summary = agent.run()
    events = store.events()
    store.close()
    return events, act, summary.stale_samples


def test_replayed_readings_that_are_a_minute_old_are_never_acted_on(tmp_path: Path) -> None:
    # stale_age.jsonl: t = 0..8 s fresh at 66 C, then t = 10..200 s (96 lines, 2 s apart) at
    # 95 C with age_s 60: older than stale_after_s = max(3 x 1 s, 5 s) = 5 s, so every one is
    # stale and the enforcing responder does nothing at all.
    src = tmp_path / "stale_age.jsonl"
    src.write_text((REPLAYS / "stale_age.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    events, act, stale = _run_agent(src)
    assert stale == 96  # (200 - 10) / 2 + 1
    assert act.calls == []
    assert [e for e in events if e.kind == "action" and e.tier is not None] == []


def test_the_same_readings_when_fresh_walk_the_tiers(tmp_path: Path) -> None:
    # Control for the test above: drop age_s and the same 95 C acts. 95 >= 93 - 5 = 88 C from
    # t = 10 s for 10 s -> tier 2 at 20 s; >= 91 C for 10 s -> tier 3 at 20 s; >= 85 C for 30 s
    # -> tier 1 at 40 s.
    lines = (REPLAYS / "stale_age.jsonl").read_text(encoding="utf-8").splitlines()
    src = tmp_path / "fresh.jsonl"
    src.write_text(
        "\n".join(
            json.dumps({k: v for k, v in json.loads(x).items() if k != "age_s"}) for x in lines
        )
        + "\n",
        encoding="utf-8",
    )
    events, act, stale = _run_agent(src)
    assert stale == 0
    tiers = sorted({(e.t, e.tier) for e in events if e.kind == "action" and e.tier is not None})
    assert tiers[:2] == [(20.0, 2), (20.0, 3)]
    # tier 2 stops the workloads, tier 3 shuts down (20 s), tier 1 lowers the limit to
    # max(150 W, 0.7 x 450 W) = 315 W (40 s); each on its own thread
    assert lanes(act.calls) == {
        "stop_unit": ["llama-server.service"],
        "stop_container": ["vllm"],
        "shutdown": [None],
        "set_power_limit": [(0, 315.0)],
    }
    # the agent stored every outcome: one "done" per decision
    done = [e for e in events if e.detail.get("status") == "done"]
    assert sorted(e.tier or 0 for e in done) == [1, 2, 2, 3]


def test_decisions_are_logged_info_when_dry_run_warning_when_enforced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    hot = GpuSample(index=0, temperature_c=86, power_limit_w=450, default_power_limit_w=450)
    for enforce, level in ((False, logging.INFO), (True, logging.WARNING)):
        caplog.clear()
        responder = Responder(ResponsePolicy(), enforce=enforce, actuator=RecordingActuator())
        with caplog.at_level(logging.DEBUG, logger="rigkit.monitor.respond"):
            # 86 C >= 85 C from t = 0 for 30 s -> tier 1 at t = 30 s
            for t in (0.0, 10.0, 20.0, 30.0):
                responder.decide(Sample(t=t, gpus=(hot,)), True)
        recs = [r for r in caplog.records if "tier 1" in r.getMessage()]
        assert len(recs) == 1
        assert recs[0].levelno == level
        assert ("dry run" in recs[0].getMessage()) is (not enforce)
        assert "t=30.0" in recs[0].getMessage()
