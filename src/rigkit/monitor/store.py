"""The monitor's store: one SQLite file (WAL) with samples, events and downsampled history.

Tables:

* ``samples`` (one row per sample: t, wall time, source, host values), ``gpu_samples`` (one row per
  GPU per sample), ``disk_samples`` (one row per disk per sample), ``gpus`` (name/uuid/bus id of each
  index, written when they change);
* ``events`` (alerts raised/resolved and response actions; the ``decisions`` view lists actions);
* ``agg`` (1-minute and 1-hour min/mean/max/count per series) and ``series`` (series names such as
  ``gpu0.temperature_c``, ``host.cpu_temp_c``, ``disk.nvme0n1.temp_c``).

Retention (:class:`Retention`): raw samples are kept for ``raw_s`` (7 days), then folded into
1-minute aggregates kept for ``minute_s`` (90 days), then 1-hour aggregates kept for ``hour_s``
(5 years). :func:`storage_estimate` gives the resulting size; docs/monitor.md has the arithmetic.

Durability: WAL with ``synchronous=NORMAL``. Each sample is written in one transaction; once
``write_sample`` returns, the commit is in the WAL file in the operating system's page cache, so a
crash of the process (kill -9) loses nothing committed and cannot corrupt the database. Only an
operating-system crash or power loss can lose the last transactions (never corrupt); pass
``synchronous="FULL"`` to fsync on every commit if that matters more than disk wear.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rigkit.errors import MonitorError
from rigkit.monitor.sample import (
    DISK_METRICS,
    GPU_METRICS,
    HOST_METRICS,
    THROTTLE_REASONS,
    DiskSample,
    Event,
    GpuSample,
    HostSample,
    Sample,
)

SCHEMA_VERSION = 1
DAY_S = 86400

#: Per-GPU fields folded into the 1-minute / 1-hour history ("lost" is the fraction of samples lost).
AGG_GPU_METRICS: tuple[str, ...] = (
    "temperature_c",
    "thermal_margin_c",
    "power_w",
    "power_limit_w",
    "fan_pct",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "util_pct",
    "mem_used_mib",
    "pcie_gen",
    "pcie_width",
    "lost",
)
AGG_HOST_METRICS: tuple[str, ...] = HOST_METRICS
AGG_DISK_METRICS: tuple[str, ...] = ("temp_c", "wear_pct", "free_pct")

_GPU_COLS = (*GPU_METRICS, "throttle", "xid", "ecc_uncorrected", "remapped_rows_pending")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples(
    id INTEGER PRIMARY KEY,
    t REAL NOT NULL,
    wall_time REAL NOT NULL,
    source TEXT,
    cpu_temp_c REAL, load1 REAL, mem_used_pct REAL,
    net TEXT
);
CREATE INDEX IF NOT EXISTS samples_t ON samples(t);
CREATE TABLE IF NOT EXISTS gpu_samples(
    sample_id INTEGER NOT NULL,
    gpu INTEGER NOT NULL,
    lost INTEGER NOT NULL DEFAULT 0,
    {", ".join(f"{m} REAL" for m in GPU_METRICS)},
    throttle INTEGER,
    xid TEXT,
    ecc_uncorrected INTEGER,
    remapped_rows_pending INTEGER,
    PRIMARY KEY(sample_id, gpu)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS disk_samples(
    sample_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    temp_c REAL, wear_pct REAL, free_pct REAL, media_errors INTEGER, critical_warning INTEGER,
    PRIMARY KEY(sample_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gpus(
    gpu INTEGER PRIMARY KEY, name TEXT, uuid TEXT, pci_bus_id TEXT, updated_t REAL
);
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    gpu INTEGER,
    message TEXT NOT NULL,
    value REAL,
    tier INTEGER,
    dry_run INTEGER,
    detail TEXT,
    wall_time REAL
);
CREATE INDEX IF NOT EXISTS events_t ON events(t);
CREATE VIEW IF NOT EXISTS decisions AS SELECT * FROM events WHERE kind = 'action';
CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS agg(
    level INTEGER NOT NULL,
    series INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    min REAL, mean REAL, max REAL, n INTEGER NOT NULL,
    PRIMARY KEY(level, series, bucket)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Retention:
    """How long each resolution is kept, in seconds (``hour_s``/``events_s`` None: forever)."""

    raw_s: float = 7 * DAY_S
    minute_s: float = 90 * DAY_S
    hour_s: float | None = 5 * 365 * DAY_S
    events_s: float | None = None

    def __post_init__(self) -> None:
        if self.raw_s <= 0 or self.minute_s < self.raw_s:
            raise MonitorError("retention: need 0 < raw_s <= minute_s")
        if self.hour_s is not None and self.hour_s < self.minute_s:
            raise MonitorError("retention: need minute_s <= hour_s")

    def to_dict(self) -> dict[str, Any]:
        return {
            "raw_s": self.raw_s,
            "minute_s": self.minute_s,
            "hour_s": self.hour_s,
            "events_s": self.events_s,
        }


@dataclass(frozen=True)
class HistoryPoint:
    """One point of a metric's history: a raw value, or a 1-minute / 1-hour aggregate."""

    t: float  # sample time, or the start of the aggregate's bucket
    series: str  # "gpu0", "host", "nvme0n1"
    gpu: int | None
    value: float  # the raw value, or the bucket's mean
    min: float
    max: float
    n: int  # samples behind this point
    resolution_s: int  # 0 raw, 60, 3600

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "series": self.series,
            "gpu": self.gpu,
            "value": self.value,
            "min": self.min,
            "max": self.max,
            "n": self.n,
            "resolution_s": self.resolution_s,
        }


