"""Shared computations for the design rules and the plan summary: PCIe links, power, heat, cost.

Pure functions of a :class:`~rigkit.build.Build`. Every result is a frozen dataclass with the terms
it was added up from, so a rule can quote the numbers and a report can draw them.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rigkit.build import Build, PlacedGpu
    from rigkit.catalog.parts import M2Slot, PcieSlot, Psu, Ups

# --- constants (with where they come from) ------------------------------------------------------

#: usable bandwidth per lane and direction in GB/s, after line coding (PCI-SIG base specs:
#: 3.0 8 GT/s 128b/130b, 4.0 16 GT/s, 5.0 32 GT/s, 6.0 64 GT/s PAM4 with FLIT 242/256).
PCIE_LANE_GB_S: dict[int, float] = {3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}

#: motherboard itself (VRMs losses, chipset, BMC, onboard NICs, USB): a typical 50-80 W, mid value.
BOARD_POWER_W = 60.0

#: continuous loads may use 80% of the breaker rating (NEC 210.19(A), 210.20).
CONTINUOUS_LOAD_FRACTION = 0.8

#: 1 W = 3.412 BTU/h; one ton of cooling = 12,000 BTU/h.
BTU_H_PER_W = 3.412
BTU_H_PER_TON = 12_000.0

#: ATX 3.x PSU power excursion allowance (Intel ATX 3.0 design guide, table 3-3):
#: (duration in seconds, multiple of rated power).
ATX3_EXCURSIONS: tuple[tuple[float, float], ...] = (
    (100e-6, 2.0),
    (1e-3, 1.8),
    (10e-3, 1.6),
    (100e-3, 1.2),
)
#: the GPU transient ratios in the catalog are ~1-10 ms excursions, so they are held to the 10 ms limit
ATX3_TRANSIENT_LIMIT = 1.6

#: air-side heat removal: CFM = 1.76 x W / delta-T(C) (= 3.16 x W / delta-T(F)).
CFM_PER_W_PER_C = 1.76
#: allowed rise of the air from intake to exhaust for the airflow check.
AIR_DELTA_T_C = 10.0

#: power factor of an active-PFC PSU at high load, for VA from W.
PSU_POWER_FACTOR = 0.99

#: UPS runtime from battery energy: usable depth of discharge and inverter efficiency.
UPS_DEPTH_OF_DISCHARGE = 0.8
UPS_INVERTER_EFFICIENCY = 0.9

#: UPS efficiency in normal operation (output W / input W at near full load) where the catalog entry
#: has no maker's figure, by topology. Maker sheets give about 92-95% for double-conversion online
#: units in online mode (APC SRT3000XLA: 94%) and 97-98% for line-interactive and standby units,
#: which pass the mains through while it is good; the ENERGY STAR Uninterruptible Power Supplies
#: specification (v2.0) grades its minimum efficiencies the same way (VFI online units lowest,
#: VI line-interactive and VFD standby higher). Lower figures are the cautious choice for the
#: circuit and the heat.
UPS_DEFAULT_EFFICIENCY: dict[str, float] = {
    "online": 0.94,
    "line-interactive": 0.97,
    "standby": 0.97,
}

#: one 8-pin PCIe connector is rated 150 W (PCIe CEM); a 12VHPWR adapter has one input per 150 W.
PCIE_8PIN_W = 150.0

DAYS_PER_MONTH = 30.0


def lane_gb_s(gen: int) -> float:
    """Usable GB/s per lane and direction for PCIe generation ``gen``."""
    if gen in PCIE_LANE_GB_S:
        return PCIE_LANE_GB_S[gen]
    # generations outside the table double per step from 3.0
    return PCIE_LANE_GB_S[3] * float(2 ** (gen - 3))


def link_gb_s(gen: int, lanes: int) -> float:
    return lane_gb_s(gen) * lanes


# --- PCIe allocation --------------------------------------------------------------------------


@dataclass(frozen=True)
class PcieLink:
    """One device and the link it gets: lanes and generation are the minimum of card, slot and CPU."""

    device: str  # "gpu0: RTX 4090", "nic0: ...", "nvme0: ..."
    kind: str  # gpu, nic, nvme
    slot: str | None
    slot_position: int | None
    source: str | None  # cpu or chipset
    device_lanes: int
    device_gen: int
    lanes: int  # electrical lanes in use (0 when there is no slot)
    gen: int
    bandwidth_gb_s: float

    @property
    def full_bandwidth_gb_s(self) -> float:
        return link_gb_s(self.device_gen, self.device_lanes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bandwidth_gb_s"] = round(self.bandwidth_gb_s, 2)
        return d


def used_m2_names(build: Build) -> set[str]:
    return {d.m2_slot.name for d in build.drives if d.m2_slot is not None}


def used_slot_names(build: Build) -> set[str]:
    """PCIe slots that hold a GPU or an add-in card."""
    names = {g.slot.name for g in build.gpus if g.slot is not None}
    return names | {n.slot.name for n in build.nics if n.slot is not None}


def sharing_in_use(build: Build, slot: PcieSlot) -> list[str]:
    """The M.2 sockets and PCIe slots in use that take lanes from ``slot`` (board manual's
    lane-sharing table, e.g. PCIEX16_1 drops to x8 when PCIEX16_2 is used)."""
    if not slot.shares_with:
        return []
    used = used_m2_names(build) | used_slot_names(build)
    return sorted(used & set(slot.shares_with))


def slot_lanes(build: Build, slot: PcieSlot) -> int:
    """Electrical lanes the slot has left once the M.2 sockets and slots it shares with, where in
    use, take theirs."""
    if sharing_in_use(build, slot):
        return slot.shared_lanes if slot.shared_lanes is not None else 0
    return slot.electrical_lanes


def _slot_link(
    build: Build, name: str, kind: str, dev_lanes: int, dev_gen: int, slot: PcieSlot | None
) -> PcieLink:
    if slot is None:
        return PcieLink(name, kind, None, None, None, dev_lanes, dev_gen, 0, dev_gen, 0.0)
    lanes = min(dev_lanes, slot_lanes(build, slot))
    gen = min(dev_gen, slot.gen)
    if slot.source == "cpu":
        gen = min(gen, build.cpu.pcie_gen)
    return PcieLink(
        name,
        kind,
        slot.name,
        slot.position,
        slot.source,
        dev_lanes,
        dev_gen,
        lanes,
        gen,
        link_gb_s(gen, lanes),
    )


def _m2_link(build: Build, name: str, dev_lanes: int, dev_gen: int, m2: M2Slot | None) -> PcieLink:
    if m2 is None:
        return PcieLink(name, "nvme", None, None, None, dev_lanes, dev_gen, 0, dev_gen, 0.0)
    lanes = min(dev_lanes, m2.lanes)
    gen = min(dev_gen, m2.gen)
    if m2.source == "cpu":
        gen = min(gen, build.cpu.pcie_gen)
    return PcieLink(
        name,
        "nvme",
        m2.name,
        None,
        m2.source,
        dev_lanes,
        dev_gen,
        lanes,
        gen,
        link_gb_s(gen, lanes),
    )


def gpu_label(pg: PlacedGpu) -> str:
    return f"gpu{pg.index}: {pg.gpu.name}"


def pcie_links(build: Build) -> list[PcieLink]:
    """Every PCIe device (GPUs, NICs, NVMe drives) with the link it gets."""
    links = [
        _slot_link(build, gpu_label(g), "gpu", g.gpu.pcie_lanes, g.gpu.pcie_gen, g.slot)
        for g in build.gpus
    ]
    for i, n in enumerate(build.nics):
        links.append(
            _slot_link(
                build, f"nic{i}: {n.part.name}", "nic", n.part.lanes, n.part.pcie_gen, n.slot
            )
        )
    for i, d in enumerate(build.drives):
        links.append(
            _m2_link(build, f"nvme{i}: {d.drive.name}", d.drive.lanes, d.drive.pcie_gen, d.m2_slot)
        )
    return links


def gpu_link(build: Build, pg: PlacedGpu) -> PcieLink:
    return _slot_link(build, gpu_label(pg), "gpu", pg.gpu.pcie_lanes, pg.gpu.pcie_gen, pg.slot)


# --- efficiency ---------------------------------------------------------------------------------


def interpolate(points: list[tuple[float, float]], x: float) -> float:
    """Piecewise-linear interpolation over ascending ``(x, y)`` points, flat beyond the ends."""
    if not points:
        raise ValueError("no points to interpolate")
    pts = sorted(points)
    if x <= pts[0][0]:
        return pts[0][1]
    if x >= pts[-1][0]:
        return pts[-1][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if x0 <= x <= x1:
            if x1 == x0:
                return y1
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1]  # pragma: no cover  (unreachable: x lies inside the range)


def psu_efficiency(psu: Psu, load_w: float) -> float:
    """Efficiency of ``psu`` at ``load_w`` DC from its curve (load fraction -> efficiency)."""
    eff = interpolate(list(psu.efficiency_curve), load_w / psu.wattage_w)
    return eff / 100.0 if eff > 1.0 else eff


# --- power budget -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerTerm:
    name: str
    watts: float
    peak_watts: float  # with GPU transients

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "watts": round(self.watts, 1),
            "peak_watts": round(self.peak_watts, 1),
        }


@dataclass(frozen=True)
class PsuLoad:
    index: int
    name: str
    wattage_w: float
    atx_version: str
    gpus: tuple[int, ...]  # indices of the GPUs it feeds
    carries_system: bool  # CPU, board, memory, drives, fans
    load_w: float  # sustained DC
    peak_w: float  # with GPU transients
    efficiency: float
    wall_w: float

    @property
    def loading(self) -> float:
        return self.load_w / self.wattage_w

    @property
    def peak_loading(self) -> float:
        return self.peak_w / self.wattage_w

    @property
    def atx3(self) -> bool:
        return self.atx_version.strip().startswith("3")

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "wattage_w": self.wattage_w,
            "atx_version": self.atx_version,
            "gpus": list(self.gpus),
            "carries_system": self.carries_system,
            "load_w": round(self.load_w, 1),
            "peak_w": round(self.peak_w, 1),
            "loading": round(self.loading, 4),
            "efficiency": round(self.efficiency, 4),
            "wall_w": round(self.wall_w, 1),
        }


def ups_efficiency(ups: Ups) -> tuple[float, str]:
    """The UPS's efficiency in normal operation and where it comes from: the catalog's maker
    figure, or :data:`UPS_DEFAULT_EFFICIENCY` for its topology."""
    if ups.efficiency_full_load is not None:
        return ups.efficiency_full_load, "maker's sheet"
    return UPS_DEFAULT_EFFICIENCY[ups.topology], f"default for {ups.topology} units"


@dataclass(frozen=True)
class PowerBudget:
    """The machine's power, from the DC terms to the PSUs' AC input (``wall_w``) and, when the build
    has a UPS, to the UPS's input (``circuit_w``): the UPS draws its load over its efficiency and
    turns the difference into heat in the room."""

    terms: tuple[PowerTerm, ...]
    psus: tuple[PsuLoad, ...]
    transient_ratios_known: bool
    ups_efficiency: float | None = None  # None: no UPS
    ups_efficiency_from: str | None = None  # "maker's sheet", "default for online units"

    @property
    def sustained_w(self) -> float:
        return sum(t.watts for t in self.terms)

    @property
    def peak_w(self) -> float:
        return sum(t.peak_watts for t in self.terms)

    @property
    def psu_capacity_w(self) -> float:
        return sum(p.wattage_w for p in self.psus)

    @property
    def wall_w(self) -> float:
        """Sustained wall draw: each PSU's DC load over its efficiency at that load."""
        if not self.psus:
            return self.sustained_w
        return sum(p.wall_w for p in self.psus)

    @property
    def peak_wall_w(self) -> float:
        if not self.psus:
            return self.peak_w
        return sum(p.peak_w / p.efficiency for p in self.psus)

    @property
    def circuit_w(self) -> float:
        """Sustained load on the branch circuit, and the energy bought: the UPS's input (its load,
        the PSUs' input, over its efficiency), or the PSUs' input when there is no UPS."""
        if self.ups_efficiency is None:
            return self.wall_w
        return self.wall_w / self.ups_efficiency

    @property
    def ups_loss_w(self) -> float:
        """What the UPS itself turns into heat in normal operation (0 without a UPS)."""
        return self.circuit_w - self.wall_w

    @property
    def heat_btu_h(self) -> float:
        """The machine's own heat: its wall power x 3.412."""
        return self.wall_w * BTU_H_PER_W

    @property
    def room_heat_btu_h(self) -> float:
        """Heat into the room: the machine plus the UPS's losses (the UPS stands beside it)."""
        return self.circuit_w * BTU_H_PER_W

    def to_dict(self) -> dict[str, Any]:
        return {
            "terms": [t.to_dict() for t in self.terms],
            "psus": [p.to_dict() for p in self.psus],
            "sustained_w": round(self.sustained_w, 1),
            "peak_w": round(self.peak_w, 1),
            "wall_w": round(self.wall_w, 1),
            "heat_btu_h": round(self.heat_btu_h),
            "ups_efficiency": self.ups_efficiency,
            "ups_efficiency_from": self.ups_efficiency_from,
            "ups_loss_w": round(self.ups_loss_w, 1),
            "circuit_w": round(self.circuit_w, 1),
            "room_heat_btu_h": round(self.room_heat_btu_h),
            "transient_ratios_known": self.transient_ratios_known,
        }


