"""The replay format: Sample.from_dict / to_dict."""

from __future__ import annotations

import json

import pytest

from rigkit.errors import MonitorError
from rigkit.monitor.sample import GPU_METRICS, Event, GpuSample, HostSample, Sample

BRIEF_EXAMPLE = {
    "t": 12.0,
    "gpus": [
        {
            "index": 0,
            "name": "NVIDIA GeForce RTX 4090",
            "temperature_c": 71,
            "power_w": 402.5,
            "power_limit_w": 450,
            "fan_pct": 64,
            "sm_clock_mhz": 2520,
            "mem_clock_mhz": 10501,
            "util_pct": 99,
            "mem_used_mib": 21000,
            "mem_total_mib": 24564,
            "pcie_gen": 4,
            "pcie_width": 16,
            "throttle_reasons": ["sw_power_cap"],
            "xid": [],
        }
    ],
    "host": {
        "cpu_temp_c": 68,
        "load1": 12.1,
        "mem_used_pct": 41,
        "disks": [{"name": "nvme0n1", "temp_c": 52, "wear_pct": 3, "free_pct": 60}],
    },
}


def test_documented_example_reads_every_field() -> None:
    s = Sample.from_dict(BRIEF_EXAMPLE)
    g = s.gpus[0]
    assert s.t == 12.0
    assert (g.index, g.temperature_c, g.power_w, g.power_limit_w) == (0, 71, 402.5, 450)
    assert (g.fan_pct, g.sm_clock_mhz, g.mem_clock_mhz, g.util_pct) == (64, 2520, 10501, 99)
    assert (g.mem_used_mib, g.mem_total_mib, g.pcie_gen, g.pcie_width) == (21000, 24564, 4, 16)
    assert g.throttle_reasons == ("sw_power_cap",)
    assert g.xid == ()
    assert s.host is not None
    assert (s.host.cpu_temp_c, s.host.load1, s.host.mem_used_pct) == (68, 12.1, 41)
    d = s.host.disks[0]
    assert (d.name, d.temp_c, d.wear_pct, d.free_pct) == ("nvme0n1", 52, 3, 60)


def test_missing_keys_mean_not_available() -> None:
    s = Sample.from_dict({"t": 1, "gpus": [{"index": 2}]})
    g = s.gpus[0]
    # every numeric field absent from the line is None, not 0
    assert all(g.metric(m) is None for m in GPU_METRICS)
    assert g.throttle_reasons is None  # "not known", unlike [] = "no reason active"
    assert g.ecc_uncorrected is None and g.remapped_rows_pending is None
    assert s.host is None


def test_unknown_keys_are_ignored() -> None:
    s = Sample.from_dict({"t": 3, "future": 1, "gpus": [{"index": 0, "hotspot_c": 80}]})
    assert s.t == 3.0 and s.gpus[0].index == 0


def test_round_trip_through_json() -> None:
    s = Sample.from_dict(BRIEF_EXAMPLE)
    again = Sample.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again.gpus == s.gpus
    assert again.host == s.host
    # None fields are left out of the line, so a missing key round-trips as missing
    assert "slowdown_temp_c" not in s.to_dict()["gpus"][0]


def test_lost_gpu_has_no_values_even_if_the_line_has_some() -> None:
    s = Sample.from_dict({"t": 5, "gpus": [{"index": 1, "lost": True, "temperature_c": 50}]})
    g = s.gpus[0]
    assert g.lost is True
    assert g.temperature_c is None
    assert GpuSample.lost_gpu(3).to_dict() == {"index": 3, "xid": [], "lost": True}


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        ({"gpus": []}, "'t'"),
        ({"t": "now"}, "t: expected a number"),
        ({"t": 1, "gpus": [{"index": "0"}]}, "'index' must be an integer"),
        ({"t": 1, "gpus": [{"index": 0, "power_w": "400W"}]}, "gpus[0].power_w"),
        ({"t": 1, "gpus": [{"index": 0, "xid": [79, "x"]}]}, "gpus[0].xid"),
        ({"t": 1, "gpus": [{"index": 0, "temperature_c": True}]}, "temperature_c"),
        ({"t": 1, "host": {"disks": [{"temp_c": 3}]}}, "host.disks[0]"),
        ([1, 2], "expected an object"),
    ],
)
def test_bad_values_name_the_field(obj: object, needle: str) -> None:
    with pytest.raises(MonitorError) as err:
        Sample.from_dict(obj)  # type: ignore[arg-type]
    assert needle in str(err.value)


def test_event_to_dict_has_the_documented_keys() -> None:
    e = Event(
        t=10.0,
        kind="action",
        rule="thermal_tier1",
        severity="critical",
        gpu=0,
        message="m",
        tier=1,
        dry_run=True,
    )
    d = e.to_dict()
    assert {"t", "kind", "rule", "severity", "gpu", "message", "tier", "dry_run"} <= set(d)
    assert (d["kind"], d["tier"], d["dry_run"], d["gpu"]) == ("action", 1, True, 0)
    assert Event.from_dict(d) == e


def test_host_net_rates_round_trip() -> None:
    h = HostSample(load1=1.5, net={"eth0_rx_bytes_s": 1250.0})
    assert HostSample.from_dict(h.to_dict()) == h
