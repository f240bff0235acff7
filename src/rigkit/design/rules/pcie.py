"""PCIe rules: lane budget, slot allocation, link width/generation, lane sharing with M.2."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from rigkit.design.model import link_gb_s, pcie_links, sharing_in_use, slot_lanes
from rigkit.design.registry import Finding, Severity, finding, rule

if TYPE_CHECKING:
    from rigkit.build import Build
    from rigkit.catalog.parts import PcieSlot


@rule("PCI001", "CPU PCIe lane budget", "pcie", Severity.ERROR)
def lane_budget(build: Build) -> Iterator[Finding]:
    """Lanes the CPU-attached devices use must fit in the CPU's PCIe lanes.

    Why: every GPU, NIC and CPU-attached M.2 drive takes lanes from the CPU; a board cannot give
    more than the CPU has, so some slots run narrower or switch off. Fix: fewer or narrower
    devices, move drives to chipset M.2 slots, or a CPU with more lanes.
    """
    links = [link for link in pcie_links(build) if link.source == "cpu"]
    used = sum(link.lanes for link in links)
    have = build.cpu.pcie_lanes
    terms = {link.device: link.lanes for link in links}
    if used > have:
        yield finding(
            "PCI001",
            f"CPU-attached devices use {used} PCIe lanes but the {build.cpu.name} has {have}",
            f"free {used - have} lanes: move M.2 drives to chipset slots, drop a card, or choose a "
            "CPU with more lanes",
            used_lanes=used,
            cpu_lanes=have,
            devices=terms,
        )
    else:
        yield finding(
            "PCI001",
            f"CPU-attached devices use {used} of the CPU's {have} PCIe lanes ({have - used} spare)",
            "none needed",
            severity=Severity.INFO,
            used_lanes=used,
            cpu_lanes=have,
            devices=terms,
        )


def _all_slots(build: Build) -> dict[str, PcieSlot]:
    return {s.name: s for s in build.motherboard.pcie_slots}


@rule("PCI002", "Every card has a slot of its own", "pcie", Severity.ERROR)
def slot_allocation(build: Build) -> Iterator[Finding]:
    """Every GPU and add-in card needs a PCIe slot, and no two share one.

    Why: a card without a slot cannot be installed; two cards assigned to one slot means the spec's
    slot map is wrong. Fix: a board with more x16 slots, fewer cards, or fix the slot assignment.
    """
    seen: dict[str, str] = {}
    cards = [(f"gpu{g.index}: {g.gpu.name}", g.slot) for g in build.gpus]
    cards += [(f"nic{i}: {n.part.name}", n.slot) for i, n in enumerate(build.nics)]
    for label, slot in cards:
        if slot is None:
            yield finding(
                "PCI002",
                f"{label} has no PCIe slot: the {build.motherboard.name} has "
                f"{len(build.motherboard.pcie_slots)} slots for {len(cards)} cards",
                "choose a board with more slots, or fewer cards",
                device=label,
                board_slots=len(build.motherboard.pcie_slots),
                cards=len(cards),
            )
            continue
        if slot.name in seen:
            yield finding(
                "PCI002",
                f"{label} and {seen[slot.name]} are both assigned to slot {slot.name}",
                "give each card its own slot in the spec",
                device=label,
                slot=slot.name,
                other=seen[slot.name],
            )
        seen[slot.name] = label


@rule("PCI003", "GPU link narrower or slower than the card", "pcie", Severity.WARNING)
def gpu_link(build: Build) -> Iterator[Finding]:
    """A GPU should get its full link: all its lanes at its PCIe generation.

    Why: an x8 or older-generation slot halves host<->GPU bandwidth, which slows model loading,
    offload and (without peer-to-peer) every all-reduce. Fix: move the card to a full x16 slot of
    its generation, or accept the lower bandwidth for single-GPU work.
    """
    for link in pcie_links(build):
        if link.kind != "gpu" or link.slot is None:
            continue
        if link.lanes < link.device_lanes or link.gen < link.device_gen:
            full = link.full_bandwidth_gb_s
            yield finding(
                "PCI003",
                f"{link.device} runs at PCIe {link.gen}.0 x{link.lanes} in {link.slot} "
                f"({link.bandwidth_gb_s:.1f} GB/s) instead of PCIe {link.device_gen}.0 "
                f"x{link.device_lanes} ({full:.1f} GB/s)",
                f"put it in a slot wired x{link.device_lanes} at PCIe {link.device_gen}.0 or newer",
                device=link.device,
                slot=link.slot,
                lanes=link.lanes,
                gen=link.gen,
                bandwidth_gb_s=round(link.bandwidth_gb_s, 2),
                full_bandwidth_gb_s=round(full, 2),
            )


@rule("PCI004", "GPU behind the chipset", "pcie", Severity.WARNING)
def chipset_gpu(build: Build) -> Iterator[Finding]:
    """A GPU in a chipset-attached slot shares the chipset's uplink with USB, SATA and the NICs.

    Why: the uplink (typically PCIe 4.0 x4-x8) is shared and adds latency. Fix: use a CPU-attached
    slot.
    """
    for g in build.gpus:
        if g.slot is not None and g.slot.source == "chipset":
            yield finding(
                "PCI004",
                f"gpu{g.index}: {g.gpu.name} sits in {g.slot.name}, which hangs off the chipset",
                "move it to a CPU-attached slot",
                device=f"gpu{g.index}",
                slot=g.slot.name,
            )


@rule("PCI005", "Lane sharing narrows a PCIe slot", "pcie", Severity.WARNING)
def lane_sharing(build: Build) -> Iterator[Finding]:
    """Some PCIe slots give up lanes when an M.2 socket or another slot they share with is in use
    (e.g. on desktop boards PCIEX16_1 drops from x16 to x8 when PCIEX16_2 holds a card).

    Why: the board manual's lane-sharing table; a GPU in a slot that drops to x8 loses half its
    host bandwidth, one that drops to x0 does not work. Fix: move the drive to an M.2 socket that
    shares nothing, leave the sharing slot empty, or choose a board (workstation class) that
    wires every slot x16 from the CPU.
    """
    links = {link.slot: link for link in pcie_links(build) if link.kind != "nvme" and link.slot}
    occupants = {name: link.device for name, link in links.items()}
    for slot in build.motherboard.pcie_slots:
        shared = sharing_in_use(build, slot)
        if not shared:
            continue
        left = slot_lanes(build, slot)
        by = ", ".join(shared) + " in use"
        who = occupants.get(slot.name)
        if who is None:
            yield finding(
                "PCI005",
                f"{by}: slot {slot.name} drops from x{slot.electrical_lanes} to x{left} (empty, "
                "so nothing is lost)",
                "keep the slot empty or move the drive",
                severity=Severity.INFO,
                slot=slot.name,
                shared_with=shared,
                lanes_before=slot.electrical_lanes,
                lanes_after=left,
            )
            continue
        sev = Severity.ERROR if left == 0 else Severity.WARNING
        link = links.get(slot.name)
        gets = (
            f"PCIe {link.gen}.0 x{link.lanes} = {link.bandwidth_gb_s:.2f} GB/s"
            if link is not None
            else f"PCIe {slot.gen}.0 x{left} = {link_gb_s(slot.gen, left):.2f} GB/s"
        )
        m2 = [s for s in shared if s not in occupants]
        fix = (
            f"move the drive in {', '.join(m2)} to an M.2 socket that shares no lanes, or move "
            f"{who.split(':')[0]} to another slot"
            if m2
            else f"accept x{left} for both cards, or use a board with x16 to every slot"
        )
        yield finding(
            "PCI005",
            f"{by}: slot {slot.name} with {who} drops from x{slot.electrical_lanes} to x{left}; "
            f"the card gets {gets}",
            fix,
            severity=sev,
            slot=slot.name,
            shared_with=shared,
            device=who,
            lanes_before=slot.electrical_lanes,
            lanes_after=left,
        )
