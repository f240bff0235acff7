"""The monitor's NVML source over an NVML session on a fake pynvml module."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from fake_nvml import DRIVER_NOT_LOADED, LIBRARY_NOT_FOUND, FakeNvml

from rigkit.errors import MonitorError
from rigkit.monitor.sources.nvml import NvmlSource
from rigkit.nvml import Nvml, NvmlUnavailable


def test_values_are_converted_to_the_sample_units() -> None:
    src = NvmlSource(Nvml(FakeNvml()))
    s = src.read()
    g = s.gpus[0]
    assert (g.name, g.uuid, g.pci_bus_id) == (
        "NVIDIA GeForce RTX 4090",
        "GPU-0",
        "00000000:01:00.0",
    )
    assert (g.temperature_c, g.slowdown_temp_c, g.shutdown_temp_c, g.thermal_margin_c) == (
        70,
        88,
        93,
        18,
    )
    assert (g.power_w, g.power_limit_w, g.default_power_limit_w, g.min_power_limit_w) == (
        402.5,
        450,
        450,
        150,
    )
    assert (g.fan_pct, g.sm_clock_mhz, g.mem_clock_mhz, g.util_pct) == (64, 2520, 10501, 99)
    assert (g.mem_used_mib, g.mem_total_mib) == (21000, 24564)
    assert (g.pcie_gen, g.pcie_width, g.pcie_max_gen, g.pcie_max_width) == (4, 16, 4, 16)
    assert s.gpus[1].pcie_width == 8
    # 0x84 = bit 2 (SwPowerCap) + bit 7 (HwPowerBrakeSlowdown)
    assert g.throttle_reasons == ("sw_power_cap", "hw_power_brake_slowdown")
    # GeForce: ECC and row remapping not supported -> not available, not an error
    assert g.ecc_uncorrected is None and g.remapped_rows_pending is None
    src.close()


def test_not_supported_becomes_none_and_margin_is_derived() -> None:
    fake = FakeNvml()
    fake.unsupported = {"fan", "margin"}
    g = NvmlSource(Nvml(fake)).read().gpus[0]
    assert g.fan_pct is None
    # margin derived from slowdown - temperature = 88 - 70
    assert g.thermal_margin_c == 18
    assert g.temperature_c == 70


@pytest.mark.parametrize("code", [DRIVER_NOT_LOADED, LIBRARY_NOT_FOUND])
def test_missing_driver_is_an_error_at_start_up(code: int) -> None:
    with pytest.raises(NvmlUnavailable) as err:
        Nvml(FakeNvml(init_error=code))
    assert "NVML not available: no NVIDIA driver found" in str(err.value)


def test_the_source_says_so_on_a_machine_without_the_driver() -> None:
    # the real pynvml: on a machine without libnvidia-ml (this one, CI) nvmlInit answers
    # LIBRARY_NOT_FOUND, which the source turns into a MonitorError (exit status 2 in the CLI)
    try:
        Nvml().close()
    except NvmlUnavailable:
        pass
    else:
        pytest.skip("an NVIDIA driver is installed here")
    with pytest.raises(MonitorError, match="NVML not available: no NVIDIA driver found"):
        NvmlSource()


def test_gpu_lost_is_reported_not_fatal() -> None:
    fake = FakeNvml(count=3)
    src = NvmlSource(Nvml(fake))
    fake.lost = {1}
    s = src.read()
    assert [g.lost for g in s.gpus] == [False, True, False]
    assert s.gpus[1].temperature_c is None and s.gpus[1].name == "NVIDIA GeForce RTX 4090"
    assert s.gpus[2].temperature_c == 72


def test_a_hung_gpu_times_out_and_others_still_answer() -> None:
    fake = FakeNvml(count=3)
    src = NvmlSource(Nvml(fake, timeout_s=0.2))
    release = threading.Event()
    fake.hang = {2: release}
    t0 = time.monotonic()
    s = src.read()
    first = time.monotonic() - t0
    assert [g.lost for g in s.gpus] == [False, False, True]
    assert first < 2.0  # bounded by the 0.2 s timeout, not the 10 s hang
    t0 = time.monotonic()
    s = src.read()  # the hung call has not returned: reported lost at once, no second wait
    assert s.gpus[2].lost and time.monotonic() - t0 < 0.2
    del fake.hang[2]
    release.set()
    deadline = time.monotonic() + 5
    while src.nvml._readers[2].busy_since is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert src.read().gpus[2].temperature_c == 72  # answers again once the call returned


def test_xid_events_are_attached_to_their_gpu() -> None:
    fake = FakeNvml(count=2)
    src = NvmlSource(Nvml(fake))
    fake.events = [SimpleNamespace(device=1, eventData=79), SimpleNamespace(device=1, eventData=48)]
    s = src.read()
    assert s.gpus[0].xid == () and s.gpus[1].xid == (79, 48)
    assert src.read().gpus[1].xid == ()  # only new XIDs since the previous sample


def test_start_up_with_hung_gpus_waits_one_timeout_not_one_per_gpu() -> None:
    fake = FakeNvml(count=4)
    release = threading.Event()
    fake.hang = {1: release, 2: release, 3: release}
    try:
        t0 = time.monotonic()
        src = NvmlSource(Nvml(fake, timeout_s=0.3))
        # the names are asked of all four GPUs at once: about 0.3 s, not 3 x 0.3 s = 0.9 s
        assert time.monotonic() - t0 < 0.8
        s = src.read()
        assert [g.lost for g in s.gpus] == [False, True, True, True]
        assert s.gpus[0].name == "NVIDIA GeForce RTX 4090" and s.gpus[1].name is None
    finally:
        release.set()
