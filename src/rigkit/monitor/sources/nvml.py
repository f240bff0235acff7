"""NVIDIA GPUs through NVML (nvidia-ml-py, imported as ``pynvml``).

One wrapper (:meth:`NvmlSource._call`) makes every NVML call: "not supported", "no permission" and
"function not found" become ``None`` (not available); "GPU is lost" marks the GPU lost; a missing
driver or library is a :class:`MonitorError` at start-up ("NVML not available: no NVIDIA driver
found").

NVML calls can hang on a sick GPU, so each GPU is read by its own worker thread and the source
waits at most ``timeout_s`` for it. A GPU that does not answer in time is reported as lost
(``GpuSample(lost=True)``) and is not asked again until its hung call returns; the other GPUs are
unaffected. Critical XIDs come from an NVML event set polled without blocking.

The ``nvml`` argument injects the module (tests pass a fake with the same functions).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from rigkit.errors import MonitorError
from rigkit.monitor.sample import THROTTLE_REASONS, GpuSample, Sample

log = logging.getLogger(__name__)

MIB = 1024 * 1024

# NVML return codes (nvml.h); the module's constants are used when present.
_NOT_AVAILABLE_CODES = {
    "NVML_ERROR_NOT_SUPPORTED": 3,
    "NVML_ERROR_NO_PERMISSION": 4,
    "NVML_ERROR_FUNCTION_NOT_FOUND": 13,
}
_LOST_CODES = {"NVML_ERROR_GPU_IS_LOST": 15, "NVML_ERROR_UNKNOWN": 999}
_NO_DRIVER_CODES = {"NVML_ERROR_LIBRARY_NOT_FOUND": 12, "NVML_ERROR_DRIVER_NOT_LOADED": 9}
_TIMEOUT_CODE = ("NVML_ERROR_TIMEOUT", 10)


class GpuLostError(Exception):
    """Internal: NVML said the GPU is lost, or it did not answer in time."""


def _codes(nvml: Any, table: dict[str, int]) -> set[int]:
    return {int(getattr(nvml, name, code)) for name, code in table.items()}


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class _Worker:
    """A daemon thread that runs jobs for one GPU; a hung job leaves it ``busy``."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], dict[str, Any], threading.Event]] = (
            queue.SimpleQueue()
        )
        self.busy = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            fn, box, done = self._jobs.get()
            try:
                box["value"] = fn()
            except Exception as err:  # thread boundary: handed back to the caller, never lost
                box["error"] = err
            finally:
                self.busy = False
                done.set()

    def run(self, fn: Callable[[], Any], timeout_s: float) -> Any:
        if self.busy:
            raise GpuLostError("a previous NVML call has not returned")
        box: dict[str, Any] = {}
        done = threading.Event()
        self.busy = True
        self._jobs.put((fn, box, done))
        if not done.wait(timeout_s):
            raise GpuLostError(f"NVML did not answer within {timeout_s:g} s")
        if "error" in box:
            raise box["error"]
        return box.get("value")