def gpu_peak_w(pg: PlacedGpu) -> float:
    ratio = pg.gpu.transient_peak_ratio or 1.0
    return pg.power_limit_w * ratio


def system_terms(build: Build) -> list[PowerTerm]:
    """Everything except the GPUs (fed from the first PSU)."""
    terms = [
        PowerTerm(f"CPU ({build.cpu.name})", build.cpu.tdp_w, build.cpu.tdp_w),
        PowerTerm("motherboard", BOARD_POWER_W, BOARD_POWER_W),
    ]
    mem = build.memory.power_w_per_module * build.memory_modules
    terms.append(PowerTerm(f"memory ({build.memory_modules} modules)", mem, mem))
    drives = sum(d.drive.power_w for d in build.drives)
    if build.drives:
        terms.append(PowerTerm(f"NVMe drives ({len(build.drives)})", drives, drives))
    nics = sum(n.part.power_w for n in build.nics)
    if build.nics:
        terms.append(PowerTerm(f"NICs ({len(build.nics)})", nics, nics))
    fans = sum(f.power_w * q for f, q in build.fans)
    if build.fans:
        terms.append(PowerTerm(f"fans ({sum(q for _, q in build.fans)})", fans, fans))
    if build.cooler is not None:
        terms.append(
            PowerTerm(
                f"CPU cooler ({build.cooler.name})", build.cooler.power_w, build.cooler.power_w
            )
        )
    return terms


