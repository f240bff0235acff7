"""One reading of the machine: GPUs, host and disks, at a sample time ``t``.

The classes here are the contract between sources (NVML, kernel log, psutil, smartctl, replay),
the store, the alert rules, the responder and the exporter. Every hardware field is optional:
``None`` means "not available" (not supported, no permission, GPU lost), never zero.

``Sample.to_dict()`` / ``Sample.from_dict()`` implement the replay format (JSON Lines, one object per
line, documented in docs/monitor.md). Missing keys read as ``None``; unknown keys are ignored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from rigkit.errors import MonitorError

# Clock-event (throttle) reason names in NVML bit order; the table lives in rigkit.nvml.codes.
from rigkit.nvml.codes import THROTTLE_REASONS as THROTTLE_REASONS

#: Numeric per-GPU fields (``float | int | None``), in replay-format order.
GPU_METRICS: tuple[str, ...] = (
    "temperature_c",
    "slowdown_temp_c",
    "shutdown_temp_c",
    "thermal_margin_c",
    "power_w",
    "power_limit_w",
    "default_power_limit_w",
    "min_power_limit_w",
    "fan_pct",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "util_pct",
    "mem_used_mib",
    "mem_total_mib",
    "pcie_gen",
    "pcie_width",
    "pcie_max_gen",
    "pcie_max_width",
)

#: Numeric host fields.
HOST_METRICS: tuple[str, ...] = ("cpu_temp_c", "load1", "mem_used_pct")

#: Numeric per-disk fields.
DISK_METRICS: tuple[str, ...] = (
    "temp_c",
    "wear_pct",
    "free_pct",
    "media_errors",
    "critical_warning",
)

Number = float | int


#: No reading (a temperature, a byte rate, an epoch time) comes near this; anything larger is not a
#: measurement, and could overflow SQLite's integers or the aggregates' sums.
MAX_MAGNITUDE = 1e15
#: GPU indexes as NVML numbers them (0 up to the number of GPUs in the machine).
MAX_GPU_INDEX = 4095


def _num(value: Any, where: str) -> Number | None:
    """A JSON number (not bool, not NaN) within +-MAX_MAGNITUDE, or None; anything else is a
    MonitorError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MonitorError(f"{where}: expected a number or null, got {_short(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if abs(value) > MAX_MAGNITUDE:
        raise MonitorError(
            f"{where}: {_short(value)} is out of range (a reading is at most {MAX_MAGNITUDE:g})"
        )
    return value


def _short(value: Any) -> str:
    """``repr`` cut to a readable length (a 5,000-digit integer is not a message)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of about {value.bit_length() * 30103 // 100000 + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _opt_int(value: Any, where: str) -> int | None:
    v = _num(value, where)
    return None if v is None else int(v)


def _opt_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MonitorError(f"{where}: expected a string or null, got {value!r}")
    return value


def _opt_bool(value: Any, where: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise MonitorError(f"{where}: expected true, false or null, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MonitorError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise MonitorError(f"{where}: expected a list, got {type(value).__name__}")
    return list(value)


@dataclass(frozen=True)
class GpuSample:
    """One GPU at one instant. ``lost=True``: the GPU fell off the bus or did not answer."""

    index: int
    name: str | None = None
    uuid: str | None = None
    temperature_c: Number | None = None
    slowdown_temp_c: Number | None = None
    shutdown_temp_c: Number | None = None
    thermal_margin_c: Number | None = None
    power_w: Number | None = None
    power_limit_w: Number | None = None
    default_power_limit_w: Number | None = None
    min_power_limit_w: Number | None = None
    fan_pct: Number | None = None
    sm_clock_mhz: Number | None = None
    mem_clock_mhz: Number | None = None
    util_pct: Number | None = None
    mem_used_mib: Number | None = None
    mem_total_mib: Number | None = None
    pcie_gen: Number | None = None
    pcie_width: Number | None = None
    pcie_max_gen: Number | None = None
    pcie_max_width: Number | None = None
    throttle_reasons: tuple[str, ...] | None = None
    xid: tuple[int, ...] = ()  # new XIDs seen since the previous sample
    ecc_uncorrected: int | None = None
    remapped_rows_pending: bool | None = None
    lost: bool = False
    pci_bus_id: str | None = None  # e.g. "00000000:01:00.0"; used to map kernel-log XIDs

    def metric(self, name: str) -> Number | None:
        """The numeric field ``name`` (one of :data:`GPU_METRICS`), or None."""
        value: Number | None = getattr(self, name)
        return value

    def to_dict(self) -> dict[str, Any]:
        """Replay-format object; fields that are not available are left out."""
        out: dict[str, Any] = {"index": self.index}
        for f in fields(self):
            if f.name == "index":
                continue
            value = getattr(self, f.name)
            if f.name == "xid":
                out["xid"] = list(value)
            elif f.name == "lost":
                if value:
                    out["lost"] = True
            elif f.name == "throttle_reasons":
                if value is not None:
                    out["throttle_reasons"] = list(value)
            elif value is not None:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "gpu") -> GpuSample:
        """Read one GPU object of the replay format."""
        d = _mapping(d, where)
        index = d.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise MonitorError(f"{where}: 'index' must be an integer, got {_short(index)}")
        if not 0 <= index <= MAX_GPU_INDEX:
            raise MonitorError(
                f"{where}.index: {_short(index)} is not a GPU index (0 to {MAX_GPU_INDEX})"
            )
        kwargs: dict[str, Any] = {"index": index}
        for name in GPU_METRICS:
            kwargs[name] = _num(d.get(name), f"{where}.{name}")
        kwargs["name"] = _opt_str(d.get("name"), f"{where}.name")
        kwargs["uuid"] = _opt_str(d.get("uuid"), f"{where}.uuid")
        kwargs["pci_bus_id"] = _opt_str(d.get("pci_bus_id"), f"{where}.pci_bus_id")
        reasons = d.get("throttle_reasons")
        if reasons is not None:
            items = _list(reasons, f"{where}.throttle_reasons")
            if not all(isinstance(r, str) for r in items):
                raise MonitorError(f"{where}.throttle_reasons: expected a list of names")
            kwargs["throttle_reasons"] = tuple(items)
        xid = d.get("xid")
        if xid is not None:
            items = _list(xid, f"{where}.xid")
            if any(
                isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < 2**31 for x in items
            ):
                raise MonitorError(f"{where}.xid: expected a list of XID numbers (0 to 2^31 - 1)")
            kwargs["xid"] = tuple(items)
        kwargs["ecc_uncorrected"] = _opt_int(d.get("ecc_uncorrected"), f"{where}.ecc_uncorrected")
        kwargs["remapped_rows_pending"] = _opt_bool(
            d.get("remapped_rows_pending"), f"{where}.remapped_rows_pending"
        )
        lost = d.get("lost", False)
        if not isinstance(lost, bool):
            raise MonitorError(f"{where}.lost: expected true or false, got {lost!r}")
        kwargs["lost"] = lost
        if lost:  # a lost GPU has no values, whatever the file says
            return cls(
                index=index,
                name=kwargs["name"],
                uuid=kwargs["uuid"],
                pci_bus_id=kwargs["pci_bus_id"],
                xid=kwargs.get("xid", ()),
                lost=True,
            )
        return cls(**kwargs)

    @classmethod
    def lost_gpu(
        cls, index: int, name: str | None = None, uuid: str | None = None, xid: tuple[int, ...] = ()
    ) -> GpuSample:
        """A GPU that fell off the bus / did not answer: every value None."""
        return cls(index=index, name=name, uuid=uuid, xid=xid, lost=True)


@dataclass(frozen=True)
class DiskSample:
    """One disk (NVMe health from smartctl, free space from the filesystem)."""

    name: str
    temp_c: Number | None = None
    wear_pct: Number | None = None  # NVMe "percentage used" (endurance consumed)
    free_pct: Number | None = None
    media_errors: int | None = None
    critical_warning: int | None = None  # NVMe critical warning bit field; 0 = none

    def metric(self, name: str) -> Number | None:
        value: Number | None = getattr(self, name)
        return value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for name in DISK_METRICS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "disk") -> DiskSample:
        d = _mapping(d, where)
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise MonitorError(f"{where}: 'name' must be a non-empty string, got {name!r}")
        return cls(
            name=name,
            temp_c=_num(d.get("temp_c"), f"{where}.temp_c"),
            wear_pct=_num(d.get("wear_pct"), f"{where}.wear_pct"),
            free_pct=_num(d.get("free_pct"), f"{where}.free_pct"),
            media_errors=_opt_int(d.get("media_errors"), f"{where}.media_errors"),
            critical_warning=_opt_int(d.get("critical_warning"), f"{where}.critical_warning"),
        )


@dataclass(frozen=True)
class HostSample:
    """The host: CPU package temperature, 1-minute load, memory, disks and network rates."""

    cpu_temp_c: Number | None = None
    load1: Number | None = None
    mem_used_pct: Number | None = None
    disks: tuple[DiskSample, ...] = ()
    net: dict[str, float] | None = None  # e.g. {"eth0_rx_bytes_s": ..., "eth0_tx_bytes_s": ...}

    def metric(self, name: str) -> Number | None:
        value: Number | None = getattr(self, name)
        return value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in HOST_METRICS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["disks"] = [d.to_dict() for d in self.disks]
        if self.net is not None:
            out["net"] = dict(self.net)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "host") -> HostSample:
        d = _mapping(d, where)
        disks_raw = d.get("disks")
        disks: tuple[DiskSample, ...] = ()
        if disks_raw is not None:
            disks = tuple(
                DiskSample.from_dict(x, f"{where}.disks[{i}]")
                for i, x in enumerate(_list(disks_raw, f"{where}.disks"))
            )
        net_raw = d.get("net")
        net: dict[str, float] | None = None
        if net_raw is not None:
            net = {}
            for k, v in _mapping(net_raw, f"{where}.net").items():
                n = _num(v, f"{where}.net.{k}")
                if n is not None:
                    net[str(k)] = float(n)
        return cls(
            cpu_temp_c=_num(d.get("cpu_temp_c"), f"{where}.cpu_temp_c"),
            load1=_num(d.get("load1"), f"{where}.load1"),
            mem_used_pct=_num(d.get("mem_used_pct"), f"{where}.mem_used_pct"),
            disks=disks,
            net=net,
        )


@dataclass(frozen=True)
class Sample:
    """One reading of the whole machine.

    ``t`` is the sample time in seconds (epoch seconds for live sources, file time for replays);
    rules measure durations in ``t``. ``wall_time`` is ``time.time()`` when the sample was
    collected, used to judge freshness.
    """

    t: float
    gpus: tuple[GpuSample, ...] = ()
    host: HostSample | None = None
    source: str = "unknown"
    wall_time: float = field(default_factory=time.time)

    def gpu(self, index: int) -> GpuSample | None:
        for g in self.gpus:
            if g.index == index:
                return g
        return None

    def to_dict(self) -> dict[str, Any]:
        """Replay-format object (``source`` and ``wall_time`` are not part of the format)."""
        out: dict[str, Any] = {"t": self.t, "gpus": [g.to_dict() for g in self.gpus]}
        if self.host is not None:
            out["host"] = self.host.to_dict()
        return out

    @classmethod
    def from_dict(
        cls,
        d: Mapping[str, Any],
        *,
        source: str = "replay",
        wall_time: float | None = None,
    ) -> Sample:
        """Read one replay-format object; raises MonitorError naming the bad field."""
        d = _mapping(d, "sample")
        t = _num(d.get("t"), "t")
        if t is None:
            raise MonitorError("'t' (sample time in seconds) is required")
        gpus_raw = d.get("gpus")
        gpus: tuple[GpuSample, ...] = ()
        if gpus_raw is not None:
            gpus = tuple(
                GpuSample.from_dict(g, f"gpus[{i}]") for i, g in enumerate(_list(gpus_raw, "gpus"))
            )
            seen: dict[int, int] = {}
            for i, g in enumerate(gpus):
                if g.index in seen:
                    raise MonitorError(
                        f"gpus[{i}].index: GPU {g.index} is already gpus[{seen[g.index]}]",
                        hint="one object per GPU in a sample",
                    )
                seen[g.index] = i
        host_raw = d.get("host")
        host = None if host_raw is None else HostSample.from_dict(host_raw)
        return cls(
            t=float(t),
            gpus=gpus,
            host=host,
            source=source,
            wall_time=time.time() if wall_time is None else wall_time,
        )


EventKind = Literal["raised", "resolved", "action"]
Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True)
class Event:
    """An alert raised or resolved, or a response action (decided, dry-run or enforced)."""

    t: float
    kind: EventKind
    rule: str
    severity: Severity
    gpu: int | None
    message: str
    value: float | None = None
    tier: int | None = None
    dry_run: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "kind": self.kind,
            "rule": self.rule,
            "severity": self.severity,
            "gpu": self.gpu,
            "message": self.message,
            "value": self.value,
            "tier": self.tier,
            "dry_run": self.dry_run,
            "detail": dict(self.detail),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        kind = d.get("kind")
        severity = d.get("severity")
        if kind not in ("raised", "resolved", "action"):
            raise MonitorError(f"event: unknown kind {kind!r}")
        if severity not in ("critical", "warning", "info"):
            raise MonitorError(f"event: unknown severity {severity!r}")
        t = _num(d.get("t"), "event.t")
        gpu = d.get("gpu")
        value = _num(d.get("value"), "event.value")
        tier = d.get("tier")
        dry_run = d.get("dry_run")
        detail = d.get("detail") or {}
        return cls(
            t=float(t or 0.0),
            kind=kind,
            rule=str(d.get("rule", "")),
            severity=severity,
            gpu=gpu if isinstance(gpu, int) and not isinstance(gpu, bool) else None,
            message=str(d.get("message", "")),
            value=None if value is None else float(value),
            tier=tier if isinstance(tier, int) and not isinstance(tier, bool) else None,
            dry_run=dry_run if isinstance(dry_run, bool) else None,
            detail=dict(detail) if isinstance(detail, Mapping) else {},
        )
