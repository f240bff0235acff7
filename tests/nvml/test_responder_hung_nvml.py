"""The thermal responder and the agent when NVML hangs, while a GPU keeps heating up.

The whole monitor runs over a fake pynvml: 4 GPUs, GPU 2 at 70 + t/10 C (t: sample time in s, one
sample every 2 s), the others at 70 + index C. Default policy (slowdown 88 C, shutdown 93 C from
the fake's thresholds): tier 1 at >= 85 C for 30 s -> 85 C at t = 150 s, acts at 180 s; tier 2 at
>= 93 - 5 = 88 C for 10 s -> 88 C at 180 s, acts at 190 s; tier 3 at >= 91 C for 10 s -> 91 C at
210 s, acts at 220 s. "On time" is these sample times, whatever NVML does.

Sample time comes from a test clock that the agent's sleep advances, so 151 samples (0-300 s) take
well under a second of real time when nothing hangs; a hung call waits 30 s (released at the end of
the test), so a loop held by one would take minutes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from fake_nvml import FakeNvml

from rigkit.monitor.actions import SystemActuator
from rigkit.monitor.agent import Agent
from rigkit.monitor.respond import Responder, ResponsePolicy
from rigkit.monitor.sample import Sample
from rigkit.monitor.sources.nvml import NvmlSource
from rigkit.monitor.store import Store
from rigkit.nvml import Nvml

T0 = 1_000_000.0
POLICY = ResponsePolicy(tier2_units=("llama-server.service",), tier2_containers=("vllm",))
EXPECTED = [(180.0, 1, 2), (190.0, 2, None), (190.0, 2, None), (220.0, 3, None)]


class Recorded:
    """The source, keeping every sample it gave the agent."""

    def __init__(self, source: NvmlSource, after: Callable[[Sample], None] | None = None) -> None:
        self.source = source
        self.name = source.name
        self.samples: list[Sample] = []
        self.after = after

    def read(self) -> Sample:
        s = self.source.read()
        self.samples.append(s)
        if self.after is not None:
            self.after(s)
        return s

    def close(self) -> None:
        self.source.close()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


@pytest.fixture
def fake() -> FakeNvml:
    return FakeNvml(count=4)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """What the hung calls wait for: set when the test ends, so no thread outlives it long."""
    event = threading.Event()
    yield event
    event.set()


def run_monitor(
    tmp_path: Path,
    fake: FakeNvml,
    clock: Clock,
    *,
    enforce: bool,
    hang_command: tuple[str, threading.Event] | None = None,
    after: Callable[[Sample], None] | None = None,
) -> tuple[Store, list[Sample], list[list[str]], float]:
    fake.temp = lambda h: 70 + (clock.now - T0) / 10 if h == 2 else 70 + h
    commands: list[list[str]] = []

    def run(argv: Sequence[str], timeout: float) -> None:
        if hang_command is not None and hang_command[0] in argv:
            hang_command[1].wait(30)  # a command that ignores its own timeout
        commands.append(list(argv))  # systemctl / docker: recorded, never run

    nv = Nvml(fake, timeout_s=0.2)
    actuator = SystemActuator(Nvml(fake, timeout_s=0.2), run=run) if enforce else None
    responder = Responder(POLICY, enforce=enforce, actuator=actuator)
    store = Store(tmp_path / "m.db")
    source = Recorded(NvmlSource(nv, clock=clock), after)
    agent = Agent(
        source,
        store,
        responder=responder,
        interval_s=2.0,
        clock=clock,
        wall=clock,
        sleep=clock.sleep,
        outcome_wait_s=2.0,
    )
    t0 = time.monotonic()
    agent.run(count=151)
    took = time.monotonic() - t0
    assert store.count_samples() == len(source.samples) == 151
    # a loop held by a hung call would take 30 s or more; unhindered it takes well under 1 s
    assert took < 10.0
    return store, source.samples, commands, took


def decisions(store: Store) -> list[tuple[float, int | None, int | None]]:
    return [
        (e.t - T0, e.tier, e.gpu)
        for e in store.events()
        if e.kind == "action" and e.detail.get("status") in (None, "started")
    ]


@pytest.mark.parametrize("enforce", [False, True])
def test_power_limit_call_hangs_escalation_stays_on_time(
    tmp_path: Path, fake: FakeNvml, release: threading.Event, enforce: bool
) -> None:
    fake.hang_calls = {"nvmlDeviceSetPowerManagementLimit": release}
    store, samples, commands, _ = run_monitor(tmp_path, fake, Clock(), enforce=enforce)
    assert decisions(store) == EXPECTED
    # every sample read all four GPUs: the hung power-limit call holds no read
    assert all(len(s.gpus) == 4 and not any(g.lost for g in s.gpus) for s in samples)
    events = store.events()
    if enforce:
        outcome = {e.tier: e for e in events if e.detail.get("status") in ("done", "failed")}
        assert outcome[1].detail["status"] == "failed"
        assert "did not answer within 0.2 s" in outcome[1].message
        assert outcome[2].detail["status"] == outcome[3].detail["status"] == "done"
        # each on its own thread: the order between them is not fixed
        assert sorted(commands) == [
            ["docker", "stop", "vllm"],
            ["systemctl", "poweroff"],
            ["systemctl", "stop", "llama-server.service"],
        ]
    else:
        assert all(e.message.startswith("would ") for e in events if e.kind == "action")
        assert commands == []
    assert fake.set_limits == []


@pytest.mark.parametrize("enforce", [False, True])
def test_every_call_hangs_on_one_gpu_the_others_are_sampled_and_tiers_on_time(
    tmp_path: Path, fake: FakeNvml, release: threading.Event, enforce: bool
) -> None:
    # GPU 3 hangs on every NVML call from the start (its name, its readings, its power limit),
    # and the power-limit call hangs on every GPU. The hung GPU costs one 0.2 s wait at
    # start-up and one in the first sample, not one per sample (151 x 0.2 s = 30 s).
    fake.hang = {3: release}
    fake.hang_calls = {"nvmlDeviceSetPowerManagementLimit": release}
    store, samples, commands, _ = run_monitor(tmp_path, fake, Clock(), enforce=enforce)
    assert decisions(store) == EXPECTED
    assert all([g.lost for g in s.gpus] == [False, False, False, True] for s in samples)
    # GPU 2 was read every 2 s: 70 + 300 / 10 = 100 C in the last sample
    gpu2 = samples[-1].gpu(2)
    assert gpu2 is not None and gpu2.temperature_c == pytest.approx(100.0)
    if enforce:
        assert ["systemctl", "poweroff"] in commands


def test_a_hung_tier_holds_neither_the_loop_nor_the_next_tier(
    tmp_path: Path, fake: FakeNvml, release: threading.Event
) -> None:
    # "systemctl stop" (tier 2) hangs for 30 s and ignores its timeout: the agent keeps its
    # 2 s sampling, tier 3 still shuts down at 220 s.
    store, _, commands, _ = run_monitor(
        tmp_path, fake, Clock(), enforce=True, hang_command=("llama-server.service", release)
    )
    assert decisions(store) == EXPECTED
    # the container beside the hung unit is stopped all the same (a lane per target)
    assert sorted(commands) == [["docker", "stop", "vllm"], ["systemctl", "poweroff"]]
    assert fake.set_limits == [(2, 315000)]  # tier 1: 0.7 x 450 W


def test_every_call_on_every_gpu_hangs_and_the_loop_keeps_its_time(
    tmp_path: Path, fake: FakeNvml, release: threading.Event
) -> None:
    # From t = 100 s every NVML call on every GPU hangs. The agent goes on sampling every 2 s
    # (each GPU lost: one 0.2 s wait in the first such sample, none after), tier 1 for GPU 2
    # cannot be decided (85 C is reached at 150 s, when GPU 2 no longer answers: the responder
    # never acts on a missing temperature), and the run ends in a few seconds, not 151 x 0.2 s.
    def hang_from_100s(s: Sample) -> None:
        if s.t - T0 >= 98.0:
            fake.hang = dict.fromkeys(range(4), release)

    store, samples, _, _ = run_monitor(tmp_path, fake, Clock(), enforce=False, after=hang_from_100s)
    assert [s.t - T0 for s in samples] == [2.0 * i for i in range(151)]
    lost = [all(g.lost for g in s.gpus) for s in samples]
    assert lost == [False] * 50 + [True] * 101  # t = 0..98 s answered, 100..300 s lost
    assert decisions(store) == []
