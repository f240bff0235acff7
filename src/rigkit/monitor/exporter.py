"""Prometheus exporter: /metrics served from a cache the agent updates once per sample.

A scrape never calls NVML or reads the store. The agent calls :meth:`ExporterCache.update` after
each sample, which only swaps in a new immutable :class:`Snapshot`. The first scrape after an
update renders the exposition text (text format 0.0.4) and later scrapes reuse it; the freshness
gauge ``rigkit_sample_age_seconds`` is computed at each scrape.

:func:`families` builds the metric families once; :class:`RigkitCollector` (a prometheus-client
custom collector, for embedding in another registry) and the fast text renderer both read them,
and a test checks that they agree. The HTTP server is a ``selectors`` loop in its own thread (one
thread however many scrapers connect), binds 127.0.0.1 unless told otherwise, and answers only
GET/HEAD of ``/metrics`` and ``/``.

Metric names (units in the name, Prometheus base units): see :data:`GPU_METRICS_PROM` and
docs/monitor.md.
"""

from __future__ import annotations

import contextlib
import logging
import math
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rigkit.errors import MonitorError
from rigkit.monitor.sample import THROTTLE_REASONS, Event, Sample

if TYPE_CHECKING:
    from prometheus_client.core import Metric

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:9842"
MIB = 1024 * 1024

#: GPU field -> (metric name, help, scale to base units). Labels: gpu, name.
GPU_METRICS_PROM: dict[str, tuple[str, str, float]] = {
    "temperature_c": ("rigkit_gpu_temperature_celsius", "GPU core temperature.", 1.0),
    "slowdown_temp_c": (
        "rigkit_gpu_slowdown_temperature_celsius",
        "Temperature at which the GPU slows down (NVML threshold).",
        1.0,
    ),
    "shutdown_temp_c": (
        "rigkit_gpu_shutdown_temperature_celsius",
        "Temperature at which the GPU shuts down (NVML threshold).",
        1.0,
    ),
    "thermal_margin_c": (
        "rigkit_gpu_thermal_margin_celsius",
        "Degrees left before thermal slowdown.",
        1.0,
    ),
    "power_w": ("rigkit_gpu_power_watts", "GPU board power draw.", 1.0),
    "power_limit_w": ("rigkit_gpu_power_limit_watts", "Enforced GPU power limit.", 1.0),
    "default_power_limit_w": (
        "rigkit_gpu_default_power_limit_watts",
        "Default GPU power limit.",
        1.0,
    ),
    "min_power_limit_w": (
        "rigkit_gpu_min_power_limit_watts",
        "Lowest power limit the GPU accepts.",
        1.0,
    ),
    "fan_pct": ("rigkit_gpu_fan_speed_ratio", "Fan speed, 0-1 of maximum.", 0.01),
    "sm_clock_mhz": ("rigkit_gpu_sm_clock_hertz", "SM clock.", 1e6),
    "mem_clock_mhz": ("rigkit_gpu_memory_clock_hertz", "Memory clock.", 1e6),
    "util_pct": ("rigkit_gpu_utilization_ratio", "GPU utilisation, 0-1.", 0.01),
    "mem_used_mib": ("rigkit_gpu_memory_used_bytes", "GPU memory used.", float(MIB)),
    "mem_total_mib": ("rigkit_gpu_memory_total_bytes", "GPU memory total.", float(MIB)),
    "pcie_gen": ("rigkit_gpu_pcie_link_generation", "Current PCIe link generation.", 1.0),
    "pcie_width": ("rigkit_gpu_pcie_link_width", "Current PCIe link width (lanes).", 1.0),
    "pcie_max_gen": ("rigkit_gpu_pcie_link_max_generation", "Maximum PCIe link generation.", 1.0),
    "pcie_max_width": ("rigkit_gpu_pcie_link_max_width", "Maximum PCIe link width.", 1.0),
}
#: Host field -> (metric name, help, scale).
HOST_METRICS_PROM: dict[str, tuple[str, str, float]] = {
    "cpu_temp_c": ("rigkit_host_cpu_temperature_celsius", "CPU package temperature.", 1.0),
    "load1": ("rigkit_host_load1", "1-minute load average.", 1.0),
    "mem_used_pct": ("rigkit_host_memory_used_ratio", "Host memory used, 0-1.", 0.01),
}
#: Disk field -> (metric name, help, scale). Label: disk.
DISK_METRICS_PROM: dict[str, tuple[str, str, float]] = {
    "temp_c": ("rigkit_disk_temperature_celsius", "Disk (NVMe composite) temperature.", 1.0),
    "wear_pct": ("rigkit_disk_wear_ratio", "NVMe endurance used (percentage used / 100).", 0.01),
    "free_pct": ("rigkit_disk_free_ratio", "Free space on the disk's filesystems, 0-1.", 0.01),
    "media_errors": ("rigkit_disk_media_errors", "NVMe media and data integrity errors.", 1.0),
    "critical_warning": ("rigkit_disk_critical_warning", "NVMe critical warning bits.", 1.0),
}

