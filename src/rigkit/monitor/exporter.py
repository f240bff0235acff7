"""Prometheus exporter: /metrics served from a cache the agent updates once per sample.

A scrape never calls NVML or reads the store. The agent calls :meth:`ExporterCache.update` after
each sample, which only swaps in a new immutable :class:`Snapshot`. :class:`RigkitCollector`, a
prometheus_client custom collector, turns the snapshot into metric families (built once per
snapshot, reused by later scrapes); the freshness gauge ``rigkit_sample_age_seconds`` is
computed at each scrape. prometheus_client encodes the text (format 0.0.4, gzip when the scraper
asks) and serves it from its threaded WSGI server, which binds 127.0.0.1 unless told otherwise.

Metric names (units in the name, Prometheus base units): see :data:`GPU_METRICS_PROM` and
docs/monitor.md.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer

from rigkit.errors import MonitorError
from rigkit.monitor.sample import THROTTLE_REASONS, Event, Sample

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


def families(snap: Snapshot) -> list[Family]:
    """The metric families of a snapshot (all but the age gauge, which changes every scrape)."""
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
    return out


_AGE_TEXT = "Seconds since the latest sample was collected (-1: no sample yet)."


def _age(snap: Snapshot, now: float) -> float:
    wall = snap.last_wall_time
    return -1.0 if wall is None else max(0.0, now - wall)


class ExporterCache:
    """The latest sample and active alerts, as the exporter shows them.

    ``update`` (the agent, once per sample) only swaps in a new :class:`Snapshot`; scrapes read
    the snapshot through :class:`RigkitCollector` and never read a source or the store.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        expected_pcie: Sequence[tuple[int, int, int]] = (),
    ) -> None:
        """``expected_pcie``: (gpu index, gen, width) from the build spec (``--spec``), exported as
        rigkit_gpu_pcie_expected_generation/width for the Prometheus PCIe rule."""
        self.clock = clock
        self._lock = threading.Lock()
        self._snap = Snapshot(expected_pcie=tuple(expected_pcie))
        self._xid: dict[tuple[int, int], int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RigkitCollector(self))

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

    def render(self) -> bytes:
        """What a scrape returns now (text format 0.0.4, prometheus_client's encoder)."""
        return bytes(generate_latest(self.registry))


def _metric(f: Family) -> Metric:
    label_names = [k for k, _ in f.samples[0][0]] if f.samples else []
    fam: Metric
    if f.type == "counter":
        fam = CounterMetricFamily(f.name, f.help, labels=label_names)
    else:
        fam = GaugeMetricFamily(f.name, f.help, labels=label_names)
    for labels, value in f.samples:
        fam.add_metric([v for _, v in labels], value)
    return fam


class RigkitCollector:
    """prometheus_client custom collector over an :class:`ExporterCache` (reads only the cache).

    The families of a snapshot are built once, by the first scrape after an update; later scrapes
    of the same snapshot reuse them and add only the freshness gauge, computed at each scrape.
    """

    def __init__(self, cache: ExporterCache) -> None:
        self.cache = cache
        self._lock = threading.Lock()
        self._built: tuple[int, tuple[Metric, ...]] | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snap = self.cache.snapshot()
        with self._lock:
            built = self._built
            if built is None or built[0] != snap.version:
                built = (snap.version, tuple(_metric(f) for f in families(snap)))
                self._built = built
        yield from built[1]
        age = GaugeMetricFamily(AGE_SERIES, _AGE_TEXT)
        age.add_metric([], _age(snap, self.cache.clock()))
        yield age


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


#: A client that sends nothing for this long (a slow or stuck connection, a slowloris) is dropped,
#: so it holds its handler thread for at most this long per byte it trickles in.
REQUEST_TIMEOUT_S = 10.0


class _Handler(WSGIRequestHandler):
    """wsgiref's handler with a socket timeout, quiet about dropped and timed-out clients."""

    timeout = REQUEST_TIMEOUT_S

    def handle(self) -> None:
        try:
            super().handle()
        except (TimeoutError, ConnectionError) as err:
            log.debug("exporter: client %s dropped: %s", self.client_address, err)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing per request."""


class _Server(ThreadingWSGIServer):
    """prometheus_client's thread-per-connection WSGI server, with a longer accept queue."""

    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("exporter: request from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


_INDEX = b'<html><body><a href="/metrics">/metrics</a></body></html>\n'


def wsgi_app(cache: ExporterCache) -> Callable[..., Iterable[bytes]]:
    """The exporter as a WSGI application: ``/metrics`` is prometheus_client's app over the
    cache's registry (gzip when asked for, GET only), ``/`` a link to it, anything else 404."""
    metrics = make_wsgi_app(cache.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [_INDEX]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


class ExporterServer:
    """The /metrics HTTP server, serving from ``cache`` on its own thread.

    prometheus_client's ``ThreadingWSGIServer`` (one thread per connection, one request per
    connection) running :func:`wsgi_app`; binds 127.0.0.1 unless told otherwise. A client that
    stays silent for :data:`REQUEST_TIMEOUT_S` is dropped (benchmarks/exporter_scrape.py
    ``--slowloris`` measures scrapes while 1,500 such connections are open).
    """

    def __init__(self, cache: ExporterCache, listen: str = DEFAULT_LISTEN) -> None:
        host, port = parse_listen(listen)
        self.host = host
        self.cache = cache
        cls = _Server6 if ":" in host else _Server
        try:
            self._httpd = cls((host, port), _Handler)
        except OSError as err:
            raise MonitorError(f"cannot listen on {listen}: {err.strerror or err}") from err
        self._httpd.set_app(wsgi_app(cache))
        self.port = int(self._httpd.server_address[1])
        self._closed = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},  # how soon close() is noticed
            name="rigkit-exporter",
            daemon=True,
        )
        self._thread.start()
        log.info("exporter listening on %s", self.url)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._thread.join(timeout=5)
        self._httpd.server_close()
