"""The Prometheus exporter: names, units, freshness, HTTP, and scrapes that never touch sources."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rigkit.errors import MonitorError
from rigkit.monitor.exporter import ExporterCache, ExporterServer, parse_listen
from rigkit.monitor.sample import DiskSample, Event, GpuSample, HostSample, Sample


def _sample(t: float = 50.0, xid: tuple[int, ...] = ()) -> Sample:
    return Sample(
        t=t,
        gpus=(
            GpuSample(
                index=0,
                name="NVIDIA GeForce RTX 4090",
                temperature_c=71,
                power_w=402.5,
                fan_pct=64,
                sm_clock_mhz=2520,
                util_pct=99,
                mem_used_mib=21000,
                throttle_reasons=("sw_power_cap",),
                xid=xid,
            ),
            GpuSample.lost_gpu(1, name="NVIDIA GeForce RTX 4090"),
        ),
        host=HostSample(
            cpu_temp_c=68, mem_used_pct=41, disks=(DiskSample("nvme0n1", temp_c=52, wear_pct=3),)
        ),
        source="test",
        wall_time=1000.0,
    )


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


G0 = (("gpu", "0"), ("name", "NVIDIA GeForce RTX 4090"))


def test_metric_values_are_in_base_units() -> None:
    now = [1002.5]
    cache = ExporterCache(clock=lambda: now[0])
    alert = Event(40.0, "raised", "gpu_temp_high", "warning", 0, "hot")
    cache.update(_sample(), [alert])
    v = _values(cache.render().decode())
    assert v[("rigkit_gpu_temperature_celsius", G0)] == 71
    assert v[("rigkit_gpu_power_watts", G0)] == 402.5
    assert v[("rigkit_gpu_fan_speed_ratio", G0)] == pytest.approx(0.64)  # 64 % -> 0.64
    assert v[("rigkit_gpu_sm_clock_hertz", G0)] == 2520e6  # 2520 MHz
    assert v[("rigkit_gpu_memory_used_bytes", G0)] == 21000 * 1048576  # MiB -> bytes
    assert v[("rigkit_gpu_throttle", (*G0, ("reason", "sw_power_cap")))] == 1
    assert v[("rigkit_gpu_throttle", (*G0, ("reason", "hw_slowdown")))] == 0
    assert v[("rigkit_gpu_lost", (("gpu", "1"), ("name", "NVIDIA GeForce RTX 4090")))] == 1
    assert v[("rigkit_host_cpu_temperature_celsius", ())] == 68
    assert v[("rigkit_host_memory_used_ratio", ())] == 0.41  # 41 % / 100, exactly
    assert v[("rigkit_disk_wear_ratio", (("disk", "nvme0n1"),))] == pytest.approx(0.03)
    assert (
        v[
            (
                "rigkit_alert_active",
                (("gpu", "0"), ("rule", "gpu_temp_high"), ("severity", "warning")),
            )
        ]
        == 1
    )
    assert v[("rigkit_last_sample_timestamp_seconds", ())] == 1000.0
    # age is computed at scrape time: 1002.5 - 1000.0
    assert v[("rigkit_sample_age_seconds", ())] == pytest.approx(2.5)
    now[0] = 1010.0
    assert _values(cache.render().decode())[("rigkit_sample_age_seconds", ())] == pytest.approx(
        10.0
    )
    # a lost GPU exports no temperature at all (not 0)
    assert (
        "rigkit_gpu_temperature_celsius",
        (("gpu", "1"), ("name", "NVIDIA GeForce RTX 4090")),
    ) not in v


def test_xid_counter_accumulates_per_code() -> None:
    cache = ExporterCache()
    cache.update(_sample(1, xid=(79,)))
    cache.update(_sample(2, xid=(79, 13)))
    cache.update(_sample(3))
    v = _values(cache.render().decode())
    assert v[("rigkit_gpu_xid_total", (*G0, ("xid", "79")))] == 2  # seen at t=1 and t=2
    assert v[("rigkit_gpu_xid_total", (*G0, ("xid", "13")))] == 1
    assert v[("rigkit_samples_total", ())] == 3


def test_no_sample_yet_reports_age_minus_one() -> None:
    v = _values(ExporterCache().render().decode())
    assert v[("rigkit_sample_age_seconds", ())] == -1


def test_http_server_serves_the_cache_only() -> None:
    cache = ExporterCache()
    cache.update(_sample())
    server = ExporterServer(cache, "127.0.0.1:0")
    try:
        assert server.url.startswith("http://127.0.0.1:")
        body = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert "rigkit_gpu_temperature_celsius" in body
        # the served body is the cached rendering, byte for byte up to the age line
        assert (
            body.split("# HELP rigkit_sample_age_seconds")[0]
            == cache.render().decode().split("# HELP rigkit_sample_age_seconds")[0]
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url.replace("/metrics", "/nope"), timeout=5)
        assert err.value.code == 404
        err.value.close()
    finally:
        server.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9842", ("127.0.0.1", 9842)),
        (":9100", ("127.0.0.1", 9100)),
        ("[::1]:80", ("::1", 80)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9842", "host:port", "127.0.0.1:70000"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(MonitorError):
        parse_listen(text)


def test_label_values_are_escaped() -> None:
    cache = ExporterCache()
    odd = 'GPU "quoted"\\back\nline'
    cache.update(Sample(t=1, gpus=(GpuSample(index=0, name=odd, temperature_c=40),), wall_time=1.0))
    v = _values(cache.render().decode())
    assert v[("rigkit_gpu_temperature_celsius", (("gpu", "0"), ("name", odd)))] == 40


def test_gzip_when_the_scraper_asks_for_it() -> None:
    import gzip
    import http.client

    cache = ExporterCache()
    cache.update(_sample())
    server = ExporterServer(cache, "127.0.0.1:0")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        r = conn.getresponse()
        raw = r.read()
        assert r.getheader("Content-Encoding") == "gzip"
        text = gzip.decompress(raw).decode()
        v = _values(text)
        assert v[("rigkit_gpu_temperature_celsius", G0)] == 71
        assert ("rigkit_sample_age_seconds", ()) in v
        assert len(raw) < len(text) / 3  # repetitive text: 5.5 kB for 2 GPUs gzips to about 1.4 kB
        conn.close()
    finally:
        server.close()


def test_series_constants_match_what_is_scraped() -> None:
    from rigkit.monitor import exporter as ex

    cache = ExporterCache()
    cache.update(_sample(xid=(79,)), [Event(1.0, "raised", "r", "critical", 0, "m")])
    names = {name for name, _ in _values(cache.render().decode())}
    for const in (
        ex.XID_SERIES,
        ex.SAMPLES_SERIES,
        ex.LOST_SERIES,
        ex.THROTTLE_SERIES,
        ex.ALERT_SERIES,
        ex.AGE_SERIES,
        ex.LAST_SAMPLE_SERIES,
    ):
        assert const in names


def test_expected_links_from_the_spec_are_exported_per_gpu() -> None:
    # A build with GPU 0 in an x16 slot and GPU 2 (absent from the sample) in an x8 slot.
    cache = ExporterCache(clock=lambda: 1001.0, expected_pcie=((0, 4, 16), (2, 4, 8)))
    cache.update(_sample())
    v = _values(cache.render().decode())
    assert v[("rigkit_gpu_expected", (("gpu", "0"),))] == 1
    assert v[("rigkit_gpu_expected", (("gpu", "2"),))] == 1  # in the spec, not answering
    assert v[("rigkit_gpu_pcie_expected_width", (("gpu", "0"),))] == 16
    assert v[("rigkit_gpu_pcie_expected_width", (("gpu", "2"),))] == 8
    assert v[("rigkit_gpu_pcie_expected_generation", (("gpu", "2"),))] == 4
    # without a spec nothing is exported (the Prometheus rule falls back to NVML's maximum)
    plain = ExporterCache(clock=lambda: 1001.0)
    plain.update(_sample())
    assert "rigkit_gpu_expected" not in plain.render().decode()


def _families(text: str) -> dict[str, tuple[str, str, dict[tuple[tuple[str, str], ...], float]]]:
    """family name -> (type, help, {(sample name + sorted labels): value})."""
    out = {}
    for fam in text_string_to_metric_families(text):
        samples = {(("__name__", s.name), *sorted(s.labels.items())): s.value for s in fam.samples}
        out[fam.name] = (fam.type, fam.documentation, samples)
    return out


def test_scrape_matches_the_fixture_captured_from_the_hand_written_exporter() -> None:
    """Every family, type, help text, label set and value the exporter served before it moved to
    prometheus_client (fixtures/exporter-scrape-0.0.4.prom, captured from the old renderer for
    the state in exporter_scrape_sample.py) is served the same today."""
    from pathlib import Path

    from exporter_scrape_sample import NAME, scrape_snapshot_cache  # tests/monitor/

    fixture = Path(__file__).parent / "fixtures" / "exporter-scrape-0.0.4.prom"
    before = _families(fixture.read_text(encoding="utf-8"))
    now = _families(scrape_snapshot_cache().render().decode())
    assert len(before) == 38  # 18 GPU gauges + lost, throttle, ECC, remap, XID + 3 host
    # + 5 disk + 3 expected-link + alert, samples, last timestamp, age
    assert sorted(now) == sorted(before)
    for name, (kind, help_text, samples) in before.items():
        assert now[name][0] == kind, name
        assert now[name][1] == help_text, name
        assert now[name][2] == samples, name
    # spot checks of the fixture itself: XID 79 seen once, two samples, age 1002.5 - 1000.0
    xid = before["rigkit_gpu_xid"][2]
    assert (
        xid[(("__name__", "rigkit_gpu_xid_total"), ("gpu", "0"), ("name", NAME), ("xid", "79"))]
        == 1
    )
    assert before["rigkit_samples"][2][(("__name__", "rigkit_samples_total"),)] == 2
    assert (
        before["rigkit_sample_age_seconds"][2][(("__name__", "rigkit_sample_age_seconds"),)] == 2.5
    )


def test_http_paths_and_methods() -> None:
    import http.client

    cache = ExporterCache()
    cache.update(_sample())
    server = ExporterServer(cache, "127.0.0.1:0")
    try:
        for _ in range(3):  # one request per connection: each GET on a new one
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            assert r.status == 200 and b"rigkit_gpu_power_watts" in r.read()
            assert r.getheader("Content-Type", "").startswith("text/plain; version=0.0.4")
            conn.close()
        answers = {}
        for method, path in (("POST", "/metrics"), ("GET", "/"), ("GET", "/nope")):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request(method, path, body=b"" if method == "POST" else None)
            r = conn.getresponse()
            answers[(method, path)] = (r.status, r.read())
            conn.close()
        assert answers[("POST", "/metrics")][0] == 405
        assert answers[("GET", "/")] == (
            200,
            b'<html><body><a href="/metrics">/metrics</a></body></html>\n',
        )
        assert answers[("GET", "/nope")][0] == 404
    finally:
        server.close()


def test_families_are_built_once_per_snapshot_and_age_at_each_scrape() -> None:
    from rigkit.monitor.exporter import RigkitCollector

    now = [1002.5]
    cache = ExporterCache(clock=lambda: now[0])
    cache.update(_sample())  # wall_time 1000.0
    collector = RigkitCollector(cache)
    first = list(collector.collect())
    now[0] = 1010.0
    second = list(collector.collect())
    # the same family objects for the same snapshot; only the age gauge is new
    assert all(a is b for a, b in zip(first[:-1], second[:-1], strict=True))
    assert first[-1].samples[0].value == 2.5  # 1002.5 - 1000.0
    assert second[-1].samples[0].value == 10.0  # 1010.0 - 1000.0
    cache.update(_sample(t=51.0))  # a new snapshot: new families (samples_total 1 -> 2)
    third = {m.name: m for m in collector.collect()}
    assert third["rigkit_samples"].samples[0].value == 2


def test_a_silent_client_is_dropped_after_the_request_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from rigkit.monitor import exporter as ex

    monkeypatch.setattr(ex._Handler, "timeout", 0.2)
    server = ExporterServer(ExporterCache(), "127.0.0.1:0")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")  # half a request, then nothing
            # the handler's socket times out after 0.2 s and closes: the client reads EOF
            assert s.recv(1024) == b""
    finally:
        server.close()


def test_scrapes_are_answered_while_slow_clients_hold_connections() -> None:
    """A bounded slowloris: 200 connections that send half a request and wait; a real scrape is
    still answered (each slow client holds one handler thread, none blocks the others). The
    benchmark's --slowloris mode runs the same with 1,500 connections."""
    import socket
    import time

    cache = ExporterCache()
    cache.update(_sample())
    server = ExporterServer(cache, "127.0.0.1:0")
    slow: list[socket.socket] = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        t0 = time.monotonic()
        body = urllib.request.urlopen(server.url, timeout=5).read()
        assert b"rigkit_gpu_temperature_celsius" in body
        assert time.monotonic() - t0 < 5
    finally:
        for s in slow:
            s.close()
        server.close()