def assign_gpus(build: Build, system_w: float) -> list[list[int]]:
    """GPU indices per PSU. Manual assignment when the spec gives one; otherwise the first PSU
    carries the system and each GPU goes to the PSU with the most headroom left."""
    n = len(build.psus)
    out: list[list[int]] = [[] for _ in range(n)]
    if n == 0:
        return out
    if build.psu_gpu_assignment is not None:
        for gi, pi in enumerate(build.psu_gpu_assignment):
            if gi < len(build.gpus) and 0 <= pi < n:
                out[pi].append(build.gpus[gi].index)
        return out
    left = [p.wattage_w for p in build.psus]
    left[0] -= system_w
    for g in build.gpus:
        best = max(range(n), key=lambda i: (left[i], -i))
        out[best].append(g.index)
        left[best] -= g.power_limit_w
    return out


def power_budget(build: Build) -> PowerBudget:
    sys_terms = system_terms(build)
    system_w = sum(t.watts for t in sys_terms)
    gpu_terms = [
        PowerTerm(
            f"gpu{g.index}: {g.gpu.name} @ {g.power_limit_w:.0f} W", g.power_limit_w, gpu_peak_w(g)
        )
        for g in build.gpus
    ]
    known = all(g.gpu.transient_peak_ratio is not None for g in build.gpus)
    by_index = {g.index: g for g in build.gpus}
    loads: list[PsuLoad] = []
    for i, (psu, gpu_ids) in enumerate(zip(build.psus, assign_gpus(build, system_w), strict=True)):
        load = sum(by_index[j].power_limit_w for j in gpu_ids)
        peak = sum(gpu_peak_w(by_index[j]) for j in gpu_ids)
        if i == 0:
            load += system_w
            peak += system_w
        eff = psu_efficiency(psu, load)
        loads.append(
            PsuLoad(
                i,
                psu.name,
                psu.wattage_w,
                psu.atx_version,
                tuple(gpu_ids),
                i == 0,
                load,
                peak,
                eff,
                load / eff,
            )
        )
    ups_eff: float | None = None
    ups_from: str | None = None
    if build.ups is not None:
        ups_eff, ups_from = ups_efficiency(build.ups)
    return PowerBudget(tuple(gpu_terms + sys_terms), tuple(loads), known, ups_eff, ups_from)


