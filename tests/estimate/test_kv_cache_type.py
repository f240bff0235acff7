"""The engine's KV cache type (llama.cpp q8_0/q4_0, vLLM fp8) sets the KV bytes per token."""

from __future__ import annotations

import pytest

from rigkit.errors import EstimateError
from rigkit.estimate import estimate

# Llama-3-70B on 2 GPUs, layer split: llama.cpp gives the first GPU 41 of the 81 layer slots
# (the LM head is the last slot); context 8192 (prompt 8000 + gen 192)
# F16 KV: 41 layers x 8 KV heads x 128 x 2 (K, V) x 2 B x 8192 = 1.376 GB on the first GPU
# q8_0 stores 32 values in 34 bytes (1.0625 B each): 1.376 x 1.0625 / 2 = 0.731 GB
# q4_0 stores 32 values in 18 bytes (0.5625 B each): 1.376 x 0.5625 / 2 = 0.387 GB
F16_KV_GB = 41 * 8 * 128 * 2 * 2 * 8192 / 1e9


@pytest.mark.parametrize(
    ("kv", "bytes_per_value"), [(None, 2.0), ("q8_0", 34 / 32), ("q4_0", 18 / 32)]
)
def test_llama_cpp_kv_cache_types(kv: str | None, bytes_per_value: float) -> None:
    e = estimate("llama-3-70b", "q4_k_m", "rtx-4090", gpus=2, prompt=8000, gen=192, kv_cache=kv)
    kv_gb = dict(e.memory_terms)["kv_cache"]
    assert kv_gb == pytest.approx(F16_KV_GB * bytes_per_value / 2.0, rel=1e-9)
    quantised_v = any("flash attention" in a for a in e.assumptions)
    assert quantised_v == (kv is not None)


def test_vllm_fp8_kv_doubles_the_sequences_that_fit() -> None:
    # Llama-3-8B F16 on an RTX 4090, 768-token sequences: 50 fit with a 2-byte KV cache
    # (tests/estimate/test_paged_waves.py); with fp8 (1 byte) the same 5.13 GB holds
    # 39,157 x 2 = 78,315 tokens -> 101 sequences
    e = estimate(
        "llama-3-8b", "f16", "rtx-4090", engine="vllm", prompt=512, gen=256, kv_cache="fp8"
    )
    assert e.max_concurrent_sequences == 101


def test_an_engine_without_that_kv_type_is_refused() -> None:
    with pytest.raises(EstimateError, match="has no KV cache type 'fp8'"):
        estimate("llama-3-8b", "q4_k_m", "rtx-4090", kv_cache="fp8")


def test_flash_attention_drops_the_score_buffer() -> None:
    # llama.cpp compute buffer = 0.05 GB + max(logits, scores) per GPU, micro-batch 512:
    # logits 512 x 128,256 vocab x 4 B = 0.2627 GB; scores 512 x 16,384 ctx x 32 heads x 4 B
    # = 1.0737 GB -> 1.124 GB without -fa, 0.313 GB with it (the scores are never stored)
    def buf(fa: bool | None) -> float:
        e = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=16000, gen=384, flash_attention=fa)
        return dict(e.memory_terms)["compute_buffer"]

    assert buf(None) == pytest.approx(0.05 + 512 * 16384 * 32 * 4 / 1e9, rel=1e-9)
    assert buf(True) == pytest.approx(0.05 + 512 * 128256 * 4 / 1e9, rel=1e-9)
    # a quantised KV cache turns -fa on (llama.cpp needs it for the V cache)
    e = estimate("llama-3-8b", "q4_k_m", "rtx-4090", prompt=16000, gen=384, kv_cache="q8_0")
    assert dict(e.memory_terms)["compute_buffer"] == pytest.approx(buf(True), rel=1e-9)
    with pytest.raises(EstimateError, match="only with flash attention"):
        estimate("llama-3-8b", "q4_k_m", "rtx-4090", kv_cache="q4_0", flash_attention=False)
