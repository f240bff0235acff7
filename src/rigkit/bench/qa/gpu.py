"""GPU access for the acceptance checks: an NVML probe behind a small protocol, and PyTorch loading.

NVML is optional: without a driver the probe cannot open and the GPU checks skip with the reason.
"Not supported" and "no permission" answers become ``None`` fields. NVML calls run in a worker
thread with a timeout, because they can hang on a sick GPU.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol, TypeVar

from rigkit.errors import BenchError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Clock-event reason bits (NVML nvmlClocksEventReason*); see reference/facts.md.
HW_SLOWDOWN = 0x8
HW_THERMAL_SLOWDOWN = 0x40
HW_POWER_BRAKE_SLOWDOWN = 0x80
HW_SLOWDOWN_MASK = HW_SLOWDOWN | HW_THERMAL_SLOWDOWN | HW_POWER_BRAKE_SLOWDOWN

# XIDs that point at hardware, driver or bus trouble, and XIDs caused by applications rather than
# hardware (NVIDIA's XID catalog; the same lists as the monitor's alert rules).
CRITICAL_XIDS = frozenset({48, 62, 64, 74, 79, 94, 95, 119, 120})
APPLICATION_XIDS = frozenset({13, 31, 43, 63, 92})

NVML_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class GpuDevice:
    """What NVML says about one GPU at rest."""

    index: int
    name: str
    pci_bus_id: str | None = None
    memory_total_bytes: int | None = None
    pcie_gen_max: int | None = None  # what the GPU and slot negotiated as the maximum
    pcie_width_max: int | None = None
    driver_version: str | None = None


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one instant."""

    index: int
    temp_c: float | None = None
    sm_clock_mhz: float | None = None
    power_w: float | None = None
    clocks_event_reasons: int | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    util_pct: float | None = None
    fan_pct: float | None = None


class GpuProbe(Protocol):
    """The GPU source of the checks: NVML in production, a fake in tests."""

    def devices(self) -> list[GpuDevice]: ...

    def readings(self) -> list[GpuReading]: ...

    def xids(self, wait_ms: int) -> list[tuple[int, int]]:
        """(gpu index, XID) for events since the last call, waiting at most ``wait_ms``."""
        ...

    def close(self) -> None: ...


class GpuUnavailable(BenchError):
    """No GPU can be probed; ``str()`` says why (checks turn it into a skip)."""


