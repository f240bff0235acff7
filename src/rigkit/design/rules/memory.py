"""System memory: channels, module type, ECC, capacity and bandwidth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from rigkit.design.model import memory_config
from rigkit.design.registry import Finding, Severity, finding, rule

if TYPE_CHECKING:
    from rigkit.build import Build


@rule("MEM001", "Memory channels populated", "memory", Severity.WARNING)
def channels(build: Build) -> Iterator[Finding]:
    """Populate every memory channel with the same number of modules.

    Why: bandwidth = channels used x MT/s x 8 bytes; an empty channel loses its share, an uneven
    count interleaves badly, and two modules per channel usually lower the supported speed.
    Fix: one module per channel (or an equal number in each).
    """
    m = memory_config(build)
    data = m.to_dict()
    if m.modules < m.channels:
        yield finding(
            "MEM001",
            f"{m.modules} modules fill {m.channels_used} of {m.channels} channels: "
            f"{m.channels_used} x {m.speed_mts} MT/s x 8 B = {m.bandwidth_gb_s:.1f} GB/s instead of "
            f"{m.channels * m.speed_mts * 8 / 1000:.1f} GB/s",
            f"use {m.channels} modules (one per channel) of {build.memory_gb // m.channels or 1} GB",
            **data,
        )
    elif m.modules % m.channels:
        yield finding(
            "MEM001",
            f"{m.modules} modules on {m.channels} channels: uneven population "
            f"({m.modules_per_channel:.2f} per channel)",
            f"use a multiple of {m.channels} modules",
            **data,
        )
    elif m.modules > m.channels:
        yield finding(
            "MEM001",
            f"{m.modules_per_channel:.0f} modules per channel: check the board's supported speed at "
            f"{m.modules_per_channel:.0f} DIMMs per channel (often below {m.speed_mts} MT/s)",
            "use larger modules at one per channel, or plan for the lower speed",
            severity=Severity.INFO,
            **data,
        )


@rule("MEM002", "Memory bandwidth", "memory", Severity.INFO)
def bandwidth(build: Build) -> Iterator[Finding]:
    """Theoretical bandwidth = channels used x MT/s (min of kit and CPU) x 8 bytes, and the CPU
    fabric's cap where known (Threadripper PRO / EPYC: limited by CCD count).

    Why: CPU offload and prompt processing on the CPU run at memory bandwidth.
    """
    m = memory_config(build)
    msg = (
        f"{m.channels_used} channels x {m.speed_mts} MT/s x 8 B = {m.bandwidth_gb_s:.1f} GB/s "
        "theoretical"
    )
    if m.fabric_cap_gb_s is not None and m.fabric_cap_gb_s < m.bandwidth_gb_s:
        msg += (
            f"; the {build.cpu.name}'s fabric ({build.cpu.ccd_count or '?'} CCDs) caps reads near "
            f"{m.fabric_cap_gb_s:.0f} GB/s"
        )
    yield finding("MEM002", msg, "none needed", **m.to_dict())


@rule("MEM003", "Memory type, ECC and capacity", "memory", Severity.ERROR)
def module_type(build: Build) -> Iterator[Finding]:
    """Modules must be the type the board and CPU take (RDIMM vs UDIMM, DDR generation), fit the
    slots and the board's maximum capacity; ECC modules need a CPU and a board that enable ECC
    (a board that does not -> warning; one whose maker does not say -> information).

    Fix: the module type from the board's QVL, fewer or smaller modules.
    """
    mem, board, cpu = build.memory, build.motherboard, build.cpu
    for who, want in (("board", board.memory_type), ("CPU", cpu.memory_type)):
        if mem.memory_type != want:
            yield finding(
                "MEM003",
                f"{mem.name} is {mem.memory_type}; the {who} takes {want}",
                f"choose {want} modules",
                kit_type=mem.memory_type,
                wanted=want,
            )
    if build.memory_modules > board.dimm_slots:
        yield finding(
            "MEM003",
            f"{build.memory_modules} modules for {board.dimm_slots} DIMM slots",
            f"use at most {board.dimm_slots} modules (larger ones)",
            modules=build.memory_modules,
            slots=board.dimm_slots,
        )
    if build.memory_gb > board.max_memory_gb:
        yield finding(
            "MEM003",
            f"{build.memory_modules} x {mem.module_gb} GB = {build.memory_gb} GB exceeds the "
            f"board's {board.max_memory_gb} GB",
            f"stay at or below {board.max_memory_gb} GB",
            memory_gb=build.memory_gb,
            max_gb=board.max_memory_gb,
        )
    if mem.ecc and not cpu.ecc:
        yield finding(
            "MEM003",
            f"{mem.name} is ECC but the {cpu.name} does not support ECC: it runs without error "
            "correction",
            "use a CPU/board with ECC support, or non-ECC modules",
            severity=Severity.WARNING,
            ecc_kit=True,
            ecc_cpu=False,
            ecc_board=board.ecc,
        )
    elif mem.ecc and board.ecc is False:
        yield finding(
            "MEM003",
            f"{mem.name} is ECC but the {board.name} does not enable ECC: the modules run without "
            "error correction",
            "use a board that lists ECC support (workstation chipsets), or cheaper non-ECC modules",
            severity=Severity.WARNING,
            ecc_kit=True,
            ecc_cpu=cpu.ecc,
            ecc_board=False,
        )
    elif mem.ecc and board.ecc is None:
        yield finding(
            "MEM003",
            f"{mem.name} is ECC; the {board.name}'s maker does not say whether the board enables "
            "ECC",
            "check the board manual, and after the build that the OS reports ECC "
            "(edac-util or dmidecode -t memory)",
            severity=Severity.INFO,
            ecc_kit=True,
            ecc_cpu=cpu.ecc,
            ecc_board=None,
        )