# --- site ---------------------------------------------------------------------------------------


def circuit_usable_w(voltage_v: float, breaker_a: float) -> float:
    """Continuous load a branch circuit may carry: V x A x 0.8."""
    return voltage_v * breaker_a * CONTINUOUS_LOAD_FRACTION


def airflow_needed_cfm(heat_w: float, delta_t_c: float = AIR_DELTA_T_C) -> float:
    return CFM_PER_W_PER_C * heat_w / delta_t_c


def fans_cfm(build: Build) -> float:
    return sum(f.airflow_cfm * q for f, q in build.fans)


# --- memory -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryConfig:
    channels: int
    channels_used: int
    modules: int
    modules_per_channel: float
    speed_mts: int  # min of kit and CPU
    bandwidth_gb_s: float  # theoretical: channels used x MT/s x 8 B
    fabric_cap_gb_s: float | None

    @property
    def effective_gb_s(self) -> float:
        if self.fabric_cap_gb_s is None:
            return self.bandwidth_gb_s
        return min(self.bandwidth_gb_s, self.fabric_cap_gb_s)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bandwidth_gb_s"] = round(self.bandwidth_gb_s, 1)
        d["effective_gb_s"] = round(self.effective_gb_s, 1)
        return d


def memory_config(build: Build) -> MemoryConfig:
    ch = build.cpu.memory_channels
    used = min(ch, build.memory_modules)
    speed = min(build.memory.speed_mts, build.cpu.memory_speed_mts)
    bw = used * speed * 8 / 1000.0
    return MemoryConfig(
        ch,
        used,
        build.memory_modules,
        build.memory_modules / ch,
        speed,
        bw,
        build.cpu.fabric_bandwidth_gb_s,
    )


