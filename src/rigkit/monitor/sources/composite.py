"""The live machine: NVML GPUs + kernel-log XIDs + host (psutil) + NVMe health (smartctl)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from rigkit.monitor.sample import DiskSample, GpuSample, HostSample, Sample
from rigkit.monitor.sources.host import HostSource
from rigkit.monitor.sources.kmsg import KernelLogXids, bus_key, open_kernel_log
from rigkit.monitor.sources.nvml import NvmlSource
from rigkit.monitor.sources.smartctl import SmartctlReader

log = logging.getLogger(__name__)


def merge_disks(
    host: tuple[DiskSample, ...], smart: tuple[DiskSample, ...]
) -> tuple[DiskSample, ...]:
    """One DiskSample per name: health from smartctl, free space from the filesystems."""
    by_name = {d.name: d for d in host}
    for s in smart:
        h = by_name.get(s.name)
        by_name[s.name] = s if h is None else replace(s, free_pct=h.free_pct)
    return tuple(by_name[k] for k in sorted(by_name))


def add_kernel_xids(
    gpus: tuple[GpuSample, ...], records: list[tuple[str, int]]
) -> tuple[GpuSample, ...]:
    """Attach kernel-log XIDs (bus id, code) to the GPU at that PCI address, once per code."""
    if not records:
        return gpus
    by_bus: dict[tuple[int, int, int], int] = {}
    for n, g in enumerate(gpus):
        if g.pci_bus_id:
            try:
                by_bus[bus_key(g.pci_bus_id)] = n
            except ValueError:
                continue
    out = list(gpus)
    for bus, code in records:
        pos: int | None
        try:
            pos = by_bus.get(bus_key(bus))
        except ValueError:
            pos = None
        if pos is None:
            log.warning("XID %d on PCI %s: no GPU at that address", code, bus)
            continue
        g = out[pos]
        if code not in g.xid:
            out[pos] = replace(g, xid=(*g.xid, code))
    return tuple(out)


class CompositeSource:
    """Combines the live readers; any of them may be None (not available)."""

    def __init__(
        self,
        nvml: NvmlSource | None,
        host: HostSource | None,
        *,
        kmsg: KernelLogXids | None = None,
        smart: SmartctlReader | None = None,
    ) -> None:
        self.nvml = nvml
        self.host = host
        self.kmsg = kmsg
        self.smart = smart
        self.name = "nvml" if nvml is not None else "host"

    @classmethod
    def default(cls, *, gpus: bool = True) -> CompositeSource:
        """NVML (error at start-up if there is no driver), kernel log, psutil, smartctl."""
        nvml = NvmlSource() if gpus else None
        kmsg = open_kernel_log() if gpus else None
        return cls(nvml, HostSource(), kmsg=kmsg, smart=SmartctlReader())

    def read(self) -> Sample:
        now = time.time()
        gpus: tuple[GpuSample, ...] = self.nvml.read_gpus() if self.nvml is not None else ()
        if self.kmsg is not None:
            gpus = add_kernel_xids(gpus, [(r.bus_id, r.xid) for r in self.kmsg.poll()])
        host: HostSample | None = None
        if self.host is not None:
            host = self.host.read_host()
            if self.smart is not None:
                host = replace(host, disks=merge_disks(host.disks, self.smart.read()))
        return Sample(t=now, gpus=gpus, host=host, source=self.name, wall_time=now)

    def close(self) -> None:
        for part in (self.nvml, self.host, self.kmsg, self.smart):
            if part is not None:
                part.close()
