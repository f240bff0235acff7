"""Prometheus exporter: /metrics served from a cache the agent updates once per sample.

A scrape never calls NVML or reads the store: the agent calls :meth:`ExporterCache.update` after
each sample, which renders the exposition text once (through :class:`RigkitCollector`, a
prometheus-client custom collector); a scrape returns those bytes plus the freshness gauge
``rigkit_sample_age_seconds`` computed at scrape time. The HTTP server is threaded and binds
127.0.0.1 unless told otherwise.

Metric names (units in the name, Prometheus base units): see :data:`GPU_METRICS_PROM` and
docs/monitor.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

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

_AGE_HELP = (
    b"# HELP rigkit_sample_age_seconds Seconds since the latest sample was collected"
    b" (-1: no sample yet).\n# TYPE rigkit_sample_age_seconds gauge\n"
)


@dataclass(frozen=True)
class Snapshot:
    """What the exporter shows, replaced as a whole on each update (readers never see a mix)."""

    sample: Sample | None = None
    alerts: tuple[Event, ...] = ()
    xid_totals: tuple[tuple[tuple[int, int], int], ...] = ()
    samples_total: int = 0
    last_wall_time: float | None = None
    version: int = 0


class ExporterCache:
    """The latest sample and active alerts, and the exposition text rendered from them.

    ``update`` (the agent, once per sample) only swaps in a new :class:`Snapshot`; the text is
    rendered by the first scrape after an update and reused by the scrapes that follow, so the
    agent pays nothing for samples nobody scrapes, and a scrape never reads a source.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._snap = Snapshot()
        self._xid: dict[tuple[int, int], int] = {}
        self._body = b""
        self._body_version = -1
        self._collector = RigkitCollector(self, include_age=False)

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
            )

    def render(self) -> bytes:
        """What a scrape returns: the text for the latest snapshot and the sample age now."""
        from prometheus_client import CollectorRegistry, generate_latest

        snap = self._snap
        with self._render_lock:
            if self._body_version != snap.version:
                registry = CollectorRegistry(auto_describe=False)
                registry.register(_Fixed(self._collector, snap))
                self._body = generate_latest(registry)
                self._body_version = snap.version
            body = self._body
        wall = snap.last_wall_time
        age = -1.0 if wall is None else max(0.0, self._clock() - wall)
        return body + _AGE_HELP + f"rigkit_sample_age_seconds {age:.3f}\n".encode()


class _Fixed:
    """Collects one given snapshot (so a render is consistent even while the agent updates)."""

    def __init__(self, collector: RigkitCollector, snap: Snapshot) -> None:
        self._collector = collector
        self._snap = snap

    def collect(self) -> Iterator[Metric]:
        return self._collector.collect_snapshot(self._snap)


