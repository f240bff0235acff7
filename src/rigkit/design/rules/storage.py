"""Storage: RAID 0 throughput vs links, drives without a socket, GPUDirect Storage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from rigkit.design.model import is_geforce, volumes
from rigkit.design.registry import Finding, Severity, finding, rule

if TYPE_CHECKING:
    from rigkit.build import Build


@rule("STO001", "Volume read throughput", "storage", Severity.INFO)
def volume_read(build: Build) -> Iterator[Finding]:
    """Sequential read of a RAID 0 volume = sum of its drives' rated reads, each capped by the
    PCIe link of its M.2 socket.

    Why: a PCIe 5.0 drive in a 4.0 socket reads at most ~7.9 GB/s. Rated reads are peak figures:
    real model loads run slower (file system, page cache, one GPU's link). Fix: put fast drives in
    sockets of their generation.
    """
    for v in volumes(build):
        capped = v.read_gb_s < v.rated_read_gb_s - 1e-9
        what = f"RAID 0 of {len(v.drives)} drives" if len(v.drives) > 1 else "drive"
        msg = f"{v.name} ({what}, {v.capacity_tb:g} TB): rated reads add to {v.rated_read_gb_s:.1f} GB/s"
        if capped:
            msg += f"; the M.2 links cap it at {v.read_gb_s:.1f} GB/s"
        yield finding(
            "STO001",
            msg,
            "move the drives to M.2 sockets of their PCIe generation" if capped else "none needed",
            severity=Severity.WARNING if capped else Severity.INFO,
            **v.to_dict(),
        )


@rule("STO002", "Drive without an M.2 socket", "storage", Severity.WARNING)
def drive_socket(build: Build) -> Iterator[Finding]:
    """Every NVMe drive needs an M.2 socket or an adapter card (which takes a PCIe slot).

    Fix: a board with more M.2 sockets or an M.2 carrier card in a free x16 slot (bifurcation).
    """
    for i, d in enumerate(build.drives):
        if d.m2_slot is None and not d.on_adapter:
            yield finding(
                "STO002",
                f"nvme{i}: {d.drive.name} has no M.2 socket on the board",
                "add an M.2 carrier card in a free slot with x4x4x4x4 bifurcation",
                drive=f"nvme{i}",
            )


@rule("STO003", "No GPUDirect Storage on GeForce", "storage", Severity.INFO)
def no_gds(build: Build) -> Iterator[Finding]:
    """GeForce cards do not support GPUDirect Storage: model loads bounce through host memory.

    Why: load time is then bounded by the drive, the page cache and one PCIe link per GPU, not by a
    direct NVMe -> GPU path. Fix: none needed for inference; plan load times accordingly.
    """
    geforce = [g for g in build.gpus if is_geforce(g.gpu.id, g.gpu.name)]
    if geforce and build.drives:
        yield finding(
            "STO003",
            f"{len(geforce)} GeForce GPUs: no GPUDirect Storage, model weights are read into host "
            "memory and copied to each GPU",
            "none needed; keep enough RAM for the page cache",
            gpus=len(geforce),
        )
