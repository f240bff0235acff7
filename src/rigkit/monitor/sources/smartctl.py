"""NVMe health from ``smartctl -a -j /dev/nvmeN`` (smartmontools 7+ JSON output).

Reads the composite temperature, ``percentage_used`` (endurance consumed, the wear figure),
``available_spare``, ``media_errors`` and ``critical_warning``. Health changes slowly, so the
reader runs smartctl at most every ``min_interval_s`` (60 s) and returns the cached values in
between. smartctl needs root; failures make the values "not available", never an error.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rigkit.errors import MonitorError
from rigkit.monitor.sample import DiskSample

log = logging.getLogger(__name__)

# smartctl exit status bits 0-2: command line did not parse, device open failed, command failed.
_FATAL_BITS = 0b111


def disk_name_for(device: str) -> str:
    """/dev/nvme0 -> nvme0n1 (namespace 1, the block device), /dev/nvme1n1 -> nvme1n1."""
    base = device.rsplit("/", 1)[-1]
    return f"{base}n1" if re.fullmatch(r"nvme\d+", base) else base


def parse_smartctl(doc: Mapping[str, Any], name: str | None = None) -> DiskSample:
    """A DiskSample from smartctl's JSON document (NVMe health log; SATA temperature only)."""
    if not isinstance(doc, Mapping):
        raise MonitorError("smartctl output is not a JSON object")
    dev = doc.get("device") or {}
    disk = name or disk_name_for(str(dev.get("name", "disk")))
    log_ = doc.get("nvme_smart_health_information_log") or {}
    temp = log_.get("temperature")
    if temp is None:
        temp = (doc.get("temperature") or {}).get("current")

    def num(v: Any) -> float | int | None:
        return v if isinstance(v, int | float) and not isinstance(v, bool) else None

    def integer(v: Any) -> int | None:
        n = num(v)
        return None if n is None else int(n)

    return DiskSample(
        name=disk,
        temp_c=num(temp),
        wear_pct=num(log_.get("percentage_used")),
        free_pct=None,
        media_errors=integer(log_.get("media_errors")),
        critical_warning=integer(log_.get("critical_warning")),
    )


def available_spare(doc: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(available spare %, its threshold %) from the NVMe health log."""
    log_ = doc.get("nvme_smart_health_information_log") or {}
    return log_.get("available_spare"), log_.get("available_spare_threshold")


Runner = Callable[[Sequence[str], float], tuple[int, str]]


def _run(argv: Sequence[str], timeout_s: float) -> tuple[int, str]:
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MonitorError(f"{argv[0]} failed: {err}") from err
    return proc.returncode, proc.stdout


def nvme_devices(dev_root: str | Path = "/dev") -> list[str]:
    """NVMe controllers present (/dev/nvme0, /dev/nvme1, ...)."""
    root = Path(dev_root)
    return sorted(str(p) for p in root.glob("nvme*") if re.fullmatch(r"nvme\d+", p.name))


class SmartctlReader:
    """Health of the given NVMe devices, refreshed at most every ``min_interval_s``."""

    def __init__(
        self,
        devices: Sequence[str] | None = None,
        *,
        smartctl: str | None = None,
        min_interval_s: float = 60.0,
        timeout_s: float = 10.0,
        runner: Runner = _run,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.devices = list(devices) if devices is not None else nvme_devices()
        self.smartctl = smartctl or shutil.which("smartctl") or "smartctl"
        self.min_interval_s = min_interval_s
        self.timeout_s = timeout_s
        self._runner = runner
        self._clock = clock
        self._cache: dict[str, DiskSample] = {}
        self._last: float | None = None
        self._warned: set[str] = set()

    def read_one(self, device: str) -> DiskSample | None:
        try:
            status, out = self._runner([self.smartctl, "-a", "-j", device], self.timeout_s)
        except MonitorError as err:
            self._warn(device, str(err))
            return None
        try:
            doc = json.loads(out) if out.strip() else None
        except json.JSONDecodeError:
            doc = None
        if doc is None or status & _FATAL_BITS:
            msgs = []
            if isinstance(doc, dict):
                msgs = [
                    m.get("string", "") for m in (doc.get("smartctl") or {}).get("messages", [])
                ]
            self._warn(device, f"smartctl exit status {status}" + (f": {msgs[0]}" if msgs else ""))
            return None
        return parse_smartctl(doc, disk_name_for(device))

    def _warn(self, device: str, why: str) -> None:
        if device not in self._warned:
            self._warned.add(device)
            log.warning("NVMe health of %s not available (%s)", device, why)

    def read(self) -> tuple[DiskSample, ...]:
        now = self._clock()
        if self._last is None or now - self._last >= self.min_interval_s:
            self._last = now
            for dev in self.devices:
                disk = self.read_one(dev)
                if disk is not None:
                    self._cache[disk.name] = disk
        return tuple(self._cache[k] for k in sorted(self._cache))

    def close(self) -> None:
        pass
