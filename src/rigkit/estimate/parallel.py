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


def pipelined_prefill_s(
    stage_s: list[float], n_ubatches: int, per_call: int, hop: float | list[float]
) -> float:
    """llama.cpp's prompt processing over a layer split: micro-batches flow through the GPUs.

    ``stage_s``: each GPU's time for one micro-batch (its share of the layers); ``n_ubatches``
    micro-batches in all, in calls of ``per_call`` (llama.cpp -b / -ub: 2048 / 512 = 4); ``hop``:
    handing one micro-batch's hidden state to the next GPU (through host memory without
    peer-to-peer), paid at every stage (a list: one per stage, e.g. a network hop where the
    next GPU is in another machine). Within a call, micro-batch j starts on GPU i as soon as
    GPU i has finished micro-batch j - 1 and GPU i - 1 micro-batch j, so a call of k micro-batches
    takes the sum of the stages (the first micro-batch's trip through every GPU) plus k - 1 times
    the slowest stage; the pipeline drains at the end of each call (llama_decode returns after its
    last micro-batch is scheduled and the next call's graph waits for it).
    """
    hops = hop if isinstance(hop, list) else [hop] * len(stage_s)
    st = [s + h for s, h in zip(stage_s, hops, strict=True) if s > 0]
    if not st or n_ubatches <= 0:
        return 0.0
    total = 0.0
    left = n_ubatches
    fill = sum(st)
    slow = max(st)
    k = max(1, per_call)
    while left > 0:
        now = min(k, left)
        total += fill + (now - 1) * slow
        left -= now
    return total


def node_hop_s(nic_gbit_s: float, latency_us: float, nbytes: float) -> float:
    """One hand-over of ``nbytes`` of activations between machines over their NICs.

    llama.cpp's RPC backend and vLLM's pipeline parallelism across nodes send the hidden state of
    the tokens in flight from the last GPU of one machine to the first of the next: a network
    round's latency (TCP through the kernel ~50-100 us on 10/25GbE; RoCE/RDMA ~5-10 us) plus the
    bytes at the link's rate (Gb/s / 8, ~90% after Ethernet/IP/TCP framing).
    """
    return latency_us * 1e-6 + nbytes / (nic_gbit_s / 8.0 * 1e9 * 0.9)
