"""The one place rigkit talks to NVML (nvidia-ml-py, imported as ``pynvml``).

:class:`Nvml` opens NVML once and makes every call for the monitor's source, the qa probe and the
thermal responder, with one policy:

* **Every call runs on a worker thread and the caller waits at most ``timeout_s``.** NVML calls can
  hang on a sick GPU or driver. Each GPU has two workers of its own, one for reads and one for
  actions (power limits), plus one worker for system-wide calls (init, XID events). A call that
  hangs keeps only its own worker busy: that GPU reads as lost (``hung=True``) until the call
  returns, while every other GPU, and that GPU's actions, go on. No new thread is started for a
  worker that is still busy, so a hung driver cannot pile up threads.
* **"Not supported", "no permission", "function not found"** (and any other per-call error) give a
  missing value: ``None`` in the readout, with the reason in ``readout.missing[field]``.
* **"GPU is lost"** (and "reset required", "unknown error") gives a :class:`Lost` readout, never
  ``None`` values that could be mistaken for "not supported".
* **No driver or library** is :class:`NvmlUnavailable` when the session opens (start-up).

``module`` injects the pynvml module: tests pass a fake with the same functions and error class.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from rigkit.errors import RigkitError
from rigkit.nvml.codes import reason_names

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
MIB = 1024 * 1024
DEFAULT_TIMEOUT_S = 2.0

# nvml.h return codes; the module's own constants are used where it has them.
_MISSING_REASONS: dict[str, tuple[int, str]] = {
    "NVML_ERROR_NOT_SUPPORTED": (3, "not supported"),
    "NVML_ERROR_NO_PERMISSION": (4, "no permission"),
    "NVML_ERROR_FUNCTION_NOT_FOUND": (13, "not in this driver"),
}
_LOST_CODES: dict[str, int] = {
    "NVML_ERROR_GPU_IS_LOST": 15,
    "NVML_ERROR_RESET_REQUIRED": 16,
    "NVML_ERROR_UNKNOWN": 999,
}
_NO_DRIVER_CODES: dict[str, int] = {
    "NVML_ERROR_DRIVER_NOT_LOADED": 9,
    "NVML_ERROR_LIBRARY_NOT_FOUND": 12,
}
_TIMEOUT_CODE = ("NVML_ERROR_TIMEOUT", 10)


class NvmlUnavailable(RigkitError):
    """NVML cannot be used on this machine (no driver, no library, or it does not answer)."""


class NvmlCallError(RigkitError):
    """An NVML action (setting a power limit) failed, timed out, or its GPU is lost."""


@dataclass(frozen=True)
class Lost:
    """A GPU that NVML says is lost, or that did not answer in time (``hung``)."""

    index: int
    reason: str
    hung: bool = False


@dataclass(frozen=True)
class GpuInfo:
    """What does not change while the GPU runs. ``missing``: field -> why it is None."""

    index: int
    name: str | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None  # e.g. "00000000:01:00.0"
    memory_total_bytes: int | None = None
    pcie_max_gen: int | None = None
    pcie_max_width: int | None = None
    missing: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuReadout:
    """One GPU at one instant, in the monitor's units. ``missing``: field -> why it is None."""

    index: int
    temperature_c: float | None = None
    slowdown_temp_c: float | None = None
    shutdown_temp_c: float | None = None
    thermal_margin_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    default_power_limit_w: float | None = None
    min_power_limit_w: float | None = None
    fan_pct: float | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    util_pct: float | None = None
    mem_used_mib: int | None = None
    mem_total_mib: int | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    pcie_max_gen: int | None = None
    pcie_max_width: int | None = None
    clock_event_mask: int | None = None
    ecc_uncorrected: int | None = None
    remapped_rows_pending: bool | None = None
    missing: Mapping[str, str] = field(default_factory=dict)

    @property
    def throttle_reasons(self) -> tuple[str, ...] | None:
        """The clock-event reason names (:mod:`rigkit.nvml.codes`), None when not available."""
        return None if self.clock_event_mask is None else reason_names(self.clock_event_mask)

    def values(self) -> dict[str, Any]:
        """The measured fields by name (no ``index``, ``missing`` or the raw mask)."""
        skip = {"index", "missing", "clock_event_mask"}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        out["throttle_reasons"] = self.throttle_reasons
        return out


