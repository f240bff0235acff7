"""Notifications: webhook (JSON POST) and email (SMTP), through a durable outbox.

Every event the agent submits is written to the ``notify_outbox`` table of the monitor's SQLite
file (its own connection, WAL, ``synchronous=FULL``) before anything is sent, so an alert raised
while an endpoint is down is delivered when it comes back, also after the agent restarts: a new
:class:`Notifier` on the same file picks up what is pending.

* **De-duplication**: a message whose rule, subject (GPU or disk) and kind (raised / resolved)
  repeat the last message queued for that target within ``dedup_window_s`` is not queued again
  (an agent restart re-raises its active alerts; nobody needs them twice).
* **Rate limit** per target (``rate_limit`` deliveries per minute): when more is pending than the
  limit allows, the excess goes out as one digest message listing every event. Nothing is dropped.
* **Retry** with exponential backoff per target (5 s, 10 s, 20 s ... capped at 5 min); one failure
  defers the whole target, so a dead endpoint costs at most one short timeout per flush.
* **Resolved** alerts are sent as their own messages ("RESOLVED ...").
* Delivery is **at-least-once**: a message is marked delivered right after the endpoint accepts it;
  a crash between the two, or an endpoint that answers after the client's timeout (it got the
  message, the notifier saw a failure and retries), repeats a message, never loses one. Each
  message carries a key that is the same on every attempt, so the receiver can drop repeats:
  webhooks get an ``Idempotency-Key`` header, e-mails a ``Message-ID`` built from it (and a
  ``Date``).

Targets: ``http://`` / ``https://`` URLs (webhook), ``smtp://[user:password@]host[:port]?from=
ADDR&to=ADDR[,ADDR][&starttls=1]`` and ``smtps://...`` (email). Credentials are never written to
the outbox: rows name the target without its password.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import smtplib
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from rigkit.errors import MonitorError
from rigkit.monitor.sample import Event, Severity

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_outbox(
    id INTEGER PRIMARY KEY,
    dedup_key TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    delivered_at REAL,
    batch_id INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS notify_outbox_pending
    ON notify_outbox(target, delivered_at, next_attempt);
CREATE INDEX IF NOT EXISTS notify_outbox_alert ON notify_outbox(target, alert_key, id);
"""

_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Target:
    """A parsed notification target. ``key`` is the URL without password (stored in the outbox)."""

    url: str
    kind: Literal["webhook", "email"]
    key: str
    host: str = ""
    port: int = 0
    user: str | None = None
    password: str | None = None
    sender: str = ""
    recipients: tuple[str, ...] = ()
    ssl: bool = False
    starttls: bool = False


def parse_target(url: str) -> Target:
    """Parse a webhook or SMTP target URL; raises MonitorError for anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise MonitorError(f"notify target {url!r}: no host")
        key = url
        if parts.password:
            key = url.replace(f":{parts.password}@", ":***@", 1)
        return Target(url=url, kind="webhook", key=key)
    if scheme in ("smtp", "smtps"):
        if not parts.hostname:
            raise MonitorError(f"notify target {url!r}: no mail server host")
        q = parse_qs(parts.query)
        unknown = sorted(set(q) - {"from", "to", "starttls"})
        if unknown:
            raise MonitorError(f"notify target {url!r}: unknown option(s) {', '.join(unknown)}")
        sender = (q.get("from") or [""])[0]
        rcpt = tuple(a.strip() for v in q.get("to", []) for a in v.split(",") if a.strip())
        if not sender or not rcpt:
            raise MonitorError(
                f"notify target {parts.scheme}://{parts.hostname}: needs ?from=ADDR&to=ADDR",
                hint="e.g. smtp://user:pass@mail.example.org:587?from=rig@example.org"
                "&to=me@example.org&starttls=1",
            )
        ssl = scheme == "smtps"
        port = parts.port or (465 if ssl else 25)
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        who = f"{user}@" if user else ""
        key = f"{scheme}://{who}{parts.hostname}:{port}?to={','.join(rcpt)}"
        return Target(
            url=url,
            kind="email",
            key=key,
            host=parts.hostname,
            port=port,
            user=user,
            password=password,
            sender=sender,
            recipients=rcpt,
            ssl=ssl,
            starttls=(q.get("starttls") or ["0"])[0].lower() in ("1", "true", "yes"),
        )
    raise MonitorError(
        f"notify target {url!r}: expected an http(s):// webhook or an smtp(s):// mail server"
    )


def _subject(e: Event) -> str:
    disk = e.detail.get("disk") if e.detail else None
    if e.gpu is not None:
        return f"GPU {e.gpu}"
    if disk:
        return f"disk {disk}"
    return "host"


def _alert_key(e: Event) -> str:
    disk = e.detail.get("disk") if e.detail else None
    return f"{e.rule}|{'' if e.gpu is None else e.gpu}|{disk or ''}"


def idempotency_key(payload: dict[str, Any]) -> str:
    """A key for one message, the same on every delivery attempt (a hash of its payload, which
    the outbox stores once): 32 hex digits."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def message_id(key: str, sender: str) -> str:
    """An RFC 5322 Message-ID from the message's idempotency key, in the sender's domain: a
    repeated delivery has the same id, so mail systems that drop duplicate ids drop it."""
    domain = sender.rpartition("@")[2].strip("<> ") or "localhost"
    return f"<rigkit.{key}@{domain}>"


