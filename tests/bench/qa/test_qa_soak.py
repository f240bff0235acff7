"""Soak analysis on recorded replays (tests/fixtures/qa/soak_*.jsonl, see make_soak_replays.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pynvml
import pytest
from qa_fakes import FIXTURES, FakeProbe, make_build

from rigkit.bench.qa.checks import soak
from rigkit.bench.qa.gpu import GpuDevice, GpuReading
from rigkit.bench.qa.result import CheckResult, QaContext
from rigkit.errors import BenchError


def replay(name: str, **ctx: object) -> dict[str, CheckResult]:
    results = soak.run(QaContext(soak_replay=FIXTURES / name, **ctx))  # type: ignore[arg-type]
    return {r.name: r for r in results}


def test_cv_and_slope_by_hand() -> None:
    # 2400, 2600: mean 2500, population std 100 -> 0.04
    assert soak.coefficient_of_variation([2400, 2600, 2400, 2600]) == pytest.approx(0.04)
    assert soak.coefficient_of_variation([2500]) is None
    # 0.5 C per 10 s = 3 C/min
    assert soak.slope_per_minute([(0, 60.0), (10, 60.5), (20, 61.0)]) == pytest.approx(3.0)
    assert soak.slope_per_minute([(5, 60.0), (5, 61.0)]) is None


def test_healthy_soak_passes() -> None:
    r = replay("soak_healthy.jsonl")
    assert {x.status for x in r.values()} == {"pass"}
    # t = 0..59; warm-up is the first 20% of 59 s, so t >= 11.8 -> 48 samples, 24 at 2500 MHz
    # and 24 at 2540 MHz: mean 2520, std 20, CV 20 / 2520 = 0.0079
    assert r["soak-clocks"].measured["gpu0_sm_clock_mean_mhz"] == 2520.0
    assert r["soak-clocks"].measured["gpu0_sm_clock_cv"] == pytest.approx(0.0079, abs=1e-4)
    # last quarter (t >= 44.25) is flat at 70 C
    assert r["soak-temperature"].measured["gpu0_peak_c"] == 70.0
    assert r["soak-temperature"].measured["gpu0_end_slope_c_per_min"] == 0.0
    assert r["soak-xid"].measured["samples"] == 60


def test_hardware_xid_fails_application_xid_warns() -> None:
    r = replay("soak_xid79.jsonl")
    assert r["soak-xid"].status == "fail"
    assert r["soak-xid"].reason == "GPU 0: XID 79 at t=30"
    assert r["soak-alerts"].status == "fail"  # the monitor's gpu_xid_critical rule
    assert "gpu_xid_critical" in r["soak-alerts"].reason
    r = replay("soak_xid13.jsonl")
    assert r["soak-xid"].status == "warn"
    assert r["soak-xid"].measured["application_xids"] == 1


def test_hw_slowdown_fails() -> None:
    r = replay("soak_hw_slowdown.jsonl")
    assert r["soak-hw-slowdown"].status == "fail"
    # hw_slowdown set for t = 20..39: 20 of the 60 samples
    assert r["soak-hw-slowdown"].reason.startswith("GPU 0 in hardware slowdown in 20 of 60 samples")


def test_unstable_clocks_fail() -> None:
    r = replay("soak_unstable_clocks.jsonl")
    # 2200 / 2800 alternating: mean 2500, std 300, CV 0.12 > 0.10
    assert r["soak-clocks"].measured["gpu0_sm_clock_cv"] == pytest.approx(0.12)
    assert r["soak-clocks"].status == "fail"


def test_rising_temperature_warns() -> None:
    r = replay("soak_rising_temp.jsonl")
    # 40 + 0.05 t: 0.05 C/s = 3 C/min > 1 C/min; peak 40 + 0.05 x 59 = 42.95 C
    assert r["soak-temperature"].measured["gpu0_end_slope_c_per_min"] == pytest.approx(3.0)
    assert r["soak-temperature"].measured["gpu0_peak_c"] == pytest.approx(42.95)
    assert r["soak-temperature"].status == "warn"
    assert "no plateau" in r["soak-temperature"].reason


def test_peak_near_slowdown_uses_the_catalog_limit() -> None:
    build = make_build(gpus=1)
    hot = build.gpus[0].gpu.model_copy(update={"slowdown_temp_c": 72.0})
    hot_build = replace(build, gpus=(replace(build.gpus[0], gpu=hot),))
    r = replay("soak_healthy.jsonl", build=hot_build)
    # peak 70 C is 2 C under the 72 C slowdown point: within the 5 C headroom -> warn
    assert r["soak-temperature"].status == "warn"
    assert r["soak-temperature"].expected["gpu0_slowdown_c"] == 72.0
    assert "within 2 C of slowdown" in r["soak-temperature"].reason


def test_bad_replay_is_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 0, "gpus": []}\nnot json\n')
    with pytest.raises(BenchError, match=r"bad.jsonl:2"):
        soak.run(QaContext(soak_replay=bad))


def test_soak_not_requested_or_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    [r] = soak.run(QaContext())
    assert r.status == "skip" and "--soak-seconds" in r.reason

    def init() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    monkeypatch.setattr(pynvml, "nvmlInit", init)
    [r] = soak.run(QaContext(soak_seconds=5))
    assert r.status == "skip"
    assert r.reason.startswith("no GPU to soak: NVML not available: no NVIDIA driver found")


def test_live_soak_on_a_fake_probe_records_a_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(soak, "load_torch", lambda: (None, "PyTorch not installed"))
    reading = GpuReading(
        0, temp_c=60.0, sm_clock_mhz=2500.0, power_w=300.0, clocks_event_reasons=0x4
    )
    probe = FakeProbe([GpuDevice(0, "NVIDIA GeForce RTX 4090")], [reading])
    out = tmp_path / "soak.jsonl"
    results = soak.run(QaContext(gpu_probe=probe, soak_seconds=0.05, soak_record=out))
    by = {r.name: r for r in results}
    assert by["soak-load"].status == "warn"  # nothing loaded the GPUs
    assert by["soak-xid"].status == "pass"
    samples = soak.load_replay(out)
    assert samples and samples[0].gpus[0].throttle_reasons == ("sw_power_cap",)  # bit 0x4


def test_unknown_xid_warns(tmp_path: Path) -> None:
    # the healthy recording with XID 45 (preemptive cleanup, neither hardware nor application)
    lines = (FIXTURES / "soak_healthy.jsonl").read_text().splitlines()
    lines[31] = lines[31].replace('"xid":[]', '"xid":[45]')  # line 0 is the comment: t = 30
    path = tmp_path / "xid45.jsonl"
    path.write_text("\n".join(lines) + "\n")
    r = {x.name: x for x in soak.run(QaContext(soak_replay=path))}
    assert r["soak-xid"].status == "warn"
    assert r["soak-xid"].measured["other_xids"] == 1
    assert "GPU 0: XID 45 at t=30" in r["soak-xid"].reason
