"""The quick reference: one printed page to keep beside the machine (`rigkit guide --quick`).

Components, power per PSU, the slot and lane map, network, storage, the thresholds the monitor's
default alert rules use, its emergency response tiers, and blanks for who to call. Every figure
comes from the resolved build, the plan's models and the monitor's own defaults, so the card and
the running monitor agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rigkit.design.model import gpu_link, memory_config, power_budget, volumes
from rigkit.guide.hardware import cable_map, gpu_name, riser_gpus

if TYPE_CHECKING:
    from rigkit.build import Build


@dataclass(frozen=True)
class Row:
    """A label and its value, as printed in the card's small tables."""

    label: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QuickRef:
    name: str
    components: tuple[Row, ...]
    power: tuple[Row, ...]
    slots: tuple[Row, ...]
    network: tuple[Row, ...]
    storage: tuple[Row, ...]
    alerts: tuple[Row, ...]
    tiers: tuple[Row, ...]
    contacts: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **{
                k: [r.to_dict() for r in getattr(self, k)]
                for k in ("components", "power", "slots", "network", "storage", "alerts", "tiers")
            },
            "contacts": list(self.contacts),
        }


def _components(build: Build) -> list[Row]:
    mc = memory_config(build)
    rows = [
        Row("CPU", f"{build.cpu.name} ({build.cpu.cores} cores)"),
        Row("Board", build.motherboard.name),
        Row(
            "Memory",
            f"{build.memory_modules} x {build.memory.module_gb} GB = {build.memory_gb} GB, "
            f"DDR5-{mc.speed_mts}, {mc.channels_used} of {mc.channels} channels",
        ),
    ]
    counts: dict[str, int] = {}
    for g in build.gpus:
        counts[g.gpu.name] = counts.get(g.gpu.name, 0) + 1
    for name, n in counts.items():
        rows.append(Row("GPUs", f"{n} x {name}"))
    if build.cooler is not None:
        rows.append(Row("Cooler", build.cooler.name))
    if build.case is not None:
        rows.append(Row("Case", build.case.name))
    if build.ups is not None:
        rows.append(Row("UPS", build.ups.name))
    return rows


def _power(build: Build) -> list[Row]:
    budget = power_budget(build)
    rows = [
        Row(
            f"PSU {p.index} ({p.role})",
            f"{p.name}: {p.load_w:.0f} of {p.wattage_w:.0f} W ({p.loading:.0%}); feeds "
            + ", ".join(
                dict.fromkeys(
                    f.split(" (")[0].split(" ")[0] if f.startswith("board") else f.split(" (")[0]
                    for f in p.feeds
                )
            ),
        )
        for p in cable_map(build).psus
    ]
    rows.append(
        Row(
            "Wall",
            f"{budget.wall_w:.0f} W sustained at the PSUs' inputs"
            + (f", {budget.circuit_w:.0f} W at the outlet with the UPS" if build.ups else ""),
        )
    )
    site = build.site
    rows.append(
        Row(
            "Circuit",
            f"{site.mains_voltage_v:g} V / {site.breaker_a:g} A"
            + (" (dedicated)" if site.dedicated_circuit else " (shared)"),
        )
    )
    return rows


def _slots(build: Build) -> list[Row]:
    risers = riser_gpus(build)
    rows: list[Row] = []
    for g in sorted(build.gpus, key=lambda g: g.slot.position if g.slot else 99):
        if g.slot is None:
            continue
        link = gpu_link(build, g)
        where = " on a riser" if g.index in risers else ""
        rows.append(
            Row(
                g.slot.name,
                f"{gpu_name(g)}{where}: x{link.lanes} Gen{link.gen} ({g.slot.source.upper()})",
            )
        )
    for i, n in enumerate(build.nics):
        if n.slot is not None:
            rows.append(Row(n.slot.name, f"NIC {i} ({n.part.name})"))
    for i, d in enumerate(build.drives):
        if d.m2_slot is not None:
            m2 = d.m2_slot
            rows.append(
                Row(
                    m2.name,
                    f"drive {i} ({d.drive.name}): x{m2.lanes} Gen{m2.gen} ({m2.source.upper()})",
                )
            )
    return rows