#: Series names as scraped (counters carry the ``_total`` suffix). The exporter builds its families
#: from these and from the tables above; export_config builds alert rules, promtool tests and the
#: Grafana dashboard from the same constants, so the two cannot drift apart.
XID_FAMILY = "rigkit_gpu_xid"  # counter; labels gpu, name, xid
XID_SERIES = XID_FAMILY + "_total"
SAMPLES_FAMILY = "rigkit_samples"  # counter
SAMPLES_SERIES = SAMPLES_FAMILY + "_total"
LOST_SERIES = "rigkit_gpu_lost"  # labels gpu, name
THROTTLE_SERIES = "rigkit_gpu_throttle"  # labels gpu, name, reason
ECC_SERIES = "rigkit_gpu_ecc_uncorrected_errors"
REMAP_SERIES = "rigkit_gpu_remapped_rows_pending"
#: With --spec: one series per GPU of the build (label gpu only), whether or not it answers.
EXPECTED_SERIES = "rigkit_gpu_expected"
PCIE_EXPECTED_GEN_SERIES = "rigkit_gpu_pcie_expected_generation"  # the build's slot map
PCIE_EXPECTED_WIDTH_SERIES = "rigkit_gpu_pcie_expected_width"
ALERT_SERIES = "rigkit_alert_active"  # labels rule, severity, gpu
AGE_SERIES = "rigkit_sample_age_seconds"
LAST_SAMPLE_SERIES = "rigkit_last_sample_timestamp_seconds"

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Family:
    """One metric family: name (counters without ``_total``), type, help, samples."""

    name: str
    type: str  # "gauge" or "counter"
    help: str
    samples: tuple[tuple[Labels, float], ...]


@dataclass(frozen=True)
class Snapshot:
    """What the exporter shows, replaced as a whole on each update (readers never see a mix)."""

    sample: Sample | None = None
    alerts: tuple[Event, ...] = ()
    xid_totals: tuple[tuple[tuple[int, int], int], ...] = ()
    samples_total: int = 0
    last_wall_time: float | None = None
    version: int = 0
    #: (gpu index, generation, width) each GPU should train to under load (the build's slot map).
    expected_pcie: tuple[tuple[int, int, int], ...] = ()


def _scaled(v: float, scale: float) -> float:
    """Convert to base units; percentages are divided by 100 (0.41, not 0.41000000000000003)."""
    return float(v) / round(1 / scale) if scale < 1 else float(v) * scale


