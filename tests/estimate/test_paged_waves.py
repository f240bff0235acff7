"""Engines with a paged KV cache run a batch larger than their KV pool in waves."""

from __future__ import annotations

from rigkit.estimate import estimate

# Llama-3-8B F16: per layer q 4096^2 + k, v 4096 x 1024 + o 4096^2 = 41.94M, MLP 3 x 4096 x 14336
# = 176.16M, norms 8192 -> 218.11M; x 32 = 6979.6M; embedding and LM head 128256 x 4096 = 525.3M
# each (untied) -> 8030.3M params x 2 B = 16.06 GB of weights
# KV per token: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 131,072 B
# vLLM on an RTX 4090: 0.9 x 24 GiB = 23.193 GB claimed; minus weights, CUDA context 0.5 GB and
# workspace 1.5 GB = 5.132 GB of KV = 39,157 tokens; at 768 tokens per sequence: 50 sequences


def test_vllm_runs_the_batch_in_waves_of_what_the_kv_pool_holds() -> None:
    e = estimate("llama-3-8b", "f16", "rtx-4090", engine="vllm", prompt=512, gen=256, batch=64)
    assert not e.fits  # 64 sequences at once do not fit
    assert e.runnable  # but vLLM admits 50 and queues 14
    assert e.max_concurrent_sequences == 50
    assert e.decode_tokens_per_s is not None and e.aggregate_tokens_per_s is not None
    # the aggregate is that of 50 sequences in flight, not 64
    assert abs(e.aggregate_tokens_per_s - 50 * e.decode_tokens_per_s) < 1e-6
    # memory: 16.06 + 0.5 + 1.5 + 50 x 768 x 131,072 B (5.03 GB) = 23.09 GB, under 23.19
    assert abs(e.memory_gb_per_gpu - 23.09) < 0.01
    assert any("holds 50 of the 64 sequences" in a for a in e.assumptions)


def test_the_whole_batch_fitting_needs_no_waves() -> None:
    e = estimate("llama-3-8b", "f16", "rtx-4090", engine="vllm", prompt=512, gen=256, batch=50)
    assert e.fits and e.max_concurrent_sequences == 50
    assert not any("queues" in a for a in e.assumptions)


def test_weights_that_do_not_fit_are_not_rescued_by_waves() -> None:
    # Llama-3-70B F16 is ~141 GB: no KV pool left on one 24 GB card at any batch
    e = estimate("llama-3-70b", "f16", "rtx-4090", engine="vllm", prompt=512, gen=128)
    assert not e.runnable and e.max_concurrent_sequences == 0
    assert e.decode_tokens_per_s is None


def test_tied_head_is_counted_once_untied_twice() -> None:
    # Gemma-2-9B ties its LM head to the embedding: 9.24B params x 2 B = 18.5 GB in all;
    # Llama-3-8B does not: the embedding (1.05 GB) and the head (1.05 GB) are both on the GPU
    g = estimate("gemma-2-9b", "f16", "rtx-4090", engine="vllm", prompt=512, gen=128)
    assert abs(dict(g.memory_terms)["weights"] - 18.5) < 0.05
    ll = estimate("llama-3-8b", "f16", "rtx-4090", engine="vllm", prompt=512, gen=128)
    assert abs(dict(ll.memory_terms)["weights"] - 16.06) < 0.01
