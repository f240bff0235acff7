"""A resolved build: the spec's ids replaced by catalog entries, slots assigned, site filled in.

`rigkit.spec.resolve()` produces a :class:`Build`; design rules, the estimator and the monitor's
defaults read it. Nothing here knows about rules or rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rigkit.catalog.parts import (
    Case,
    CloudInstance,
    Cooler,
    Cpu,
    Fan,
    Gpu,
    M2Slot,
    MemoryKit,
    Motherboard,
    Nic,
    Nvme,
    PcieSlot,
    Psu,
    Ups,
)


@dataclass(frozen=True)
class Site:
    """Where the machine runs. Defaults: a North American home office on a shared 15 A circuit."""

    mains_voltage_v: float = 120.0
    breaker_a: float = 15.0
    dedicated_circuit: bool = False
    other_load_w: float = 0.0  # other continuous load on the same circuit (monitors, lights)
    room_cooling_btu_h: float | None = None  # None: no dedicated cooling stated
    ambient_c: float = 25.0
    electricity_usd_per_kwh: float = 0.17
    hours_per_day: float = 24.0
    utilization: float = 0.6  # average fraction of sustained power while in use
    idle_power_fraction: float = 0.15  # power when idle as a fraction of sustained (for cost)


@dataclass(frozen=True)
class PlacedGpu:
    gpu: Gpu
    index: int  # 0-based position in the build
    slot: PcieSlot | None  # None when the board has no slot left
    power_limit_w: float  # the spec's override or the board power
    auto_assigned: bool = True


@dataclass(frozen=True)
class PlacedDevice:
    """A non-GPU PCIe add-in card (NIC, HBA) and its slot."""

    part: Nic
    slot: PcieSlot | None
    auto_assigned: bool = True


@dataclass(frozen=True)
class PlacedDrive:
    drive: Nvme
    m2_slot: M2Slot | None  # None: on an adapter or no slot left
    role: str = "data"  # os, models, data, ...
    raid_group: str | None = None  # drives sharing a name form one RAID 0 volume


@dataclass(frozen=True)
class Build:
    name: str
    spec_path: str | None
    cpu: Cpu
    motherboard: Motherboard
    memory: MemoryKit
    memory_modules: int
    gpus: tuple[PlacedGpu, ...]
    psus: tuple[Psu, ...]
    drives: tuple[PlacedDrive, ...] = ()
    nics: tuple[PlacedDevice, ...] = ()
    fans: tuple[tuple[Fan, int], ...] = ()  # (fan, quantity)
    cooler: Cooler | None = None
    case: Case | None = None
    ups: Ups | None = None
    site: Site = field(default_factory=Site)
    cloud: CloudInstance | None = None  # instance to compare cost with
    extra_cost_usd: float = 0.0  # parts outside the catalog (cables, risers, ...)
    expectations: tuple[dict[str, object], ...] = ()  # performance claims to check (estimator)
    psu_split: Literal["auto", "manual"] = "auto"
    psu_gpu_assignment: tuple[int, ...] | None = None  # gpu index -> psu index, when manual

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    @property
    def memory_gb(self) -> int:
        return self.memory.module_gb * self.memory_modules
