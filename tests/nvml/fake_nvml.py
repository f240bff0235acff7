"""A stand-in for the pynvml module: RTX 4090s with the same function names and error class.

Controls: ``unsupported`` / ``no_permission`` (function short names that raise NOT_SUPPORTED /
NO_PERMISSION), ``lost`` (GPUs that answer GPU_IS_LOST), ``hang`` (GPU -> event: every call for that
GPU waits until the event is set), ``hang_calls`` (NVML function name -> event: that call waits on
every GPU), ``temp`` (GPU index -> temperature, e.g. driven by a test clock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any


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
HANG_S = 30.0  # a hung call returns after this long at the latest (tests release it earlier)


class FakeNvml:
    """``count`` RTX 4090s at 70 + index C."""

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
        self.no_permission: set[str] = set()
        self.lost: set[int] = set()
        self.hang: dict[int, threading.Event] = {}
        self.hang_calls: dict[str, threading.Event] = {}
        self.temp: Callable[[int], float] = lambda h: 70 + h
        self.events: list[SimpleNamespace] = []
        self.set_limits: list[tuple[int, int]] = []
        self.shutdown_called = False
        self.power_limit_mw = 450000

    def _check(self, fn: str, h: int, nvml_name: str = "") -> None:
        if nvml_name in self.hang_calls:
            self.hang_calls[nvml_name].wait(HANG_S)
        if h in self.hang:
            self.hang[h].wait(HANG_S)
        if h in self.lost:
            raise NVMLError(GPU_IS_LOST)
        if fn in self.unsupported:
            raise NVMLError(NOT_SUPPORTED)
        if fn in self.no_permission:
            raise NVMLError(NO_PERMISSION)

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdown_called = True

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetIndex(self, h: int) -> int:
        return h

    def nvmlDeviceGetName(self, h: int) -> str:
        self._check("name", h)
        return "NVIDIA GeForce RTX 4090"

    def nvmlDeviceGetUUID(self, h: int) -> str:
        self._check("uuid", h)
        return f"GPU-{h}"

    def nvmlDeviceGetPciInfo(self, h: int) -> Any:
        self._check("pci", h)
        return SimpleNamespace(busId=f"00000000:{0x01 + 0x20 * h:02X}:00.0".encode())

    def nvmlDeviceGetTemperature(self, h: int, kind: int) -> float:
        self._check("temp", h, "nvmlDeviceGetTemperature")
        return self.temp(h)

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
        return self.power_limit_mw

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
        self._check("pcie_max", h)
        return 4

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: int) -> int:
        self._check("pcie_max", h)
        return 16

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: int) -> int:
        self._check("reasons", h)
        return 0x4 | 0x80  # SwPowerCap | HwPowerBrakeSlowdown

    def nvmlDeviceGetTotalEccErrors(self, h: int, kind: int, counter: int) -> int:
        self._check("ecc", h)
        raise NVMLError(NOT_SUPPORTED)  # GeForce: no ECC

    def nvmlDeviceGetRemappedRows(self, h: int) -> list[int]:
        self._check("rows", h)
        raise NVMLError(NOT_SUPPORTED)

    def nvmlEventSetCreate(self) -> str:
        return "set"

    def nvmlDeviceRegisterEvents(self, h: int, kind: int, s: str) -> None:
        pass

    def nvmlEventSetWait_v2(self, s: str, timeout_ms: int) -> Any:
        if "nvmlEventSetWait_v2" in self.hang_calls:
            self.hang_calls["nvmlEventSetWait_v2"].wait(HANG_S)
        if not self.events:
            raise NVMLError(TIMEOUT)
        return self.events.pop(0)

    def nvmlEventSetFree(self, s: str) -> None:
        pass

    def nvmlDeviceSetPowerManagementLimit(self, h: int, mw: int) -> None:
        self._check("set_limit", h, "nvmlDeviceSetPowerManagementLimit")
        self.set_limits.append((h, mw))