class NvmlProbe:
    """NVML through ``pynvml`` (the nvidia-ml-py package)."""

    def __init__(self, timeout_s: float = NVML_TIMEOUT_S) -> None:
        import pynvml

        self._nvml: ModuleType = pynvml
        self._timeout_s = timeout_s
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nvml")
        try:
            self._call(pynvml.nvmlInit)
        except pynvml.NVMLError as err:
            self._pool.shutdown(wait=False)
            raise GpuUnavailable(f"NVML is not available ({err}): no NVIDIA driver") from err
        self._events: object | None = None
        try:
            count = int(self._call(pynvml.nvmlDeviceGetCount))
            if count == 0:
                raise GpuUnavailable("NVML reports no GPUs")
            self._handles = [self._call(pynvml.nvmlDeviceGetHandleByIndex, i) for i in range(count)]
        except BenchError:
            self._pool.shutdown(wait=False)
            raise
        except pynvml.NVMLError as err:
            self._pool.shutdown(wait=False)
            raise BenchError(f"NVML cannot enumerate the GPUs: {err}") from err

    def _call(self, fn: Callable[..., T], *args: object) -> T:
        future = self._pool.submit(fn, *args)
        try:
            return future.result(timeout=self._timeout_s)
        except concurrent.futures.TimeoutError as err:
            raise BenchError(
                f"NVML call {getattr(fn, '__name__', fn)} did not answer within "
                f"{self._timeout_s:g} s: the GPU or driver may be hung"
            ) from err

    def _opt(self, fn: Callable[..., T], *args: object) -> T | None:
        """A call whose "not supported" / "no permission" answer becomes None."""
        try:
            return self._call(fn, *args)
        except self._nvml.NVMLError:
            return None

    def devices(self) -> list[GpuDevice]:
        nv = self._nvml
        driver = self._opt(nv.nvmlSystemGetDriverVersion)
        out = []
        for i, handle in enumerate(self._handles):
            name = self._opt(nv.nvmlDeviceGetName, handle)
            mem = self._opt(nv.nvmlDeviceGetMemoryInfo, handle)
            pci = self._opt(nv.nvmlDeviceGetPciInfo, handle)
            out.append(
                GpuDevice(
                    index=i,
                    name=_text(name) or f"GPU {i}",
                    pci_bus_id=_text(getattr(pci, "busId", None)),
                    memory_total_bytes=int(mem.total) if mem is not None else None,
                    pcie_gen_max=self._opt(nv.nvmlDeviceGetMaxPcieLinkGeneration, handle),
                    pcie_width_max=self._opt(nv.nvmlDeviceGetMaxPcieLinkWidth, handle),
                    driver_version=_text(driver),
                )
            )
        return out

    def readings(self) -> list[GpuReading]:
        nv = self._nvml
        out = []
        for i, handle in enumerate(self._handles):
            power_mw = self._opt(nv.nvmlDeviceGetPowerUsage, handle)
            temp = self._opt(nv.nvmlDeviceGetTemperature, handle, nv.NVML_TEMPERATURE_GPU)
            clock = self._opt(nv.nvmlDeviceGetClockInfo, handle, nv.NVML_CLOCK_SM)
            util = self._opt(nv.nvmlDeviceGetUtilizationRates, handle)
            fan = self._opt(nv.nvmlDeviceGetFanSpeed, handle)
            out.append(
                GpuReading(
                    index=i,
                    temp_c=float(temp) if temp is not None else None,
                    sm_clock_mhz=float(clock) if clock is not None else None,
                    power_w=power_mw / 1000.0 if power_mw is not None else None,
                    clocks_event_reasons=self._opt(
                        nv.nvmlDeviceGetCurrentClocksEventReasons, handle
                    ),
                    pcie_gen=self._opt(nv.nvmlDeviceGetCurrPcieLinkGeneration, handle),
                    pcie_width=self._opt(nv.nvmlDeviceGetCurrPcieLinkWidth, handle),
                    util_pct=float(util.gpu) if util is not None else None,
                    fan_pct=float(fan) if fan is not None else None,
                )
            )
        return out

    def xids(self, wait_ms: int) -> list[tuple[int, int]]:
        nv = self._nvml
        if self._events is None:
            events = self._opt(nv.nvmlEventSetCreate)
            if events is None:
                return []
            for handle in self._handles:
                self._opt(
                    nv.nvmlDeviceRegisterEvents, handle, nv.nvmlEventTypeXidCriticalError, events
                )
            self._events = events
        found: list[tuple[int, int]] = []
        deadline = time.monotonic() + wait_ms / 1000.0
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            try:
                data = self._call(nv.nvmlEventSetWait_v2, self._events, left_ms)
            except nv.NVMLError:  # NVML_ERROR_TIMEOUT: nothing happened
                break
            index = self._opt(nv.nvmlDeviceGetIndex, data.device)
            found.append((-1 if index is None else int(index), int(data.eventData)))
            if left_ms == 0:
                break
        return found

    def close(self) -> None:
        try:
            if self._events is not None:
                self._opt(self._nvml.nvmlEventSetFree, self._events)
            self._opt(self._nvml.nvmlShutdown)
        finally:
            self._pool.shutdown(wait=False)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def open_probe(given: GpuProbe | None) -> GpuProbe:
    """The given probe, or NVML; raises :class:`GpuUnavailable` with the reason when neither."""
    if given is not None:
        return given
    try:
        return NvmlProbe()
    except ImportError as err:
        raise GpuUnavailable("the nvidia-ml-py package (pynvml) is not installed") from err


def load_torch() -> tuple[ModuleType | None, str]:
    """PyTorch with a CUDA device, or None and the reason ("PyTorch not installed", ...)."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return None, "PyTorch not installed"
    if not torch.cuda.is_available():
        return None, "no CUDA device"
    return torch, ""


class GpuLoad:
    """Keeps every CUDA device busy with FP16 matmuls in a background thread until stopped."""

    def __init__(self, torch: ModuleType, size: int = 8192) -> None:
        self._torch = torch
        self._size = size
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _work(self, device_index: int) -> None:
        torch = self._torch
        device = torch.device("cuda", device_index)
        torch.cuda.set_device(device)  # per thread: the current device is thread-local
        a = torch.randn(self._size, self._size, device=device, dtype=torch.float16)
        b = torch.randn(self._size, self._size, device=device, dtype=torch.float16)
        while not self._stop.is_set():
            for _ in range(8):
                a = torch.matmul(a, b)
                a = a / a.abs().amax().clamp(min=1e-3)
            torch.cuda.synchronize(device)

    def __enter__(self) -> GpuLoad:
        for index in range(int(self._torch.cuda.device_count())):
            thread = threading.Thread(target=self._work, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