def families(snap: Snapshot, *, age_now: float | None = None) -> list[Family]:
    """The metric families for a snapshot; ``age_now`` adds rigkit_sample_age_seconds."""
    out: list[Family] = []
    sample = snap.sample
    if sample is not None:
        glabels: dict[int, Labels] = {
            g.index: (("gpu", str(g.index)), ("name", g.name or "")) for g in sample.gpus
        }
        for field, (metric, help_text, scale) in GPU_METRICS_PROM.items():
            vals = tuple(
                (glabels[g.index], _scaled(v, scale))
                for g in sample.gpus
                if (v := getattr(g, field)) is not None
            )
            out.append(Family(metric, "gauge", help_text, vals))
        out.append(
            Family(
                LOST_SERIES,
                "gauge",
                "1 if the GPU fell off the bus or did not answer.",
                tuple((glabels[g.index], 1.0 if g.lost else 0.0) for g in sample.gpus),
            )
        )
        throttle: list[tuple[Labels, float]] = []
        for g in sample.gpus:
            if g.throttle_reasons is not None:
                active = set(g.throttle_reasons)
                for r in THROTTLE_REASONS:
                    throttle.append(
                        ((*glabels[g.index], ("reason", r)), 1.0 if r in active else 0.0)
                    )
        out.append(
            Family(
                THROTTLE_SERIES,
                "gauge",
                "1 while the clock-event (throttle) reason is active.",
                tuple(throttle),
            )
        )
        out.append(
            Family(
                ECC_SERIES,
                "gauge",
                "Uncorrected ECC errors (aggregate).",
                tuple(
                    (glabels[g.index], float(g.ecc_uncorrected))
                    for g in sample.gpus
                    if g.ecc_uncorrected is not None
                ),
            )
        )
        out.append(
            Family(
                REMAP_SERIES,
                "gauge",
                "1 if a row remap is pending (reset needed).",
                tuple(
                    (glabels[g.index], 1.0 if g.remapped_rows_pending else 0.0)
                    for g in sample.gpus
                    if g.remapped_rows_pending is not None
                ),
            )
        )
        names = {g.index: g.name or "" for g in sample.gpus}
        out.append(
            Family(
                XID_FAMILY,
                "counter",
                "XID events seen since the agent started.",
                tuple(
                    (
                        (("gpu", str(index)), ("name", names.get(index, "")), ("xid", str(code))),
                        float(n),
                    )
                    for (index, code), n in snap.xid_totals
                ),
            )
        )
        host = sample.host
        if host is not None:
            for field, (metric, help_text, scale) in HOST_METRICS_PROM.items():
                v = getattr(host, field)
                if v is not None:
                    out.append(Family(metric, "gauge", help_text, (((), _scaled(v, scale)),)))
            for field, (metric, help_text, scale) in DISK_METRICS_PROM.items():
                vals = tuple(
                    ((("disk", d.name),), _scaled(v, scale))
                    for d in host.disks
                    if (v := getattr(d, field)) is not None
                )
                out.append(Family(metric, "gauge", help_text, vals))
    if snap.expected_pcie:
        exp = [((("gpu", str(i)),), gen, width) for i, gen, width in snap.expected_pcie]
        out.append(
            Family(
                EXPECTED_SERIES,
                "gauge",
                "1 for each GPU of the build spec (present or not).",
                tuple((lab, 1.0) for lab, _, _ in exp),
            )
        )
        out.append(
            Family(
                PCIE_EXPECTED_GEN_SERIES,
                "gauge",
                "PCIe generation the GPU should train to under load (the lower of GPU and slot).",
                tuple((lab, float(gen)) for lab, gen, _ in exp),
            )
        )
        out.append(
            Family(
                PCIE_EXPECTED_WIDTH_SERIES,
                "gauge",
                "PCIe width the GPU should train to under load (the lower of GPU and slot).",
                tuple((lab, float(width)) for lab, _, width in exp),
            )
        )
    out.append(
        Family(
            ALERT_SERIES,
            "gauge",
            "1 for each active alert.",
            tuple(
                (
                    (
                        ("rule", e.rule),
                        ("severity", e.severity),
                        ("gpu", "" if e.gpu is None else str(e.gpu)),
                    ),
                    1.0,
                )
                for e in snap.alerts
            ),
        )
    )
    out.append(
        Family(
            SAMPLES_FAMILY,
            "counter",
            "Samples collected since the agent started.",
            (((), float(snap.samples_total)),),
        )
    )
    if snap.last_wall_time is not None:
        out.append(
            Family(
                LAST_SAMPLE_SERIES,
                "gauge",
                "Unix time at which the latest sample was collected.",
                (((), snap.last_wall_time),),
            )
        )
    if age_now is not None:
        out.append(Family(AGE_SERIES, "gauge", _AGE_TEXT, (((), _age(snap, age_now)),)))
    return out


_AGE_TEXT = "Seconds since the latest sample was collected (-1: no sample yet)."