def format_text(e: Event, machine: str) -> tuple[str, str]:
    """(subject line, body) of the message for one event."""
    if e.kind == "resolved":
        status = "RESOLVED"
    elif e.kind == "action":
        status = "ACTION" if not e.dry_run else "ACTION (dry run)"
    else:
        status = e.severity.upper()
    subject = f"[rigkit {machine}] {status} {e.rule} {_subject(e)}"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.t)) if e.t > 1e9 else f"t={e.t:g}"
    lines = [
        f"{status}: {e.message}",
        "",
        f"machine:  {machine}",
        f"rule:     {e.rule} ({e.severity})",
        f"subject:  {_subject(e)}",
        f"time:     {when}",
    ]
    if e.value is not None:
        lines.append(f"value:    {e.value:g}")
    if e.tier is not None:
        lines.append(f"tier:     {e.tier}")
    return subject, "\n".join(lines) + "\n"


class Notifier:
    """Queues events in the outbox and delivers them (see the module docstring)."""

    def __init__(
        self,
        db_path: str | Path,
        targets: Sequence[str],
        *,
        timeout_s: float = 3.0,
        rate_limit: int = 10,
        dedup_window_s: float = 6 * 3600.0,
        min_severity: Severity = "warning",
        machine: str | None = None,
        backoff_s: float = 5.0,
        max_backoff_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate_limit < 1:
            raise MonitorError("notify rate limit must be at least 1 message per minute")
        self.targets = [parse_target(t) for t in targets]
        self.timeout_s = timeout_s
        self.rate_limit = rate_limit
        self.dedup_window_s = dedup_window_s
        self.min_severity = min_severity
        self.machine = machine or socket.gethostname()
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._lock = threading.Lock()  # guards the connection
        self._flush_lock = threading.Lock()  # one flush at a time: no message sent twice
        self._last_prune: float | None = None
        self.path = Path(db_path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise MonitorError(f"cannot open notification outbox in {self.path}: {err}") from err
        known = {t.key for t in self.targets}
        for (key,) in self._db.execute(
            "SELECT DISTINCT target FROM notify_outbox WHERE delivered_at IS NULL"
        ):
            if key not in known:
                log.warning("outbox has undelivered messages for %s, which is not configured", key)

    # -- queueing ----------------------------------------------------------------------------

    def submit(self, event: Event) -> None:
        """Queue ``event`` for every target (durable when this returns)."""
        if _RANK[event.severity] < _RANK[self.min_severity]:
            return
        if not self.targets:
            return
        now = self._clock()
        alert_key = _alert_key(event)
        dedup_key = f"{alert_key}|{event.kind}"
        if event.kind == "action":
            dedup_key += f"|{event.message}"
        payload = json.dumps(self._payload(event), sort_keys=True)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for target in self.targets:
                    if self._duplicate(target.key, alert_key, dedup_key, now):
                        log.debug("not re-sending %s to %s (duplicate)", dedup_key, target.key)
                        continue
                    self._db.execute(
                        "INSERT INTO notify_outbox(dedup_key, alert_key, kind, target, payload,"
                        " created, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (dedup_key, alert_key, event.kind, target.key, payload, now, now),
                    )
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as err:
                self._rollback()
                raise MonitorError(f"cannot write the notification outbox: {err}") from err

    def _duplicate(self, target: str, alert_key: str, dedup_key: str, now: float) -> bool:
        """Same as the latest message for this alert and target, within the window."""
        row = self._db.execute(
            "SELECT dedup_key, created FROM notify_outbox WHERE target = ? AND alert_key = ?"
            " ORDER BY id DESC LIMIT 1",
            (target, alert_key),
        ).fetchone()
        if row is None:
            return False
        return bool(row[0] == dedup_key and now - float(row[1]) < self.dedup_window_s)

    def _payload(self, e: Event) -> dict[str, Any]:
        subject, body = format_text(e, self.machine)
        status = {"raised": "firing", "resolved": "resolved", "action": "action"}[e.kind]
        return {
            "source": "rigkit",
            "machine": self.machine,
            "status": status,
            "subject": subject,
            "text": body,
            "event": e.to_dict(),
        }

    # -- delivery ----------------------------------------------------------------------------

    def pending(self) -> int:
        """Messages queued and not yet delivered (all targets)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM notify_outbox WHERE delivered_at IS NULL"
            ).fetchone()
        return int(row[0])

    def flush(self, now: float | None = None) -> int:
        """Try to deliver what is due; returns the number of messages delivered."""
        now = self._clock() if now is None else now
        delivered = 0
        with self._flush_lock:
            for target in self.targets:
                delivered += self._flush_target(target, now)
            if self._last_prune is None or now - self._last_prune >= 3600.0:
                self._last_prune = now
                self.prune(now=now)
        return delivered

    def _flush_target(self, target: Target, now: float) -> int:
        with self._lock:
            sent = self._db.execute(
                "SELECT COUNT(DISTINCT batch_id) FROM notify_outbox"
                " WHERE target = ? AND delivered_at >= ?",
                (target.key, now - 60.0),
            ).fetchone()[0]
            allowed = self.rate_limit - int(sent)
            if allowed <= 0:
                return 0
            rows = self._db.execute(
                "SELECT id, payload, attempts FROM notify_outbox WHERE target = ?"
                " AND delivered_at IS NULL AND next_attempt <= ? ORDER BY id",
                (target.key, now),
            ).fetchall()
        if not rows:
            return 0
        singles = rows if len(rows) <= allowed else rows[: allowed - 1]
        rest = [] if len(rows) <= allowed else rows[allowed - 1 :]
        delivered = 0
        for row_id, payload, attempts in singles:
            if not self._try(target, [int(row_id)], json.loads(payload), int(attempts), now):
                return delivered
            delivered += 1
        if rest:
            ids = [int(r[0]) for r in rest]
            digest = self._digest([json.loads(r[1]) for r in rest])
            if self._try(target, ids, digest, int(rest[0][2]), now):
                delivered += len(ids)
        return delivered

    def _digest(self, payloads: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(payloads)
        subject = f"[rigkit {self.machine}] {n} notifications (rate limit reached)"
        text = "\n".join(f"- {p['subject']}: {p['event']['message']}" for p in payloads)
        return {
            "source": "rigkit",
            "machine": self.machine,
            "status": "digest",
            "subject": subject,
            "text": f"{n} notifications were combined to respect the rate limit:\n{text}\n",
            "events": [p["event"] for p in payloads],
        }

    def _try(
        self, target: Target, ids: list[int], payload: dict[str, Any], attempts: int, now: float
    ) -> bool:
        try:
            self._send(target, payload)
        except MonitorError as err:
            delay = min(self.backoff_s * 2**attempts, self.max_backoff_s)
            log.warning(
                "notification to %s failed (attempt %d, next in %g s): %s",
                target.key,
                attempts + 1,
                delay,
                err,
            )
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                    [(str(err), i) for i in ids],
                )
                # the endpoint is down: defer everything pending for it, not just this message
                self._db.execute(
                    "UPDATE notify_outbox SET next_attempt = ? WHERE target = ?"
                    " AND delivered_at IS NULL",
                    (now + delay, target.key),
                )
                self._db.execute("COMMIT")
            return False
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "UPDATE notify_outbox SET delivered_at = ?, batch_id = ?, last_error = NULL"
                " WHERE id = ?",
                [(now, ids[0], i) for i in ids],
            )
            self._db.execute("COMMIT")
        log.info("notification delivered to %s: %s", target.key, payload.get("subject"))
        return True

    def _send(self, target: Target, payload: dict[str, Any]) -> None:
        if target.kind == "webhook":
            self._post(target, payload)
        else:
            self._mail(target, payload)

    def _post(self, target: Target, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        req = urllib.request.Request(
            target.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "rigkit-monitor",
                "Idempotency-Key": idempotency_key(payload),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as err:
            raise MonitorError(f"webhook answered HTTP {err.code}") from err
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise MonitorError(f"webhook unreachable: {reason}") from err
        if not 200 <= status < 300:
            raise MonitorError(f"webhook answered HTTP {status}")

    def _mail(self, target: Target, payload: dict[str, Any]) -> None:
        msg = EmailMessage()
        msg["Subject"] = str(payload["subject"])
        msg["From"] = target.sender
        msg["To"] = ", ".join(target.recipients)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = message_id(idempotency_key(payload), target.sender)
        msg.set_content(str(payload["text"]))
        try:
            smtp: smtplib.SMTP
            if target.ssl:
                smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=self.timeout_s)
            else:
                smtp = smtplib.SMTP(target.host, target.port, timeout=self.timeout_s)
            with smtp:
                if target.starttls:
                    smtp.starttls()
                if target.user and target.password:
                    smtp.login(target.user, target.password)
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as err:
            raise MonitorError(f"mail server {target.host}:{target.port}: {err}") from err

    # -- housekeeping ------------------------------------------------------------------------

    def prune(self, older_than_s: float = 30 * 86400.0, now: float | None = None) -> int:
        """Delete delivered messages older than ``older_than_s``; returns how many."""
        now = self._clock() if now is None else now
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM notify_outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?",
                (now - older_than_s,),
            )
        return int(cur.rowcount)

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.DatabaseError):
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
