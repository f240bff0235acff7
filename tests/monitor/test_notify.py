"""Notifier: durable outbox, webhook down then back, restarts, de-duplication, rate limit, SMTP."""

from __future__ import annotations

import json
import re
import signal
import socket
import socketserver
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rigkit.errors import MonitorError
from rigkit.monitor.alerts import AlertEngine, default_rules
from rigkit.monitor.notify import Notifier, format_text, idempotency_key, parse_target
from rigkit.monitor.sample import Event, Sample

REPLAYS = Path(__file__).resolve().parents[1] / "fixtures" / "replay"
T0 = 1_700_000_000.0


def clock() -> float:
    """The time at which events are queued (flush times are passed explicitly)."""
    return T0


class Hook:
    """A local webhook endpoint: records JSON bodies; ``status`` is what it answers."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.status == 200:
                    hook.received.append(json.loads(body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ev(
    rule: str = "gpu_temp_high", kind: str = "raised", gpu: int | None = 2, t: float = T0
) -> Event:
    return Event(
        t=t,
        kind=kind,  # type: ignore[arg-type]
        rule=rule,
        severity="warning",
        gpu=gpu,
        message=f"GPU {gpu} temperature_c 89 >= 83 for 60 s",
        value=89.0,
    )


def xid79_events() -> list[Event]:
    engine = AlertEngine(default_rules(None))
    out: list[Event] = []
    with (REPLAYS / "xid79.jsonl").open(encoding="utf-8") as f:
        for line in f:
            out += engine.evaluate(Sample.from_dict(json.loads(line)))
    return out


def test_endpoint_down_then_back_delivers_exactly_once_across_restart(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    raised, resolved = xid79_events()  # XID 79 raised at t = 20 s, resolved at 620 s
    n1 = Notifier(db, [url], timeout_s=1.0, machine="ws1", clock=clock)
    n1.submit(raised)
    # Nobody listens on the port: the delivery fails and is deferred 5 s (first backoff).
    assert n1.flush(now=T0) == 0
    assert n1.pending() == 1
    n1.close()  # the agent stops (or is killed) with the alert undelivered

    h = Hook(port)  # the endpoint comes back, answering 503 at first
    try:
        h.status = 503
        n2 = Notifier(db, [url], timeout_s=1.0, machine="ws1", clock=clock)  # the agent restarts
        assert n2.flush(now=T0 + 1) == 0  # still inside the 5 s backoff: not even tried
        assert n2.flush(now=T0 + 5) == 0  # tried: 503 -> second backoff 10 s
        h.status = 200
        assert n2.flush(now=T0 + 10) == 0  # 5 + 10 = 15 s not reached yet
        assert n2.flush(now=T0 + 15) == 1
        assert n2.flush(now=T0 + 100) == 0  # nothing left: not sent twice
        n2.submit(resolved)
        assert n2.flush(now=T0 + 101) == 1
        n2.close()
        bodies = h.received
    finally:
        h.close()
    assert [(b["status"], b["event"]["rule"], b["event"]["gpu"]) for b in bodies] == [
        ("firing", "gpu_xid_critical", 1),
        ("resolved", "gpu_xid_critical", 1),
    ]
    assert bodies[0]["machine"] == "ws1"
    assert bodies[0]["subject"] == "[rigkit ws1] CRITICAL gpu_xid_critical GPU 1"
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT attempts, delivered_at FROM notify_outbox ORDER BY id"
        ).fetchall()
    # first message: refused, 503, then delivered -> 2 failed attempts recorded
    assert rows == [(2, T0 + 15), (0, T0 + 101)]


def test_duplicates_are_not_requeued_even_after_restart(tmp_path: Path, hook: Hook) -> None:
    db = tmp_path / "m.db"
    n = Notifier(db, [hook.url], machine="ws1", clock=clock)
    n.submit(ev())
    n.submit(ev())  # same rule, GPU and kind: duplicate
    assert n.pending() == 1
    n.close()
    n = Notifier(db, [hook.url], machine="ws1", clock=clock)
    n.submit(ev())  # a restarted engine re-raises its active alert: still a duplicate
    assert n.pending() == 1
    n.submit(ev(gpu=3))  # another GPU: a different alert
    n.submit(ev(kind="resolved"))
    n.submit(ev())  # raised again after it resolved: sent again
    assert n.pending() == 4  # 1 + GPU 3 + resolved + raised again
    assert n.flush(now=T0) == 4
    n.close()
    assert [(b["status"], b["event"]["gpu"]) for b in hook.received] == [
        ("firing", 2),
        ("firing", 3),
        ("resolved", 2),
        ("firing", 2),
    ]


def test_rate_limit_batches_the_excess_and_drops_nothing(tmp_path: Path, hook: Hook) -> None:
    n = Notifier(tmp_path / "m.db", [hook.url], rate_limit=3, machine="ws1", clock=clock)
    for gpu in range(5):
        n.submit(ev(gpu=gpu))
    # limit 3 per minute: 2 single messages + 1 digest of the other 3 events; 5 delivered.
    assert n.flush(now=T0) == 5
    assert [b["status"] for b in hook.received] == ["firing", "firing", "digest"]
    assert [e["gpu"] for e in hook.received[2]["events"]] == [2, 3, 4]
    n.submit(ev(gpu=7))
    assert n.flush(now=T0 + 30) == 0  # 3 deliveries in the last 60 s: wait
    assert n.flush(now=T0 + 61) == 1  # the window has moved on
    assert n.pending() == 0
    n.close()


def test_info_events_are_not_sent(tmp_path: Path, hook: Hook) -> None:
    n = Notifier(tmp_path / "m.db", [hook.url])
    n.submit(
        Event(t=T0, kind="raised", rule="gpu_xid_application", severity="info", gpu=0, message="x")
    )
    assert n.pending() == 0
    n.close()


def test_outbox_never_stores_passwords(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    n = Notifier(db, ["smtp://rig:s3cret@127.0.0.1:1?from=a@example.org&to=b@example.org"])
    n.submit(ev())
    n.close()
    assert b"s3cret" not in db.read_bytes()
    for extra in ("-wal",):
        p = Path(str(db) + extra)
        if p.exists():
            assert b"s3cret" not in p.read_bytes()


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("ftp://example.org/x", "expected an http(s):// webhook"),
        ("smtp://mail.example.org", "needs ?from=ADDR&to=ADDR"),
        ("smtp://mail.example.org?from=a@b&to=c@d&tls=1", "unknown option(s) tls"),
    ],
)
def test_bad_targets(url: str, needle: str) -> None:
    with pytest.raises(MonitorError) as err:
        parse_target(url)
    assert needle in str(err.value)


def test_smtp_target_parsing() -> None:
    t = parse_target(
        "smtp://rig%40home:pw@mail.example.org:587?from=rig@example.org&to=a@x,b@y&starttls=1"
    )
    assert (t.host, t.port, t.user, t.password) == ("mail.example.org", 587, "rig@home", "pw")
    assert t.recipients == ("a@x", "b@y")
    assert t.starttls is True
    assert "pw" not in t.key
    assert parse_target("smtps://mail.example.org?from=a@b&to=c@d").port == 465


def test_message_text() -> None:
    subject, body = format_text(ev(kind="resolved", t=12.0), "ws1")
    assert subject == "[rigkit ws1] RESOLVED gpu_temp_high GPU 2"
    assert body.splitlines()[0] == "RESOLVED: GPU 2 temperature_c 89 >= 83 for 60 s"
    assert "time:     t=12" in body
    action = Event(
        t=T0,
        kind="action",
        rule="response_tier1",
        severity="warning",
        gpu=2,
        message="would lower GPU 2 power limit 450 W -> 315 W",
        tier=1,
        dry_run=True,
    )
    subject, body = format_text(action, "ws1")
    assert subject == "[rigkit ws1] ACTION (dry run) response_tier1 GPU 2"
    assert "tier:     1" in body


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: greets, accepts one message per DATA."""

    def handle(self) -> None:
        store: list[bytes] = self.server.messages  # type: ignore[attr-defined]
        self.wfile.write(b"220 stub ESMTP\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.strip().upper()
            if cmd.startswith((b"EHLO", b"HELO")):
                self.wfile.write(b"250 stub\r\n")
            elif cmd.startswith((b"MAIL", b"RCPT", b"RSET", b"NOOP")):
                self.wfile.write(b"250 ok\r\n")
            elif cmd == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                data = b""
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b""):
                        break
                    data += chunk
                store.append(data)
                self.wfile.write(b"250 queued\r\n")
            elif cmd == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"502 not implemented\r\n")


