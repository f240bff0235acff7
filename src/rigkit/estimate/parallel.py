"""Communication between GPUs for each split mode.

* layer (llama.cpp -sm layer) and pipeline (vLLM): the hidden state hops from GPU to GPU once per
  stage boundary; per-token time is the sum of the stages' times, no collectives.
* tensor (vLLM/TGI/exllamav2 TP): two all-reduces of the hidden state per layer. Without
  peer-to-peer (GeForce), each one goes GPU -> host memory -> GPU: two PCIe crossings and a host
  copy, a latency of tens of microseconds.
* row (llama.cpp -sm row): every matrix is split by rows; the main GPU gathers each matmul's result.
"""

from __future__ import annotations

from rigkit.estimate.params import Params
from rigkit.estimate.resolve import GpuNums


def link(g: GpuNums, p: Params) -> tuple[float, float, str]:
    """(latency s, bandwidth bytes/s, path) of a small collective between two GPUs of type ``g``."""
    pcie = g.pcie_bw_raw * p.pcie_efficiency
    if g.nvlink and g.nvlink_bw:
        return p.nvlink_allreduce_latency_us * 1e-6, g.nvlink_bw / 2.0, "NVLink"
    if g.p2p:
        return p.p2p_allreduce_latency_us * 1e-6, pcie, "PCIe peer-to-peer"
    return p.host_allreduce_latency_us * 1e-6, pcie / 2.0, "PCIe through host memory (no P2P)"


def allreduce_s(g: GpuNums, p: Params, n_gpus: int, nbytes: float) -> float:
    """Time of one ring all-reduce of ``nbytes`` over ``n_gpus`` GPUs."""
    if n_gpus <= 1:
        return 0.0
    lat, bw, _ = link(g, p)
    return lat + 2.0 * (n_gpus - 1) / n_gpus * nbytes / bw


def hop_s(g: GpuNums, p: Params, nbytes: float) -> float:
    """One activation copy from one GPU to the next."""
    pcie = g.pcie_bw_raw * p.pcie_efficiency
    if g.nvlink and g.nvlink_bw:
        return p.nvlink_allreduce_latency_us * 1e-6 + nbytes / (g.nvlink_bw / 2.0)
    if g.p2p:
        return p.hop_latency_us * 1e-6 * 0.5 + nbytes / pcie
    return p.hop_latency_us * 1e-6 + 2.0 * nbytes / pcie


def row_gather_s(g: GpuNums, p: Params, n_gpus: int, matrices: int, nbytes: float) -> float:
    """llama.cpp row split: ``matrices`` gathers per layer of ``nbytes`` total result bytes."""
    if n_gpus <= 1:
        return 0.0
    lat, bw, _ = link(g, p)
    lat = max(lat, p.row_sync_latency_us * 1e-6) if not (g.nvlink or g.p2p) else lat
    return matrices * lat + (n_gpus - 1) / n_gpus * nbytes / bw
