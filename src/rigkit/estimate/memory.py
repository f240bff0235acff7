"""Memory per GPU: weights, KV cache, compute buffer, runtime overhead; placement of layers.

All figures in bytes. The formulas:

* KV cache = 2 (K and V) x layers x kv_heads x head_dim x dtype bytes x tokens
  (MLA: layers x (kv_lora_rank + rope dim) x bytes; sliding-window layers hold min(tokens, window)).
* llama.cpp compute buffer per GPU = base + max(ubatch x vocab x 4 (f32 logits),
  ubatch x context x heads x 4 (attention scores; 0 with flash attention)).
* vLLM claims ``gpu_memory_utilization`` x VRAM; weights, activations and CUDA graphs come out of it
  and the rest is KV cache.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from rigkit.estimate.resolve import ModelNums


@dataclass(frozen=True)
class EngineNums:
    """The engine catalog entry reduced to numbers (cached)."""

    id: str
    model_id: str  # behaves_as target (ollama -> llama.cpp)
    parallel_modes: tuple[str, ...]
    default_split: str
    cuda_ctx: float  # bytes per GPU
    workspace: float  # bytes per GPU, when there is no compute-buffer formula
    cb_base: float | None
    cb_ubatch: int
    cb_logits_bytes: float
    cb_scores_bytes: float
    cb_flash_attention: bool
    util: float | None
    paged: bool
    supports_offload: bool
    formats: frozenset[str]
    experimental: frozenset[str]  # loaded only through a path the engine's makers call experimental
    experimental_note: str
    kv_dtypes: tuple[tuple[str, float], ...] = ()  # KV cache dtype name -> bytes per element


@functools.lru_cache(maxsize=32)
def engine_nums(engine_id: str) -> EngineNums:
    from rigkit.catalog.llm import load_llm_catalog

    e = load_llm_catalog().engine(engine_id)
    cb = e.compute_buffer
    return EngineNums(
        id=e.id,
        model_id=e.behaves_as or e.id,
        parallel_modes=tuple(e.parallel_modes),
        default_split=e.default_split,
        cuda_ctx=e.cuda_context_gb * 1e9,
        workspace=e.workspace_gb * 1e9,
        cb_base=cb.base_gb * 1e9 if cb is not None else None,
        cb_ubatch=cb.ubatch_default if cb is not None else 512,
        cb_logits_bytes=cb.logits_bytes if cb is not None else 4.0,
        cb_scores_bytes=cb.scores_bytes if cb is not None else 4.0,
        cb_flash_attention=cb.flash_attention_default if cb is not None else True,
        util=e.gpu_memory_utilization,
        paged=e.kv_cache == "paged",
        supports_offload=e.supports_cpu_offload,
        formats=frozenset(e.formats),
        experimental=frozenset(e.experimental_formats),
        experimental_note=e.experimental_note or "",
        kv_dtypes=tuple((str(k), float(v)) for k, v in e.kv_dtype_options.items()),
    )


def kv_bytes(m: ModelNums, tokens: int, layers: float | None = None) -> float:
    """KV-cache bytes for ``tokens`` tokens of context over ``layers`` layers (default: all)."""
    total = m.kv_token_bytes(tokens)
    if layers is None:
        return total
    return total * layers / m.n_layers


def buffer_parts(e: EngineNums, m: ModelNums) -> tuple[float, float]:
    """(fixed bytes, bytes per context token) of the compute buffer on one GPU."""
    if e.cb_base is None:
        return e.workspace, 0.0
    logits = e.cb_ubatch * m.vocab * e.cb_logits_bytes
    per_ctx = 0.0 if e.cb_flash_attention else e.cb_ubatch * m.n_heads * e.cb_scores_bytes
    return e.cb_base + logits, per_ctx


def compute_buffer(e: EngineNums, m: ModelNums, context: int) -> float:
    """Compute-buffer bytes on one GPU for a KV cache of ``context`` tokens.

    The graph allocator reuses memory, so the larger of the logits and the attention scores counts.
    """
    fixed, per_ctx = buffer_parts(e, m)
    if e.cb_base is None:
        return fixed
    logits = fixed - e.cb_base
    return e.cb_base + max(logits, per_ctx * context)


def split_layers(n_layers: int, n_gpus: int) -> list[int]:
    """Layers per GPU for an even layer split (llama.cpp's default tensor split on equal GPUs)."""
    base, extra = divmod(n_layers, n_gpus)
    return [base + (1 if i < extra else 0) for i in range(n_gpus)]


def kv_share(m: ModelNums, n_gpus: int) -> float:
    """Share of the KV cache one GPU holds under tensor parallelism (heads split, or replicated)."""
    if n_gpus <= 1:
        return 1.0
    return max(1.0 / n_gpus, 1.0 / m.n_kv_heads)


def llama_cpp_layers(n_layers: int, n_gpus: int, output_on_gpu: bool = True) -> list[int]:
    """Layers per GPU as llama.cpp assigns them on equal GPUs (``llm_load_tensors``).

    With every layer offloaded, the output layer counts as one more slot: layer i of the
    ``n_layers + 1`` slots goes to the GPU whose cumulative share of the tensor split first
    exceeds i / (n_layers + 1) (``std::upper_bound``), the output to the last GPU. So the last GPU
    holds one layer fewer than an even split gives it, in exchange for the LM head: Llama-3-70B on
    6 GPUs is 14, 13, 14, 13, 14, 12 layers (+ output), not 14, 14, 13, 13, 13, 13.
    """
    if n_gpus <= 1:
        return [n_layers]
    slots = n_layers + (1 if output_on_gpu else 0)
    out = [0] * n_gpus
    for i in range(n_layers):
        # upper_bound over the cumulative split [1/n, 2/n, ..., 1] of i / slots: i * n // slots
        out[min(n_gpus - 1, i * n_gpus // slots)] += 1
    return out
