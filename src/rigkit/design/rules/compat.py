"""Compatibility: CPU socket, form factor, cooler, PSU bays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from rigkit.design.registry import Finding, Severity, finding, rule

if TYPE_CHECKING:
    from rigkit.build import Build


@rule("CMP001", "CPU socket matches the board", "compat", Severity.ERROR)
def socket(build: Build) -> Iterator[Finding]:
    """The CPU's socket must be the board's socket. Fix: a board for the CPU's socket."""
    if build.cpu.socket != build.motherboard.socket:
        yield finding(
            "CMP001",
            f"{build.cpu.name} is {build.cpu.socket}; {build.motherboard.name} is "
            f"{build.motherboard.socket}",
            f"choose a {build.cpu.socket} board",
            cpu_socket=build.cpu.socket,
            board_socket=build.motherboard.socket,
        )


@rule("CMP002", "Board form factor fits the case", "compat", Severity.ERROR)
def form_factor(build: Build) -> Iterator[Finding]:
    """The case must take the board's form factor (E-ATX, EEB, ...). Fix: a case listing it."""
    case = build.case
    if case is None:
        return
    if build.motherboard.form_factor not in case.form_factors:
        yield finding(
            "CMP002",
            f"{build.motherboard.name} is {build.motherboard.form_factor}; {case.name} takes "
            f"{', '.join(case.form_factors)}",
            f"choose a case that takes {build.motherboard.form_factor}",
            board=build.motherboard.form_factor,
            case=list(case.form_factors),
        )


@rule("CMP003", "CPU cooler socket and capacity", "compat", Severity.ERROR)
def cooler(build: Build) -> Iterator[Finding]:
    """The cooler must mount on the CPU's socket and be rated for at least the CPU's TDP.

    Why: an undersized cooler throttles the CPU under all-core load. Fix: a cooler for the socket
    rated above the TDP.
    """
    c = build.cooler
    if c is None:
        return
    if build.cpu.socket not in c.sockets:
        yield finding(
            "CMP003",
            f"{c.name} mounts on {', '.join(c.sockets)}, not {build.cpu.socket}",
            f"choose a cooler for {build.cpu.socket}",
            sockets=list(c.sockets),
            cpu_socket=build.cpu.socket,
        )
    if c.tdp_rating_w < build.cpu.tdp_w:
        yield finding(
            "CMP003",
            f"{c.name} is rated {c.tdp_rating_w:.0f} W; the {build.cpu.name} is {build.cpu.tdp_w:.0f} W",
            f"choose a cooler rated {build.cpu.tdp_w:.0f} W or more",
            severity=Severity.WARNING,
            cooler_w=c.tdp_rating_w,
            cpu_tdp_w=build.cpu.tdp_w,
        )


@rule("CMP004", "PSU bays in the case", "compat", Severity.WARNING)
def psu_bays(build: Build) -> Iterator[Finding]:
    """Every PSU needs a mount: a case with one PSU bay cannot hold a second PSU.

    Fix: a dual-PSU case, or an external bracket; synchronise the two PSUs (add2psu adapter or
    board support) so the second starts with the first.
    """
    case = build.case
    if case is None or len(build.psus) <= case.psu_bays:
        return
    yield finding(
        "CMP004",
        f"{len(build.psus)} PSUs but {case.name} has {case.psu_bays} PSU bay(s)",
        "use a dual-PSU case or a second-PSU bracket, and a start-sync adapter",
        psus=len(build.psus),
        psu_bays=case.psu_bays,
    )