class RigkitCollector:
    """prometheus-client custom collector over an :class:`ExporterCache` (reads only the cache)."""

    def __init__(self, cache: ExporterCache, *, include_age: bool = True) -> None:
        self.cache = cache
        self.include_age = include_age

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        return self.collect_snapshot(self.cache.snapshot())

    def collect_snapshot(self, c: Snapshot) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        sample = c.sample
        gl = ["gpu", "name"]
        if sample is not None:
            names = {g.index: g.name or "" for g in sample.gpus}
            for field, (metric, help_text, scale) in GPU_METRICS_PROM.items():
                fam = GaugeMetricFamily(metric, help_text, labels=gl)
                for g in sample.gpus:
                    v = getattr(g, field)
                    if v is not None:
                        fam.add_metric([str(g.index), names[g.index]], float(v) * scale)
                yield fam
            lost = GaugeMetricFamily(
                "rigkit_gpu_lost", "1 if the GPU fell off the bus or did not answer.", labels=gl
            )
            throttle = GaugeMetricFamily(
                "rigkit_gpu_throttle",
                "1 while the clock-event (throttle) reason is active.",
                labels=[*gl, "reason"],
            )
            ecc = GaugeMetricFamily(
                "rigkit_gpu_ecc_uncorrected_errors",
                "Uncorrected ECC errors (aggregate).",
                labels=gl,
            )
            remap = GaugeMetricFamily(
                "rigkit_gpu_remapped_rows_pending",
                "1 if a row remap is pending (reset needed).",
                labels=gl,
            )
            for g in sample.gpus:
                lab = [str(g.index), names[g.index]]
                lost.add_metric(lab, 1.0 if g.lost else 0.0)
                if g.throttle_reasons is not None:
                    active = set(g.throttle_reasons)
                    for r in THROTTLE_REASONS:
                        throttle.add_metric([*lab, r], 1.0 if r in active else 0.0)
                if g.ecc_uncorrected is not None:
                    ecc.add_metric(lab, float(g.ecc_uncorrected))
                if g.remapped_rows_pending is not None:
                    remap.add_metric(lab, 1.0 if g.remapped_rows_pending else 0.0)
            yield lost
            yield throttle
            yield ecc
            yield remap
            xid = CounterMetricFamily(
                "rigkit_gpu_xid", "XID events seen since the agent started.", labels=[*gl, "xid"]
            )
            for (index, code), n in c.xid_totals:
                xid.add_metric([str(index), names.get(index, ""), str(code)], float(n))
            yield xid
            host = sample.host
            if host is not None:
                for field, (metric, help_text, scale) in HOST_METRICS_PROM.items():
                    v = getattr(host, field)
                    if v is not None:
                        yield GaugeMetricFamily(metric, help_text, value=float(v) * scale)
                for field, (metric, help_text, scale) in DISK_METRICS_PROM.items():
                    fam = GaugeMetricFamily(metric, help_text, labels=["disk"])
                    for d in host.disks:
                        v = getattr(d, field)
                        if v is not None:
                            fam.add_metric([d.name], float(v) * scale)
                    yield fam
        alert = GaugeMetricFamily(
            "rigkit_alert_active", "1 for each active alert.", labels=["rule", "severity", "gpu"]
        )
        for e in c.alerts:
            alert.add_metric([e.rule, e.severity, "" if e.gpu is None else str(e.gpu)], 1.0)
        yield alert
        yield CounterMetricFamily(
            "rigkit_samples",
            "Samples collected since the agent started.",
            value=float(c.samples_total),
        )
        if c.last_wall_time is not None:
            yield GaugeMetricFamily(
                "rigkit_last_sample_timestamp_seconds",
                "Unix time at which the latest sample was collected.",
                value=c.last_wall_time,
            )
        if self.include_age:
            age = -1.0 if c.last_wall_time is None else max(0.0, time.time() - c.last_wall_time)
            yield GaugeMetricFamily(
                "rigkit_sample_age_seconds",
                "Seconds since the latest sample was collected (-1: no sample yet).",
                value=age,
            )


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


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body = self.server.cache.render()
            ctype = "text/plain; version=0.0.4; charset=utf-8"
            status = 200
        elif path == "/":
            body = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'
            ctype, status = "text/html; charset=utf-8", 200
        else:
            body, ctype, status = b"not found\n", "text/plain; charset=utf-8", 404
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("exporter: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, addr: tuple[str, int], cache: ExporterCache) -> None:
        import socket

        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.cache = cache
        super().__init__(addr, _Handler)


class ExporterServer:
    """The /metrics HTTP server, serving from ``cache`` in a background thread."""

    def __init__(self, cache: ExporterCache, listen: str = DEFAULT_LISTEN) -> None:
        host, port = parse_listen(listen)
        try:
            self._server = _Server((host, port), cache)
        except OSError as err:
            raise MonitorError(f"cannot listen on {listen}: {err.strerror}") from err
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="rigkit-exporter", daemon=True
        )
        self._thread.start()
        log.info("exporter listening on http://%s:%d/metrics", host, self.port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
