"""Network: NIC port speed vs its PCIe link."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rigkit.design.model import link_gb_s, slot_lanes
from rigkit.design.registry import Finding, Severity, finding, rule

if TYPE_CHECKING:
    from rigkit.build import Build


@rule("NET001", "NIC ports vs PCIe link", "network", Severity.WARNING)
def nic_link(build: Build) -> Iterator[Finding]:
    """All ports of a NIC at line rate must fit its PCIe link: ports x Gb/s / 8 <= lanes x GB/s.

    Why: e.g. a 2x25 GbE card needs 6.25 GB/s; PCIe 3.0 x8 gives ~7.9 GB/s, x4 only ~3.9.
    Fix: a slot with the card's full width and generation.
    """
    for i, n in enumerate(build.nics):
        nic = n.part
        if n.slot is None:
            continue
        lanes = min(nic.lanes, slot_lanes(build, n.slot))
        gen = min(nic.pcie_gen, n.slot.gen)
        bus = link_gb_s(gen, lanes)
        ports = nic.ports * nic.speed_gbe / 8.0
        data: dict[str, Any] = {
            "nic": f"nic{i}",
            "ports_gb_s": round(ports, 3),
            "pcie_gb_s": round(bus, 2),
            "lanes": lanes,
            "gen": gen,
        }
        msg = (
            f"nic{i}: {nic.name}: {nic.ports} x {nic.speed_gbe:g} Gb/s = {ports:.2f} GB/s on PCIe "
            f"{gen}.0 x{lanes} = {bus:.2f} GB/s"
        )
        if bus < ports:
            yield finding(
                "NET001",
                msg + ": the slot limits it",
                f"use a slot with x{nic.lanes} at PCIe {nic.pcie_gen}.0",
                **data,
            )
        else:
            yield finding("NET001", msg, "none needed", severity=Severity.INFO, **data)


def _list(speeds: list[float]) -> str:
    return ", ".join(f"{p:g}" for p in speeds) + " Gb/s" if speeds else "none"


@rule("NET002", "Network ports", "network", Severity.INFO)
def ports(build: Build) -> Iterator[Finding]:
    """Lists the onboard and add-in ports and their line rate (a 25 GbE port carries ~3.1 GB/s).

    Why: remote model downloads and NFS loads are bounded by the slowest hop, usually not the NIC.
    """
    onboard = list(build.motherboard.onboard_nic_gbe)
    addin = [n.part.speed_gbe for n in build.nics for _ in range(n.part.ports)]
    if not onboard and not addin:
        yield finding(
            "NET002",
            "no network port in the build",
            "add a NIC",
            severity=Severity.WARNING,
        )
        return
    best = max(onboard + addin)
    yield finding(
        "NET002",
        f"ports: onboard {_list(onboard)}, add-in {_list(addin)}; fastest {best:g} Gb/s = "
        f"{best / 8:.2f} GB/s",
        "none needed",
        onboard_gbe=onboard,
        addin_gbe=addin,
    )