class _Hung(Exception):
    """Internal: a call did not answer in time, or its worker is still busy with a hung call."""


class _LostInCall(Exception):
    """Internal: NVML answered "GPU is lost" inside a job."""


class _Job:
    def __init__(self, fn: Callable[[], Any], what: str) -> None:
        self.fn = fn
        self.what = what
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class _Worker:
    """A daemon thread running jobs one at a time; a job that hangs keeps it busy until it returns.

    ``submit`` never blocks: while a job is running it returns None, so a hung NVML call is not
    queued behind (and threads do not pile up)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.busy_since: float | None = None
        self.busy_with = ""
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job.value = job.fn()
            except Exception as err:  # thread boundary: handed to the caller, never lost
                job.error = err
            finally:
                with self._lock:
                    self.busy_since = None
                job.done.set()

    def submit(self, fn: Callable[[], Any], what: str) -> _Job | None:
        with self._lock:
            if self.busy_since is not None:
                return None
            self.busy_since = time.monotonic()
            self.busy_with = what
        job = _Job(fn, what)
        self._jobs.put(job)
        return job

    def hung_for(self) -> float:
        since = self.busy_since
        return 0.0 if since is None else time.monotonic() - since


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


class _Calls:
    """Makes the calls of one job: per-call errors become a missing value with its reason."""

    def __init__(self, nvml: Nvml) -> None:
        self.nv = nvml.module
        self._nvml = nvml
        self.missing: dict[str, str] = {}

    def get(self, field_name: str, fn_name: str, *args: Any) -> Any:
        fn = getattr(self.nv, fn_name, None)
        if fn is None:
            self.missing[field_name] = f"not in this nvidia-ml-py ({fn_name})"
            return None
        try:
            return fn(*args)
        except self.nv.NVMLError as err:
            reason = self._nvml.classify(err)
            if reason is None:
                raise _LostInCall(str(err)) from err
            self.missing.setdefault(field_name, reason)
            return None

    def const(self, name: str, default: int) -> int:
        return int(getattr(self.nv, name, default))


class Nvml:
    """An open NVML session: ``count`` GPUs, their readouts, XID events and power limits."""

    def __init__(self, module: Any | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if module is None:
            try:
                import pynvml
            except ImportError as err:  # nvidia-ml-py is a dependency; a broken install
                raise NvmlUnavailable(
                    "NVML not available: the nvidia-ml-py package is not installed"
                ) from err
            module = pynvml
        self.module: Any = module
        self.timeout_s = timeout_s
        self._missing_codes = {
            int(getattr(module, name, code)): reason
            for name, (code, reason) in _MISSING_REASONS.items()
        }
        self._lost_codes = {int(getattr(module, n, c)) for n, c in _LOST_CODES.items()}
        self._timeout_code = int(getattr(module, _TIMEOUT_CODE[0], _TIMEOUT_CODE[1]))
        self._system = _Worker("rigkit-nvml")
        self._closed = False
        self._open()
        self._readers = [_Worker(f"rigkit-nvml-gpu{i}") for i in range(self.count)]
        self._actors = [_Worker(f"rigkit-nvml-gpu{i}-act") for i in range(self.count)]
        self._events: Any = None
        self._events_tried = False

    # -- opening ------------------------------------------------------------------------------

    def _open(self) -> None:
        nv = self.module
        no_driver = {int(getattr(nv, n, c)) for n, c in _NO_DRIVER_CODES.items()}
        try:
            self._run(self._system, nv.nvmlInit, "nvmlInit", self.timeout_s)
        except nv.NVMLError as err:
            if getattr(err, "value", None) in no_driver:
                raise NvmlUnavailable(
                    "NVML not available: no NVIDIA driver found",
                    hint="install the NVIDIA driver (nvidia-smi must work)",
                ) from err
            raise NvmlUnavailable(f"NVML not available: {err}") from err
        except OSError as err:
            raise NvmlUnavailable("NVML not available: no NVIDIA driver found") from err
        except _Hung as err:
            raise NvmlUnavailable(f"NVML not available: {err}") from err

        def enumerate_gpus() -> tuple[list[Any], str | None]:
            count = int(nv.nvmlDeviceGetCount())
            handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            try:
                driver = _text(nv.nvmlSystemGetDriverVersion())
            except (nv.NVMLError, AttributeError):
                driver = None
            return handles, driver

        try:
            self._handles, self.driver_version = self._run(
                self._system, enumerate_gpus, "nvmlDeviceGetCount", self.timeout_s
            )
        except (nv.NVMLError, _Hung) as err:
            self._shutdown()
            raise NvmlUnavailable(f"NVML cannot list the GPUs: {err}") from err

    @property
    def count(self) -> int:
        return len(self._handles)

    # -- the worker calls ---------------------------------------------------------------------

    def classify(self, err: Exception) -> str | None:
        """The reason a value is missing for an NVML error, or None when the GPU is lost."""
        code = getattr(err, "value", None)
        if code in self._lost_codes:
            return None
        reason = self._missing_codes.get(code) if isinstance(code, int) else None
        return reason or str(err)

    def _run(self, worker: _Worker, fn: Callable[[], T], what: str, timeout_s: float) -> T:
        """``fn()`` on ``worker``; _Hung when it does not answer in ``timeout_s``."""
        job = worker.submit(fn, what)
        if job is None:
            raise _Hung(f"{worker.busy_with} has not returned for {worker.hung_for():.1f} s")
        if not job.done.wait(timeout_s):
            raise _Hung(f"{what} did not answer within {timeout_s:g} s")
        if job.error is not None:
            raise job.error
        value: T = job.value
        return value

    def _gpu_job(self, index: int, job: Callable[[_Calls], T], what: str) -> _Job | Lost:
        calls = _Calls(self)
        submitted = self._readers[index].submit(lambda: (job(calls), calls.missing), what)
        if submitted is None:
            w = self._readers[index]
            return Lost(index, f"{w.busy_with} has not returned for {w.hung_for():.1f} s", True)
        return submitted

    def _finish(self, index: int, job: _Job | Lost, deadline: float) -> Any:
        if isinstance(job, Lost):
            return job
        if not job.done.wait(max(0.0, deadline - time.monotonic())):
            return Lost(index, f"{job.what} did not answer within {self.timeout_s:g} s", True)
        if isinstance(job.error, _LostInCall):
            return Lost(index, f"NVML: {job.error}")
        if job.error is not None:
            raise job.error
        return job.value

    # -- reads --------------------------------------------------------------------------------

    def _ask(
        self,
        indexes: Sequence[int],
        make: Callable[[int], Callable[[_Calls], dict[str, Any]]],
        build: Callable[..., R],
        what: str,
    ) -> list[R | Lost]:
        """One job per GPU in ``indexes``, all at once, against one deadline ``timeout_s`` away:
        ``build(index=i, missing=..., **values)`` for each GPU that answered, Lost for the others."""
        deadline = time.monotonic() + self.timeout_s
        jobs = [self._gpu_job(i, make(i), what) for i in indexes]
        out: list[R | Lost] = []
        for i, job in zip(indexes, jobs, strict=True):
            result = self._finish(i, job, deadline)
            if isinstance(result, Lost):
                out.append(result)
                continue
            values, missing = result
            out.append(build(index=i, missing=missing, **values))
        return out

    def info_all(self) -> list[GpuInfo | Lost]:
        """Every GPU's :meth:`info`, asked in parallel: at most ``timeout_s`` in all."""
        return self._ask(range(self.count), self._info_job, GpuInfo, "GPU information")

    def info(self, index: int) -> GpuInfo | Lost:
        """Name, UUID, PCI address, memory size and PCIe maximum of one GPU."""
        return self._ask([index], self._info_job, GpuInfo, "GPU information")[0]

    def read_all(self) -> list[GpuReadout | Lost]:
        """Every GPU, read in parallel: the whole read takes at most ``timeout_s``."""
        return self._ask(range(self.count), self._read_job, GpuReadout, "GPU readout")

    def read(self, index: int) -> GpuReadout | Lost:
        """One GPU (see :meth:`read_all`)."""
        return self._ask([index], self._read_job, GpuReadout, "GPU readout")[0]

    def _info_job(self, index: int) -> Callable[[_Calls], dict[str, Any]]:
        h = self._handles[index]

        def job(c: _Calls) -> dict[str, Any]:
            pci = c.get("pci_bus_id", "nvmlDeviceGetPciInfo", h)
            mem = c.get("memory_total_bytes", "nvmlDeviceGetMemoryInfo", h)
            return {
                "name": _text(c.get("name", "nvmlDeviceGetName", h)),
                "uuid": _text(c.get("uuid", "nvmlDeviceGetUUID", h)),
                "pci_bus_id": None if pci is None else _text(pci.busId),
                "memory_total_bytes": None if mem is None else int(mem.total),
                "pcie_max_gen": c.get("pcie_max_gen", "nvmlDeviceGetMaxPcieLinkGeneration", h),
                "pcie_max_width": c.get("pcie_max_width", "nvmlDeviceGetMaxPcieLinkWidth", h),
            }

        return job

    def _read_job(self, index: int) -> Callable[[_Calls], dict[str, Any]]:
        h = self._handles[index]

        def job(c: _Calls) -> dict[str, Any]:
            v: dict[str, Any] = {}
            v["temperature_c"] = c.get(
                "temperature_c", "nvmlDeviceGetTemperature", h, c.const("NVML_TEMPERATURE_GPU", 0)
            )
            slow = c.const("NVML_TEMPERATURE_THRESHOLD_SLOWDOWN", 1)
            shut = c.const("NVML_TEMPERATURE_THRESHOLD_SHUTDOWN", 0)
            thr = "nvmlDeviceGetTemperatureThreshold"
            v["slowdown_temp_c"] = c.get("slowdown_temp_c", thr, h, slow)
            v["shutdown_temp_c"] = c.get("shutdown_temp_c", thr, h, shut)
            margin = c.get("thermal_margin_c", "nvmlDeviceGetMarginTemperature", h)
            if margin is None and None not in (v["temperature_c"], v["slowdown_temp_c"]):
                margin = v["slowdown_temp_c"] - v["temperature_c"]  # derived where NVML lacks it
                c.missing.pop("thermal_margin_c", None)
            v["thermal_margin_c"] = margin
            for key, fn in (
                ("power_w", "nvmlDeviceGetPowerUsage"),
                ("power_limit_w", "nvmlDeviceGetEnforcedPowerLimit"),
                ("default_power_limit_w", "nvmlDeviceGetPowerManagementDefaultLimit"),
            ):
                mw = c.get(key, fn, h)
                v[key] = None if mw is None else mw / 1000.0
            limits = c.get("min_power_limit_w", "nvmlDeviceGetPowerManagementLimitConstraints", h)
            v["min_power_limit_w"] = None if limits is None else limits[0] / 1000.0
            v["fan_pct"] = c.get("fan_pct", "nvmlDeviceGetFanSpeed", h)
            sm, mem = c.const("NVML_CLOCK_SM", 1), c.const("NVML_CLOCK_MEM", 2)
            v["sm_clock_mhz"] = c.get("sm_clock_mhz", "nvmlDeviceGetClockInfo", h, sm)
            v["mem_clock_mhz"] = c.get("mem_clock_mhz", "nvmlDeviceGetClockInfo", h, mem)
            util = c.get("util_pct", "nvmlDeviceGetUtilizationRates", h)
            v["util_pct"] = None if util is None else util.gpu
            meminfo = c.get("mem_used_mib", "nvmlDeviceGetMemoryInfo", h)
            v["mem_used_mib"] = None if meminfo is None else round(meminfo.used / MIB)
            v["mem_total_mib"] = None if meminfo is None else round(meminfo.total / MIB)
            if meminfo is None:
                c.missing["mem_total_mib"] = c.missing["mem_used_mib"]
            v["pcie_gen"] = c.get("pcie_gen", "nvmlDeviceGetCurrPcieLinkGeneration", h)
            v["pcie_width"] = c.get("pcie_width", "nvmlDeviceGetCurrPcieLinkWidth", h)
            v["pcie_max_gen"] = c.get("pcie_max_gen", "nvmlDeviceGetMaxPcieLinkGeneration", h)
            v["pcie_max_width"] = c.get("pcie_max_width", "nvmlDeviceGetMaxPcieLinkWidth", h)
            reasons_fn = (
                "nvmlDeviceGetCurrentClocksEventReasons"
                if hasattr(c.nv, "nvmlDeviceGetCurrentClocksEventReasons")
                else "nvmlDeviceGetCurrentClocksThrottleReasons"  # nvidia-ml-py before 12.535
            )
            mask = c.get("clock_event_mask", reasons_fn, h)
            v["clock_event_mask"] = None if mask is None else int(mask)
            unc = c.const("NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1)
            agg = c.const("NVML_AGGREGATE_ECC", 1)
            ecc = c.get("ecc_uncorrected", "nvmlDeviceGetTotalEccErrors", h, unc, agg)
            v["ecc_uncorrected"] = None if ecc is None else int(ecc)
            rows = c.get("remapped_rows_pending", "nvmlDeviceGetRemappedRows", h)
            v["remapped_rows_pending"] = None if rows is None else bool(rows[2])
            return v

        return job

    # -- XID events ---------------------------------------------------------------------------

    def _register_events(self) -> Any:
        nv = self.module
        kind = int(getattr(nv, "nvmlEventTypeXidCriticalError", 8))
        try:
            event_set = nv.nvmlEventSetCreate()
        except nv.NVMLError as err:
            log.info("NVML XID events not available (%s); kernel-log XIDs only", err)
            return None
        for i, h in enumerate(self._handles):
            try:
                nv.nvmlDeviceRegisterEvents(h, kind, event_set)
            except nv.NVMLError as err:
                log.info("GPU %d: NVML XID events not available (%s)", i, err)
        return event_set

    def xids(self, wait_ms: int = 0) -> list[tuple[int, int]]:
        """(GPU index, XID) for critical-XID events since the last call, waiting at most
        ``wait_ms`` for the first; -1 for an event whose GPU NVML cannot name. A hung event wait
        gives no events this time (logged), never a hung caller."""
        nv = self.module

        def poll() -> list[tuple[int, int]]:
            if not self._events_tried:
                self._events_tried = True
                self._events = self._register_events()
            if self._events is None:
                return []
            wait = getattr(nv, "nvmlEventSetWait_v2", None) or nv.nvmlEventSetWait
            found: list[tuple[int, int]] = []
            left = max(0, int(wait_ms))
            for _ in range(64):  # bounded: a storm of events cannot stall the caller
                try:
                    data = wait(self._events, left)
                except nv.NVMLError as err:
                    if getattr(err, "value", None) != self._timeout_code:
                        log.debug("NVML event wait: %s", err)
                    break
                left = 0
                try:
                    index = int(nv.nvmlDeviceGetIndex(data.device))
                except nv.NVMLError:
                    index = -1
                found.append((index if 0 <= index < self.count else -1, int(data.eventData)))
            return found

        try:
            return self._run(self._system, poll, "nvmlEventSetWait", self.timeout_s + wait_ms / 1e3)
        except _Hung as err:
            log.warning("NVML XID events: %s", err)
            return []

    # -- actions ------------------------------------------------------------------------------

    def set_power_limit(self, index: int, watts: float) -> None:
        """Set GPU ``index``'s power limit (root). Runs on that GPU's action worker: a hung read
        does not hold it, and a hung set returns :class:`NvmlCallError` after ``timeout_s``."""
        nv = self.module
        what = f"set GPU {index} power limit to {watts:g} W"
        if not 0 <= index < self.count:
            raise NvmlCallError(f"cannot {what}: NVML sees GPUs 0-{self.count - 1}")
        h = self._handles[index]
        try:
            self._run(
                self._actors[index],
                lambda: nv.nvmlDeviceSetPowerManagementLimit(h, round(watts * 1000)),
                f"nvmlDeviceSetPowerManagementLimit (GPU {index})",
                self.timeout_s,
            )
        except _Hung as err:
            raise NvmlCallError(f"cannot {what}: {err}") from err
        except nv.NVMLError as err:
            why = self.classify(err) or f"GPU lost ({err})"
            raise NvmlCallError(
                f"cannot {what}: {why}", hint="setting power limits needs root"
            ) from err

    # -- closing ------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        nv = self.module

        def stop() -> None:
            if self._events is not None:
                nv.nvmlEventSetFree(self._events)
            nv.nvmlShutdown()

        try:
            self._run(self._system, stop, "nvmlShutdown", self.timeout_s)
        except (nv.NVMLError, _Hung) as err:
            log.debug("NVML shutdown: %s", err)

    def close(self) -> None:
        """Shut NVML down (once). Worker threads are daemons; a hung one is left to the OS."""
        if self._closed:
            return
        self._closed = True
        self._shutdown()