@dataclass(frozen=True)
class CompactResult:
    """What one :meth:`Store.compact` did (row counts)."""

    raw_samples_folded: int
    minute_rows_written: int
    minute_rows_folded: int
    hour_rows_written: int
    hour_rows_dropped: int
    events_dropped: int

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StorageEstimate:
    """Steady-state rows and bytes of a store under a retention policy."""

    raw_sample_rows: int
    raw_gpu_rows: int
    raw_disk_rows: int
    minute_rows: int
    hour_rows: int
    bytes_total: int

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# Bytes per row on disk (table + index pages from SQLite's dbstat), measured by
# `benchmarks/monitor_overhead.py --size`: one hour of 8-GPU synthetic loaded samples gave 64.9 B per
# samples row (with its t index), 72.0 B per gpu_samples row, 26.7 B per disk_samples row, and
# 29.3 B per agg row after folding that hour into minutes. See docs/monitor.md.
BYTES_PER_SAMPLE_ROW = 65
BYTES_PER_GPU_ROW = 72
BYTES_PER_DISK_ROW = 27
BYTES_PER_AGG_ROW = 30


def storage_estimate(
    *,
    gpus: int = 8,
    disks: int = 2,
    interval_s: float = 1.0,
    retention: Retention | None = None,
    span_s: float = 365 * DAY_S,
) -> StorageEstimate:
    """Rows and bytes held after ``span_s`` seconds of sampling (default one year).

    Raw rows cover min(span, raw_s) / interval samples; 1-minute rows cover the part of the span
    between raw_s and minute_s, one row per minute per series; 1-hour rows the rest, up to hour_s.
    """
    r = retention or Retention()
    raw_span = min(span_s, r.raw_s)
    minute_span = max(0.0, min(span_s, r.minute_s) - r.raw_s)
    hour_end = span_s if r.hour_s is None else min(span_s, r.hour_s)
    hour_span = max(0.0, hour_end - r.minute_s)
    samples = math.floor(raw_span / interval_s)
    series = gpus * len(AGG_GPU_METRICS) + len(AGG_HOST_METRICS) + disks * len(AGG_DISK_METRICS)
    minute_rows = math.ceil(minute_span / 60) * series
    hour_rows = math.ceil(hour_span / 3600) * series
    total = (
        samples * BYTES_PER_SAMPLE_ROW
        + samples * gpus * BYTES_PER_GPU_ROW
        + samples * disks * BYTES_PER_DISK_ROW
        + (minute_rows + hour_rows) * BYTES_PER_AGG_ROW
    )
    return StorageEstimate(
        raw_sample_rows=samples,
        raw_gpu_rows=samples * gpus,
        raw_disk_rows=samples * disks,
        minute_rows=minute_rows,
        hour_rows=hour_rows,
        bytes_total=total,
    )


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/rigkit/monitor.db`` (``~/.local/share/rigkit/monitor.db`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rigkit" / "monitor.db"


def _throttle_mask(reasons: tuple[str, ...] | None) -> int | None:
    if reasons is None:
        return None
    mask = 0
    for r in reasons:
        if r in THROTTLE_REASONS:
            mask |= 1 << THROTTLE_REASONS.index(r)
    return mask


def _throttle_names(mask: int | None) -> tuple[str, ...] | None:
    if mask is None:
        return None
    return tuple(name for i, name in enumerate(THROTTLE_REASONS) if mask & (1 << i))


def _num(v: float | int | None) -> float | int | None:
    if v is None:
        return None
    # whole numbers as integers (smaller files), but only where SQLite's 64-bit integer holds them
    return int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2**53 else v


#: the first bytes of every SQLite 3 database file
_SQLITE_MAGIC = b"SQLite format 3\x00"


class Store:
    """The monitor database. ``create=False`` opens an existing file only (for readers)."""

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        retention: Retention | None = None,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = Path(path).expanduser()
        self.retention = retention or Retention()
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise MonitorError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        if not create and not self.path.is_file():
            raise MonitorError(
                f"no monitor database at {self.path}",
                hint="run `rigkit monitor run --db PATH` first, or pass the right --db",
            )
        if not create:
            # SQLite would turn an empty file into a database (switching it to WAL writes the
            # header): a reader must leave a file that is not a database as it found it
            try:
                with self.path.open("rb") as f:
                    magic = f.read(len(_SQLITE_MAGIC))
            except OSError as err:
                raise MonitorError(
                    f"cannot open monitor database {self.path}: {err.strerror or err}"
                ) from err
            if magic != _SQLITE_MAGIC:
                raise MonitorError(f"{self.path} is not a rigkit monitor database")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._gpu_info: dict[int, tuple[str | None, str | None, str | None]] = {}
        try:
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.execute("PRAGMA busy_timeout = 10000")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise MonitorError(f"{self.path}: cannot switch the database to WAL mode")
            self._db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            if create:
                self._db.executescript(_SCHEMA)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            else:
                row = self._db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name='samples'"
                ).fetchone()
                if row is None:
                    raise MonitorError(f"{self.path} is not a rigkit monitor database")
        except sqlite3.DatabaseError as err:
            raise MonitorError(f"cannot open monitor database {self.path}: {err}") from err
        self._series: dict[str, int] = {}
        for gpu, name, uuid, bus in self._db.execute(
            "SELECT gpu, name, uuid, pci_bus_id FROM gpus"
        ):
            self._gpu_info[int(gpu)] = (name, uuid, bus)

    # -- writing ---------------------------------------------------------------------------

    def write_sample(self, sample: Sample) -> int:
        """Write one sample in one transaction; returns its row id. Committed when it returns."""
        host = sample.host
        gpu_rows: list[tuple[Any, ...]] = []
        info_rows: list[tuple[Any, ...]] = []
        for g in sample.gpus:
            gpu_rows.append(
                (
                    g.index,
                    1 if g.lost else 0,
                    *(_num(getattr(g, m)) for m in GPU_METRICS),
                    _throttle_mask(g.throttle_reasons),
                    ",".join(str(x) for x in g.xid) if g.xid else None,
                    g.ecc_uncorrected,
                    None if g.remapped_rows_pending is None else int(g.remapped_rows_pending),
                )
            )
            info = (g.name, g.uuid, g.pci_bus_id)
            if not g.lost and info != (None, None, None) and self._gpu_info.get(g.index) != info:
                info_rows.append((g.index, *info, sample.t))
        with self._lock:
            try:
                self._db.execute("BEGIN")
                cur = self._db.execute(
                    "INSERT INTO samples(t, wall_time, source, cpu_temp_c, load1, mem_used_pct, net)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        sample.t,
                        sample.wall_time,
                        sample.source,
                        None if host is None else _num(host.cpu_temp_c),
                        None if host is None else _num(host.load1),
                        None if host is None else _num(host.mem_used_pct),
                        None if host is None or host.net is None else json.dumps(host.net),
                    ),
                )
                sid = cur.lastrowid
                assert sid is not None
                if gpu_rows:
                    self._db.executemany(
                        f"INSERT INTO gpu_samples(sample_id, gpu, lost, {', '.join(_GPU_COLS)})"
                        f" VALUES ({', '.join('?' * (len(_GPU_COLS) + 3))})",
                        [(sid, *row) for row in gpu_rows],
                    )
                if host is not None and host.disks:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO disk_samples(sample_id, name, temp_c, wear_pct,"
                        " free_pct, media_errors, critical_warning) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                sid,
                                d.name,
                                _num(d.temp_c),
                                _num(d.wear_pct),
                                _num(d.free_pct),
                                d.media_errors,
                                d.critical_warning,
                            )
                            for d in host.disks
                        ],
                    )
                if info_rows:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO gpus(gpu, name, uuid, pci_bus_id, updated_t)"
                        " VALUES (?, ?, ?, ?, ?)",
                        info_rows,
                    )
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as err:
                self._rollback()
                raise MonitorError(f"cannot write to {self.path}: {err}") from err
        for row in info_rows:
            self._gpu_info[row[0]] = (row[1], row[2], row[3])
        return sid

    def write_events(self, events: Sequence[Event], wall_time: float | None = None) -> None:
        """Append alert events and response decisions in one transaction."""
        if not events:
            return
        rows = [
            (
                e.t,
                e.kind,
                e.rule,
                e.severity,
                e.gpu,
                e.message,
                e.value,
                e.tier,
                None if e.dry_run is None else int(e.dry_run),
                json.dumps(e.detail, sort_keys=True, default=str) if e.detail else None,
                wall_time,
            )
            for e in events
        ]
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO events(t, kind, rule, severity, gpu, message, value, tier,"
                    " dry_run, detail, wall_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as err:
                self._rollback()
                raise MonitorError(f"cannot write events to {self.path}: {err}") from err

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    # -- reading ---------------------------------------------------------------------------

    def count_samples(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def sample_times(self) -> list[float]:
        with self._lock:
            return [float(r[0]) for r in self._db.execute("SELECT t FROM samples ORDER BY id")]

    def latest(self) -> Sample | None:
        """The most recent sample, rebuilt from the tables (None if the store is empty)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, t, wall_time, source, cpu_temp_c, load1, mem_used_pct, net"
                " FROM samples ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            sid, t, wall, source, cpu, load1, mem, net = row
            info = {
                int(r[0]): (r[1], r[2], r[3])
                for r in self._db.execute("SELECT gpu, name, uuid, pci_bus_id FROM gpus")
            }
            gpu_rows = self._db.execute(
                f"SELECT gpu, lost, {', '.join(_GPU_COLS)} FROM gpu_samples"
                " WHERE sample_id = ? ORDER BY gpu",
                (sid,),
            ).fetchall()
            disk_rows = self._db.execute(
                "SELECT name, temp_c, wear_pct, free_pct, media_errors, critical_warning"
                " FROM disk_samples WHERE sample_id = ? ORDER BY name",
                (sid,),
            ).fetchall()
        gpus = []
        for r in gpu_rows:
            index, lost = int(r[0]), bool(r[1])
            name, uuid, bus = info.get(index, (None, None, None))
            values = dict(zip(_GPU_COLS, r[2:], strict=True))
            if lost:
                gpus.append(GpuSample(index=index, name=name, uuid=uuid, pci_bus_id=bus, lost=True))
                continue
            xid_text = values.pop("xid")
            throttle = values.pop("throttle")
            pending = values.pop("remapped_rows_pending")
            gpus.append(
                GpuSample(
                    index=index,
                    name=name,
                    uuid=uuid,
                    pci_bus_id=bus,
                    throttle_reasons=_throttle_names(throttle),
                    xid=tuple(int(x) for x in xid_text.split(",")) if xid_text else (),
                    remapped_rows_pending=None if pending is None else bool(pending),
                    **values,
                )
            )
        disks = tuple(
            DiskSample(
                name=d[0],
                temp_c=d[1],
                wear_pct=d[2],
                free_pct=d[3],
                media_errors=d[4],
                critical_warning=d[5],
            )
            for d in disk_rows
        )
        host = None
        if any(v is not None for v in (cpu, load1, mem, net)) or disks:
            host = HostSample(
                cpu_temp_c=cpu,
                load1=load1,
                mem_used_pct=mem,
                disks=disks,
                net=None if net is None else json.loads(net),
            )
        return Sample(
            t=float(t), gpus=tuple(gpus), host=host, source=str(source), wall_time=float(wall)
        )

    def events(
        self,
        since: float | None = None,
        until: float | None = None,
        kinds: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events in time order (optionally filtered by sample time and kind)."""
        where: list[str] = ["1=1"]
        args: list[Any] = []
        if since is not None:
            where.append("t >= ?")
            args.append(since)
        if until is not None:
            where.append("t <= ?")
            args.append(until)
        kind_list = list(kinds) if kinds is not None else None
        if kind_list:
            where.append(f"kind IN ({', '.join('?' * len(kind_list))})")
            args.extend(kind_list)
        sql = (
            "SELECT t, kind, rule, severity, gpu, message, value, tier, dry_run, detail"
            f" FROM events WHERE {' AND '.join(where)} ORDER BY t DESC, id DESC"
        )
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        rows.reverse()  # newest first for LIMIT; returned oldest first
        return [self._event(r) for r in rows]

    def active_alerts(self) -> list[Event]:
        """Alerts whose latest event is 'raised' (not yet resolved)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT t, kind, rule, severity, gpu, message, value, tier, dry_run, detail"
                " FROM events e WHERE kind = 'raised' AND id = ("
                "  SELECT MAX(id) FROM events e2 WHERE e2.rule = e.rule AND e2.gpu IS e.gpu"
                "  AND e2.kind IN ('raised', 'resolved')) ORDER BY t, id"
            ).fetchall()
        return [self._event(r) for r in rows]

    @staticmethod
    def _event(r: Sequence[Any]) -> Event:
        return Event(
            t=float(r[0]),
            kind=r[1],
            rule=r[2],
            severity=r[3],
            gpu=r[4],
            message=r[5],
            value=r[6],
            tier=r[7],
            dry_run=None if r[8] is None else bool(r[8]),
            detail=json.loads(r[9]) if r[9] else {},
        )

    def metrics(self) -> list[str]:
        """Metric names :meth:`history` accepts."""
        return [*GPU_METRICS, *HOST_METRICS, *(f"disk.{m}" for m in DISK_METRICS)]

    def history(
        self,
        metric: str,
        since: float | None = None,
        gpu: int | None = None,
        until: float | None = None,
    ) -> list[HistoryPoint]:
        """A metric over time: hourly and minute aggregates first, then raw samples.

        ``metric`` is a GPU field (``temperature_c``, ``power_w``; ``gpu`` selects one GPU), a host
        field (``cpu_temp_c``, ``load1``, ``mem_used_pct``) or ``disk.<field>`` (``disk.temp_c``).
        """
        lo = -math.inf if since is None else since
        hi = math.inf if until is None else until
        if metric in GPU_METRICS or metric == "lost":
            sql = (
                f"SELECT s.t, g.gpu, g.{metric} FROM gpu_samples g JOIN samples s"
                f" ON s.id = g.sample_id WHERE s.t >= ? AND s.t <= ? AND g.{metric} IS NOT NULL"
            )
            args: list[Any] = [lo, hi]
            if gpu is not None:
                sql += " AND g.gpu = ?"
                args.append(gpu)
            like = f"gpu{gpu}.{metric}" if gpu is not None else f"gpu%.{metric}"
        elif metric in HOST_METRICS:
            sql = f"SELECT t, NULL, {metric} FROM samples WHERE t >= ? AND t <= ? AND {metric} IS NOT NULL"
            args = [lo, hi]
            like = f"host.{metric}"
        elif metric.startswith("disk.") and metric[5:] in DISK_METRICS:
            field = metric[5:]
            sql = (
                f"SELECT s.t, d.name, d.{field} FROM disk_samples d JOIN samples s"
                f" ON s.id = d.sample_id WHERE s.t >= ? AND s.t <= ? AND d.{field} IS NOT NULL"
            )
            args = [lo, hi]
            like = f"disk.%.{field}"
        else:
            raise MonitorError(
                f"unknown metric {metric!r}", hint="one of: " + ", ".join(self.metrics())
            )
        points: list[HistoryPoint] = []
        with self._lock:
            agg = self._db.execute(
                "SELECT a.level, a.bucket, s.name, a.min, a.mean, a.max, a.n FROM agg a"
                " JOIN series s ON s.id = a.series WHERE s.name LIKE ? AND a.bucket + a.level > ?"
                " AND a.bucket <= ? ORDER BY a.bucket",
                (like, lo, hi),
            ).fetchall()
            raw = self._db.execute(sql + " ORDER BY 1", args).fetchall()
        for level, bucket, name, mn, mean, mx, n in agg:
            key = name.rsplit(".", 1)[0]
            if metric.startswith("disk."):
                key = key.split(".", 1)[1]
            gpu_idx = int(key[3:]) if key.startswith("gpu") and key[3:].isdigit() else None
            if gpu is not None and gpu_idx != gpu:
                continue
            points.append(
                HistoryPoint(
                    float(bucket),
                    key,
                    gpu_idx,
                    float(mean),
                    float(mn),
                    float(mx),
                    int(n),
                    int(level),
                )
            )
        for t, key, value in raw:
            if metric in GPU_METRICS or metric == "lost":
                series, gpu_idx = f"gpu{key}", int(key)
            elif metric in HOST_METRICS:
                series, gpu_idx = "host", None
            else:
                series, gpu_idx = str(key), None
            v = float(value)
            points.append(HistoryPoint(float(t), series, gpu_idx, v, v, v, 1, 0))
        points.sort(key=lambda p: (p.t, p.series))
        return points

    # -- retention ---------------------------------------------------------------------------

    def _series_id(self, name: str) -> int:
        sid = self._series.get(name)
        if sid is None:
            self._db.execute("INSERT OR IGNORE INTO series(name) VALUES (?)", (name,))
            sid = int(
                self._db.execute("SELECT id FROM series WHERE name = ?", (name,)).fetchone()[0]
            )
            self._series[name] = sid
        return sid

    def _upsert_agg(self, level: int, rows: list[tuple[str, int, Any, Any, Any, int]]) -> int:
        data = [
            (level, self._series_id(name), bucket, mn, mean, mx, n)
            for name, bucket, mn, mean, mx, n in rows
            if n
        ]
        self._db.executemany(
            "INSERT INTO agg(level, series, bucket, min, mean, max, n) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(level, series, bucket) DO UPDATE SET"
            " min = min(agg.min, excluded.min), max = max(agg.max, excluded.max),"
            " mean = (agg.mean * agg.n + excluded.mean * excluded.n) / (agg.n + excluded.n),"
            " n = agg.n + excluded.n",
            data,
        )
        return len(data)

    def _minute_rows(
        self,
        from_sql: str,
        key: str | None,
        prefix: str,
        metrics: Sequence[str],
        series: Callable[[Any, str], str],
        cut: float,
    ) -> list[tuple[str, int, Any, Any, Any, int]]:
        """MIN/AVG/MAX/COUNT per whole minute (and per ``key``) of ``metrics`` sampled before
        ``cut``, one row per series named ``series(key value, metric)``."""
        cols = ", ".join(
            f"MIN({prefix}{m}), AVG({prefix}{m}), MAX({prefix}{m}), COUNT({prefix}{m})"
            for m in metrics
        )
        keys = f", {key}" if key else ""
        first = 2 if key else 1
        out: list[tuple[str, int, Any, Any, Any, int]] = []
        for row in self._db.execute(
            f"SELECT CAST(s.t / 60 AS INTEGER) * 60 AS b{keys}, {cols} FROM {from_sql}"
            f" WHERE s.t < ? GROUP BY b{keys}",
            (cut,),
        ):
            b, k = int(row[0]), (row[1] if key else None)
            for i, m in enumerate(metrics):
                mn, mean, mx, n = row[first + 4 * i : first + 4 + 4 * i]
                out.append((series(k, m), b, mn, mean, mx, int(n)))
        return out

    def compact(self, now: float) -> CompactResult:
        """Fold raw samples older than ``raw_s`` into 1-minute aggregates, 1-minute rows older than
        ``minute_s`` into 1-hour aggregates, and drop what is past ``hour_s`` / ``events_s``.

        ``now`` is in sample time (the agent passes the latest sample's ``t``). Buckets are aligned
        to whole minutes / hours; only complete buckets are folded, and folding the same bucket
        twice merges (min of mins, count-weighted mean, max of maxes) instead of overwriting.
        """
        r = self.retention
        raw_cut = math.floor((now - r.raw_s) / 60) * 60
        min_cut = math.floor((now - r.minute_s) / 3600) * 3600
        with self._lock:
            try:
                self._db.execute("BEGIN")
                minute_rows = [
                    *self._minute_rows(
                        "gpu_samples g JOIN samples s ON s.id = g.sample_id", "g.gpu", "g.",
                        AGG_GPU_METRICS, lambda gpu, m: f"gpu{int(gpu)}.{m}", raw_cut,
                    ),
                    *self._minute_rows(
                        "samples s", None, "s.", AGG_HOST_METRICS, lambda _, m: f"host.{m}", raw_cut
                    ),
                    *self._minute_rows(
                        "disk_samples d JOIN samples s ON s.id = d.sample_id", "d.name", "d.",
                        AGG_DISK_METRICS, lambda name, m: f"disk.{name}.{m}", raw_cut,
                    ),
                ]  # fmt: skip
                minute_written = self._upsert_agg(60, minute_rows)
                self._db.execute(
                    "DELETE FROM gpu_samples WHERE sample_id IN (SELECT id FROM samples WHERE t < ?)",
                    (raw_cut,),
                )
                self._db.execute(
                    "DELETE FROM disk_samples WHERE sample_id IN (SELECT id FROM samples WHERE t < ?)",
                    (raw_cut,),
                )
                folded = self._db.execute("DELETE FROM samples WHERE t < ?", (raw_cut,)).rowcount

                hour_rows: list[tuple[str, int, Any, Any, Any, int]] = []
                for name, b, mn, mean, mx, n in self._db.execute(
                    "SELECT s.name, CAST(a.bucket / 3600 AS INTEGER) * 3600 AS b, MIN(a.min),"
                    " SUM(a.mean * a.n) / SUM(a.n), MAX(a.max), SUM(a.n) FROM agg a"
                    " JOIN series s ON s.id = a.series WHERE a.level = 60 AND a.bucket < ?"
                    " GROUP BY a.series, b",
                    (min_cut,),
                ):
                    hour_rows.append((str(name), int(b), mn, mean, mx, int(n)))
                hour_written = self._upsert_agg(3600, hour_rows)
                minute_folded = self._db.execute(
                    "DELETE FROM agg WHERE level = 60 AND bucket < ?", (min_cut,)
                ).rowcount
                hour_dropped = 0
                if r.hour_s is not None:
                    hour_dropped = self._db.execute(
                        "DELETE FROM agg WHERE level = 3600 AND bucket + 3600 <= ?",
                        (now - r.hour_s,),
                    ).rowcount
                events_dropped = 0
                if r.events_s is not None:
                    events_dropped = self._db.execute(
                        "DELETE FROM events WHERE t < ?", (now - r.events_s,)
                    ).rowcount
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as err:
                self._rollback()
                raise MonitorError(f"cannot compact {self.path}: {err}") from err
        return CompactResult(
            raw_samples_folded=folded,
            minute_rows_written=minute_written,
            minute_rows_folded=minute_folded,
            hour_rows_written=hour_written,
            hour_rows_dropped=hour_dropped,
            events_dropped=events_dropped,
        )

    def count_agg(self, level: int) -> int:
        with self._lock:
            return int(
                self._db.execute("SELECT COUNT(*) FROM agg WHERE level = ?", (level,)).fetchone()[0]
            )

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