# --- storage ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Volume:
    """A RAID 0 group (or a single drive) and its sequential read."""

    name: str
    drives: tuple[str, ...]
    capacity_tb: float
    rated_read_gb_s: float  # sum of the drives' rated reads
    read_gb_s: float  # each drive capped by its link, then summed
    link_caps_gb_s: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "drives": list(self.drives),
            "capacity_tb": self.capacity_tb,
            "rated_read_gb_s": round(self.rated_read_gb_s, 2),
            "read_gb_s": round(self.read_gb_s, 2),
            "link_caps_gb_s": [round(c, 2) for c in self.link_caps_gb_s],
        }


def volumes(build: Build) -> list[Volume]:
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(build.drives):
        groups.setdefault(d.raid_group or f"nvme{i}", []).append(i)
    out: list[Volume] = []
    for name, idx in groups.items():
        rated = 0.0
        capped = 0.0
        caps: list[float] = []
        names: list[str] = []
        for i in idx:
            d = build.drives[i]
            read = d.drive.seq_read_mb_s / 1000.0
            link = _m2_link(build, "", d.drive.lanes, d.drive.pcie_gen, d.m2_slot)
            cap = (
                link.bandwidth_gb_s
                if d.m2_slot is not None
                else link_gb_s(d.drive.pcie_gen, d.drive.lanes)
            )
            caps.append(cap)
            rated += read
            capped += min(read, cap)
            names.append(d.drive.name)
        cap_tb = sum(build.drives[i].drive.capacity_tb for i in idx)
        out.append(Volume(name, tuple(names), cap_tb, rated, capped, tuple(caps)))
    return out


