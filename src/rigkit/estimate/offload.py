"""MoE expert offload: llama.cpp's ``--n-cpu-moe N`` (``-ot "blk\\.(0|...|N-1)\\.ffn_.*_exps=CPU"``).

A mixture-of-experts model on GPUs too small for it runs every layer on the GPUs (``-ngl 99``)
except the routed experts of the first ``N`` layers, which stay in system RAM and run on the CPU.
Attention, the router, shared experts, norms and the KV cache stay on the GPUs. A decode step then
reads, per CPU layer, only the experts the batch's tokens are routed to: the CPU's memory
bandwidth bounds that part, the GPUs the rest. Prompt processing copies the CPU-resident experts
to the GPU once per micro-batch (llama.cpp offloads large batches' matmuls to the GPU), so long
prompts are bounded by PCIe.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigkit.estimate.resolve import ModelNums


@dataclass(frozen=True)
class ExpertOffload:
    """Where an expert-offloaded MoE model's weights go."""

    cpu_moe_layers: int  # N of --n-cpu-moe N: layers whose routed experts stay in system RAM
    gpu_bytes: tuple[float, ...]  # weights on each GPU
    cpu_bytes: float  # routed-expert weights in system RAM

    @property
    def flag(self) -> str:
        """The llama.cpp command-line flags that make this placement."""
        return f"-ngl 99 --n-cpu-moe {self.cpu_moe_layers}"


def expert_offload(m: ModelNums, layers: list[int], room: list[float]) -> ExpertOffload | None:
    """The smallest ``N`` whose placement fits ``room`` bytes of weights on each GPU, or None.

    ``layers``: llama.cpp's layers per GPU (the first GPU holds layers 0 .. layers[0] - 1, and the
    experts of the first N layers are the ones kept in RAM); the LM head is on the last GPU.
    ``room``: what each GPU has for weights after its KV cache, compute buffer and context.
    """
    if m.n_experts <= 1 or m.layer_expert_bytes <= 0:
        return None
    dense, experts = m.layer_dense_bytes, m.layer_expert_bytes
    # every GPU's dense part (and the head) must fit even with all of its experts in RAM
    first = 0
    starts = []
    for li in layers:
        starts.append(first)
        first += li
    for i, li in enumerate(layers):
        need = li * dense + (m.out_bytes if i == len(layers) - 1 else 0.0)
        if need > room[i]:
            return None
    for n_cpu in range(m.n_layers + 1):
        gpu = []
        for i, li in enumerate(layers):
            on_cpu = max(0, min(li, n_cpu - starts[i]))
            w = li * dense + (li - on_cpu) * experts
            if i == len(layers) - 1:
                w += m.out_bytes
            gpu.append(w)
        if all(w <= r for w, r in zip(gpu, room, strict=True)):
            return ExpertOffload(n_cpu, tuple(gpu), n_cpu * experts)
    return None


def cpu_expert_decode_s(
    m: ModelNums, n_cpu: int, batch: int, cpu_bw: float, round_trip_s: float
) -> tuple[float, float]:
    """(seconds the CPU spends on the offloaded experts per decode step, bytes it reads).

    Each of the ``n_cpu`` layers reads the routed experts ``batch`` tokens touch (uniform routing:
    ``expert_fraction``) at ``cpu_bw``; the hidden state goes to the CPU and back per layer
    (``round_trip_s``: two small copies and a synchronisation).
    """
    nbytes = n_cpu * m.layer_expert_bytes * m.expert_fraction(batch)
    return nbytes / cpu_bw + n_cpu * round_trip_s, nbytes
