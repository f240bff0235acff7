"""The NVML source against a fake pynvml module (same function names, same error classes)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from rigkit.errors import MonitorError
from rigkit.monitor.sources.nvml import NvmlSource


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


NOT_SUPPORTED, NO_PERMISSION, DRIVER_NOT_LOADED, TIMEOUT, LIBRARY_NOT_FOUND, GPU_IS_LOST = (
    3,
    4,
    9,
    10,
    12,
    15,
)


class FakeNvml:
    """Two-to-four RTX 4090s. ``unsupported`` names functions that raise NOT_SUPPORTED."""

    NVMLError = NVMLError
    NVML_ERROR_NOT_SUPPORTED = NOT_SUPPORTED
    NVML_ERROR_NO_PERMISSION = NO_PERMISSION
    NVML_ERROR_GPU_IS_LOST = GPU_IS_LOST
    NVML_ERROR_TIMEOUT = TIMEOUT
    NVML_ERROR_DRIVER_NOT_LOADED = DRIVER_NOT_LOADED
    NVML_ERROR_LIBRARY_NOT_FOUND = LIBRARY_NOT_FOUND
    NVML_TEMPERATURE_GPU = 0
    NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = 0
    NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    nvmlEventTypeXidCriticalError = 8

    def __init__(self, count: int = 2, init_error: int | None = None) -> None:
        self.count = count
        self.init_error = init_error
        self.unsupported: set[str] = set()
        self.lost: set[int] = set()
        self.hang: dict[int, threading.Event] = {}
        self.events: list[SimpleNamespace] = []
        self.shutdown_called = False

    def _check(self, fn: str, h: int) -> None:
        if h in self.hang:
            self.hang[h].wait(10)
        if h in self.lost:
            raise NVMLError(GPU_IS_LOST)
        if fn in self.unsupported:
            raise NVMLError(NOT_SUPPORTED)

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdown_called = True

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetIndex(self, h: int) -> int:
        return h

    def nvmlDeviceGetName(self, h: int) -> str:
        return "NVIDIA GeForce RTX 4090"

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return f"GPU-{h}"

    def nvmlDeviceGetPciInfo(self, h: int) -> Any:
        return SimpleNamespace(busId=f"00000000:{0x01 + 0x20 * h:02X}:00.0".encode())

    def nvmlDeviceGetTemperature(self, h: int, kind: int) -> int:
        self._check("temp", h)
        return 70 + h

    def nvmlDeviceGetTemperatureThreshold(self, h: int, kind: int) -> int:
        self._check("threshold", h)
        return 88 if kind == 1 else 93

    def nvmlDeviceGetMarginTemperature(self, h: int) -> int:
        self._check("margin", h)
        return 18 - h

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        self._check("power", h)
        return 402500  # mW

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
        self._check("limit", h)
        return 450000

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: int) -> int:
        self._check("default_limit", h)
        return 450000

    def nvmlDeviceGetPowerManagementLimitConstraints(self, h: int) -> list[int]:
        self._check("constraints", h)
        return [150000, 600000]

    def nvmlDeviceGetFanSpeed(self, h: int) -> int:
        self._check("fan", h)
        return 64

    def nvmlDeviceGetClockInfo(self, h: int, kind: int) -> int:
        self._check("clock", h)
        return 2520 if kind == 1 else 10501

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:
        self._check("util", h)
        return SimpleNamespace(gpu=99, memory=40)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        self._check("mem", h)
        return SimpleNamespace(used=21000 * 1048576, total=24564 * 1048576, free=0)

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: int) -> int:
        self._check("pcie", h)
        return 4

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: int) -> int:
        self._check("pcie", h)
        return 8 if h == 1 else 16

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: int) -> int:
        return 4

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: int) -> int:
        return 16

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: int) -> int:
        self._check("reasons", h)
        return 0x4 | 0x80  # SwPowerCap | HwPowerBrakeSlowdown

    def nvmlDeviceGetTotalEccErrors(self, h: int, kind: int, counter: int) -> int:
        raise NVMLError(NOT_SUPPORTED)  # GeForce: no ECC

    def nvmlDeviceGetRemappedRows(self, h: int) -> list[int]:
        raise NVMLError(NOT_SUPPORTED)

    def nvmlEventSetCreate(self) -> str:
        return "set"

    def nvmlDeviceRegisterEvents(self, h: int, kind: int, s: str) -> None:
        pass

    def nvmlEventSetWait_v2(self, s: str, timeout_ms: int) -> Any:
        if not self.events:
            raise NVMLError(TIMEOUT)
        return self.events.pop(0)

    def nvmlEventSetFree(self, s: str) -> None:
        pass

    def nvmlDeviceSetPowerManagementLimit(self, h: int, mw: int) -> None:
        if h in self.lost:
            raise NVMLError(GPU_IS_LOST)
        self.set_limit = (h, mw)


def test_values_are_converted_to_the_sample_units() -> None:
    src = NvmlSource(FakeNvml())
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
    g = NvmlSource(fake).read().gpus[0]
    assert g.fan_pct is None
    # margin derived from slowdown - temperature = 88 - 70
    assert g.thermal_margin_c == 18
    assert g.temperature_c == 70


@pytest.mark.parametrize("code", [DRIVER_NOT_LOADED, LIBRARY_NOT_FOUND])
def test_missing_driver_is_an_error_at_start_up(code: int) -> None:
    with pytest.raises(MonitorError) as err:
        NvmlSource(FakeNvml(init_error=code))
    assert "NVML not available: no NVIDIA driver found" in str(err.value)


def test_gpu_lost_is_reported_not_fatal() -> None:
    fake = FakeNvml(count=3)
    src = NvmlSource(fake)
    fake.lost = {1}
    s = src.read()
    assert [g.lost for g in s.gpus] == [False, True, False]
    assert s.gpus[1].temperature_c is None and s.gpus[1].name == "NVIDIA GeForce RTX 4090"
    assert s.gpus[2].temperature_c == 72


def test_a_hung_gpu_times_out_and_others_still_answer() -> None:
    fake = FakeNvml(count=3)
    src = NvmlSource(fake, timeout_s=0.2)
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
    while src._workers[2].busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert src.read().gpus[2].temperature_c == 72  # answers again once the call returned


def test_xid_events_are_attached_to_their_gpu() -> None:
    fake = FakeNvml(count=2)
    src = NvmlSource(fake)
    fake.events = [SimpleNamespace(device=1, eventData=79), SimpleNamespace(device=1, eventData=48)]
    s = src.read()
    assert s.gpus[0].xid == () and s.gpus[1].xid == (79, 48)
    assert src.read().gpus[1].xid == ()  # only new XIDs since the previous sample


def test_set_power_limit_in_milliwatts() -> None:
    fake = FakeNvml()
    src = NvmlSource(fake)
    src.set_power_limit(1, 315)
    assert fake.set_limit == (1, 315000)
    fake.lost = {0}
    with pytest.raises(MonitorError):
        src.set_power_limit(0, 315)
    src.close()
    assert fake.shutdown_called
