"""GPU-to-GPU interconnect: peer-to-peer and NVLink."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from rigkit.design.model import gpu_link
from rigkit.design.registry import Finding, Severity, finding, rule

if TYPE_CHECKING:
    from rigkit.build import Build, PlacedGpu


def _bridged(g: PlacedGpu) -> bool:
    """NVLink counts only where the card has it and the spec fits a bridge."""
    return g.gpu.nvlink and g.nvlink_bridge


@rule("ICN001", "Multi-GPU without peer-to-peer", "interconnect", Severity.WARNING)
def no_p2p(build: Build) -> Iterator[Finding]:
    """With several GPUs and neither PCIe peer-to-peer nor NVLink, tensor-parallel all-reduce goes
    GPU -> host memory -> GPU: two PCIe crossings, a host copy and tens of microseconds each.

    Why: tensor parallelism then scales poorly for decode; pipeline/layer split (llama.cpp
    --split-mode layer) suffers less. Fix: prefer layer split, or GPUs with P2P/NVLink.
    """
    if build.gpu_count < 2:
        return
    if any(g.gpu.p2p or _bridged(g) for g in build.gpus):
        return
    bws = [gpu_link(build, g).bandwidth_gb_s for g in build.gpus]
    slowest = min(bws)
    yield finding(
        "ICN001",
        f"{build.gpu_count} GPUs with no peer-to-peer or NVLink: all-reduce crosses host PCIe "
        f"twice through system memory at <= {slowest:.1f} GB/s per GPU per direction",
        "use pipeline/layer split for multi-GPU inference; expect limited tensor-parallel scaling",
        gpus=build.gpu_count,
        pcie_gb_s=[round(b, 2) for b in bws],
    )


@rule("ICN002", "NVLink only pairs GPUs", "interconnect", Severity.INFO)
def nvlink_pairs(build: Build) -> Iterator[Finding]:
    """PCIe-card NVLink bridges join two GPUs; with more than two bridged, pairs talk over PCIe.

    Fix: tensor-parallel size 2 within a pair, pipeline across pairs.
    """
    linked = [g for g in build.gpus if _bridged(g)]
    if len(linked) > 2:
        yield finding(
            "ICN002",
            f"{len(linked)} NVLink GPUs: a bridge links 2, so traffic between pairs crosses PCIe",
            "use tensor parallel 2 inside each NVLink pair and pipeline parallel across pairs",
            nvlink_gpus=len(linked),
        )
