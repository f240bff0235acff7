"""What the book computes from the resolved build before it writes steps: the cable map (which PSU
feeds which card through which leads), the slot map (with the cards that need a riser) and the
BIOS settings this build needs, each with its reason.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from rigkit.design.model import PCIE_8PIN_W, gpu_link, power_budget, slots_covered
from rigkit.guide.model import BiosSetting, CableMap, Lead, PsuRow, SlotRow

if TYPE_CHECKING:
    from rigkit.build import Build, PlacedGpu

#: catalog connector key -> the lead kind the book names
_KIND = {"12vhpwr": "12v-2x6", "pcie_8pin": "pcie-8pin", "eps_8pin": "eps-8pin"}
LEAD_NAMES = {
    "12v-2x6": "12V-2x6 (12VHPWR)",
    "pcie-8pin": "PCIe 8-pin",
    "eps-8pin": "EPS 8-pin (CPU)",
    "atx-24pin": "ATX 24-pin",
}


def gpu_name(g: PlacedGpu) -> str:
    """How the book names a card everywhere (cable map, steps, slot map): ``GPU 0 (RTX 4090)``."""
    return f"GPU {g.index} ({g.gpu.name})"


def adapter_inputs(g: PlacedGpu) -> int:
    """8-pin inputs of a 12VHPWR adapter for this card: one per 150 W of the most it may draw
    (its power limit or the highest limit it accepts): 600 W -> 4, as the PSU001 rule counts."""
    most = max(g.power_limit_w, g.gpu.max_power_limit_w or 0.0)
    return math.ceil(most / PCIE_8PIN_W)


def cable_map(build: Build) -> CableMap:
    """Every lead from every PSU: the board's 24-pin, EPS and slot-power inputs from the primary
    (the PSU that carries the system in the power budget), then each card's inputs from the PSU the
    budget assigned it to: a native 12V-2x6 lead while that PSU has one left, else an adapter on
    separate 8-pin leads."""
    budget = power_budget(build)
    have = [Counter({_KIND[k]: n for k, n in p.connectors.items()}) for p in build.psus]
    used: list[Counter[str]] = [Counter() for _ in build.psus]
    leads: list[Lead] = []
    feeds: list[list[str]] = [[] for _ in build.psus]

    def take(psu: int, kind: str, count: int, to: str, adapter: bool = False) -> None:
        if count <= 0:
            return
        leads.append(Lead(psu, kind, count, to, adapter))
        if kind != "atx-24pin":
            used[psu][kind] += count
        if to not in feeds[psu]:
            feeds[psu].append(to)

    if build.psus:
        board = build.motherboard
        take(0, "atx-24pin", 1, "board (24-pin ATX)")
        take(0, "eps-8pin", board.eps_8pin, "board CPU power (EPS)")
        aux = sum(1 for x in board.pcie_aux_power if x in ("pcie_8pin", "8pin"))
        take(0, "pcie-8pin", aux, "board slot power (PCIe aux)")
    by_index = {g.index: g for g in build.gpus}
    for p in budget.psus:
        for gi in p.gpus:
            g = by_index[gi]
            label = gpu_name(g)
            conn = g.gpu.power_connectors
            for _ in range(conn.get("12vhpwr", 0)):
                if used[p.index]["12v-2x6"] < have[p.index]["12v-2x6"]:
                    take(p.index, "12v-2x6", 1, label)
                else:
                    take(p.index, "pcie-8pin", adapter_inputs(g), label, adapter=True)
            take(p.index, "pcie-8pin", conn.get("pcie_8pin", 0), label)
            take(p.index, "eps-8pin", conn.get("eps_8pin", 0), label)
    notes: list[str] = []
    rows: list[PsuRow] = []
    for p in budget.psus:
        psu = build.psus[p.index]
        for kind, n in sorted(used[p.index].items()):
            if n > have[p.index][kind]:
                notes.append(
                    f"PSU {p.index} ({psu.name}) needs {n} {LEAD_NAMES[kind]} leads and has "
                    f"{have[p.index][kind]}"
                )
        rows.append(
            PsuRow(
                index=p.index,
                name=psu.name,
                role="primary" if p.index == 0 else "secondary",
                wattage_w=psu.wattage_w,
                atx_version=psu.atx_version,
                load_w=p.load_w,
                loading=p.loading,
                feeds=tuple(feeds[p.index]),
                leads_used=dict(sorted(used[p.index].items())),
                leads_have=dict(sorted(have[p.index].items())),
            )
        )
    spare = [p.index for p in budget.psus if used[p.index]["12v-2x6"] < have[p.index]["12v-2x6"]]
    for x in leads:
        others = [i for i in spare if i != x.psu]
        if x.adapter and others:
            notes.append(
                f"{x.to} uses an adapter on PSU {x.psu} while PSU {others[0]} has a native "
                "12V-2x6 lead free: parts.psu_assignment in the spec can feed it natively (check "
                "that PSU's load in the plan)"
            )
    return CableMap(tuple(leads), tuple(rows), tuple(notes))


def riser_gpus(build: Build) -> dict[int, str]:
    """GPUs that go on a riser cable instead of straight into their slot, with the reason.

    Top to bottom: a card whose width would cover the slot of a card below it (the plan's CLR001)
    or reach past the case's last expansion slot (CLR003) is mounted on a riser from its own slot,
    which leaves the slots below it free; a card on a riser covers nothing.
    """
    cards: list[tuple[int, str, int, float]] = [
        (g.index, gpu_name(g), g.slot.position, g.gpu.slot_width)
        for g in build.gpus
        if g.slot is not None
    ]
    cards += [
        (-1 - i, f"NIC {i} ({n.part.name})", n.slot.position, 1.0)
        for i, n in enumerate(build.nics)
        if n.slot is not None
    ]
    cards.sort(key=lambda c: c[2])
    limit = build.case.expansion_slots if build.case is not None else None
    out: dict[int, str] = {}
    for k, (index, _name, pos, width) in enumerate(cards):
        if index < 0:
            continue
        span = slots_covered(pos, width)
        below = [name for _, name, opos, _ in cards[k + 1 :] if opos in span]
        if below:
            out[index] = (
                f"a {width:g}-slot card in position {pos} would cover the slot of {below[0]}"
            )
        elif limit is not None and span.stop - 1 > limit:
            out[index] = (
                f"a {width:g}-slot card in position {pos} needs slot {span.stop - 1}; the case "
                f"has {limit}"
            )
    return out


def slot_map(build: Build) -> list[SlotRow]:
    """One row per expansion-slot position, top to bottom, with the card in or over it."""
    risers = riser_gpus(build)
    by_pos = {s.position: s for s in build.motherboard.pcie_slots}
    cards: dict[int, tuple[str, float, bool]] = {}
    for g in build.gpus:
        if g.slot is not None and g.index not in risers:
            cards[g.slot.position] = (gpu_name(g), g.gpu.slot_width, False)
    for i, n in enumerate(build.nics):
        if n.slot is not None:
            cards[n.slot.position] = (f"NIC {i} ({n.part.name})", 1.0, False)
    last = max([*by_pos, *(p + math.ceil(w) - 1 for p, (_, w, _) in cards.items())], default=0)
    if build.case is not None:
        last = max(last, build.case.expansion_slots)
    covered: dict[int, str] = {}
    for pos, (name, width, _) in cards.items():
        for q in slots_covered(pos, width):
            if q != pos:
                covered.setdefault(q, name)
    riser_at = {g.slot.position: gpu_name(g) for g in build.gpus if g.index in risers and g.slot}
    rows: list[SlotRow] = []
    for pos in range(1, last + 1):
        s = by_pos.get(pos)
        lanes = f"x{s.electrical_lanes} Gen{s.gen} {s.source.upper()}" if s is not None else ""
        card = cards.get(pos, (riser_at.get(pos), 0.0, False))[0]
        rows.append(
            SlotRow(
                position=pos,
                slot=s.name if s is not None else None,
                lanes=lanes,
                card=card,
                covered_by=covered.get(pos) if card is None or pos in riser_at else None,
                riser=pos in riser_at,
            )
        )
    return rows


def _menu(build: Build, key: str) -> str | None:
    bios = build.motherboard.bios
    if bios is None:
        return None
    return next((path for k, path in bios.menus.items() if k == key), None)


def bios_settings(build: Build) -> list[BiosSetting]:
    """The settings this build must change from the board's defaults, each with why."""
    out: list[BiosSetting] = []
    cpu, mem = build.cpu, build.memory

    def add(key: str, name: str, value: str, why: str, menu_key: str | None = None) -> None:
        out.append(BiosSetting(key, name, value, why, _menu(build, menu_key or key)))

    vram = sum(g.gpu.vram_gb for g in build.gpus)
    add(
        "above_4g",
        "Above 4G Decoding",
        "Enabled",
        f"{build.gpu_count} GPU(s) with {vram:g} GB of memory map their BARs above the 4 GB "
        "boundary; without it the OS does not see some cards at all",
    )
    add(
        "csm",
        "CSM (legacy boot)",
        "Disabled",
        "Resizable BAR needs UEFI boot, which CSM turns off",
    )
    add(
        "rebar",
        "Resizable BAR",
        "Enabled",
        "lets the driver map each card's whole memory (model loads and host copies avoid 256 MB "
        "windows)",
    )
    risers = riser_gpus(build)
    for g in sorted(build.gpus, key=lambda g: g.slot.position if g.slot else 0):
        if g.index in risers and g.slot is not None:
            link = gpu_link(build, g)
            add(
                f"pcie_speed:{g.slot.name}",
                f"{g.slot.name} link speed",
                f"Gen{link.gen} (not Auto)",
                f"GPU {g.index} is on a riser cable: a fixed Gen{link.gen} stops retraining at a "
                f"speed the cable cannot hold (Gen{max(3, link.gen - 1)} if the acceptance run "
                "shows link errors)",
                "pcie_speed",
            )
    adapters = [d for d in build.drives if d.on_adapter]
    if adapters:
        add(
            "bifurcation",
            "PCIe bifurcation for the M.2 adapter's slot",
            "x4x4x4x4",
            f"{len(adapters)} drive(s) sit on an M.2 adapter card; without bifurcation the slot "
            "shows only the first drive",
        )
    p2p = [g for g in build.gpus if g.gpu.p2p]
    if len(p2p) > 1:
        add(
            "iommu",
            "IOMMU",
            "Disabled (or iommu=pt on the kernel command line)",
            f"{len(p2p)} cards use PCIe peer-to-peer; with the IOMMU translating, peer traffic is "
            "sent up to the root complex (NCCL's troubleshooting guide), which slows all-reduces",
        )
    if mem.registered and mem.ecc:
        add(
            "memory_profile",
            "Memory speed",
            f"Auto (JEDEC DDR5-{min(mem.speed_mts, cpu.memory_speed_mts)})",
            f"{build.memory_modules} x {mem.module_gb} GB ECC RDIMMs run at their JEDEC speed; "
            "overclocking registered memory trades the point of ECC for a few percent",
        )
        add(
            "ecc",
            "ECC",
            "Enabled",
            f"{build.memory_gb} GB of memory holds models for days; ECC corrects the bit flips "
            "that would otherwise corrupt weights or crash a long run",
        )
    elif mem.speed_mts > cpu.memory_speed_mts:
        profile = "EXPO" if cpu.vendor == "amd" else "XMP"
        add(
            "memory_profile",
            f"Memory profile ({profile})",
            f"{profile} I (DDR5-{mem.speed_mts})",
            f"the kit is rated DDR5-{mem.speed_mts}, above the CPU's official "
            f"DDR5-{cpu.memory_speed_mts}; without the profile it runs at JEDEC speed. Run a "
            "memory test after enabling it",
        )
    if cpu.socket in ("sTR5", "SP5"):
        add(
            "nps",
            "NUMA nodes per socket (NPS)",
            "NPS1",
            f"one NUMA node over all {cpu.memory_channels} channels: CPU offload and model "
            "loading use the full memory bandwidth without NUMA pinning",
        )
    add(
        "ac_power_loss",
        "Restore on AC power loss",
        "Last State",
        "the machine comes back after an outage if it was running, but stays off after an "
        "emergency shutdown by the monitor's thermal response",
    )
    if build.fans:
        gpu_w = sum(g.power_limit_w for g in build.gpus)
        add(
            "fan_control",
            "Chassis fan curve",
            "PWM mode; at least 50% duty at any temperature",
            f"the board's sensors do not see the GPUs' {gpu_w:.0f} W; a curve on CPU temperature "
            "alone idles the case fans while the cards heat the case",
        )
    return out


def lead_counts(leads: list[Lead]) -> Counter[str]:
    out: Counter[str] = Counter()
    for x in leads:
        out[x.kind] += x.count
    return out
