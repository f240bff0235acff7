"""The NVML session (rigkit.nvml.Nvml) on a fake pynvml: one policy for every caller."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_nvml import FakeNvml

from rigkit.nvml import GpuReadout, Lost, Nvml, NvmlCallError
from rigkit.nvml.codes import (
    APPLICATION_XIDS,
    CRITICAL_XIDS,
    HW_SLOWDOWN_REASONS,
    THROTTLE_REASONS,
    reason_mask,
    reason_names,
    xid_class,
)

SRC = Path(__file__).resolve().parents[2] / "src"


def test_exactly_one_module_imports_pynvml() -> None:
    importers = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "pynvml" or n.startswith("pynvml.") for n in names):
                importers.append(path.relative_to(SRC).as_posix())
    assert importers == ["rigkit/nvml/session.py"]


def test_not_supported_and_no_permission_are_missing_values_with_the_reason() -> None:
    fake = FakeNvml()
    fake.unsupported = {"fan"}
    fake.no_permission = {"limit"}
    nv = Nvml(fake)
    r = nv.read(0)
    assert isinstance(r, GpuReadout)
    assert r.fan_pct is None and r.missing["fan_pct"] == "not supported"
    assert r.power_limit_w is None and r.missing["power_limit_w"] == "no permission"
    # GeForce: ECC and row remapping not supported; everything else has a value
    assert dict(r.missing) == {
        "fan_pct": "not supported",
        "power_limit_w": "no permission",
        "ecc_uncorrected": "not supported",
        "remapped_rows_pending": "not supported",
    }
    assert r.temperature_c == 70 and r.power_w == 402.5  # 402,500 mW
    nv.close()
    assert fake.shutdown_called


def test_gpu_lost_is_a_lost_state_never_none_values() -> None:
    fake = FakeNvml(count=3)
    nv = Nvml(fake)
    fake.lost = {1}
    r0, r1, r2 = nv.read_all()
    assert isinstance(r1, Lost) and not r1.hung and "15" in r1.reason  # NVML_ERROR_GPU_IS_LOST
    assert isinstance(r0, GpuReadout) and isinstance(r2, GpuReadout)
    assert r2.temperature_c == 72
    with pytest.raises(NvmlCallError, match="GPU lost"):
        nv.set_power_limit(1, 300)


def test_a_hung_gpu_does_not_hold_the_others_or_pile_up_threads() -> None:
    fake = FakeNvml(count=4)
    nv = Nvml(fake, timeout_s=0.2)
    release = threading.Event()
    fake.hang = {1: release}
    try:
        t0 = time.monotonic()
        first = nv.read_all()
        took = time.monotonic() - t0
        # the GPUs are read in parallel against one deadline: about 0.2 s, not 4 x 0.2 s
        assert took < 0.6
        assert [isinstance(r, Lost) for r in first] == [False, True, False, False]
        threads = threading.active_count()
        for _ in range(5):
            again = nv.read_all()
            assert isinstance(again[1], Lost) and again[1].hung
            assert "has not returned" in again[1].reason
        assert threading.active_count() == threads  # no new thread per try
        # that GPU's actions have a worker of their own: a hung read does not block them...
        fake.hang = {}
        nv.set_power_limit(2, 300)
        assert fake.set_limits == [(2, 300000)]
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while isinstance(nv.read(1), Lost) and time.monotonic() < deadline:
        time.sleep(0.01)
    r = nv.read(1)
    assert isinstance(r, GpuReadout) and r.temperature_c == 71  # answers again once it returned


def test_a_hung_power_limit_call_times_out_and_reads_go_on() -> None:
    fake = FakeNvml(count=2)
    nv = Nvml(fake, timeout_s=0.2)
    release = threading.Event()
    fake.hang_calls = {"nvmlDeviceSetPowerManagementLimit": release}
    try:
        t0 = time.monotonic()
        with pytest.raises(NvmlCallError, match=r"did not answer within 0\.2 s"):
            nv.set_power_limit(0, 315)
        assert time.monotonic() - t0 < 1.0
        # the second try does not queue behind the hung call: refused at once
        t0 = time.monotonic()
        with pytest.raises(NvmlCallError, match="has not returned"):
            nv.set_power_limit(0, 315)
        assert time.monotonic() - t0 < 0.1
        r = nv.read(0)
        assert isinstance(r, GpuReadout) and r.temperature_c == 70
    finally:
        release.set()


def test_power_limit_is_set_in_milliwatts() -> None:
    fake = FakeNvml()
    nv = Nvml(fake)
    nv.set_power_limit(1, 315.4)
    assert fake.set_limits == [(1, 315400)]
    with pytest.raises(NvmlCallError, match="NVML sees GPUs 0-1"):
        nv.set_power_limit(5, 300)


def test_a_hung_event_wait_gives_no_xids_not_a_hung_caller() -> None:
    fake = FakeNvml()
    nv = Nvml(fake, timeout_s=0.2)
    fake.events = [SimpleNamespace(device=1, eventData=79)]
    assert nv.xids(0) == [(1, 79)]
    release = threading.Event()
    fake.hang_calls = {"nvmlEventSetWait_v2": release}
    try:
        t0 = time.monotonic()
        assert nv.xids(0) == []
        assert time.monotonic() - t0 < 1.0
    finally:
        release.set()


def test_a_driver_that_hangs_at_start_up_is_unavailable() -> None:
    from rigkit.nvml import NvmlUnavailable

    fake = FakeNvml()
    release = threading.Event()
    fake.nvmlInit = lambda: release.wait(5)  # type: ignore[method-assign]
    try:
        with pytest.raises(NvmlUnavailable, match=r"nvmlInit did not answer within 0\.2 s"):
            Nvml(fake, timeout_s=0.2)
    finally:
        release.set()


def test_one_table_of_codes() -> None:
    # shared/reference/facts.md: critical 48, 62, 64, 74, 79, 94, 95, 119, 120; application 13,
    # 31, 43, 63, 92
    assert CRITICAL_XIDS == (48, 62, 64, 74, 79, 94, 95, 119, 120)
    assert APPLICATION_XIDS == (13, 31, 43, 63, 92)
    assert (xid_class(79), xid_class(13), xid_class(8)) == ("critical", "application", "other")
    # bits: HwSlowdown 0x8, HwThermalSlowdown 0x40, HwPowerBrakeSlowdown 0x80
    assert HW_SLOWDOWN_REASONS == ("hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")
    assert reason_mask(list(HW_SLOWDOWN_REASONS)) == 0x8 + 0x40 + 0x80
    # 0x84 = SwPowerCap (0x4) + HwPowerBrakeSlowdown (0x80)
    assert reason_names(0x84) == ("sw_power_cap", "hw_power_brake_slowdown")
    assert THROTTLE_REASONS[0] == "idle" and THROTTLE_REASONS[5] == "sw_thermal_slowdown"


def test_the_monitor_and_qa_use_the_same_table() -> None:
    from rigkit.bench.qa.checks import soak
    from rigkit.monitor import alerts, sample

    assert alerts.CRITICAL_XIDS is CRITICAL_XIDS and soak.CRITICAL_XIDS is CRITICAL_XIDS
    assert alerts.APPLICATION_XIDS is APPLICATION_XIDS
    assert sample.THROTTLE_REASONS is THROTTLE_REASONS
    assert soak.HW_SLOWDOWN_REASONS is HW_SLOWDOWN_REASONS
