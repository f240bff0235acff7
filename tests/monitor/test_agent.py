"""The agent loop: store, rules, response, notify and exporter wired over replay sources."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rigkit.monitor.agent import Agent, make_engine, make_responder
from rigkit.monitor.exporter import ExporterCache
from rigkit.monitor.sample import Event, GpuSample, Sample
from rigkit.monitor.sources.base import SourceExhausted
from rigkit.monitor.sources.replay import ReplaySource
from rigkit.monitor.store import Store

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "replay"


class ListSource:
    """A finite source over given samples."""

    def __init__(self, samples: list[Sample]) -> None:
        self.name = "list"
        self.paced = True
        self._samples = list(samples)
        self.reads = 0

    def read(self) -> Sample:
        if not self._samples:
            raise SourceExhausted("list")
        self.reads += 1
        return self._samples.pop(0)

    def close(self) -> None:
        pass


class RecordingResponder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, bool]] = []

    def decide(self, sample: Sample, fresh: bool) -> list[Event]:
        self.calls.append((sample.t, fresh))
        return []

    def collect(self, t: float | None = None, wait_s: float = 0.0) -> list[Event]:
        return []


class ThresholdEngine:
    """Raises when GPU 0 is >= 90 C, resolves below."""

    def __init__(self) -> None:
        self._active: Event | None = None

    def evaluate(self, sample: Sample) -> list[Event]:
        g = sample.gpu(0)
        hot = g is not None and g.temperature_c is not None and g.temperature_c >= 90
        if hot and self._active is None:
            self._active = Event(sample.t, "raised", "hot", "critical", 0, "GPU 0 hot")
            return [self._active]
        if not hot and self._active is not None:
            self._active = None
            return [Event(sample.t, "resolved", "hot", "critical", 0, "GPU 0 ok")]
        return []

    def active(self) -> list[Event]:
        return [] if self._active is None else [self._active]


class BrokenNotifier:
    def __init__(self) -> None:
        self.submitted: list[Event] = []

    def submit(self, event: Event) -> None:
        self.submitted.append(event)

    def flush(self, now: float | None = None) -> int:
        raise ConnectionError("endpoint down")

    def close(self) -> None:
        pass


def _s(t: float, temp: float, wall: float | None = None) -> Sample:
    return Sample(
        t=t,
        gpus=(GpuSample(index=0, temperature_c=temp),),
        source="list",
        wall_time=t if wall is None else wall,
    )


def test_replay_run_stores_every_sample_and_updates_the_cache(tmp_path: Path) -> None:
    cache = ExporterCache()
    with Store(tmp_path / "m.db") as st:
        agent = Agent(ReplaySource("loaded-4x4090", speed=0), st, cache=cache)
        summary = agent.run()
        assert summary.samples == 240 and summary.stopped_by == "end of source"
        assert st.count_samples() == 240
        # the packaged file starts at 2026-01-01T00:00:00Z = 1767225600 and has 240 samples
        assert (summary.first_t, summary.last_t) == (1767225600.0, 1767225839.0)
        assert cache.sample is not None and cache.sample.t == 1767225839.0
        assert cache.samples_total == 240


def test_duration_and_count_stop_the_run(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as st:
        s = Agent(ReplaySource("idle-4x4090", speed=0), st).run(duration_s=10)
        # stops at the first sample 10 s of sample time after the first: t0 .. t0+10 = 11 samples
        assert s.samples == 11 and s.stopped_by == "duration"
        s = Agent(ReplaySource("idle-4x4090", speed=0), st).run(count=5)
        assert s.samples == 5 and s.stopped_by == "count"


def test_events_are_stored_and_the_cache_shows_active_alerts(tmp_path: Path) -> None:
    samples = [_s(t, temp) for t, temp in enumerate([70, 91, 92, 70, 70])]
    cache = ExporterCache()
    with Store(tmp_path / "m.db") as st:
        Agent(ListSource(samples), st, engine=ThresholdEngine(), cache=cache).run()
        kinds = [(e.t, e.kind) for e in st.events()]
    assert kinds == [(1.0, "raised"), (3.0, "resolved")]
    assert cache.alerts == ()  # resolved by the end


def test_stale_samples_are_marked_not_fresh(tmp_path: Path) -> None:
    now = 1000.0
    samples = [
        _s(1, 70, wall=now - 1),  # 1 s old: fresh
        _s(2, 70, wall=now - 60),  # a minute old: stale
        _s(2, 70, wall=now),  # sample time did not advance: stale
        _s(3, 70, wall=now),
    ]
    resp = RecordingResponder()
    with Store(tmp_path / "m.db") as st:
        agent = Agent(ListSource(samples), st, responder=resp, interval_s=1.0, wall=lambda: now)
        summary = agent.run()
    # stale_after_s = max(3 x 1 s, 5 s) = 5 s
    assert resp.calls == [(1, True), (2, False), (2, False), (3, True)]
    assert summary.stale_samples == 2


def test_a_broken_notifier_does_not_stop_monitoring(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    samples = [_s(t, temp) for t, temp in enumerate([70, 91, 92, 70])]
    notifier = BrokenNotifier()
    with (
        Store(tmp_path / "m.db") as st,
        caplog.at_level(logging.ERROR, logger="rigkit.monitor.agent"),
    ):
        summary = Agent(ListSource(samples), st, engine=ThresholdEngine(), notifier=notifier).run()
        assert st.count_samples() == 4
    assert summary.samples == 4
    assert [e.kind for e in notifier.submitted] == ["raised", "resolved"]
    assert "notification failed" in caplog.text


class CountingStore(Store):
    compacts: list[float]

    def compact(self, now: float):  # type: ignore[no-untyped-def]
        self.compacts.append(now)
        return super().compact(now)


def test_compaction_runs_every_compact_every_s_of_sample_time(tmp_path: Path) -> None:
    st = CountingStore(tmp_path / "m.db")
    st.compacts = []
    Agent(ReplaySource("idle-4x4090", speed=0), st, compact_every_s=60).run()
    st.close()
    t0 = 1767225600.0
    # first sample sets the reference; then every 60 s: t0+60, t0+120, t0+180 (t0+239 is the end)
    assert st.compacts == [t0 + 60, t0 + 120, t0 + 180]


def test_agent_with_the_real_rules_on_an_xid_79_replay(tmp_path: Path) -> None:
    engine = make_engine(None, None)
    assert engine is not None
    with Store(tmp_path / "m.db") as st:
        Agent(ReplaySource(SCENARIOS / "xid79.jsonl", speed=0), st, engine=engine).run()
        raised = st.events(kinds=["raised"])
    assert any(e.gpu == 1 and e.severity == "critical" and "79" in e.message for e in raised)


def test_agent_with_the_real_responder_is_dry_run_by_default(tmp_path: Path) -> None:
    responder = make_responder(None, None, enforce=False)
    assert responder is not None
    with Store(tmp_path / "m.db") as st:
        Agent(ReplaySource(SCENARIOS / "runaway.jsonl", speed=0), st, responder=responder).run()
        actions = st.events(kinds=["action"])
    assert actions, "the thermal runaway replay must reach at least tier 1"
    assert all(a.dry_run is True for a in actions)
    assert {a.tier for a in actions} == {1, 2, 3}


def test_alert_raised_while_the_webhook_is_down_is_delivered_after_a_restart(
    tmp_path: Path,
) -> None:
    import json
    import socket
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from rigkit.monitor.notify import Notifier

    with socket.socket() as s:  # a free port with nothing listening: the endpoint is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    db = tmp_path / "m.db"
    with Store(db) as st:
        notifier = Notifier(db, [url], timeout_s=1.0)
        agent = Agent(
            ReplaySource(SCENARIOS / "xid79.jsonl", speed=0),
            st,
            engine=make_engine(None, None),
            notifier=notifier,
        )
        agent.run()
        agent.close()
    received: list[dict[str, object]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", port), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # the agent restarts later (past any retry backoff) with the endpoint back up
        restarted = Notifier(db, [url], timeout_s=2.0, clock=lambda: time.time() + 3600)
        assert restarted.pending() >= 1
        restarted.flush()
        assert restarted.pending() == 0
        restarted.close()
    finally:
        server.shutdown()
        server.server_close()
    text = json.dumps(received)
    assert "79" in text  # the XID 79 alert raised while the endpoint was down arrived


class FailingStore(Store):
    def write_sample(self, sample: Sample) -> int:
        from rigkit.errors import MonitorError

        raise MonitorError("database or disk is full")


def test_a_store_failure_does_not_stop_alerting(tmp_path: Path) -> None:
    samples = [_s(t, temp) for t, temp in enumerate([70, 91, 92])]
    engine = ThresholdEngine()
    with FailingStore(tmp_path / "m.db") as st:
        summary = Agent(ListSource(samples), st, engine=engine).run()
        raised = st.events(kinds=["raised"])
    assert summary.store_errors == 3  # each of the 3 samples failed to store
    assert summary.raised == 1 and [e.t for e in raised] == [1.0]  # the alert still went out
