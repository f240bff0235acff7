"""A resolved build: the spec's ids replaced by catalog entries, slots assigned, site filled in.

`rigkit.spec.resolve()` produces a :class:`Build`; design rules, the estimator and the monitor's
defaults read it. Nothing here knows about rules or rendering.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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
    nvlink_bridge: bool = False  # the spec declares an NVLink bridge between this card and its pair
    riser: bool = False  # on a riser cable: takes its slot's connector, covers no other slot


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
    on_adapter: bool = False  # the spec puts it on an add-in adapter card (no M.2 slot used)


@dataclass(frozen=True)
class CostLine:
    """One priced line of the build: ``quantity`` x ``unit_usd`` (None: no price known)."""

    category: str
    item: str
    quantity: int
    unit_usd: float | None

    @property
    def total_usd(self) -> float:
        return (self.unit_usd or 0.0) * self.quantity

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "item": self.item,
            "quantity": self.quantity,
            "unit_usd": self.unit_usd,
            "total_usd": round(self.total_usd, 2),
        }


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
    claims: tuple[dict[str, object], ...] = ()  # headline hardware figures to check (design)
    psu_split: Literal["auto", "manual"] = "auto"
    psu_gpu_assignment: tuple[int, ...] | None = None  # gpu index -> psu index, when manual
    site_preset: str | None = None  # the site preset the spec named (values are in `site`)
    notes: tuple[str, ...] = ()  # what resolution decided on its own (slot placement, ...)

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    @property
    def memory_gb(self) -> int:
        return self.memory.module_gb * self.memory_modules

    def cost_lines(self) -> list[CostLine]:
        """Every part at its catalog street price (``price_usd``), one line per part or per
        identical GPUs, plus ``extra_cost_usd``: the one cost computation (plan, rules, JSON)."""
        lines = [
            CostLine("cpu", self.cpu.name, 1, self.cpu.price_usd),
            CostLine("motherboard", self.motherboard.name, 1, self.motherboard.price_usd),
            CostLine("memory", self.memory.name, self.memory_modules, self.memory.price_usd),
        ]
        gpu_counts: dict[str, list[Any]] = {}
        for g in self.gpus:
            gpu_counts.setdefault(g.gpu.id, [g.gpu, 0])[1] += 1
        for gpu, n in gpu_counts.values():
            lines.append(CostLine("gpu", gpu.name, n, gpu.price_usd))
        for p in self.psus:
            lines.append(CostLine("psu", p.name, 1, p.price_usd))
        for d in self.drives:
            lines.append(CostLine("storage", d.drive.name, 1, d.drive.price_usd))
        for n in self.nics:
            lines.append(CostLine("network", n.part.name, 1, n.part.price_usd))
        for f, q in self.fans:
            lines.append(CostLine("cooling", f.name, q, f.price_usd))
        if self.cooler is not None:
            lines.append(CostLine("cooling", self.cooler.name, 1, self.cooler.price_usd))
        if self.case is not None:
            lines.append(CostLine("case", self.case.name, 1, self.case.price_usd))
        if self.ups is not None:
            lines.append(CostLine("ups", self.ups.name, 1, self.ups.price_usd))
        if self.extra_cost_usd:
            lines.append(CostLine("other", "extra (outside the catalog)", 1, self.extra_cost_usd))
        return lines

    def cost_breakdown(self) -> dict[str, float]:
        """USD per category of :meth:`cost_lines` (unpriced parts count 0)."""
        out: dict[str, float] = {}
        for c in self.cost_lines():
            out[c.category] = out.get(c.category, 0.0) + c.total_usd
        return out

    @property
    def total_cost_usd(self) -> float:
        return sum(c.total_usd for c in self.cost_lines())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: part ids, placements, site, expectations and cost."""

        def slot(s: PcieSlot | M2Slot | None) -> str | None:
            return s.name if s is not None else None

        return {
            "name": self.name,
            "spec_path": self.spec_path,
            "cpu": self.cpu.id,
            "motherboard": self.motherboard.id,
            "memory": {"id": self.memory.id, "modules": self.memory_modules, "gb": self.memory_gb},
            "gpus": [
                {
                    "index": g.index,
                    "id": g.gpu.id,
                    "slot": slot(g.slot),
                    "power_limit_w": g.power_limit_w,
                    "auto_assigned": g.auto_assigned,
                    "nvlink_bridge": g.nvlink_bridge,
                }
                for g in self.gpus
            ],
            "psus": [x.id for x in self.psus],
            "drives": [
                {
                    "id": d.drive.id,
                    "m2_slot": slot(d.m2_slot),
                    "role": d.role,
                    "raid_group": d.raid_group,
                    "on_adapter": d.on_adapter,
                }
                for d in self.drives
            ],
            "nics": [
                {"id": n.part.id, "slot": slot(n.slot), "auto_assigned": n.auto_assigned}
                for n in self.nics
            ],
            "fans": [{"id": f.id, "quantity": n} for f, n in self.fans],
            "cooler": self.cooler.id if self.cooler else None,
            "case": self.case.id if self.case else None,
            "ups": self.ups.id if self.ups else None,
            "site_preset": self.site_preset,
            "site": asdict(self.site),
            "cloud": self.cloud.id if self.cloud else None,
            "extra_cost_usd": self.extra_cost_usd,
            "psu_split": self.psu_split,
            "psu_gpu_assignment": list(self.psu_gpu_assignment)
            if self.psu_gpu_assignment is not None
            else None,
            "expectations": [dict(e) for e in self.expectations],
            "cost_usd": self.cost_breakdown(),
            "total_cost_usd": self.total_cost_usd,
            "notes": list(self.notes),
        }