class NvmlSource:
    """Reads every GPU NVML sees. ``read()`` -> Sample with ``host=None``."""

    def __init__(self, nvml: ModuleType | Any | None = None, *, timeout_s: float = 2.0) -> None:
        if nvml is None:
            try:
                import pynvml as nvml_mod
            except ImportError as err:  # pragma: no cover - nvidia-ml-py is a dependency
                raise MonitorError("NVML not available: nvidia-ml-py is not installed") from err
            nvml = nvml_mod
        self.nvml = nvml
        self.name = "nvml"
        self.timeout_s = timeout_s
        self._not_available = _codes(nvml, _NOT_AVAILABLE_CODES)
        self._lost = _codes(nvml, _LOST_CODES)
        self._timeout_code = int(getattr(nvml, _TIMEOUT_CODE[0], _TIMEOUT_CODE[1]))
        no_driver = _codes(nvml, _NO_DRIVER_CODES)
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            if getattr(err, "value", None) in no_driver:
                raise MonitorError(
                    "NVML not available: no NVIDIA driver found",
                    hint="install the NVIDIA driver, or use --source host / replay:FILE",
                ) from err
            raise MonitorError(f"NVML not available: {err}") from err
        except OSError as err:
            raise MonitorError("NVML not available: no NVIDIA driver found") from err
        self._closed = False
        try:
            count = int(nvml.nvmlDeviceGetCount())
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except nvml.NVMLError as err:
            nvml.nvmlShutdown()
            raise MonitorError(f"NVML cannot list the GPUs: {err}") from err
        self._workers = [_Worker(f"rigkit-nvml-gpu{i}") for i in range(count)]
        self._static: dict[int, dict[str, Any]] = {}
        for i, h in enumerate(self._handles):
            info: dict[str, Any] = {}
            for key, fn in (
                ("name", lambda h=h: _text(nvml.nvmlDeviceGetName(h))),
                ("uuid", lambda h=h: _text(nvml.nvmlDeviceGetUUID(h))),
                ("pci_bus_id", lambda h=h: _text(nvml.nvmlDeviceGetPciInfo(h).busId)),
            ):
                try:
                    info[key] = self._call(fn)
                except GpuLostError:
                    info[key] = None
            self._static[i] = info
        self._events = self._register_xid_events()

    # -- the one wrapper ----------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run one NVML call: not supported / no permission -> None; GPU lost -> GpuLostError."""
        nvml = self.nvml
        try:
            return fn()
        except nvml.NVMLError as err:
            code = getattr(err, "value", None)
            if code in self._not_available:
                return None
            if code in self._lost:
                raise GpuLostError(str(err)) from err
            log.debug("NVML call failed (%s); value not available", err)
            return None

    # -- XID events ---------------------------------------------------------------------------

    def _register_xid_events(self) -> Any:
        nvml = self.nvml
        kind = getattr(nvml, "nvmlEventTypeXidCriticalError", 8)
        try:
            event_set = nvml.nvmlEventSetCreate()
        except nvml.NVMLError as err:
            log.info("NVML XID events not available (%s); kernel-log XIDs only", err)
            return None
        for i, h in enumerate(self._handles):
            try:
                nvml.nvmlDeviceRegisterEvents(h, kind, event_set)
            except nvml.NVMLError as err:
                log.info("GPU %d: NVML XID events not available (%s)", i, err)
        return event_set

    def _index_of(self, device: Any) -> int | None:
        """The index of an event's device handle (handles are ctypes pointers: ask NVML)."""
        nvml = self.nvml
        try:
            index = int(nvml.nvmlDeviceGetIndex(device))
        except nvml.NVMLError:
            return None
        return index if 0 <= index < len(self._handles) else None

    def _poll_xids(self) -> dict[int, list[int]]:
        """XIDs NVML reported since the last poll (never blocks)."""
        out: dict[int, list[int]] = {}
        if self._events is None:
            return out
        nvml = self.nvml
        wait = getattr(nvml, "nvmlEventSetWait_v2", None) or nvml.nvmlEventSetWait
        for _ in range(64):  # bounded: a storm of events cannot stall the loop
            try:
                data = wait(self._events, 0)
            except nvml.NVMLError as err:
                if getattr(err, "value", None) != self._timeout_code:
                    log.debug("NVML event wait: %s", err)
                break
            index = self._index_of(data.device)
            if index is None:
                continue
            out.setdefault(index, []).append(int(data.eventData))
        return out

    # -- reading ------------------------------------------------------------------------------

    def _read_gpu(self, index: int, handle: Any) -> dict[str, Any]:
        """Everything about one GPU (runs in that GPU's worker thread)."""
        nvml, c = self.nvml, self._call
        v: dict[str, Any] = {}
        temp_kind = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        v["temperature_c"] = c(lambda: nvml.nvmlDeviceGetTemperature(handle, temp_kind))
        slow = getattr(nvml, "NVML_TEMPERATURE_THRESHOLD_SLOWDOWN", 1)
        shut = getattr(nvml, "NVML_TEMPERATURE_THRESHOLD_SHUTDOWN", 0)
        v["slowdown_temp_c"] = c(lambda: nvml.nvmlDeviceGetTemperatureThreshold(handle, slow))
        v["shutdown_temp_c"] = c(lambda: nvml.nvmlDeviceGetTemperatureThreshold(handle, shut))
        margin = c(lambda: nvml.nvmlDeviceGetMarginTemperature(handle))
        if margin is None and v["temperature_c"] is not None and v["slowdown_temp_c"] is not None:
            margin = v["slowdown_temp_c"] - v["temperature_c"]  # derived where NVML lacks it
        v["thermal_margin_c"] = margin
        mw = c(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        v["power_w"] = None if mw is None else mw / 1000.0
        mw = c(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        v["power_limit_w"] = None if mw is None else mw / 1000.0
        mw = c(lambda: nvml.nvmlDeviceGetPowerManagementDefaultLimit(handle))
        v["default_power_limit_w"] = None if mw is None else mw / 1000.0
        limits = c(lambda: nvml.nvmlDeviceGetPowerManagementLimitConstraints(handle))
        v["min_power_limit_w"] = None if limits is None else limits[0] / 1000.0
        v["fan_pct"] = c(lambda: nvml.nvmlDeviceGetFanSpeed(handle))
        sm, mem = getattr(nvml, "NVML_CLOCK_SM", 1), getattr(nvml, "NVML_CLOCK_MEM", 2)
        v["sm_clock_mhz"] = c(lambda: nvml.nvmlDeviceGetClockInfo(handle, sm))
        v["mem_clock_mhz"] = c(lambda: nvml.nvmlDeviceGetClockInfo(handle, mem))
        util = c(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        v["util_pct"] = None if util is None else util.gpu
        meminfo = c(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        v["mem_used_mib"] = None if meminfo is None else round(meminfo.used / MIB)
        v["mem_total_mib"] = None if meminfo is None else round(meminfo.total / MIB)
        v["pcie_gen"] = c(lambda: nvml.nvmlDeviceGetCurrPcieLinkGeneration(handle))
        v["pcie_width"] = c(lambda: nvml.nvmlDeviceGetCurrPcieLinkWidth(handle))
        v["pcie_max_gen"] = c(lambda: nvml.nvmlDeviceGetMaxPcieLinkGeneration(handle))
        v["pcie_max_width"] = c(lambda: nvml.nvmlDeviceGetMaxPcieLinkWidth(handle))
        reasons_fn = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        mask = None if reasons_fn is None else c(lambda: reasons_fn(handle))
        v["throttle_reasons"] = (
            None
            if mask is None
            else tuple(r for bit, r in enumerate(THROTTLE_REASONS) if int(mask) & (1 << bit))
        )
        unc = getattr(nvml, "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1)
        agg = getattr(nvml, "NVML_AGGREGATE_ECC", 1)
        ecc = c(lambda: nvml.nvmlDeviceGetTotalEccErrors(handle, unc, agg))
        v["ecc_uncorrected"] = None if ecc is None else int(ecc)
        rows = c(lambda: nvml.nvmlDeviceGetRemappedRows(handle))
        v["remapped_rows_pending"] = None if rows is None else bool(rows[2])
        return v

    def read_gpus(self) -> tuple[GpuSample, ...]:
        xids = self._poll_xids()
        out = []
        for i, handle in enumerate(self._handles):
            info = self._static[i]
            xid = tuple(xids.get(i, ()))
            try:
                values = self._workers[i].run(
                    functools.partial(self._read_gpu, i, handle), self.timeout_s
                )
            except GpuLostError as err:
                log.warning("GPU %d lost: %s", i, err)
                out.append(
                    GpuSample.lost_gpu(i, name=info.get("name"), uuid=info.get("uuid"), xid=xid)
                )
                continue
            out.append(
                GpuSample(
                    index=i,
                    name=info.get("name"),
                    uuid=info.get("uuid"),
                    pci_bus_id=info.get("pci_bus_id"),
                    xid=xid,
                    **values,
                )
            )
        return tuple(out)

    def read(self) -> Sample:
        now = time.time()
        return Sample(t=now, gpus=self.read_gpus(), host=None, source=self.name, wall_time=now)

    def set_power_limit(self, index: int, watts: float) -> None:
        """Set a GPU's power limit (needs root); used by the thermal responder."""
        nvml = self.nvml
        try:
            self._workers[index].run(
                lambda: nvml.nvmlDeviceSetPowerManagementLimit(
                    self._handles[index], int(watts * 1000)
                ),
                self.timeout_s,
            )
        except (GpuLostError, nvml.NVMLError) as err:
            raise MonitorError(f"cannot set GPU {index} power limit to {watts:g} W: {err}") from err

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        nvml = self.nvml
        try:
            if self._events is not None:
                nvml.nvmlEventSetFree(self._events)
            nvml.nvmlShutdown()
        except nvml.NVMLError as err:
            log.debug("NVML shutdown: %s", err)
