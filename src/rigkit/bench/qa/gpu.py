"""GPU access for the acceptance checks: an NVML probe behind a small protocol, and PyTorch loading.

NVML is optional: without a driver the probe cannot open and the GPU checks skip with the reason.
The probe reads through :class:`rigkit.nvml.Nvml` (every call on a worker with a timeout; "not
supported" and "no permission" become ``None`` fields; a lost or hung GPU is a reading with
``lost=True``, never a reading of missing values).
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from rigkit.errors import BenchError
from rigkit.nvml import Lost, Nvml, NvmlUnavailable

log = logging.getLogger(__name__)

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
    """One GPU at one instant. ``lost``: NVML says the GPU is lost, or it did not answer."""

    index: int
    temp_c: float | None = None
    sm_clock_mhz: float | None = None
    power_w: float | None = None
    clocks_event_reasons: int | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    util_pct: float | None = None
    fan_pct: float | None = None
    lost: bool = False


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


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


class NvmlProbe:
    """The qa view of an NVML session (:class:`rigkit.nvml.Nvml`)."""

    def __init__(self, nvml: Nvml | None = None, *, timeout_s: float = NVML_TIMEOUT_S) -> None:
        if nvml is None:
            try:
                nvml = Nvml(timeout_s=timeout_s)
            except NvmlUnavailable as err:
                raise GpuUnavailable(err.message) from err
        if nvml.count == 0:
            nvml.close()
            raise GpuUnavailable("NVML reports no GPUs")
        self._nvml = nvml

    def devices(self) -> list[GpuDevice]:
        out = []
        for info in self._nvml.info_all():
            if isinstance(info, Lost):
                out.append(
                    GpuDevice(index=info.index, name=f"GPU {info.index} (lost: {info.reason})")
                )
                continue
            out.append(
                GpuDevice(
                    index=info.index,
                    name=info.name or f"GPU {info.index}",
                    pci_bus_id=info.pci_bus_id,
                    memory_total_bytes=info.memory_total_bytes,
                    pcie_gen_max=info.pcie_max_gen,
                    pcie_width_max=info.pcie_max_width,
                    driver_version=self._nvml.driver_version,
                )
            )
        return out

    def readings(self) -> list[GpuReading]:
        out = []
        for r in self._nvml.read_all():
            if isinstance(r, Lost):
                log.warning("GPU %d lost: %s", r.index, r.reason)
                out.append(GpuReading(index=r.index, lost=True))
                continue
            out.append(
                GpuReading(
                    index=r.index,
                    temp_c=_float(r.temperature_c),
                    sm_clock_mhz=_float(r.sm_clock_mhz),
                    power_w=r.power_w,
                    clocks_event_reasons=r.clock_event_mask,
                    pcie_gen=r.pcie_gen,
                    pcie_width=r.pcie_width,
                    util_pct=_float(r.util_pct),
                    fan_pct=_float(r.fan_pct),
                )
            )
        return out

    def xids(self, wait_ms: int) -> list[tuple[int, int]]:
        return self._nvml.xids(wait_ms)

    def close(self) -> None:
        self._nvml.close()


def open_probe(given: GpuProbe | None) -> GpuProbe:
    """The given probe, or NVML; raises :class:`GpuUnavailable` with the reason when neither."""
    if given is not None:
        return given
    return NvmlProbe()


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
