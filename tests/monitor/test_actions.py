"""Enforced actions run off the sampling loop (monitor/actions.py) and always end in an outcome."""

from __future__ import annotations

import time

from rigkit.monitor.actions import ActionRunner, RecordingActuator
from rigkit.monitor.respond import Responder, ResponsePolicy
from rigkit.monitor.sample import GpuSample, Sample

HOT = GpuSample(index=0, temperature_c=86, power_limit_w=450, default_power_limit_w=450)


def test_an_action_that_hangs_is_reported_overdue_once_then_done() -> None:
    act = RecordingActuator(hang={"set_power_limit"})
    responder = Responder(ResponsePolicy(), enforce=True, actuator=act, runner=ActionRunner(0.1))
    # 86 C >= 88 - 3 = 85 C from t = 0 for 30 s -> tier 1 decided at t = 30 s
    (decision,) = [e for t in (0.0, 30.0) for e in responder.decide(Sample(t=t, gpus=(HOT,)), True)]
    assert decision.message.startswith("acting: lower GPU 0 power limit 450 W -> 315 W")
    time.sleep(0.3)
    (overdue,) = responder.collect(t=32.0)
    assert overdue.detail["status"] == "overdue" and overdue.severity == "critical"
    assert overdue.t == 32.0 and overdue.message.startswith("not finished after ")
    assert " s: lower GPU 0 power limit 450 W -> 315 W" in overdue.message
    assert responder.collect(t=34.0) == []  # said once, not every sample
    act.release.set()
    (done,) = responder.collect(t=36.0, wait_s=5.0)
    assert done.detail["status"] == "done"
    assert done.message.startswith("lowered GPU 0 power limit 450 W -> 315 W")
    assert act.calls == [("set_power_limit", (0, 315.0))]


def test_a_dry_run_queues_nothing() -> None:
    runner = ActionRunner()
    responder = Responder(ResponsePolicy(), actuator=RecordingActuator(), runner=runner)
    events = [e for t in (0.0, 30.0) for e in responder.decide(Sample(t=t, gpus=(HOT,)), True)]
    assert [e.message[:9] for e in events] == ["would low"]
    assert runner.pending() == 0 and responder.collect(wait_s=1.0) == []
