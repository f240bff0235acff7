"""NVIDIA GPUs for the monitor, read through :class:`rigkit.nvml.Nvml`.

Every NVML call goes through the session's workers with a timeout (see :mod:`rigkit.nvml.session`):
"not supported" and "no permission" become ``None`` (the reason is logged once per GPU and field);
a GPU that NVML calls lost, or that does not answer in time, is ``GpuSample(lost=True)`` and the
other GPUs are unaffected; a missing driver is a :class:`MonitorError` at start-up ("NVML not
available: no NVIDIA driver found"). Critical XIDs come from NVML's event set, polled without
waiting.

The ``nvml`` argument injects the session (tests open one over a fake pynvml module).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rigkit.errors import MonitorError
from rigkit.monitor.sample import GpuSample, Sample
from rigkit.nvml import GpuInfo, Lost, Nvml, NvmlUnavailable

log = logging.getLogger(__name__)


class NvmlSource:
    """Reads every GPU NVML sees. ``read()`` -> Sample with ``host=None``."""

    def __init__(
        self,
        nvml: Nvml | None = None,
        *,
        timeout_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if nvml is None:
            try:
                nvml = Nvml(timeout_s=timeout_s)
            except NvmlUnavailable as err:
                raise MonitorError(
                    err.message,
                    hint=err.hint
                    or "install the NVIDIA driver, or use --source host / replay:FILE",
                ) from err
        self.nvml = nvml
        self.name = "nvml"
        self._clock = clock
        self._said: set[tuple[int, str]] = set()  # (gpu, field) whose missing reason was logged
        self._info = [GpuInfo(index=i.index) if isinstance(i, Lost) else i for i in nvml.info_all()]

    def _note_missing(self, index: int, missing: dict[str, str]) -> None:
        for name, reason in missing.items():
            if (index, name) not in self._said:
                self._said.add((index, name))
                log.info("GPU %d %s not available: %s", index, name, reason)

    def read_gpus(self) -> tuple[GpuSample, ...]:
        xids: dict[int, list[int]] = {}
        for index, code in self.nvml.xids(0):
            if index >= 0:
                xids.setdefault(index, []).append(code)
        out = []
        for r in self.nvml.read_all():
            info = self._info[r.index]
            xid = tuple(xids.get(r.index, ()))
            if isinstance(r, Lost):
                log.warning("GPU %d lost: %s", r.index, r.reason)
                out.append(GpuSample.lost_gpu(r.index, name=info.name, uuid=info.uuid, xid=xid))
                continue
            self._note_missing(r.index, dict(r.missing))
            out.append(
                GpuSample(
                    index=r.index,
                    name=info.name,
                    uuid=info.uuid,
                    pci_bus_id=info.pci_bus_id,
                    xid=xid,
                    **r.values(),
                )
            )
        return tuple(out)

    def read(self) -> Sample:
        now = self._clock()
        gpus = self.read_gpus()
        return Sample(t=now, gpus=gpus, host=None, source=self.name, wall_time=now)

    def close(self) -> None:
        self.nvml.close()
