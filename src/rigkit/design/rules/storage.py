"""Storage: RAID 0 throughput vs links, drives without a socket, GPUDirect Storage."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rigkit.design.model import is_geforce, volumes
from rigkit.design.registry import Finding, Severity, finding, rule
from rigkit.errors import RigkitError

if TYPE_CHECKING:
    from rigkit.build import Build

log = logging.getLogger(__name__)

#: a models volume filled past this fraction leaves no room for the next download
MODEL_STORE_WARN_FILL = 0.8


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


def model_files_gb(build: Build) -> dict[str, float]:
    """GB of weights for each distinct (model, format) the spec's expectations name."""
    pairs = sorted(
        {(str(e.get("model")), str(e.get("quant"))) for e in build.expectations if e.get("model")}
    )
    if not pairs:
        return {}
    from rigkit.catalog.llm import load_llm_catalog, weight_bytes

    cat = load_llm_catalog()
    return {f"{m} {q}": weight_bytes(cat.model(m), cat.format(q)) / 1e9 for m, q in pairs}


@rule("STO004", "Model storage capacity", "storage", Severity.ERROR)
def model_storage(build: Build) -> Iterator[Finding]:
    """The models the spec expects to run (its expectations) must fit on the models volume (drives
    with role 'models'; all drives when none has that role), with room to spare.

    Why: weights are large (a 70B model in FP16 is ~141 GB); a full drive stops the next download.
    Fix: bigger or more drives for models, or quantised formats.
    """
    try:
        sizes = model_files_gb(build)
    except RigkitError as err:  # an id the LLM catalog does not know: the estimator reports it
        log.debug("model sizes unavailable: %s", err)
        return
    if not sizes:
        return
    drives = [d for d in build.drives if d.role == "models"] or list(build.drives)
    cap_gb = sum(d.drive.capacity_tb for d in drives) * 1000.0
    need = sum(sizes.values())
    listing = ", ".join(f"{k} {v:,.0f} GB" for k, v in sizes.items())
    data: dict[str, Any] = {
        "models_gb": round(need, 1),
        "capacity_gb": cap_gb,
        "models": {k: round(v, 1) for k, v in sizes.items()},
    }
    msg = f"the expected models take {need:,.0f} GB ({listing}) of {cap_gb:,.0f} GB for models"
    if need > cap_gb:
        yield finding(
            "STO004", msg, f"add at least {need - cap_gb:,.0f} GB of model storage", **data
        )
    elif need > MODEL_STORE_WARN_FILL * cap_gb:
        yield finding(
            "STO004",
            msg + f" ({need / cap_gb:.0%} full)",
            "add model storage or keep fewer formats on disk",
            severity=Severity.WARNING,
            **data,
        )
    else:
        yield finding("STO004", msg, "none needed", severity=Severity.INFO, **data)