# --- cost ---------------------------------------------------------------------------------------


def ups_input_w(build: Build, psu_input_w: float) -> float:
    """What the outlet supplies for ``psu_input_w`` at the PSUs: the build's UPS (when it has one)
    draws its load over its efficiency (:func:`ups_efficiency`)."""
    if build.ups is None:
        return psu_input_w
    return psu_input_w / ups_efficiency(build.ups)[0]


def electricity_usd_per_hour(build: Build, psu_input_w: float) -> float:
    """Energy cost per hour at ``psu_input_w`` (:attr:`PowerBudget.wall_w`); the energy is bought at
    the outlet, so the UPS's losses are added when the build has one."""
    return ups_input_w(build, psu_input_w) / 1000.0 * build.site.electricity_usd_per_kwh


def electricity_usd_per_month(build: Build, psu_input_w: float) -> float:
    """Always-on machine: in use ``hours_per_day`` at ``utilization`` of sustained wall power, idle
    the rest of the day at ``idle_power_fraction``. ``psu_input_w`` is the PSUs' input
    (:attr:`PowerBudget.wall_w`); the UPS's losses are added when the build has one (at the full-load
    efficiency all day: the losses of an online unit are a larger share of a light load, so idle
    hours cost a little more than this)."""
    s = build.site
    hours = min(max(s.hours_per_day, 0.0), 24.0)
    kw = ups_input_w(build, psu_input_w) / 1000.0
    kwh_day = kw * (hours * s.utilization + (24.0 - hours) * s.idle_power_fraction)
    return kwh_day * DAYS_PER_MONTH * s.electricity_usd_per_kwh


def break_even_hours(cost_usd: float, cloud_usd_h: float, own_usd_h: float) -> float | None:
    """Hours of use after which owning is cheaper; None when the cloud is not dearer per hour."""
    saving = cloud_usd_h - own_usd_h
    if saving <= 0:
        return None
    return cost_usd / saving


# --- GPUs ---------------------------------------------------------------------------------------

_GEFORCE = re.compile(r"^(rtx|gtx)-\d{4}")


def is_geforce(gpu_id: str, name: str) -> bool:
    return bool(_GEFORCE.match(gpu_id)) or "geforce" in name.lower()


def slots_covered(position: int, width: float) -> range:
    """Expansion-slot positions a card of ``width`` slots in ``position`` covers."""
    return range(position, position + max(1, math.ceil(width - 1e-9)))