@pytest.fixture
def smtp_stub() -> Iterator[tuple[str, list[bytes]]]:
    """A local SMTP server on 127.0.0.1: (address HOST:PORT, the messages it has taken)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    messages: list[bytes] = []
    server.messages = messages  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", messages
    server.shutdown()
    server.server_close()


def test_email_delivery_to_a_local_smtp_stub(
    tmp_path: Path, smtp_stub: tuple[str, list[bytes]]
) -> None:
    address, messages = smtp_stub
    url = f"smtp://{address}?from=rig@example.org&to=ops@example.org"
    n = Notifier(tmp_path / "m.db", [url], machine="ws1", clock=clock)
    n.submit(ev())
    assert n.flush(now=T0) == 1
    n.close()
    assert len(messages) == 1
    msg = message_from_bytes(messages[0])
    assert msg["Subject"] == "[rigkit ws1] WARNING gpu_temp_high GPU 2"
    assert msg["From"] == "rig@example.org"
    assert msg["To"] == "ops@example.org"
    assert "WARNING: GPU 2 temperature_c 89 >= 83 for 60 s" in msg.get_payload()
    # Date: now, as RFC 5322 writes it (parsed back within a minute of the test's clock)
    sent = parsedate_to_datetime(msg["Date"])
    assert abs(sent.timestamp() - time.time()) < 60
    # Message-ID: the idempotency key of the payload, in the sender's domain
    assert re.fullmatch(r"<rigkit\.[0-9a-f]{32}@example\.org>", msg["Message-ID"])


def test_a_repeated_email_keeps_its_message_id(
    tmp_path: Path, smtp_stub: tuple[str, list[bytes]]
) -> None:
    """The same alert delivered twice (as after a crash between the mail server taking it and
    the outbox recording that) carries the same Message-ID both times, so the repeat can be
    recognised."""
    address, messages = smtp_stub
    url = f"smtp://{address}?from=rig@example.org&to=o@example.org"
    for db in ("a.db", "b.db"):  # two outboxes: the second knows nothing of the first send
        n = Notifier(tmp_path / db, [url], machine="ws1", clock=clock)
        n.submit(ev())
        assert n.flush(now=T0) == 1
        n.close()
    first, second = (message_from_bytes(m) for m in messages)
    assert first["Message-ID"] == second["Message-ID"]


class SlowHook:
    """A webhook endpoint that records each request's body and Idempotency-Key header at once,
    then answers after ``delay_s`` (longer than the client's timeout on the first request)."""

    def __init__(self, delays: list[float]) -> None:
        self.requests: list[tuple[str | None, dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.requests.append((self.headers.get("Idempotency-Key"), body))
                time.sleep(delays.pop(0) if delays else 0.0)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up already

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_webhook_answering_after_the_timeout_gets_the_alert_twice_with_one_key(
    tmp_path: Path,
) -> None:
    """At-least-once: the endpoint takes the alert but answers 0.6 s later, after the client's
    0.2 s timeout; the notifier retries after its 5 s backoff and the endpoint sees the alert a
    second time, with the same Idempotency-Key, so it can drop the repeat. Another alert has
    another key."""
    hook = SlowHook(delays=[0.6])
    try:
        n = Notifier(tmp_path / "m.db", [hook.url], machine="ws1", clock=clock, timeout_s=0.2)
        n.submit(ev())
        assert n.flush(now=T0) == 0  # timed out: not marked delivered
        assert n.flush(now=T0 + 5.0) == 1  # backoff 5 s x 2^0, then delivered
        n.submit(ev(gpu=3))
        assert n.flush(now=T0 + 6.0) == 1
        n.close()
    finally:
        hook.close()
    keys = [k for k, _ in hook.requests]
    assert len(hook.requests) == 3
    assert hook.requests[0][1] == hook.requests[1][1]  # the same alert twice
    assert keys[0] is not None and re.fullmatch(r"[0-9a-f]{32}", keys[0])
    assert keys[0] == keys[1] != keys[2]
    assert keys[0] == idempotency_key(hook.requests[0][1])  # a hash of what was sent


_CHILD = """
import sys
from rigkit.monitor.notify import Notifier
from rigkit.monitor.sample import Event

n = Notifier(sys.argv[1], ["http://127.0.0.1:9/hook"], clock=lambda: 1.0)
i = 0
while True:
    n.submit(Event(t=float(i), kind="raised", rule="r", severity="warning", gpu=i, message="m"))
    print(i + 1, flush=True)  # this many messages are committed
    i += 1
"""


def test_kill_9_while_queueing_loses_no_committed_message(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    committed = 0
    while committed < 30:
        committed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)  # mid-loop: possibly inside a transaction
    proc.wait(10)
    proc.stdout.close()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = con.execute("SELECT COUNT(*) FROM notify_outbox").fetchone()[0]
    # every submit() that returned is in the file; at most the one in flight beyond it
    assert rows >= committed
    n = Notifier(db, ["http://127.0.0.1:9/hook"], clock=clock)  # a restart reads it fine
    assert n.pending() == rows
    n.close()


def test_agent_replay_with_endpoint_down_loses_no_alert(tmp_path: Path) -> None:
    """Through the agent: XID 79 replayed while the webhook is down, delivered after a restart."""
    import time

    from rigkit.monitor.agent import Agent
    from rigkit.monitor.sources.replay import ReplaySource
    from rigkit.monitor.store import Store

    db = tmp_path / "monitor.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    store = Store(db)
    agent = Agent(
        ReplaySource(REPLAYS / "xid79.jsonl", speed=0),
        store,
        engine=AlertEngine(default_rules(None)),
        notifier=Notifier(db, [url], timeout_s=1.0, machine="ws1"),
        stale_after_s=3600.0,
    )
    agent.run()
    agent.close()
    store.close()
    h = Hook(port)
    try:
        n = Notifier(db, [url], timeout_s=1.0, machine="ws1")
        later = time.time() + 3600  # past any backoff
        assert n.flush(now=later) == 2  # XID 79 raised (t = 20 s) and resolved (t = 620 s)
        assert n.flush(now=later + 1) == 0
        n.close()
    finally:
        h.close()
    assert [(b["status"], b["event"]["t"]) for b in h.received] == [
        ("firing", 20.0),
        ("resolved", 620.0),
    ]


def test_notify_section_of_the_settings_file_reaches_the_notifier(tmp_path: Path) -> None:
    from rigkit.monitor.agent import make_notifier
    from rigkit.monitor.config import load_config

    f = tmp_path / "m.yaml"
    f.write_text(
        "notify:\n"
        "  targets: ['http://127.0.0.1:9/hook']\n"
        "  timeout: 5s\n"
        "  rate_limit: 3\n"
        "  dedup_window: 1h\n"
        "  min_severity: critical\n",
        encoding="utf-8",
    )
    settings = load_config(f).config.notify
    # --notify on the command line plus the file's target, each once
    n = make_notifier(
        tmp_path / "n.db", ["http://127.0.0.1:9/other", "http://127.0.0.1:9/hook"], settings
    )
    assert n is not None
    try:
        assert [t.url for t in n.targets] == ["http://127.0.0.1:9/other", "http://127.0.0.1:9/hook"]
        assert (n.timeout_s, n.rate_limit, n.dedup_window_s, n.min_severity) == (
            5.0,
            3,
            3600.0,  # 1h
            "critical",
        )
    finally:
        n.close()