def _network(build: Build) -> list[Row]:
    rows = [
        Row(
            "Onboard",
            f"{len(build.motherboard.onboard_nic_gbe)} ports: "
            + ", ".join(f"{s:g} GbE" for s in build.motherboard.onboard_nic_gbe),
        )
    ]
    for i, n in enumerate(build.nics):
        rows.append(Row(f"NIC {i}", f"{n.part.ports} x {n.part.speed_gbe:g} GbE, {n.part.name}"))
    if build.motherboard.bmc:
        rows.append(Row("BMC", "dedicated management port: change its default password"))
    return rows


def _storage(build: Build) -> list[Row]:
    out: list[Row] = []
    for v in volumes(build):
        idx = v.name.removeprefix("nvme")
        members = (
            [build.drives[int(idx)]]
            if idx.isdigit() and v.name != idx
            else [d for d in build.drives if d.raid_group == v.name]
        )
        roles = {d.role for d in members}
        kind = "RAID 0 of " if len(v.drives) > 1 else ""
        out.append(
            Row(
                v.name,
                f"{kind}{', '.join(v.drives)}: {v.capacity_tb:g} TB, {v.read_gb_s:.1f} GB/s read"
                + (f" ({', '.join(sorted(roles))})" if roles else ""),
            )
        )
    return out


def _alerts(build: Build) -> list[Row]:
    """The monitor's default alert rules that alert (info rules are only logged)."""
    from rigkit.monitor.alerts import default_rules, gpu_temp_limits

    slowdown, _ = gpu_temp_limits(build)
    rows: list[Row] = []
    for r in default_rules(build):
        if not r.enabled or r.severity == "info":
            continue
        cond = r.expr
        if r.threshold is not None:
            value = r.threshold + (slowdown if r.relative_to == "slowdown_temp_c" else 0.0)
            cond += f" {r.op} {value:g}"
        if r.codes:
            cond += " in " + ", ".join(str(c) for c in r.codes)
        held = f" for {r.for_s:g} s" if r.for_s else ""
        rows.append(Row(f"{r.severity}: {r.name}", f"{cond}{held}"))
    return rows


def _tiers(build: Build) -> list[Row]:
    from rigkit.monitor.respond import default_policy

    p = default_policy(build)

    def ref(c: Any) -> float:
        return p.slowdown_temp_c if c.relative_to == "slowdown" else p.shutdown_temp_c

    return [
        Row(
            "Tier 1: lower the power limit",
            f"a GPU at {p.tier1.describe(ref(p.tier1))}: its limit to {p.tier1_power_fraction:.0%}",
        ),
        Row(
            "Tier 2: stop the workloads",
            " or ".join(c.describe(ref(c)) for c in p.tier2),
        ),
        Row(
            "Tier 3: shut down",
            " or ".join(c.describe(ref(c)) for c in p.tier3)
            + f", or still rising {p.tier3_rising_s:g} s after tier 2",
        ),
        Row("Dry run", "the monitor only logs these actions unless it runs with --enforce"),
    ]


def quick_reference(build: Build) -> QuickRef:
    return QuickRef(
        name=build.name,
        components=tuple(_components(build)),
        power=tuple(_power(build)),
        slots=tuple(_slots(build)),
        network=tuple(_network(build)),
        storage=tuple(_storage(build)),
        alerts=tuple(_alerts(build)),
        tiers=tuple(_tiers(build)),
        contacts=(
            "Electrician (the circuit)",
            "Parts vendor / RMA",
            "Whoever is on call for this machine",
        )
        + (("UPS service",) if build.ups is not None else ()),
    )
