"""The host through psutil: CPU temperature, load, memory, free space per disk, network rates.

CPU temperature: the ``k10temp`` sensor (AMD: ``Tctl``/``Tdie``/``Tccd*``) or ``coretemp``
(Intel: ``Package id 0``), else None. Disks are named after the block device (``nvme0n1``) of their
partitions; ``free_pct`` is the lowest free share among that device's mounted filesystems.
The ``psutil`` argument injects the module (tests pass a fake).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from rigkit.monitor.sample import DiskSample, HostSample, Sample

log = logging.getLogger(__name__)

_PART_RE = re.compile(r"^(?P<dev>nvme\d+n\d+)p\d+$|^(?P<sd>(?:sd|vd|xvd)[a-z]+)\d+$")
_CPU_SENSORS = (
    ("k10temp", ("Tctl", "Tdie")),
    ("coretemp", ("Package id 0",)),
    ("zenpower", ("Tdie", "Tctl")),
)


def disk_name(device: str) -> str | None:
    """Block device of a partition: /dev/nvme0n1p2 -> nvme0n1, /dev/sda1 -> sda; None otherwise."""
    base = device.rsplit("/", 1)[-1]
    m = _PART_RE.match(base)
    if m:
        return m.group("dev") or m.group("sd")
    if re.match(r"^(nvme\d+n\d+|(?:sd|vd|xvd)[a-z]+)$", base):
        return base
    return None


def cpu_temperature(temps: dict[str, list[Any]]) -> float | None:
    """The CPU package temperature from psutil.sensors_temperatures() output."""
    for chip, labels in _CPU_SENSORS:
        entries = temps.get(chip) or []
        for label in labels:
            for e in entries:
                if e.label == label and e.current is not None:
                    return float(e.current)
        ccds = [float(e.current) for e in entries if str(e.label).startswith("Tccd")]
        if ccds:
            return max(ccds)
        if entries and entries[0].current is not None:
            return float(entries[0].current)
    return None


class HostSource:
    """Reads the host. ``read()`` -> Sample with no GPUs."""

    def __init__(
        self, psutil: ModuleType | Any | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if psutil is None:
            import psutil as psutil_mod

            psutil = psutil_mod
        self.psutil = psutil
        self.name = "host"
        self._clock = clock
        self._net_prev: tuple[float, dict[str, tuple[int, int]]] | None = None

    def _cpu_temp(self) -> float | None:
        fn = getattr(self.psutil, "sensors_temperatures", None)
        if fn is None:
            return None
        try:
            return cpu_temperature(fn())
        except OSError as err:
            log.debug("sensors_temperatures: %s", err)
            return None

    def _disks(self) -> tuple[DiskSample, ...]:
        free: dict[str, float] = {}
        try:
            parts = self.psutil.disk_partitions(all=False)
        except OSError as err:
            log.debug("disk_partitions: %s", err)
            return ()
        for p in parts:
            name = disk_name(p.device)
            if name is None:
                continue
            try:
                usage = self.psutil.disk_usage(p.mountpoint)
            except OSError:
                continue
            pct = 100.0 - float(usage.percent)
            free[name] = min(pct, free.get(name, 100.0))
        return tuple(DiskSample(name=n, free_pct=round(v, 1)) for n, v in sorted(free.items()))

    def _net(self) -> dict[str, float] | None:
        try:
            counters = self.psutil.net_io_counters(pernic=True)
        except OSError:
            return None
        now = self._clock()
        cur = {
            nic: (c.bytes_recv, c.bytes_sent)
            for nic, c in counters.items()
            if nic != "lo" and not nic.startswith(("veth", "docker", "br-", "ifb", "virbr"))
        }
        prev, self._net_prev = self._net_prev, (now, cur)
        if prev is None or now <= prev[0]:
            return None
        dt = now - prev[0]
        out: dict[str, float] = {}
        for nic, (rx, tx) in cur.items():
            if nic in prev[1]:
                prx, ptx = prev[1][nic]
                out[f"{nic}_rx_bytes_s"] = max(0.0, (rx - prx) / dt)
                out[f"{nic}_tx_bytes_s"] = max(0.0, (tx - ptx) / dt)
        return out

    def read_host(self) -> HostSample:
        p = self.psutil
        try:
            load1: float | None = float(p.getloadavg()[0])
        except (OSError, AttributeError):
            load1 = None
        try:
            mem: float | None = float(p.virtual_memory().percent)
        except OSError:
            mem = None
        return HostSample(
            cpu_temp_c=self._cpu_temp(),
            load1=load1,
            mem_used_pct=mem,
            disks=self._disks(),
            net=self._net(),
        )

    def read(self) -> Sample:
        now = time.time()
        return Sample(t=now, gpus=(), host=self.read_host(), source=self.name, wall_time=now)

    def close(self) -> None:
        pass