def _age(snap: Snapshot, now: float) -> float:
    wall = snap.last_wall_time
    return -1.0 if wall is None else max(0.0, now - wall)


def _fmt_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_text(fams: Sequence[Family]) -> bytes:
    """Prometheus text exposition format 0.0.4."""
    lines: list[str] = []
    for f in fams:
        name = f.name + "_total" if f.type == "counter" else f.name
        help_text = f.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {f.type}")
        for labels, value in f.samples:
            if labels:
                inner = ",".join(f'{k}="{_esc(v)}"' for k, v in labels)
                lines.append(f"{name}{{{inner}}} {_fmt_value(value)}")
            else:
                lines.append(f"{name} {_fmt_value(value)}")
    lines.append("")
    return "\n".join(lines).encode()


class ExporterCache:
    """The latest sample and active alerts, and the exposition text rendered from them.

    ``update`` (the agent, once per sample) only swaps in a new :class:`Snapshot`; the text is
    rendered by the first scrape after an update and reused by the scrapes that follow, so the
    agent pays little for samples nobody scrapes, and a scrape never reads a source.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        expected_pcie: Sequence[tuple[int, int, int]] = (),
    ) -> None:
        """``expected_pcie``: (gpu index, gen, width) from the build spec (``--spec``), exported as
        rigkit_gpu_pcie_expected_generation/width for the Prometheus PCIe rule."""
        self._clock = clock
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._snap = Snapshot(expected_pcie=tuple(expected_pcie))
        self._xid: dict[tuple[int, int], int] = {}
        self._body = b""
        self._gz_body = b""
        self._body_version = -1
        self._last_response: tuple[tuple[int, bool, bool, bytes], bytes] | None = None

    def snapshot(self) -> Snapshot:
        return self._snap

    @property
    def sample(self) -> Sample | None:
        return self._snap.sample

    @property
    def alerts(self) -> tuple[Event, ...]:
        return self._snap.alerts

    @property
    def samples_total(self) -> int:
        return self._snap.samples_total

    def update(self, sample: Sample, alerts: Sequence[Event] = ()) -> None:
        """Called by the agent after each sample."""
        with self._lock:
            changed = False
            for g in sample.gpus:
                for code in g.xid:
                    key = (g.index, code)
                    self._xid[key] = self._xid.get(key, 0) + 1
                    changed = True
            old = self._snap
            self._snap = Snapshot(
                sample=sample,
                alerts=tuple(alerts),
                xid_totals=tuple(sorted(self._xid.items())) if changed else old.xid_totals,
                samples_total=old.samples_total + 1,
                last_wall_time=sample.wall_time,
                version=old.version + 1,
                expected_pcie=old.expected_pcie,
            )

    def response(self, gzip: bool, keep: bool) -> bytes:
        """The whole HTTP response to GET /metrics. Scrapes that arrive together (the same
        snapshot, the same age to the millisecond, the same encoding) share one response object:
        a burst of 100 scrapes builds a few responses instead of 100."""
        snap = self._snap
        age = _age_text(snap, self._clock())
        key = (snap.version, gzip, keep, age)
        hit = self._last_response
        if hit is not None and hit[0] == key:
            return hit[1]
        body = self._render(snap, gzip, age)
        out = _response(b"200 OK", _CT_METRICS, body, keep, False, gzip)
        self._last_response = (key, out)
        return out

    def render(self, gzip: bool = False) -> bytes:
        """What a scrape returns: the text for the latest snapshot and the sample age now.

        ``gzip=True`` returns a gzip stream of two members (the cached, compressed body, then the
        age line); HTTP clients, Prometheus included, read multi-member gzip as one text.
        """
        snap = self._snap
        return self._render(snap, gzip, _age_text(snap, self._clock()))

    def _render(self, snap: Snapshot, gzip: bool, age_text: bytes) -> bytes:
        import gzip as gz

        with self._render_lock:
            if self._body_version != snap.version:
                self._body = render_text(families(snap))
                self._gz_body = b""
                self._body_version = snap.version
            body = self._body
            if gzip and not self._gz_body:
                self._gz_body = gz.compress(body, compresslevel=6, mtime=0)
            gz_body = self._gz_body
        age = _AGE_HEAD + age_text
        if gzip:
            return gz_body + _gzip_stored(age)
        return body + age


def _age_text(snap: Snapshot, now: float) -> bytes:
    """The freshness sample line, to the millisecond."""
    return f"{AGE_SERIES} {_age(snap, now):.3f}\n".encode()


def _gzip_stored(data: bytes) -> bytes:
    """A gzip member holding ``data`` uncompressed (RFC 1951 stored block; < 64 KiB): the age line
    changes every scrape and is too short to be worth compressing (a compressor costs ~100x more)."""
    import struct
    import zlib

    n = len(data)
    return (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # magic, deflate, no flags, mtime 0, OS unknown
        + b"\x01"  # final block, stored
        + struct.pack("<HH", n, n ^ 0xFFFF)
        + data
        + struct.pack("<II", zlib.crc32(data), n)
    )


_AGE_HEAD = f"# HELP {AGE_SERIES} {_AGE_TEXT}\n# TYPE {AGE_SERIES} gauge\n".encode()


class RigkitCollector:
    """prometheus-client custom collector over an :class:`ExporterCache` (reads only the cache)."""

    def __init__(self, cache: ExporterCache) -> None:
        self.cache = cache

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for f in families(self.cache.snapshot(), age_now=time.time()):
            label_names = [k for k, _ in f.samples[0][0]] if f.samples else []
            fam: Metric
            if f.type == "counter":
                fam = CounterMetricFamily(f.name, f.help, labels=label_names)
            else:
                fam = GaugeMetricFamily(f.name, f.help, labels=label_names)
            for labels, value in f.samples:
                fam.add_metric([v for _, v in labels], value)
            yield fam


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9842`` for IPv6, ``:9842`` for 127.0.0.1) -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise MonitorError(f"--listen: expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise MonitorError(f"--listen: port must be a number, got {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise MonitorError(f"--listen: port out of range: {port}")
    return host, port


_MAX_HEAD = 16384
IDLE_TIMEOUT_S = 300.0  # keep-alive connections idle longer than this are closed
_CT_METRICS = b"text/plain; version=0.0.4; charset=utf-8"


def _response(
    status: bytes, ctype: bytes, body: bytes, keep: bool, head_only: bool, gzip: bool = False
) -> bytes:
    head = (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: "
        + ctype
        + (b"\r\nContent-Encoding: gzip" if gzip else b"")
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + (b"\r\n" if keep else b"\r\nConnection: close\r\n")
        + b"\r\n"
    )
    return head if head_only else head + body


class _Conn:
    """One client connection: what came in, what is left to send, and when it was last active."""

    __slots__ = ("closing", "inbuf", "last", "last_head", "last_plan", "out", "sock", "writing")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.inbuf = b""
        self.out = b""
        self.last = now
        self.closing = False  # close once ``out`` is sent
        self.writing = False  # registered for EVENT_WRITE (a partial send is pending)
        # a scraper sends the same request every time: remember what the last one asked for
        self.last_head = b""
        self.last_plan = (False, False)  # (keep-alive, gzip)


def answer(cache: ExporterCache, conn: _Conn, head: bytes) -> tuple[bytes, bool]:
    """The response to one request head, and whether the connection stays open."""
    if head == conn.last_head:  # the same GET /metrics as before on this connection
        keep, gzip = conn.last_plan
        return cache.response(gzip, keep), keep
    request_line, _, headers = head.partition(b"\r\n")
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return _response(b"400 Bad Request", b"text/plain", b"bad request\n", False, False), False
    method, target, version = parts
    lowered = headers.lower()
    keep = (version == b"HTTP/1.1" and b"connection: close" not in lowered) or (
        b"connection: keep-alive" in lowered
    )
    head_only = method == b"HEAD"
    path = target.split(b"?", 1)[0]
    if method not in (b"GET", b"HEAD"):
        out = _response(b"405 Method Not Allowed", b"text/plain", b"GET only\n", keep, head_only)
    elif path == b"/metrics":
        gzip = b"gzip" in lowered.partition(b"accept-encoding:")[2].split(b"\r\n", 1)[0]
        if head_only:
            body = cache.render(gzip=gzip)
            out = _response(b"200 OK", _CT_METRICS, body, keep, head_only, gzip)
        else:
            conn.last_head, conn.last_plan = head, (keep, gzip)
            out = cache.response(gzip, keep)
    elif path == b"/":
        page = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'
        out = _response(b"200 OK", b"text/html; charset=utf-8", page, keep, head_only)
    else:
        out = _response(b"404 Not Found", b"text/plain", b"not found\n", keep, head_only)
    return out, keep


class ExporterServer:
    """The /metrics HTTP server, serving from ``cache`` on its own thread.

    A plain ``selectors`` loop (one thread however many scrapers connect): HTTP/1.1 keep-alive,
    GET/HEAD only, no request bodies; partial sends are finished when the socket can take more;
    connections idle for ``idle_timeout_s`` are closed. Measured against asyncio's transports it
    costs about half the CPU per scrape (benchmarks/exporter_scrape.py).
    """

    def __init__(
        self,
        cache: ExporterCache,
        listen: str = DEFAULT_LISTEN,
        *,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        host, port = parse_listen(listen)
        self.host = host
        self.cache = cache
        self.idle_timeout_s = idle_timeout_s
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._lsock = socket.create_server((host, port), family=family, backlog=1024)
        except OSError as err:
            raise MonitorError(f"cannot listen on {listen}: {err.strerror}") from err
        self._lsock.setblocking(False)
        self.port = int(self._lsock.getsockname()[1])
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._lsock, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._conns: dict[socket.socket, _Conn] = {}
        self._stopping = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="rigkit-exporter", daemon=True)
        self._thread.start()
        log.info("exporter listening on %s", self.url)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def _run(self) -> None:
        sweep_every = min(1.0, self.idle_timeout_s / 2)
        next_sweep = time.monotonic() + sweep_every
        try:
            while not self._stopping:
                for key, mask in self._sel.select(timeout=sweep_every):
                    if key.fileobj is self._lsock:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        with contextlib.suppress(BlockingIOError):
                            self._wake_r.recv(64)
                    else:
                        conn = key.data
                        assert isinstance(conn, _Conn)
                        if mask & selectors.EVENT_READ:
                            self._read(conn)
                        if mask & selectors.EVENT_WRITE and conn.sock in self._conns:
                            self._flush(conn)
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + sweep_every
                    for conn in [c for c in self._conns.values()]:
                        if now - conn.last >= self.idle_timeout_s:
                            self._drop(conn)
        except Exception:  # process boundary: the exporter thread must log why it stopped
            log.exception("exporter stopped")
        finally:
            for conn in list(self._conns.values()):
                self._drop(conn)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # e.g. too many open files: keep serving the others
                log.warning("exporter: accept failed: %s", err)
                return
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, time.monotonic())
            self._conns[sock] = conn
            self._sel.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            self._drop(conn)
            return
        conn.last = time.monotonic()
        if conn.closing:
            return  # answering nothing more on a connection that is closing
        conn.inbuf += data
        while b"\r\n\r\n" in conn.inbuf:
            head, _, conn.inbuf = conn.inbuf.partition(b"\r\n\r\n")
            out, keep = answer(self.cache, conn, head)
            conn.out = conn.out + out if conn.out else out  # usually empty: no copy
            if not keep:
                conn.closing = True
                conn.inbuf = b""
                break
        if len(conn.inbuf) > _MAX_HEAD:
            conn.out += _response(
                b"431 Request Header Fields Too Large", b"text/plain", b"", False, False
            )
            conn.closing = True
            conn.inbuf = b""
        self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._drop(conn)
                return
            conn.out = conn.out[sent:]
        if conn.out:
            if not conn.writing:
                conn.writing = True
                self._sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
            return
        if conn.closing:
            self._drop(conn)
        elif conn.writing:
            conn.writing = False
            self._sel.modify(conn.sock, selectors.EVENT_READ, conn)

    def _drop(self, conn: _Conn) -> None:
        if self._conns.pop(conn.sock, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(conn.sock)
        conn.sock.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            log.warning("exporter did not stop within 5 s")
            return
        self._sel.close()
        for sock in (self._lsock, self._wake_r, self._wake_w):
            sock.close()
